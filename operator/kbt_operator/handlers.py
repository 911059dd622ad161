"""kopf wiring of the operator: thin handlers over `reconcile`, `syncer` and in-memory indexes.

Run it with ``python -m kbt_operator`` (namespaces and probes from the environment, see
``config``) or ``kopf run --standalone -m kbt_operator.handlers [--all-namespaces |
--namespace=NS ...] [--liveness=http://0.0.0.0:8080/healthz]``.

* BatchTransformJob create/resume/spec-update -> ``reconcile`` (Job creation, stop, suspend,
  retry); setup problems become a Ready=False condition and a retry with backoff.
* Jobs and progress ConfigMaps the operator created (label-selected on the server) are indexed
  by owner; each change marks the owner dirty for the status syncer, the only status writer.
* Models are indexed too, so a job's setup reads its Model from memory, not from the API.
* Reconciles take turns (`scaling.Turns`): first come, first served, a bounded number at once.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.config.config_exception import ConfigException
from prometheus_client import start_http_server

from kbt.api.models import API_GROUP, API_VERSION
from kbt_operator.catalog import CatalogError
from kbt_operator.config import ConfigError, OperatorConfig
from kbt_operator.kube import ApiError, KubeApi, load_client, load_configuration
from kbt_operator.labels import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from kbt_operator.metrics import ERRORS, RECONCILE_SECONDS
from kbt_operator.owned import COMPONENT_LABEL, PROGRESS_COMPONENT, ObjectRef, owner_name
from kbt_operator.reconcile import OperatorContext, SetupFailedError, reconcile
from kbt_operator.recorder import EventRecorder
from kbt_operator.scaling import SeenRecently, Turns
from kbt_operator.syncer import Key, Snapshot, StatusSyncer
from kbt_operator.views import IndexedJob

BTJ = (API_GROUP, API_VERSION, "batchtransformjobs")
MODELS = (API_GROUP, API_VERSION, "models")
JOBS = ("batch", "v1", "jobs")
CONFIGMAPS = ("", "v1", "configmaps")
MANAGED = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
PROGRESS = {**MANAGED, COMPONENT_LABEL: PROGRESS_COMPONENT}
MAX_BACKOFF_SECONDS = 300
KOPF_ANNOTATION_PREFIX = "kopf.zalando.org/"
logger = logging.getLogger(__name__)


def backoff(first: float, retry: int) -> float:
    """Seconds before retry number `retry` of a failed setup: first, 2*first, ... up to 5 minutes."""
    return float(min(MAX_BACKOFF_SECONDS, first * 2 ** min(retry, 10)))


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in labels.items())


def _context(memo: Any) -> OperatorContext:
    context: OperatorContext = memo["kbt"]
    return context


def _index(kwargs: dict[str, Any], name: str) -> kopf.Index[Key, Any]:
    """An index by its function's name: kopf passes every index to every handler as a kwarg."""
    index: kopf.Index[Key, Any] = kwargs[name]
    return index


# --- indexes (async: kopf would run plain functions on its thread pool, one hop per event) ----


