"""`make deploy` / `make undeploy` where no helm binary is installed: the same release actions
through helm-python-sdk (Helm's Go SDK as a library, in kbt's dev extra).

``install`` does what ``helm upgrade --install RELEASE CHART --namespace NS --create-namespace
--values FILE... --set KEY=VALUE... [--wait --timeout SECONDS]`` does (``--set`` values win over
files, later ones over earlier); ``uninstall`` what ``helm uninstall RELEASE --namespace NS`` does.
The cluster is the one of KUBECONFIG (else ~/.kube/config, else the pod's service account).
``--dry-run`` renders the release without contacting a cluster and prints its manifest.
A failure prints one line and exits 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml


def merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's values merge: mappings merge key by key, anything else is replaced."""
    result = dict(base)
    for key, value in override.items():
        current = result.get(key)
        result[key] = (
            merged(current, value) if isinstance(current, Mapping) and isinstance(value, Mapping) else value
        )
    return result


def release_values(files: list[Path], assignments: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in files:
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, Mapping):
            raise ValueError(f"{path}: values must be a mapping, not {type(loaded).__name__}")
        values = merged(values, loaded)
    for assignment in assignments:
        values = merged(values, helm.parse_set_string(assignment))
    return values


def install(args: argparse.Namespace) -> None:
    values = release_values(args.values, args.set)
    wait = "watcher" if args.wait else None
    with helm.Config(namespace=args.namespace) as config:
        if args.dry_run:
            release = config.install(
                args.chart, args.release, values, namespace=args.namespace, dry_run="client"
            )
            print(release["manifest"])
            return
        try:
            config.status(args.release)
        except helm.HelmNotFoundError:
            release = config.install(
                args.chart,
                args.release,
                values,
                namespace=args.namespace,
                create_namespace=True,
                wait=wait,
                timeout=args.timeout,
            )
        else:
            release = config.upgrade(
                args.chart, args.release, values, namespace=args.namespace, wait=wait, timeout=args.timeout
            )
    print(
        f"release {args.release} in namespace {args.namespace}: revision {release['version']}, {release['info']['status']}"
    )


def uninstall(args: argparse.Namespace) -> None:
    with helm.Config(namespace=args.namespace) as config:
        config.uninstall(args.release)
    print(f"release {args.release} uninstalled from namespace {args.namespace}")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="helm_release.py", description=__doc__.splitlines()[0])
    actions = root.add_subparsers(dest="action", required=True)
    up = actions.add_parser("install", help="helm upgrade --install")
    up.add_argument("release")
    up.add_argument("chart", type=Path)
    up.add_argument("--namespace", required=True)
    up.add_argument("--values", "-f", type=Path, action="append", default=[])
    up.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    up.add_argument("--wait", action="store_true", help="wait until the release's resources are ready")
    up.add_argument("--timeout", type=int, default=300, metavar="SECONDS")
    up.add_argument("--dry-run", action="store_true", help="render without a cluster and print the manifest")
    up.set_defaults(run=install)
    down = actions.add_parser("uninstall", help="helm uninstall")
    down.add_argument("release")
    down.add_argument("--namespace", required=True)
    down.set_defaults(run=uninstall)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (helm.HelmError, OSError, ValueError, yaml.YAMLError) as exc:
        print(f"{args.action}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
