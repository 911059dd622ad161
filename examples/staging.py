"""Helpers shared by the examples' prepare scripts: where the datasets are, and staging to S3.

Each ``examples/<name>/prepare.py`` puts this folder on ``sys.path`` and imports it. Datasets are
found (or fetched) by `kbt.datasets`; `run` ends a script whose data is missing with one line.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import boto3

from kbt.datasets import DatasetNotFoundError, dataset_root

EXAMPLES = Path(__file__).resolve().parent


def dataset(name: str) -> Path:
    """The folder of one example dataset (``heart``, ``mnist``, ...), fetched if need be."""
    return dataset_root(name) / name


def run(main: Callable[[], int | None]) -> NoReturn:
    """Run a script's main; a missing dataset ends it with one line saying where to put it."""
    try:
        code = main()
    except DatasetNotFoundError as exc:
        sys.exit(f"error: {exc}")
    sys.exit(code or 0)


def fresh_dir(path: Path) -> Path:
    """An empty directory at path (what a previous run left there is removed)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def copy_files(sources: list[Path], target_dir: Path) -> list[Path]:
    """Copy files into a fresh target_dir; returns the copies."""
    fresh_dir(target_dir)
    return [Path(shutil.copy2(source, target_dir / source.name)) for source in sources]


def upload_tree(local_dir: Path, s3_uri: str, endpoint: str | None) -> None:
    """Upload every file under local_dir to s3://bucket/prefix/, creating the bucket if needed."""
    bucket, _, prefix = s3_uri.removeprefix("s3://").partition("/")
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    )
    if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, prefix + path.relative_to(local_dir).as_posix())