def kept(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `body` without what the operator never reads: managedFields and kopf's own
    annotations (its diff base repeats the whole spec)."""
    copied = copy.deepcopy(dict(body))
    meta = copied.get("metadata") or {}
    meta.pop("managedFields", None)
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(KOPF_ANNOTATION_PREFIX)
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return copied


@kopf.index(*BTJ)
async def btj_index(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(str(namespace), name): kept(body)}


@kopf.index(*MODELS)
async def model_index(
    body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[Key, dict[str, Any]]:
    return {(str(namespace), name): kept(body)}


@kopf.index(*JOBS, labels=MANAGED)
async def job_index(body: kopf.Body, namespace: str | None, **_: Any) -> dict[Key, IndexedJob] | None:
    owner = owner_name(body)
    return {(str(namespace), owner): IndexedJob.parse(body)} if owner else None


@kopf.index(*CONFIGMAPS, labels=PROGRESS)
async def progress_index(
    body: kopf.Body, namespace: str | None, **_: Any
) -> dict[Key, dict[str, str]] | None:
    owner = owner_name(body)
    return {(str(namespace), owner): dict(body.get("data") or {})} if owner else None


def latest(index: kopf.Index[Key, Any], key: Key) -> Any:
    """The newest entry of `key` in `index`, or None."""
    entries = list(index.get(key, []))
    return entries[-1] if entries else None


def snapshot(
    btjs: kopf.Index[Key, Any], jobs: kopf.Index[Key, Any], progress: kopf.Index[Key, Any], key: Key
) -> Snapshot | None:
    bodies = list(btjs.get(key, []))
    if not bodies:
        return None
    data: dict[str, str] = {}
    for entry in progress.get(key, []):
        data.update(entry)
    return Snapshot(btj=bodies[-1], jobs=list(jobs.get(key, [])), progress=data)


# --- lifecycle ------------------------------------------------------------------------------


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    """kopf connects exactly like the operator's own API client (see `kube.load_configuration`)."""
    try:
        configuration = load_configuration()
    except ConfigException as exc:
        raise kopf.LoginError(f"no in-cluster service account and no usable kubeconfig: {exc}") from None
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _space, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        trust_env=settings.networking.trust_env,
    )


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: Any, **kwargs: Any) -> None:
    settings.peering.standalone = True
    settings.scanning.disabled = True  # no namespace/CRD access needed (see rbac.py)
    settings.posting.level = logging.CRITICAL  # only the operator's own events, no log echoes
    settings.execution.max_workers = 2  # kopf's pool runs only plain-function handlers (login)
    settings.watching.label_selectors[JOBS] = _selector(MANAGED)
    settings.watching.label_selectors[CONFIGMAPS] = _selector(PROGRESS)
    try:
        config = OperatorConfig.from_env()
        catalog = config.load_catalog()
        api = KubeApi(await asyncio.to_thread(load_client), config.api_workers)
    except (ConfigError, CatalogError, ConfigException) as exc:
        raise kopf.PermanentError(f"kbt operator cannot start: {exc}") from None

    btjs, jobs, progress, models = (
        _index(kwargs, name) for name in ("btj_index", "job_index", "progress_index", "model_index")
    )

    def current(key: Key) -> Snapshot | None:
        return snapshot(btjs, jobs, progress, key)

    recorder = EventRecorder(api)
    syncer = StatusSyncer(api, current, recorder.post, config.status_interval)
    memo["kbt"] = OperatorContext(
        api=api,
        config=config,
        catalog=catalog,
        syncer=syncer,
        recorder=recorder,
        models=lambda namespace, name: latest(models, (namespace, name)),
        turns=Turns(config.reconcile_concurrency),
        secrets=SeenRecently(),
    )
    memo["kbt_syncer_task"] = asyncio.create_task(syncer.run(), name="kbt-status-syncer")
    if config.metrics_port:
        memo["kbt_metrics_server"], _thread = start_http_server(config.metrics_port)
    logger.info(
        "kbt operator started: %s, runner images %s, %d instance types, metrics port %s",
        "all namespaces" if config.clusterwide else f"namespaces {','.join(config.namespaces)}",
        config.runner_images.summary(),
        len(catalog.types),
        config.metrics_port or "off",
    )


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    task = memo.get("kbt_syncer_task")
    if task is not None:
        task.cancel()
    server = memo.get("kbt_metrics_server")
    if server is not None:
        await asyncio.to_thread(server.shutdown)
        server.server_close()
    context = memo.get("kbt")
    if context is not None:
        context.api.close()


@kopf.on.probe(id="statusBacklog")
async def status_backlog(memo: Any, **_: Any) -> int:
    """Jobs waiting for a status write (shown by the liveness endpoint)."""
    return _context(memo).syncer.pending


# --- BatchTransformJob ------------------------------------------------------------------------


@kopf.on.resume(*BTJ)
@kopf.on.create(*BTJ)
@kopf.on.update(*BTJ, field="spec")
async def reconcile_job(
    body: kopf.Body, namespace: str | None, name: str, retry: int, memo: Any, **kwargs: Any
) -> None:
    context = _context(memo)
    key = (str(namespace), name)
    started = time.perf_counter()
    try:
        async with context.turns.turn(order=str(body.metadata.get("creationTimestamp") or "")):
            jobs = list(_index(kwargs, "job_index").get(key, []))  # as they are when its turn comes
            post = functools.partial(context.recorder.post, ObjectRef.parse(body))
            await reconcile(context, body, jobs, post)
    except SetupFailedError as exc:
        ERRORS.labels(reason=exc.setup.reason).inc()
        context.syncer.set_setup(key, exc.setup)
        await context.syncer.flush(key)
        if exc.permanent:
            raise kopf.PermanentError(str(exc)) from None
        raise kopf.TemporaryError(
            str(exc), delay=backoff(context.config.setup_retry_seconds, retry)
        ) from None
    except ApiError as exc:
        ERRORS.labels(reason="ApiError").inc()
        raise kopf.TemporaryError(
            exc.message, delay=backoff(context.config.setup_retry_seconds, retry)
        ) from None
    finally:
        RECONCILE_SECONDS.observe(time.perf_counter() - started)


@kopf.on.event(*BTJ)
async def forget_deleted(type: str, namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    """A deleted job's Jobs go at once (background): in a Terminating namespace their pods would
    otherwise keep the job-tracking finalizer, the Job controller waiting to replace them."""
    if type != "DELETED":
        return
    context, key = _context(memo), (str(namespace), name)
    context.syncer.forget(key)
    for job in list(_index(kwargs, "job_index").get(key, [])):
        await context.api.delete("Job", key[0], job.name, "Background")


# --- children -------------------------------------------------------------------------------


@kopf.on.event(*JOBS, labels=MANAGED)
async def job_changed(body: kopf.Body, namespace: str | None, memo: Any, **_: Any) -> None:
    owner = owner_name(body)
    if owner:
        _context(memo).syncer.mark((str(namespace), owner))


@kopf.on.event(*CONFIGMAPS, labels=PROGRESS)
async def progress_changed(body: kopf.Body, namespace: str | None, memo: Any, **_: Any) -> None:
    owner = owner_name(body)
    if owner:
        _context(memo).syncer.mark((str(namespace), owner))
