"""pandas and pyarrow are imported only by jobs that need them (kbt.frames): real ``kbt run``s.

The model class of these jobs (a PyTorch state_dict with a ``modelClass``) is imported by the
worker ``kbt run`` forks, before it loads the model: it notes which pandas/pyarrow modules the
worker has then (those of ``kbt run`` at the fork, and the worker's own), and from then on, with a
finder first on ``sys.meta_path``, every pandas/pyarrow module imported until the worker exits.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from kbt.frames import is_frame, is_series

HEAVY = ("pandas", "pyarrow")

SUM_MODULE = """
import json
import os
import sys
import traceback
from pathlib import Path

from torch import nn

HEAVY = {"pandas", "pyarrow"}
LOG = Path(__file__).with_name("imports.jsonl")


def note(**event):
    with LOG.open("a") as log:
        log.write(json.dumps(event) + "\\n")


class Watch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HEAVY:
            note(imported=name, stack="".join(traceback.format_stack()))
        return None


loaded = sorted(m for m in sys.modules if m.partition(".")[0] in HEAVY)
note(pid=os.getpid(), ppid=os.getppid(), modules=loaded)
sys.meta_path.insert(0, Watch())


class Sum(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1, bias=False)

    def forward(self, x):
        return self.linear(x)
"""


def png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (2, 2), color=value).save(buffer, format="PNG")
    return buffer.getvalue()


def _model(folder: Path) -> Path:
    """A folder with the ``sum_net:Sum`` module and its state_dict: the sum of 4 inputs."""
    folder.mkdir(exist_ok=True)
    (folder / "sum_net.py").write_text(SUM_MODULE)
    torch.save({"linear.weight": torch.ones(1, 4)}, folder / "model.pt")
    return folder


@dataclass
class SumRun:
    """A ``kbt run`` of the Sum model: its output folder, the events its workers noted (see the
    module docstring), the pid of ``kbt run``, its exit code and what it printed."""

    out: Path
    events: list[Any]
    pid: int
    returncode: int
    printed: str


def kbt_run_sum(
    tmp_path: Path, transform_input: dict[str, Any], *, instances: int = 1, **model: Any
) -> SumRun:
    """``kbt run`` of a job over ``tmp_path/in`` with the Sum model (``model`` adds to its spec)."""
    code = _model(tmp_path / "model")
    out = tmp_path / "out"
    job = {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": "lazy"},
        "spec": {
            "model": {
                "uri": str(code / "model.pt"),
                "flavor": "pytorch",
                "modelClass": "sum_net:Sum",
                "codePaths": [str(code)],
                **model,
            },
            "transformInput": {
                **transform_input,
                "dataSource": {"s3DataSource": {"s3DataType": "S3Prefix", "s3Uri": f"{tmp_path / 'in'}/"}},
            },
            "transformOutput": {"s3OutputPath": str(out)},
            "transformResources": {"instanceCount": instances, "instanceType": "ml.m5.large"},
        },
    }
    manifest = tmp_path / "job.yaml"
    manifest.write_text(json.dumps(job))
    process = subprocess.Popen(
        [sys.executable, "-c", "from kbt.cli import app; app()", "run", str(manifest)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    printed, _ = process.communicate(timeout=240)
    log = code / "imports.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return SumRun(out, events, process.pid, process.returncode, printed)


def _kbt_run(tmp_path: Path, transform_input: dict[str, Any], **model: Any) -> tuple[Path, list[Any], int]:
    """``kbt run`` that must succeed: its output folder, worker events and pid."""
    run = kbt_run_sum(tmp_path, transform_input, **model)
    assert run.returncode == 0, run.printed
    return run.out, run.events, run.pid


def _imported(events: list[Any]) -> list[str]:
    return [event["imported"] for event in events if "imported" in event]


def test_image_job_imports_neither_pandas_nor_pyarrow(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for value in (1, 2):
        (tmp_path / "in" / f"img-{value}.png").write_bytes(png(value))
    out, events, parent = _kbt_run(
        tmp_path,
        {"contentType": "image/png", "splitType": "None"},
        imagePreprocessing={"colorMode": "L", "layout": "flat"},
    )
    assert (out / "img-1.png.out").read_text() == "[4.0]\n"
    assert (out / "img-2.png.out").read_text() == "[8.0]\n"
    start, *imports = events
    assert start["ppid"] == parent  # forked by `kbt run`: it had imported these modules before the fork
    assert start["modules"] == []
    assert imports == [], "\n".join(f"{e['imported']} imported from:\n{e['stack']}" for e in imports)


def _write_input(path: Path) -> None:
    """Two rows, 1 2 3 4 and 5 6 7 8, in the format of ``path``'s suffix."""
    if path.suffix == ".parquet":
        pq.write_table(pa.table({c: [i + 1.0, i + 5.0] for i, c in enumerate("abcd")}), path)
    elif path.suffix == ".csv":
        path.write_text("a,b,c,d\n1,2,3,4\n5,6,7,8\n")
    else:
        path.write_text("[1,2,3,4]\n[5,6,7,8]\n")


@pytest.mark.parametrize(
    ("name", "content_type", "split_type"),
    [
        ("x.csv", "text/csv", "Line"),
        ("x.jsonl", "application/jsonlines", "Line"),
        ("x.parquet", "application/x-parquet", "None"),
    ],
)
def test_tabular_jobs_import_them_when_they_need_them(
    tmp_path: Path, name: str, content_type: str, split_type: str
) -> None:
    """CSV, JSON Lines and Parquet jobs work as before; ``kbt run`` forked without them."""
    (tmp_path / "in").mkdir()
    _write_input(tmp_path / "in" / name)
    out, events, _ = _kbt_run(tmp_path, {"contentType": content_type, "splitType": split_type})
    result = out / f"{name}.out"
    if name.endswith(".parquet"):
        assert pq.read_table(result).column(0).to_pylist() == [10.0, 26.0]
    elif name.endswith(".csv"):
        assert result.read_text().split() == ["10.0", "26.0"]
    else:
        assert result.read_text().split() == ["[10.0]", "[26.0]"]
    assert events[0]["modules"] == []
    assert "pandas" in _imported(events)  # the worker imported it once it needed it


def test_frame_checks_import_nothing() -> None:
    check = (
        "import sys; from kbt.frames import is_frame, is_series; "
        "assert not is_frame([1]) and not is_series({}); "
        f"print(sorted(m for m in sys.modules if m.partition('.')[0] in {HEAVY!r}))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_frame_checks() -> None:
    import pandas as pd  # noqa: PLC0415 (this test is the one that needs pandas)

    frame = pd.DataFrame({"a": [1]})
    assert is_frame(frame) and not is_series(frame)
    assert is_series(frame["a"]) and not is_frame(frame["a"])
    assert not is_frame([1]) and not is_series(torch.zeros(1).numpy())


@pytest.mark.parametrize("module", ["kbt.runner.local", "kbt.runner.shard", "kbt.cli"])
def test_kbt_modules_import_neither(module: str) -> None:
    check = f"import sys, {module}; print(sorted(m for m in sys.modules if m.partition('.')[0] in {HEAVY!r}))"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
