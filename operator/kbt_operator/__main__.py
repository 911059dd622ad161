"""`python -m kbt_operator`: run the operator with its configuration from the environment.

Equivalent to ``kopf run --standalone -m kbt_operator.handlers`` with ``--all-namespaces`` or
``--namespace`` per entry of KBT_NAMESPACES and ``--liveness`` on KBT_HEALTH_PORT (/healthz).
A bad configuration or no cluster credentials stop it at once with one clear line (exit status 2).
"""

from __future__ import annotations

import argparse
import sys

import kopf
from kubernetes.config.config_exception import ConfigException

from kbt_operator import config as settings
from kbt_operator.catalog import CatalogError
from kbt_operator.config import ConfigError, OperatorConfig
from kbt_operator.kube import load_configuration
from kbt_operator.logs import configure_logging


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(
        prog="python -m kbt_operator",
        description=__doc__,
        epilog=settings.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(argv)
    try:
        configure_logging()
        config = OperatorConfig.from_env()
        config.load_catalog()
    except (ConfigError, CatalogError, ValueError) as exc:
        print(f"kbt operator: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        load_configuration()
    except ConfigException as exc:
        print(f"kbt operator: no in-cluster service account and no usable kubeconfig: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    import kbt_operator.handlers  # noqa: F401, PLC0415 (registers the handlers)

    liveness = f"http://0.0.0.0:{config.health_port}/healthz" if config.health_port else None
    kopf.run(
        standalone=True,
        clusterwide=config.clusterwide,
        namespaces=config.namespaces,
        liveness_endpoint=liveness,
    )


if __name__ == "__main__":
    main()
