"""The comparison benchmark (bench/compare) still runs end to end and reports what it measured."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # bench/ is a folder of the repository, not an installed package

from bench.compare.__main__ import main  # noqa: E402
from bench.compare.child import _csv_payloads  # noqa: E402
from bench.compare.report import write_report  # noqa: E402


def measurement(
    workload: str, variant: str, contender: str, seconds: list[float], rss: float = 100.0
) -> dict[str, object]:
    return {
        "workload": workload,
        "variant": variant,
        "contender": contender,
        "expected_records": 1000,
        "seconds": seconds,
        "wall_seconds": seconds,
        "peak_rss_mb": [rss] * len(seconds),
        "records": 1000,
        "error": "",
        "note": "",
    }


def test_payloads_stay_under_the_limit_and_keep_every_row() -> None:
    header = b"a,b\n"
    body = b"".join(f"{i},{i * 2}\n".encode() for i in range(500))
    payloads = list(_csv_payloads(header, body, limit=256))
    assert len(payloads) > 1
    assert all(len(p) <= 256 and p.startswith(header) for p in payloads)
    assert b"".join(p.removeprefix(header) for p in payloads) == body


def test_report_computes_ratios_goals_and_plots(tmp_path: Path) -> None:
    data = {
        "plan": {
            "rows": 1000,
            "files": 2,
            "mnist_images": 1,
            "resnet_images": 1,
            "docs": 1,
            "repeats": 3,
            "scale_repeats": 1,
            "workers": 2,
        },
        "servers": {"tabular": "mlflow models serve"},
        "measurements": [
            measurement("tabular", "csv / S3", "kbt-run", [1.0, 1.2, 0.9]),
            measurement("tabular", "csv / S3", "kbt-run-loaded", [0.5, 0.6, 0.4]),  # model load excluded
            measurement("tabular", "csv / S3", "http", [3.0, 3.1, 2.9]),  # kbt 3x: misses the 5x goal
            measurement("tabular", "csv / S3", "ray", [2.0, 2.0, 2.0]),  # kbt 2x: meets 1x
            measurement("tabular", "csv / S3", "ceiling", [0.5, 0.5, 0.5]),  # kbt 0.5x: misses 0.7x
            measurement("scale", "1x (10 rows)", "kbt-run", [1.0], rss=100.0),
            measurement("scale", "100x (1,000 rows)", "kbt-run", [2.0], rss=120.0),
            measurement("scale", "1 workers", "kbt-run", [2.0]),
            measurement("scale", "2 workers", "kbt-run", [1.0]),
        ],
    }
    report = write_report(data, tmp_path, "python -m bench.compare --test", 60.0).read_text()
    assert "| tabular | csv / S3 | kbt ≥ 5.0x http | 3.00x | MISSED |" in report
    assert "| tabular | csv / S3 | kbt ≥ 1.0x ray | 2.00x | MET |" in report
    assert "| tabular | csv / S3 | kbt ≥ 0.7x ceiling | 0.50x | MISSED |" in report
    assert "| tabular | csv / S3 | kbt after model load ≥ 5.0x http | 6.00x | MET |" in report
    assert "| tabular | csv / S3 | kbt after model load ≥ 0.7x ceiling | 1.00x | MET |" in report
    assert "as input grows 100x | 1.20x | MET |" in report
    assert "| 1.00 | 0.90–1.20 | 1,000 |" in report  # median, spread, records/s of kbt
    for name in ("tabular.png", "scaling.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_quick_run_scores_every_record_with_each_contender(tmp_path: Path) -> None:
    results = tmp_path / "results"
    report = main(
        [
            "--quick",
            "--workloads",
            "mnist",
            "--contenders",
            "kbt-run,ceiling,pandas",
            "--work-dir",
            str(tmp_path / "work"),
            "--results-dir",
            str(results),
        ]
    ).read_text()
    rows = [line for line in report.splitlines() if line.startswith("| png / local |")]
    assert len(rows) == 4, report  # kbt run, kbt after its model load, ceiling, pandas
    assert any("| kbt run, after model load |" in row for row in rows), report
    assert all(row.endswith("| yes |") for row in rows), report
    assert (results / "mnist.png").is_file()
