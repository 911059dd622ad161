"""An in-process Kubernetes for tests and benchmarks: kmock, a Job-controller stand-in, the operator.

* `ApiServer`: kmock's emulator plus the API-server behaviour kbt relies on (label selectors on
  list/watch, uid/creationTimestamp/generation/resourceVersion on objects (kopf tells its own
  patch's echo from older events by resourceVersion), the CRDs' defaults on kbt objects as
  `crd_defaults` applies them). kmock has no controllers: nothing
  runs pods and nothing garbage-collects owned objects.
* `JobController`: plays the Indexed Job controller (and the shards) for one Job at a time:
  starts pods, succeeds and fails them honouring the Job's podFailurePolicy,
  backoffLimitPerIndex and maxFailedIndexes, and keeps the Job's status the way Kubernetes does.
* `running_operator`: the real kopf operator (``kbt_operator.handlers``) in this event loop,
  connected through a kubeconfig that points at the emulator.

Needs the dev dependency kmock; lives in tests/ (never shipped with, nor imported by, the operator).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
import kmock
import kopf
import yaml

from harness.crd_defaults import with_defaults
from kbt.api.models import API_GROUP, API_VERSION
from kbt.api.progress import progress_key
from kbt_operator.labels import COMPLETION_INDEX_LABEL, progress_configmap_name
from kbt_operator.shards import format_indexes

RESOURCES = {
    f"{API_GROUP}/{API_VERSION}/batchtransformjobs": ("BatchTransformJob", {"status"}),
    f"{API_GROUP}/{API_VERSION}/models": ("Model", {"status"}),
    "batch/v1/jobs": ("Job", {"status"}),
    "v1/pods": ("Pod", {"status"}),
    "v1/configmaps": ("ConfigMap", set()),
    "v1/secrets": ("Secret", set()),
    "v1/serviceaccounts": ("ServiceAccount", set()),
    "v1/events": ("Event", set()),
    "v1/namespaces": ("Namespace", set()),
    "rbac.authorization.k8s.io/v1/roles": ("Role", set()),
    "rbac.authorization.k8s.io/v1/rolebindings": ("RoleBinding", set()),
}
BTJ_PATH = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{{ns}}/batchtransformjobs"
VERBS = {"get", "list", "watch", "create", "patch", "delete"}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def selector_matches(labels: Mapping[str, str], selector: str) -> bool:
    """Kubernetes equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma = and."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


