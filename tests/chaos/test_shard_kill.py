"""Shards SIGKILLed at random points and rerun: final outputs are byte-identical to a clean run.

The job: four small CSV objects, one of them split into several parts, scored by a custom script,
over three shards, in both output modes that write differently (perInput: one ``.out`` per
object, split objects composed from parts; appendRow: every part composed into one file). See
``chaos.shard_killer`` for how kill points are drawn.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.jobs import job_document, local_output_files, make_job, write_model, write_small_inputs
from chaos.trials import Trial, line_differences, record, trial_count

SHARDS = 3
SPLIT_BYTES = 8 * 1024
TRIALS = trial_count(quick=3, full=50)  # per output mode
TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("output_action", ["perInput", "appendRow"])
def test_killed_shards_rerun_to_byte_identical_outputs(tmp_path: Path, output_action: str) -> None:
    inputs = tmp_path / "inputs"
    write_small_inputs(inputs)
    model = write_model(tmp_path / "model")
    doc = job_document(
        f"kill-{output_action.lower()}",
        f"{inputs}/",
        str(tmp_path / "unused") + "/",
        model,
        transformOutput={"s3OutputPath": str(tmp_path / "unused") + "/", "outputAction": output_action},
    )
    job = make_job(tmp_path / "job.json", doc)
    assert job.spec.transformOutput.outputAction == output_action
    spec = {
        "job": str(tmp_path / "job.json"),
        "workdir": str(tmp_path / "work"),
        "results": str(tmp_path / "results.jsonl"),
        "shards": SHARDS,
        "split_bytes": SPLIT_BYTES,
        "trials": TRIALS,
        "seed": 20240501,
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "KBT_LOG_FORMAT": "json"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "chaos.shard_killer", str(tmp_path / "spec.json")],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=540,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    header, *results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    clean = local_output_files(Path(header["clean"]))
    assert clean and any(name.endswith(".out") or name.endswith(".csv") for name in clean), clean.keys()
    assert len(results) == TRIALS
    failures = []
    for result in results:
        got = local_output_files(Path(result["output"]))
        lost, duplicated = line_differences(clean, got)
        ok = got == clean and all(code == 0 for code in result["exit_codes"])
        detail = (
            f"{output_action}: shard {result['victim']} killed {result['point']} (killed={result['killed']})"
        )
        record(Trial(f"shard-kill/{output_action}", result["trial"], ok, lost, duplicated, detail))
        if not ok:
            failures.append(
                f"{detail}: exit codes {result['exit_codes']}, files differ: "
                f"{sorted(set(got) ^ set(clean)) or [k for k in clean if got.get(k) != clean[k]]}"
            )
    killed = sum(result["killed"] for result in results)
    assert killed >= TRIALS // 2, f"only {killed} of {TRIALS} trials actually killed a shard"
    assert failures == []
