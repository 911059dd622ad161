"""The comparison benchmark (bench/compare) runs end to end and reports what it measured, honestly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # bench/ is a folder of the repository, not an installed package

from bench.compare.__main__ import main  # noqa: E402
from bench.compare.child import _csv_payloads  # noqa: E402
from bench.compare.environment import describe_environment  # noqa: E402
from bench.compare.plan import QUICK, choose_plan  # noqa: E402
from bench.compare.report import write_report  # noqa: E402
from bench.compare.storage import TRASH_DIR, Store, empty_trash  # noqa: E402

FIRST_SCRIPT = REPO / "bench" / "compare" / "first_prediction.py"
ENVIRONMENT = {
    "date": "2026-01-01 00:00 UTC",
    "cpu": "Test CPU 9000",
    "cores": 2,
    "usable_cores": 2,
    "memory_gib": 8.0,
    "python": "3.11.7 (/venv/bin/python)",
    "packages": {"kbt": "0.1.0", "torch": "2.0", "ray": "not installed"},
    "load_average_at_start": 3.5,
    "load_average_1m": 0.4,
    "pythondontwritebytecode": "1",
    "bytecode_cached": {"kbt": True, "pandas": True},
}


def measurement(
    workload: str,
    variant: str,
    contender: str,
    seconds: list[float],
    goal: float | None = None,
    rss: float = 100.0,
    error: str = "",
) -> dict[str, object]:
    return {
        "workload": workload,
        "variant": variant,
        "contender": contender,
        "expected_records": 1000,
        "goal": goal,
        "seconds": seconds,
        "peak_rss_mb": [rss] * len(seconds),
        "records": 0 if error else 1000,
        "error": error,
    }


def results(*measurements: dict[str, object], quick: bool = False) -> dict[str, object]:
    plan = {
        "quick": quick,
        "rows": 1000,
        "big_rows": 0,
        "example_rows": 1000,
        "files": 2,
        "mnist_images": 1,
        "resnet_images": 1,
        "docs": 1,
        "workers": 2,
        "first_repeats": 3,
        "run_timeout_s": 100.0,
    }
    return {
        "plan": plan,
        "environment": ENVIRONMENT,
        "first_cases": {"sklearn": "scikit-learn RandomForest (joblib)"},
        "skipped": {"text": "example dataset billsum not found: put it at /nowhere"},
        "measurements": list(measurements),
    }


def test_payloads_stay_under_the_limit_and_keep_every_row() -> None:
    header = b"a,b\n"
    body = b"".join(f"{i},{i * 2}\n".encode() for i in range(500))
    payloads = list(_csv_payloads(header, body, limit=256))
    assert len(payloads) > 1
    assert all(len(p) <= 256 and p.startswith(header) for p in payloads)
    assert b"".join(p.removeprefix(header) for p in payloads) == body


def test_report_states_goals_ratios_start_up_and_environment(tmp_path: Path) -> None:
    data = results(
        measurement("first-prediction", "sklearn", "kbt-run", [2.2, 2.0, 2.6]),
        measurement("first-prediction", "sklearn", "script", [2.0, 1.9, 2.1], goal=1.2),  # 1.10x: met
        measurement("tabular", "csv / local, 1,000 rows", "kbt-run", [1.0, 1.2, 0.9]),
        measurement("tabular", "csv / local, 1,000 rows", "pandas", [1.2, 1.2, 1.2], goal=1.5),  # 1.2x
        measurement("tabular", "csv / local, 1,000 rows", "ray", [4.0, 4.0, 4.0], goal=3.0),  # 4x: met
        measurement("tabular", "csv / local, 1,000 rows", "http", [2.0, 2.0, 2.0]),  # no goal
        measurement("heart-example", "csv, as shipped", "kbt-run", [], error="did not finish within 100 s"),
        measurement("heart-example", "csv, as shipped", "pandas", [20.0], goal=1.5),  # kbt < 0.2x
        measurement("scale", "1x (10 rows)", "kbt-run", [1.0], rss=100.0),
        measurement("scale", "100x (1,000 rows)", "kbt-run", [2.0], rss=120.0),
    )
    report = write_report(data, tmp_path, "python -m bench.compare --test", 60.0).read_text()
    lines = report.splitlines()
    assert lines[0].startswith("# kbt benchmark")
    assert "Test CPU 9000, 2 cores (2 usable), 8.0 GiB memory" in report
    assert "kbt 0.1.0, torch 2.0, ray not installed" in report
    assert "bytecode cached (`.pyc` present for kbt, pandas); PYTHONDONTWRITEBYTECODE=1" in report
    assert "Skipped text: example dataset billsum not found" in report
    assert "at start / end: 3.5 / 0.4 on 2 cores: other processes competed for the CPUs" in report
    assert "| first-prediction | sklearn | minimal script | ≤ 1.2x | 1.10x | MET |" in report
    assert "| tabular | csv / local, 1,000 rows | plain pandas script | ≥ 1.5x | 1.20x | MISSED |" in report
    assert "| ≥ 3.0x | 4.00x | MET |" in report
    assert "| plain pandas script | ≥ 1.5x | <0.20x | MISSED |" in report  # kbt hit the time limit
    assert "| 2.00x | – | no goal (reference) | yes |" in report  # HTTP, its server's start included
    assert "| 1.00 | 0.90–1.20 | 1,000 |" in report  # kbt's median, spread, records/s
    assert "kbt peak RSS grows 1.20x from the smallest to the largest input (goal ≤ 1.5x): MET." in report
    tables = [
        i for i, line in enumerate(lines) if line.startswith("| input |") or line.startswith("| flavor |")
    ]
    for index in tables:  # every table says what its times include, and the bytecode state
        assert "model load included; bytecode cached" in "\n".join(lines[index - 3 : index])
    for name in ("first-prediction", "tabular", "scale"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert f"![{name}]({name}.png)" in report


def test_quick_plan_is_small_and_overridable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KBT_BENCH_QUICK", raising=False)
    full = choose_plan(False)
    assert not full.quick and full.rows == 1_000_000 and full.big_rows == 10_000_000
    assert full.first_repeats == 5 and "ray" in full.contenders and "http" in full.contenders
    monkeypatch.setenv("KBT_BENCH_QUICK", "1")
    quick = choose_plan(False, rows=500)
    assert quick.quick and quick.rows == 500 and quick.big_rows == 0
    assert quick.ray_workloads == () and QUICK.http_workloads == ("tabular",)


def test_environment_names_versions_and_bytecode() -> None:
    environment = describe_environment()
    assert environment["cores"] >= 1 and environment["memory_gib"] > 0
    assert set(environment["packages"]) >= {"kbt", "torch", "tensorflow", "scikit-learn", "pandas", "pyarrow"}
    assert environment["packages"]["kbt"] != "not installed"
    assert "kbt" in environment["bytecode_cached"]


def test_minimal_script_scores_one_record(tmp_path: Path) -> None:
    features = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model_dir, record, output = tmp_path / "model", tmp_path / "record.csv", tmp_path / "out.jsonl"
    model_dir.mkdir()
    joblib.dump(LogisticRegression().fit(features, [0, 0, 1, 1]), model_dir / "model.joblib")
    features.tail(1).to_csv(record, index=False)
    subprocess.run(
        [sys.executable, str(FIRST_SCRIPT), "sklearn", str(model_dir), str(record), str(output)], check=True
    )
    assert output.read_text() == "1\n"


def test_missing_dataset_is_one_line_and_the_rest_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KBT_DATASETS", str(tmp_path / "no-datasets"))
    report = main(
        [
            "--quick",
            "--workloads",
            "mnist",
            "--work-dir",
            str(tmp_path / "work"),
            "--results-dir",
            str(tmp_path / "results"),
        ]
    ).read_text()
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if line.startswith("skipping mnist")]
    assert len(skipped) == 1 and "Traceback" not in err, err
    assert "mnist not found" in skipped[0] and "KBT_DATASETS" in skipped[0]
    assert "- Skipped mnist: example dataset mnist not found" in report


@pytest.mark.slow
def test_quick_run_times_kbt_against_each_baseline(tmp_path: Path) -> None:
    results_dir = tmp_path / "results"
    report = main(
        [
            "--quick",
            "--workloads",
            "first-prediction,tabular",
            "--first-flavors",
            "sklearn",
            "--contenders",
            "kbt-run,pandas,http",
            "--work-dir",
            str(tmp_path / "work"),
            "--results-dir",
            str(results_dir),
        ]
    ).read_text()
    first = [line for line in report.splitlines() if line.startswith("| sklearn |")]
    assert len(first) == 1 and first[0].endswith("| yes |"), report
    rows = [line for line in report.splitlines() if line.startswith("| csv / local, 3,000 rows |")]
    assert len(rows) == 3, report  # kbt run, pandas, HTTP (server start included)
    assert all(row.endswith("| yes |") for row in rows), report
    assert (results_dir / "tabular.png").is_file() and (results_dir / "first-prediction.png").is_file()


def test_clearing_a_local_output_moves_it_aside_until_the_trash_is_emptied(tmp_path: Path) -> None:
    out = tmp_path / "out" / "mnist"
    (out / "000").mkdir(parents=True)
    (out / "000" / "1.png.out").write_text("7\n")
    store = Store(str(out), None)
    store.clear()
    assert store.list() == []
    (trash,) = (tmp_path / "out" / TRASH_DIR).iterdir()
    assert (trash / "000" / "1.png.out").read_text() == "7\n"
    store.clear()  # again, over an empty output
    empty_trash(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mnist"]


def test_warming_reads_every_local_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("000/1.png", "000/2.png", "a.csv"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(name.encode())
    read: list[bytes] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda path: read.append(real(path)) or read[-1])
    Store(str(tmp_path / "in"), None).warm()
    assert read == [b"000/1.png", b"000/2.png", b"a.csv"]
