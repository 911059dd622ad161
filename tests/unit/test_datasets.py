"""Example-data lookup (kbt.datasets): $KBT_DATASETS, ../shared/datasets, or fetched and checked."""

from __future__ import annotations

import importlib
import shutil
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kbt import datasets as lookup
from kbt.datasets import ORIGINS, DatasetNotFoundError, Origin, dataset_root

REPO = Path(__file__).resolve().parents[2]


class _Origin(SimpleHTTPRequestHandler):
    requests: list[str] = []  # noqa: RUF012 - shared by the handler instances of one server

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def origin(datasets: Path, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server serving a copy of the datasets; yields its URL and the paths asked for."""
    served = tmp_path / "served"
    shutil.copytree(datasets / "heart", served / "heart")
    _Origin.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Origin, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Origin.requests
    finally:
        server.shutdown()
        server.server_close()


def _heart_from(url: str, monkeypatch: pytest.MonkeyPatch, corrupt: bool = False) -> None:
    """Point the heart dataset's origins at `url` (same relative paths, same pinned sums)."""
    files = {
        path: Origin(f"{url}/{path}", "0" * 64 if corrupt else pinned.sha256)
        for path, pinned in ORIGINS["heart"].items()
    }
    monkeypatch.setitem(ORIGINS, "heart", files)


def test_kbt_datasets_wins(datasets: Path, tmp_path: Path) -> None:
    shutil.copytree(datasets / "mnist", tmp_path / "mine" / "mnist")
    assert dataset_root("mnist", env={"KBT_DATASETS": str(tmp_path / "mine")}) == tmp_path / "mine"


def test_shared_folder_then_cache(datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert REPO.parent / "shared" / "datasets" == lookup.SHARED
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    cache = lookup.cache_dir(env)
    assert cache == tmp_path / "cache" / "kbt" / "datasets"
    shutil.copytree(datasets / "imagenet", tmp_path / "shared" / "imagenet")
    shutil.copytree(datasets / "imagenet", cache / "imagenet")
    monkeypatch.setattr(lookup, "SHARED", tmp_path / "shared")
    assert dataset_root("imagenet", env=env) == tmp_path / "shared"
    shutil.rmtree(tmp_path / "shared")
    assert dataset_root("imagenet", env=env) == cache


def test_fetches_once_into_the_folder_and_checks_the_sums(
    origin: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, datasets: Path
) -> None:
    url, requests = origin
    _heart_from(url, monkeypatch)
    target = tmp_path / "fresh-clone-data"
    assert dataset_root("heart", env={"KBT_DATASETS": str(target)}) == target
    for path in ORIGINS["heart"]:
        assert (target / path).read_bytes() == (datasets / path).read_bytes()
    assert len(requests) == len(ORIGINS["heart"])
    assert dataset_root("heart", env={"KBT_DATASETS": str(target)}) == target
    assert len(requests) == len(ORIGINS["heart"])  # present now: nothing fetched again
    assert not list(target.rglob("*.partial"))


def test_a_checksum_mismatch_stores_nothing(
    origin: tuple[str, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _heart_from(origin[0], monkeypatch, corrupt=True)
    with pytest.raises(DatasetNotFoundError) as caught:
        dataset_root("heart", env={"KBT_DATASETS": str(tmp_path / "data")})
    message = str(caught.value)
    assert (
        "\n" not in message
        and "is not the pinned 0000" in message
        and f"KBT_DATASETS={tmp_path / 'data'}" in message
    )
    assert not (tmp_path / "data").exists() or not list((tmp_path / "data").rglob("*.csv"))


def test_data_without_a_public_origin_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        dataset_root("mnist", "heart", env={"KBT_DATASETS": str(tmp_path)}, fetch=False)
    assert str(caught.value) == (
        "example dataset mnist, heart not found: put the shared datasets folder "
        "(its README lists the files) "
        f"at KBT_DATASETS={tmp_path}"
    )


def test_scripts_stop_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    monkeypatch.setenv("KBT_DATASETS", str(tmp_path))
    monkeypatch.setitem(
        ORIGINS, "heart", {"heart/train/heart.csv": Origin("http://127.0.0.1:9/heart.csv", "0" * 64)}
    )
    staging = importlib.import_module("staging")
    with pytest.raises(SystemExit) as caught:
        staging.run(lambda: print(staging.dataset("heart")))
    assert str(caught.value).startswith("error: example dataset heart not found (fetching it failed: ")
    with pytest.raises(SystemExit) as done:
        staging.run(lambda: 3)
    assert done.value.code == 3
    sys.modules.pop("staging", None)
