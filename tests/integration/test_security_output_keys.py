"""Input object names cannot make a job write outside its output prefix.

Names come from S3 keys (anything up to 1024 bytes: ``..`` segments, leading slashes, odd
Unicode) and from ManifestFile entries (arbitrary strings). Whatever they are, every file or
object a job writes must stay under ``transformOutput.s3OutputPath``, for a local output folder
and for an S3 prefix, or the job must refuse the name with a clear error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos.bad_inputs import good_csv
from chaos.jobs import job_document, make_job, run_shard_process, write_model
from kbt.api.layout import contained
from kbt.runner.plan import WorkItem
from kbt.runner.state import Layout
from kbt.storage import LocalStore

HOSTILE_NAMES = [
    "../escape.csv",
    "../../etc/cron.d/kbt.csv",
    "/abs/olute.csv",
    "a/./../../b.csv",
    "ü/ﬁle\u202e.csv",
    "x" * 200 + "/" + "y" * 200 + ".csv",
    "..\\..\\win.csv",
]


def _inside(path: str, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root.resolve())


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_output_and_error_keys_of_any_name_stay_under_the_local_output_prefix(
    tmp_path: Path, name: str
) -> None:
    out = tmp_path / "out"
    layout = Layout(LocalStore(), f"{out}/", "fp")
    item = WorkItem(0, f"/in/{name}", name, 10, parts=2, part=1)
    keys = [layout.output_key(name), layout.errors_key(item), layout.part_key(item)]
    assert [key for key in keys if not _inside(key, out)] == []


def _manifest_job(tmp_path: Path, entries: list[str], output: str) -> Path:
    data = tmp_path / "data"
    (data / "in" / "sub").mkdir(parents=True)
    (data / "in" / "escape.csv").write_bytes(good_csv(2))
    (data / "in" / "sub" / "ok.csv").write_bytes(good_csv(3))
    (data / "manifest.json").write_text(json.dumps([{"prefix": f"file://{data}/in/sub/"}, *entries]))
    doc = job_document("escape", str(data / "manifest.json"), output, write_model(tmp_path / "model"))
    doc["spec"]["transformInput"]["dataSource"]["s3DataSource"]["s3DataType"] = "ManifestFile"
    make_job(tmp_path / "job.json", doc)
    return tmp_path / "job.json"


@pytest.mark.timeout(120)
def test_manifest_entries_cannot_write_outside_a_local_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = run_shard_process(_manifest_job(tmp_path, ["ok.csv", "../escape.csv"], f"{out}/"), 0, 1, 64 << 20)
    written = [p for p in tmp_path.rglob("*.out")]
    assert [p for p in written if not _inside(str(p), out)] == [], (run.returncode, run.termination)
    if run.returncode != 0:
        assert "../escape.csv" in run.termination


@pytest.mark.timeout(120)
def test_hostile_s3_keys_stay_under_the_s3_output_prefix(tmp_path: Path, s3_client: Any, bucket: str) -> None:
    keys = [
        f"in/{name}"
        for name in ["ok.csv", "sub/../../../escape.csv", "/lead.csv", "ü/ﬁle\u202e.csv", "z" * 900 + ".csv"]
    ]
    for key in keys:
        s3_client.put_object(Bucket=bucket, Key=key, Body=good_csv(2))
    doc = job_document("s3keys", f"s3://{bucket}/in/", f"s3://{bucket}/out/", write_model(tmp_path / "model"),
                       s3={"addressingStyle": "path"}, region="us-east-1")  # fmt: skip
    make_job(tmp_path / "job.json", doc)
    run = run_shard_process(tmp_path / "job.json", 0, 1, 64 << 20)
    written = [o["Key"] for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
               for o in page.get("Contents", [])]  # fmt: skip
    created = [key for key in written if key not in keys]
    assert created, (run.returncode, run.termination, run.log[-2000:])
    assert [key for key in created if not key.startswith("out/")] == [], created
    assert [key for key in created if ".." in key.split("/")] == []


def test_dot_segments_are_escaped_and_other_names_kept() -> None:
    assert contained("../escape.csv") == "%2E%2E/escape.csv"
    assert contained("a/./b.csv") == "a/%2E/b.csv"
    assert contained("sub/part.v2.csv") == "sub/part.v2.csv"
    assert contained("..csv") == "..csv"