class ApiServer(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator with label selectors and server-set metadata."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.versions = itertools.count(1)
        for path, (kind, subresources) in RESOURCES.items():
            namespaced = kind != "Namespace"
            self.resources[path] = kmock.ResourceInfo(
                kind=kind, namespaced=namespaced, verbs=VERBS, subresources=subresources
            )

    async def _handle(self, request: kmock.Request) -> Any:
        data = request.data
        if request.resource is not None and isinstance(data, dict):
            if request.action == kmock.action.CREATE:
                meta = data.setdefault("metadata", {})
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", now())
                meta.setdefault("generation", 1)
                if request.namespace:
                    meta.setdefault("namespace", request.namespace)
            elif request.action == kmock.action.UPDATE and request.subresource is None and "spec" in data:
                key = (request.resource, request.namespace, str(request.name))
                if key in self.objects and not self.objects[key].deleted:
                    generation = int(self.objects[key].raw.get("metadata", {}).get("generation") or 1)
                    data.setdefault("metadata", {})["generation"] = generation + 1
            if request.action in (kmock.action.CREATE, kmock.action.UPDATE):
                data.update(with_defaults(self._stored(request), data))
                data.setdefault("metadata", {})["resourceVersion"] = str(next(self.versions))
        return await super()._handle(request)

    def _stored(self, request: kmock.Request) -> dict[str, Any] | None:
        """The object an update applies to (None for a create or a missing object)."""
        key = (request.resource, request.namespace, str(request.name))
        if request.action != kmock.action.UPDATE or key not in self.objects or self.objects[key].deleted:
            return None
        return dict(self.objects[key].raw)

    async def _serve_list(self, request: kmock.Request) -> Any:
        answer = cast(dict[str, Any], await super()._serve_list(request))
        selector = request.params.get("labelSelector")
        if selector:
            answer["items"] = [item for item in answer["items"] if selector_matches(_labels(item), selector)]
        return answer

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        selector = request.params.get("labelSelector")
        async for event in super()._serve_watch(request):
            if (
                selector
                and isinstance(event, dict)
                and not selector_matches(_labels(event.get("object") or {}), selector)
            ):
                continue
            yield event

    # --- reading state for assertions --------------------------------------------------------

    def read(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        key = (kmock.resource(resource), namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return self.objects[key].raw

    def list_objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        wanted = kmock.resource(resource)
        return [
            obj.raw
            for (res, ns, _), obj in self.objects.items()
            if res == wanted and not obj.deleted and (namespace is None or ns == namespace)
        ]

    def history(self, resource: str, namespace: str, name: str) -> list[dict[str, Any]]:
        key = (kmock.resource(resource), namespace, name)
        if key not in self.objects:
            return []
        return [dict(version.raw) for version in self.objects[key].history if version is not None]


class Client:
    """Writes through the emulator's HTTP API, so watchers (the operator) see every change."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def _send(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        async with self.session.request(method, path, json=body, headers=headers) as response:
            answer: dict[str, Any] = await response.json()
            if response.status >= 300:
                raise RuntimeError(f"{method} {path}: {response.status} {answer.get('message')}")
            return answer

    async def create(self, path: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        return await self._send("POST", path, dict(obj))

    async def patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return await self._send("PATCH", path, dict(patch))

    async def delete(self, path: str) -> dict[str, Any]:
        return await self._send("DELETE", path)

    async def create_btj(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return await self.create(BTJ_PATH.format(ns=manifest["metadata"]["namespace"]), manifest)

    async def patch_btj_spec(self, namespace: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        return await self.patch(f"{BTJ_PATH.format(ns=namespace)}/{name}", {"spec": dict(spec)})

    async def delete_btj(self, namespace: str, name: str) -> dict[str, Any]:
        return await self.delete(f"{BTJ_PATH.format(ns=namespace)}/{name}")

    async def report_progress(self, namespace: str, btj: str, shard: int, **fields: Any) -> None:
        """What a shard's runner does: patch its entry of the progress ConfigMap."""
        report = {"index": shard, "state": "running", "updatedAt": now(), **fields}
        path = f"/api/v1/namespaces/{namespace}/configmaps/{progress_configmap_name(btj)}"
        await self.patch(path, {"data": {progress_key(shard): json.dumps(report)}})


@dataclass
class _JobState:
    attempts: dict[int, int] = field(default_factory=dict)  # counted failures per index
    pods: dict[int, str] = field(default_factory=dict)  # running pod per index
    completed: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    failed_pods: int = 0
    finished: bool = False


class JobController:
    """The Indexed Job controller and kubelet, driven explicitly by a test."""

    def __init__(self, server: ApiServer, client: Client) -> None:
        self.server = server
        self.client = client
        self._jobs: dict[tuple[str, str], _JobState] = {}

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        job = self.server.read("batch/v1/jobs", namespace, name)
        if job is None:
            raise AssertionError(f"Job {namespace}/{name} does not exist")
        return job

    async def _job_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        await self.client.patch(
            f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status", {"status": dict(status)}
        )

    async def _pod(self, namespace: str, job: Mapping[str, Any], index: int) -> str:
        state = self._jobs[(namespace, job["metadata"]["name"])]
        name = f"{job['metadata']['name']}-{index}-{uuid.uuid4().hex[:5]}"
        template = job["spec"]["template"]
        labels = {
            **(template["metadata"].get("labels") or {}),
            "batch.kubernetes.io/job-name": job["metadata"]["name"],
            "job-name": job["metadata"]["name"],
            COMPLETION_INDEX_LABEL: str(index),
        }
        annotations = {**(template["metadata"].get("annotations") or {}), COMPLETION_INDEX_LABEL: str(index)}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": job["metadata"]["name"],
                        "uid": job["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": template["spec"],
            "status": {
                "phase": "Running",
                "containerStatuses": [{"name": "kbt", "state": {"running": {"startedAt": now()}}}],
            },
        }
        await self.client.create(f"/api/v1/namespaces/{namespace}/pods", pod)
        state.pods[index] = name
        return name

    async def start(self, namespace: str, name: str) -> None:
        """Start pods for the first `parallelism` indexes (the Job must not be suspended)."""
        job = self.job(namespace, name)
        if job["spec"].get("suspend"):
            raise AssertionError(f"Job {name} is suspended; a suspended Job gets no pods")
        self._jobs[(namespace, name)] = _JobState()
        for index in range(min(job["spec"]["parallelism"], job["spec"]["completions"])):
            await self._pod(namespace, job, index)
        await self._job_status(
            namespace,
            name,
            {"startTime": now(), "active": len(self._jobs[(namespace, name)].pods), "ready": 0},
        )

    async def succeed(self, namespace: str, name: str, index: int) -> None:
        job = self.job(namespace, name)
        state = self._jobs[(namespace, name)]
        pod = state.pods.pop(index)
        await self._finish_pod(namespace, pod, "Succeeded", 0, "")
        state.completed.add(index)
        await self._next(namespace, job, state)

    async def fail(self, namespace: str, name: str, index: int, exit_code: int, message: str) -> None:
        """The shard exits with `exit_code`; the pod failure policy and backoff decide what follows."""
        job = self.job(namespace, name)
        state = self._jobs[(namespace, name)]
        pod = state.pods.pop(index)
        await self._finish_pod(namespace, pod, "Failed", exit_code, message)
        action = self._policy_action(job, exit_code)
        if action == "Ignore":
            await self._pod(namespace, job, index)
        else:
            state.failed_pods += 1
            state.attempts[index] = state.attempts.get(index, 0) + 1
            exhausted = state.attempts[index] > int(job["spec"].get("backoffLimitPerIndex", 6))
            if action == "FailIndex" or exhausted:
                state.failed.add(index)
            else:
                await self._pod(namespace, job, index)
        await self._next(namespace, job, state)

    @staticmethod
    def _policy_action(job: Mapping[str, Any], exit_code: int) -> str:
        for rule in (job["spec"].get("podFailurePolicy") or {}).get("rules") or []:
            codes = rule.get("onExitCodes")
            if codes and codes.get("operator") == "In" and exit_code in codes.get("values", []):
                return str(rule["action"])
            if codes and codes.get("operator") == "NotIn" and exit_code not in codes.get("values", []):
                return str(rule["action"])
        return "Count"

    async def _finish_pod(self, namespace: str, pod: str, phase: str, code: int, message: str) -> None:
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "finishedAt": now()}
        if message:
            terminated["message"] = message
        status = {"phase": phase, "containerStatuses": [{"name": "kbt", "state": {"terminated": terminated}}]}
        await self.client.patch(f"/api/v1/namespaces/{namespace}/pods/{pod}/status", {"status": status})

    async def _next(self, namespace: str, job: Mapping[str, Any], state: _JobState) -> None:
        """Start pods for waiting indexes, then publish the Job status (and its end, if reached)."""
        name = job["metadata"]["name"]
        spec = job["spec"]
        count = int(spec["completions"])
        max_failed = spec.get("maxFailedIndexes")
        too_many = max_failed is not None and len(state.failed) > int(max_failed)
        if not too_many:
            waiting = [i for i in range(count) if i not in state.completed | state.failed | set(state.pods)]
            for index in waiting[: max(0, int(spec["parallelism"]) - len(state.pods))]:
                await self._pod(namespace, job, index)
        status: dict[str, Any] = {
            "active": 0 if too_many else len(state.pods),
            "succeeded": len(state.completed),
            "failed": state.failed_pods,
            "completedIndexes": format_indexes(state.completed),
            "failedIndexes": format_indexes(state.failed),
        }
        done = len(state.completed | state.failed) == count
        if too_many or done:
            state.finished = True
            state.pods.clear()
            if state.failed:
                reason = "MaxFailedIndexesExceeded" if too_many else "FailedIndexes"
                status["conditions"] = [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": reason,
                        "message": "Job has failed indexes",
                        "lastTransitionTime": now(),
                    }
                ]
            else:
                status["completionTime"] = now()
                status["conditions"] = [
                    {
                        "type": "Complete",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "lastTransitionTime": now(),
                    }
                ]
        await self._job_status(namespace, name, status)


def write_kubeconfig(directory: Path, server_url: str) -> Path:
    """A kubeconfig for the emulator (plain HTTP, a dummy token)."""
    path = directory / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": server_url}}],
                "users": [{"name": "test", "user": {"token": "test-token"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "test"}}],
                "current-context": "kmock",
            }
        )
    )
    return path


