"""Print the third-party requirements of kbt with some extras, one a line, from pyproject.toml.

The image builds install these (pinned by docker/constraints.txt) in a layer of their own before
the kbt wheel, so a source change rebuilds only the small kbt layer, not torch or TensorFlow.
``kbt[a,b]`` references inside extras are expanded. ``--torch-build cpu`` asks for the CPU build
of torch (``torch==2.13.0+cpu``: from a local wheel folder or PyTorch's CPU index, never the CUDA
build on PyPI); ``--xgboost-build cpu`` for XGBoost's (``xgboost-cpu``, same version: PyPI's
``xgboost`` carries a 237 MB CUDA build of libxgboost and NCCL). ``--core a,b`` keeps only the
named core dependencies (the operator image: it imports pydantic and pyyaml, never pandas or
boto3). ``--also a,b`` adds single requirements of
other extras (the runners: ``kubernetes`` of the operator extra, to patch the progress ConfigMap).
Runs on the image's python3 (3.11: tomllib), standard library only.

Usage: python3 requirements.py PYPROJECT EXTRAS [--core NAMES] [--also NAMES] [--torch-build cpu]
       [--xgboost-build cpu]
(EXTRAS and NAMES: comma-separated)
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

SELF_REFERENCE = re.compile(r"^kbt\[(?P<extras>[^\]]+)\]$")
TORCH_PIN = re.compile(r"^torch==(?P<version>[0-9.]+)$")
NAME = re.compile(r"^[A-Za-z0-9._-]+")


def _name(requirement: str) -> str:
    match = NAME.match(requirement)
    return match[0].lower().replace("_", "-") if match else requirement


def core(table: dict[str, list[str]], names: list[str] | None) -> list[str]:
    """The core dependencies, or only those named (each must be one)."""
    lines = list(table.get("dependencies", []))
    if names is None:
        return lines
    known = {_name(line): line for line in lines}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(
            f"requirements.py: not core dependencies of kbt: {', '.join(unknown)} (known: {', '.join(known)})"
        )
    return [known[name] for name in names]


def also(optional: dict[str, list[str]], names: list[str]) -> list[str]:
    """The requirement lines called `names`, wherever an extra lists them."""
    found = {
        _name(line): line
        for lines in optional.values()
        for line in lines
        if not SELF_REFERENCE.match(line.replace(" ", ""))
    }
    unknown = [name for name in names if name not in found]
    if unknown:
        raise SystemExit(f"requirements.py: no extra of kbt requires {', '.join(unknown)}")
    return [found[name] for name in names]


def requirements(
    project: dict[str, object],
    extras: list[str],
    core_names: list[str] | None = None,
    extra_names: Sequence[str] = (),
) -> list[str]:
    """Core dependencies (all or the named), then each extra's (self-references expanded), then
    the `extra_names` picked from other extras, without repeats."""
    table = project["project"]
    assert isinstance(table, dict)
    optional: dict[str, list[str]] = table.get("optional-dependencies", {})
    result = core(table, core_names)
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(
                f"requirements.py: pyproject.toml has no extra {extra!r} (known: {', '.join(optional)})"
            )
        seen.add(extra)
        for line in optional[extra]:
            match = SELF_REFERENCE.match(line.replace(" ", ""))
            if match:
                pending.extend(match["extras"].split(","))
            elif line not in result:
                result.append(line)
    return result + [line for line in also(optional, list(extra_names)) if line not in result]


def with_torch_build(lines: list[str], build: str) -> list[str]:
    return [re.sub(TORCH_PIN, rf"torch==\g<version>+{build}", line) for line in lines]


def with_xgboost_build(lines: list[str], build: str) -> list[str]:
    """XGBoost's `build` package (xgboost-cpu: the same module without CUDA), same specifier."""
    renamed = f"xgboost-{build}"
    return [renamed + line[len("xgboost") :] if _name(line) == "xgboost" else line for line in lines]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("extras", help="comma-separated extras, e.g. mlflow,sklearn,xgboost")
    parser.add_argument("--core", help="comma-separated core dependencies to keep (default: all)")
    parser.add_argument("--also", default="", help="comma-separated requirements of other extras to add")
    parser.add_argument("--torch-build", help="local version label of the torch build, e.g. cpu")
    parser.add_argument("--xgboost-build", choices=["cpu"], help="xgboost-cpu instead of xgboost")
    args = parser.parse_args(argv)
    core_names = [_name(n) for n in args.core.split(",") if n] if args.core is not None else None
    extra_names = [_name(n) for n in args.also.split(",") if n]
    lines = requirements(
        tomllib.loads(args.pyproject.read_text()),
        [e for e in args.extras.split(",") if e],
        core_names,
        extra_names,
    )
    if args.torch_build:
        lines = with_torch_build(lines, args.torch_build)
    if args.xgboost_build:
        lines = with_xgboost_build(lines, args.xgboost_build)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
