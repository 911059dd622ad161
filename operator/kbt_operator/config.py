"""Operator configuration, read once from the environment at start-up.

=========================  ============================================================  ==========
Variable                   Meaning                                                       Default
=========================  ============================================================  ==========
KBT_NAMESPACES             Comma-separated namespaces to watch; empty = cluster-wide     (empty)
KBT_RUNNER_IMAGE           All-in-one runner image: scoring scripts (flavor custom)      see below
KBT_RUNNER_TABULAR_IMAGE   Runner image of sklearn, xgboost and mlflow models            see below
KBT_RUNNER_TORCH_IMAGE     Runner image of pytorch and transformers models               see below
KBT_RUNNER_TF_IMAGE        Runner image of tensorflow models                             see below
KBT_RUNNER_GPU_IMAGE       Runner image on GPU instance types                            see below
KBT_DEFAULT_S3_ENDPOINT    S3 endpoint of jobs without ``spec.s3.endpointUrl``           (AWS)
KBT_DEFAULT_S3_SECRET      Credentials Secret of jobs without ``spec.s3.credentialsSecret``  (none)
KBT_IMAGE_PULL_POLICY      imagePullPolicy of shard containers                           IfNotPresent
KBT_INSTANCE_TYPES         Path of the instance-type catalog YAML (see ``catalog``)      built-in
KBT_CPU_REQUEST_PERCENT    CPU built-in instance types request, % of their vCPUs         90
KBT_MEMORY_REQUEST_PERCENT Memory built-in instance types request, % of their memory     90
KBT_METRICS_PORT           Prometheus metrics port (0 = off)                             9090
KBT_HEALTH_PORT            kopf liveness endpoint port, path /healthz (0 = off)          8080
KBT_STATUS_INTERVAL        Least seconds between two progress-only status writes         2
KBT_API_WORKERS            Threads making Kubernetes API calls                           8
KBT_RECONCILE_CONCURRENCY  Jobs reconciled at once, first come first served             8
KBT_SETUP_RETRY_SECONDS    First retry delay of a failed setup (doubles, max 5 minutes)  5
KBT_LOG_FORMAT             Log lines as json or console (kopf's too; see ``logs``)       console
KBT_LOG_LEVEL              Log level; kopf's per-event handler reports are DEBUG         INFO
=========================  ============================================================  ==========

A model's own ``image`` wins over all runner images; ``runner_images`` says which image a job
gets and what the defaults are (kbt/runner-<family>:<kbt version>, or ``KBT_RUNNER_IMAGE``
wherever that is set).

Namespaces and the health port apply to ``python -m kbt_operator``; under ``kopf run`` the
command line's ``--namespace``/``--all-namespaces``/``--liveness`` decide instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kbt.api.models import DNS_SUBDOMAIN
from kbt.settings import SettingsError, env_number
from kbt_operator.catalog import Catalog, RequestPercent
from kbt_operator.runner_images import RunnerImages


class ConfigError(SettingsError):
    """An environment variable has a value the operator cannot use."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return env_number(env, name, default, int, error=ConfigError)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return env_number(env, name, default, float, error=ConfigError, expected="a number of seconds")


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()
    runner_images: RunnerImages = field(default_factory=lambda: RunnerImages.from_env({}))
    default_s3_endpoint: str | None = None
    default_s3_secret: str | None = None
    image_pull_policy: str = "IfNotPresent"
    catalog_path: Path | None = None
    request_percent: RequestPercent = field(default_factory=RequestPercent)
    metrics_port: int = 9090
    health_port: int = 8080
    status_interval: float = 2.0
    api_workers: int = 8
    reconcile_concurrency: int = 8
    setup_retry_seconds: float = 5.0

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    def load_catalog(self) -> Catalog:
        return Catalog.load(self.catalog_path, self.request_percent)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        env = os.environ if env is None else env
        namespaces = tuple(n.strip() for n in env.get("KBT_NAMESPACES", "").split(",") if n.strip())
        policy = env.get("KBT_IMAGE_PULL_POLICY", "").strip() or "IfNotPresent"
        if policy not in ("Always", "IfNotPresent", "Never"):
            raise ConfigError(f"KBT_IMAGE_PULL_POLICY={policy!r}: expected Always, IfNotPresent or Never")
        catalog = env.get("KBT_INSTANCE_TYPES", "").strip()
        endpoint = env.get("KBT_DEFAULT_S3_ENDPOINT", "").strip() or None
        if endpoint is not None and not re.match(r"^https?://.+", endpoint):
            raise ConfigError(f"KBT_DEFAULT_S3_ENDPOINT={endpoint!r}: expected an http(s):// URL")
        secret = env.get("KBT_DEFAULT_S3_SECRET", "").strip() or None
        if secret is not None and not re.match(DNS_SUBDOMAIN, secret):
            raise ConfigError(f"KBT_DEFAULT_S3_SECRET={secret!r}: not a valid Secret name")
        return cls(
            namespaces=namespaces,
            runner_images=RunnerImages.from_env(env),
            default_s3_endpoint=endpoint,
            default_s3_secret=secret,
            image_pull_policy=policy,
            catalog_path=Path(catalog) if catalog else None,
            request_percent=RequestPercent(
                cpu=max(1, _int(env, "KBT_CPU_REQUEST_PERCENT", 90)),
                memory=max(1, _int(env, "KBT_MEMORY_REQUEST_PERCENT", 90)),
            ),
            metrics_port=_int(env, "KBT_METRICS_PORT", 9090),
            health_port=_int(env, "KBT_HEALTH_PORT", 8080),
            status_interval=_float(env, "KBT_STATUS_INTERVAL", 2.0),
            api_workers=max(1, _int(env, "KBT_API_WORKERS", 8)),
            reconcile_concurrency=max(1, _int(env, "KBT_RECONCILE_CONCURRENCY", 8)),
            setup_retry_seconds=_float(env, "KBT_SETUP_RETRY_SECONDS", 5.0),
        )
