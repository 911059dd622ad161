"""Helpers for the example tests: import an example's scripts, retarget and run its manifests."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
KBT = Path(sys.executable).with_name("kbt")
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def load_example(example: str, module: str) -> ModuleType:
    """Import examples/<example>/<module>.py under a name of its own, with its folder importable
    (as when the script runs), so examples with same-named scripts do not clash."""
    name = f"example_{example.replace('-', '_')}_{module}"
    if name in sys.modules:
        return sys.modules[name]
    folder = EXAMPLES / example
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / f"{module}.py")
    assert spec and spec.loader
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


def retarget(manifest: Path, work: Path, target: Path) -> Path:
    """A copy of manifest (in target) with every `examples/<name>/work/` path moved to work/."""
    example_work = f"{manifest.parent.relative_to(REPO).as_posix()}/work/"
    text = manifest.read_text()
    assert example_work in text, f"{manifest} names no {example_work} path"
    copy = target / manifest.name
    copy.write_text(text.replace(example_work, f"{work}/"))
    return copy


def kbt_run(*arguments: Path | str, extra_env: dict[str, str] | None = None, timeout: float = 240) -> str:
    """`kbt run` the manifests from the repository root; fails the test with kbt's output unless
    it exits 0. Returns stdout and stderr together."""
    env = {**os.environ, **S3_CREDENTIALS, **(extra_env or {})}
    result = subprocess.run(
        [str(KBT), "run", *map(str, arguments)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"kbt run {' '.join(map(str, arguments))} exited {result.returncode}:\n{output[-6000:]}")
    return output
