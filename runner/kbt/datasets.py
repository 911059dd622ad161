"""Where the examples' datasets are: ``$KBT_DATASETS``, ``../shared/datasets``, or fetched.

The examples, their demo and the tests read the public Azure ML batch-endpoint example data
(repository Azure/azureml-examples, MIT license). `dataset_root` returns a folder that holds the
named datasets: ``$KBT_DATASETS`` when set, else ``shared/datasets`` next to the repository,
else a per-user cache (``$XDG_CACHE_HOME/kbt/datasets``) that is filled, when the network
allows, from the files' public origin and checked against the sha256 sums pinned below. When
none works it raises `DatasetNotFoundError`, whose message is one line saying where to put
the data. Nothing fetched lands in the repository.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV = "KBT_DATASETS"
REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "datasets"
_AZURE = "https://raw.githubusercontent.com/Azure/azureml-examples/main/cli/endpoints/batch"
_HEART = f"{_AZURE}/deploy-models/heart-classifier-mlflow/data"
_BILLSUM = f"{_AZURE}/deploy-models/huggingface-text-summarization/data"


@dataclass(frozen=True)
class Origin:
    """Where one file of a dataset comes from, and its content's sha256."""

    url: str
    sha256: str


# Relative path under the datasets folder -> public origin. Datasets that are not listed
# (mnist: its seed models; the imagenet goldfish image) are only looked up, never fetched.
ORIGINS: dict[str, dict[str, Origin]] = {
    "heart": {
        "heart/train/heart.csv": Origin(
            f"{_AZURE}/deploy-pipelines/training-with-components/data/train/heart.csv",
            "a91c81831bb2126e5fde6ce4ebde147a78429da12005108a6677ba57ecde9244",
        ),
        "heart/unlabeled/heart-unlabeled-0.csv": Origin(
            f"{_HEART}/heart-unlabeled-0.csv",
            "0c926d5babe4770cbabe0e892a2e65e714a3de1a7cdceddfd9f1f6633489ca46",
        ),
        "heart/unlabeled/heart-unlabeled-1.csv": Origin(
            f"{_HEART}/heart-unlabeled-1.csv",
            "63cd0c1b0c715b991c3ccdd63e3800b9a08a1dcae6c26780a3ff2ffa21ce901d",
        ),
        "heart/unlabeled/heart-unlabeled-2.csv": Origin(
            f"{_HEART}/heart-unlabeled-2.csv",
            "0dada1a580f73238fb1d5ed10002bb8e289691054935ec254b3f0fc8f68bc3f8",
        ),
        "heart/unlabeled/heart-unlabeled-3.csv": Origin(
            f"{_HEART}/heart-unlabeled-3.csv",
            "4b5c83f680196dc11384ccfb4089b2ef17e6b0c9acad6ed2baf28e1c555197c5",
        ),
    },
    "billsum": {
        f"billsum/billsum-{i}.csv": Origin(f"{_BILLSUM}/billsum-{i}.csv", sha)
        for i, sha in enumerate(
            [
                "98d813e1a41c7ccc7a9f1d880920b47be453ee78014994ade6b50decb32cd374",
                "27d0bd31fa2d817277dbfd524b8c120277a53425d55898f1d0cee04aa43c00ef",
                "c556d1df2c6bf26a9c1ae37cf857751d5bfb65323444a0d39eec53bed9d5d91f",
                "692b5fa77684d62a97b1cb0cd415bb8dce9b908e99f7a54d8c5dee3480ef3f4d",
            ]
        )
    },
}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is in none of the places looked at and could not be fetched."""


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kbt" / "datasets"


def _present(root: Path, name: str) -> bool:
    files = ORIGINS.get(name)
    return all((root / path).is_file() for path in files) if files else (root / name).is_dir()


def _fetch(name: str, root: Path, timeout: float) -> None:
    """Download every file of `name` into `root`, each checked against its pinned sha256."""
    for path, origin in ORIGINS[name].items():
        target = root / path
        if target.is_file():
            continue
        with urllib.request.urlopen(origin.url, timeout=timeout) as response:
            body = response.read()
        digest = hashlib.sha256(body).hexdigest()
        if digest != origin.sha256:
            raise OSError(f"{origin.url}: sha256 {digest} is not the pinned {origin.sha256}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(body)
        partial.replace(target)


def dataset_root(
    *names: str, env: Mapping[str, str] | None = None, fetch: bool = True, timeout: float = 20.0
) -> Path:
    """A datasets folder holding every dataset in `names` (e.g. ``"heart"``, ``"mnist"``)."""
    env = os.environ if env is None else env
    configured = env.get(ENV, "").strip()
    candidates = [Path(configured)] if configured else [SHARED, cache_dir(env)]
    for root in candidates:
        if all(_present(root, name) for name in names):
            return root
    missing = [name for name in names if not any(_present(root, name) for root in candidates)]
    why = ""
    fetchable = [name for name in missing if name in ORIGINS]
    if fetch and fetchable and fetchable == missing:
        root = candidates[-1]
        try:
            for name in fetchable:
                _fetch(name, root, timeout)
            return root
        except OSError as exc:  # no network, HTTP error or a checksum mismatch
            why = f" (fetching it failed: {exc})"
    where = f"{ENV}={configured}" if configured else f"{SHARED} (or set {ENV})"
    raise DatasetNotFoundError(
        f"example dataset {', '.join(missing)} not found{why}: put the shared datasets folder "
        f"(its README lists the files) at {where}"
    )