@contextlib.asynccontextmanager
async def running_operator(
    namespaces: tuple[str, ...] = (), timeout: float = 30.0
) -> AsyncIterator[kopf.Memo]:
    """The operator of `kbt_operator.handlers` (cluster-wide, or in `namespaces`) until the block exits.

    It runs in its own thread and event loop, as in production: kopf cancels every task of its
    loop that it did not start when it stops. It connects like in production (in-cluster
    config, else KUBECONFIG), so point KUBECONFIG at `write_kubeconfig` first; metrics go to a
    free port unless KBT_METRICS_PORT is set. Yields kopf's
    memo (``memo["kbt"]`` is the OperatorContext).
    """
    import kbt_operator.handlers  # noqa: F401, PLC0415 (registers the handlers)
    from conftest import free_port  # noqa: PLC0415 (conftest: importable under pytest only)

    memo = kopf.Memo()
    fixed_port = os.environ.get("KBT_METRICS_PORT")
    if fixed_port is None:  # never the default 9090: two test runs at once would collide
        os.environ["KBT_METRICS_PORT"] = str(free_port())
    stop, ready = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def main() -> None:
        try:
            operator = kopf.operator(
                clusterwide=not namespaces,
                namespaces=namespaces,
                standalone=True,
                stop_flag=stop,
                ready_flag=ready,
                memo=memo,
            )
            asyncio.run(operator)
        except BaseException as exc:  # reported to the test below
            failures.append(exc)

    thread = threading.Thread(target=main, name="kbt-operator", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not ready.is_set():
        if not thread.is_alive() or time.monotonic() > deadline:
            stop.set()
            raise RuntimeError("the operator did not start") from (failures[0] if failures else None)
        await asyncio.sleep(0.01)
    try:
        yield memo
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, timeout)
        if fixed_port is None:
            os.environ.pop("KBT_METRICS_PORT", None)
    if failures:
        raise failures[0]


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `check` until it returns a truthy value (returned) or raises no AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
            failure: BaseException = AssertionError(f"{getattr(check, '__name__', 'check')} stayed false")
        except AssertionError as exc:
            failure = exc
        if time.monotonic() > deadline:
            raise failure
        await asyncio.sleep(interval)
