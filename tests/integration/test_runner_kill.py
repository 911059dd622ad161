"""Exactly-once: `kbt shard` processes SIGKILLed at random points, then rerun, write the same
bytes as a clean run; `kbt run` end to end with a Model document and a scoring script."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kbt.api.models import BatchTransformJobSpec
from kbt.api.resolved import ResolvedJob
from kbt.cli import app
from kbt.runner.shard import run_shard

SCRIPT = """
import time
def init():
    pass
def run(mini_batch):
    time.sleep(0.02)
    return (mini_batch["a"] * 10 + mini_batch["b"]).tolist()
"""


def _inputs(root: Path) -> Path:
    data = root / "in"
    data.mkdir()
    rng = random.Random(5)
    for f in range(3):
        rows = "".join(f"{rng.randint(0, 99)},{rng.randint(0, 9)}\n" for _ in range(400))
        (data / f"f{f}.csv").write_text("a,b\n" + rows)
    return data


def _model(root: Path) -> Path:
    model = root / "model"
    model.mkdir()
    (model / "score.py").write_text(SCRIPT)
    return model


def _job(data: Path, model: Path, output: Path, append: bool) -> dict[str, object]:
    return {
        "transformInput": {
            "contentType": "text/csv",
            "splitType": "Line",
            "dataSource": {"s3DataSource": {"s3Uri": f"{data}/"}},
        },
        "transformOutput": {
            "s3OutputPath": str(output),
            **({"outputAction": "appendRow", "appendRowFileName": "all.csv"} if append else {}),
        },
        "transformResources": {"instanceType": "ml.m5.large", "instanceCount": 2},
        "model": {"uri": str(model), "flavor": "custom", "scoringScript": "score.py"},
        "miniBatchSize": 20,
    }


def _write_job(path: Path, spec: dict[str, object]) -> Path:
    parsed = BatchTransformJobSpec.model_validate(spec)
    assert parsed.model is not None
    ResolvedJob(name="kill", spec=parsed, model=parsed.model, model_ref="inline").dump(path)
    return path


def _shard(job: Path, index: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "kbt.runner",
        "--job",
        str(job),
        "--index",
        str(index),
        "--split-bytes",
        "1500",
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _outputs(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "_kbt" not in p.parts and p.name != "_manifest.json"
    }


@pytest.mark.slow
def test_killed_shards_rerun_to_identical_bytes(tmp_path: Path) -> None:
    data, model = _inputs(tmp_path), _model(tmp_path)
    env = {**os.environ, "KBT_TERMINATION_LOG": str(tmp_path / "termination"), "KBT_PROGRESS_INTERVAL": "0.2"}
    clean_out, killed_out = tmp_path / "clean", tmp_path / "killed"
    clean = _write_job(tmp_path / "clean.json", _job(data, model, clean_out, append=True))
    killed = _write_job(tmp_path / "killed.json", _job(data, model, killed_out, append=True))
    clean_job = ResolvedJob.load(clean)
    for index in (0, 1):  # the clean run in-process: the same run_shard the subprocesses execute
        run_shard(clean_job, index, split_bytes=1500, progress_interval=60)
    rng = random.Random(11)
    kills = rounds = 0
    # A shard starts in about a second with bytecode cached: kill early, and keep trying (bounded)
    # until each shard has been killed at least once on average.
    while kills < 2 and rounds < 6:
        rounds += 1
        for index in (0, 1):
            process = _shard(killed, index, env)
            time.sleep(rng.uniform(0.3, 1.5))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait(timeout=30)
    for index in (0, 1):
        assert _shard(killed, index, env).wait(timeout=60) == 0
    assert kills >= 2
    clean_files, killed_files = _outputs(clean_out), _outputs(killed_out)
    assert "all.csv" in clean_files and len(clean_files["all.csv"].splitlines()) == 1200
    assert killed_files == clean_files
    assert json.loads((killed_out / "_manifest.json").read_text())["counts"]["records"] == 1200


def test_kbt_run_with_model_document(tmp_path: Path) -> None:
    data, model = _inputs(tmp_path), _model(tmp_path)
    spec = _job(data, model, tmp_path / "out", append=False)
    spec.pop("model")
    spec["modelName"] = "scorer"
    job = {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": "local"},
        "spec": spec,
    }
    model_doc = {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "Model",
        "metadata": {"name": "scorer"},
        "spec": {"uri": str(model), "flavor": "custom", "scoringScript": "score.py"},
    }
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump_all([job, model_doc]))
    result = CliRunner().invoke(app, ["run", str(manifest), "--workers", "2", "--split-size-mb", "0.002"])
    assert result.exit_code == 0, result.output
    assert "1200 records, 0 errors" in result.output
    first = (data / "f0.csv").read_text().splitlines()[1:]
    expected = [str(int(a) * 10 + int(b)) for a, b in (row.split(",") for row in first)]
    assert (tmp_path / "out" / "f0.csv.out").read_text().splitlines() == expected
    summary = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert summary["counts"]["records"] == 1200 and len(summary["shards"]) == 2

    missing = tmp_path / "missing.yaml"
    job["spec"]["transformInput"]["dataSource"]["s3DataSource"]["s3Uri"] = str(tmp_path / "nothing/")  # type: ignore[index]
    missing.write_text(yaml.safe_dump_all([job, model_doc]))
    failed = CliRunner().invoke(app, ["run", str(missing), "--output", str(tmp_path / "out2")])
    assert failed.exit_code == 3
    assert "no input objects found" in failed.output


def test_sigterm_stops_with_the_stopped_code(tmp_path: Path) -> None:
    data, model = _inputs(tmp_path), _model(tmp_path)
    termination = tmp_path / "termination"
    env = {
        **os.environ,
        "KBT_TERMINATION_LOG": str(termination),
        "JOB_COMPLETION_INDEX": "1",
        "SCORE_SLEEP": "0.5",
        "KBT_PROGRESS_INTERVAL": "0.2",
        "KBT_SHARD_MAP": "1,0",
    }
    job = _write_job(tmp_path / "job.json", _job(data, model, tmp_path / "out", append=False))
    command = [sys.executable, "-m", "kbt.runner", "--job", str(job), "--split-bytes", "1500"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = tmp_path / "out" / "_kbt" / "progress" / "shard-00000.json"  # shard map: index 1 -> shard 0
    deadline = time.monotonic() + 60
    while not (progress.exists() and json.loads(progress.read_text())["state"] == "running"):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 6
    assert termination.read_text().strip() == "stopped by SIGTERM"
