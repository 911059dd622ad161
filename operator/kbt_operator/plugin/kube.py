"""Kubernetes API access for the plugin: kubeconfig handling, the few calls it makes, and errors.

Calls go through the operator's client (`kbt_operator.kube.KubeClient`); `_call` turns HTTP
401/403/404 and connection failures into a `PluginError` naming what was being read or changed,
where, and which permission is missing.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from kbt.api.models import API_GROUP, API_VERSION
from kbt_operator.kube import ApiError, KubeClient, resource_path
from kbt_operator.labels import job_selector, progress_configmap_name
from kbt_operator.plugin.errors import PluginError, PluginExit

PLURAL = "batchtransformjobs"
BTJ = "BatchTransformJob"
KIND = f"batchtransformjob.{API_GROUP}"
_T = TypeVar("_T")
_LOG_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Target:
    """kubectl's connection flags: which kubeconfig, context and namespace(s)."""

    namespace: str | None = None
    all_namespaces: bool = False
    context: str | None = None
    kubeconfig: str | None = None


def _context_namespace(target: Target) -> str:
    """The namespace of the selected kubeconfig context, like kubectl; `default` when unset."""
    try:
        contexts, active = config.list_kube_config_contexts(config_file=target.kubeconfig)
    except (ConfigException, OSError):
        return "default"
    chosen = next((c for c in contexts if c["name"] == target.context), None) if target.context else active
    return str((chosen or {}).get("context", {}).get("namespace") or "default")


def _api_client(target: Target) -> client.ApiClient:
    try:
        return config.new_client_from_config(config_file=target.kubeconfig, context=target.context)
    except (ConfigException, OSError) as exc:
        if target.kubeconfig is None and target.context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
            return client.ApiClient()
        where = target.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise PluginError(f"cannot load kubeconfig {where}: {exc}", PluginExit.UNREACHABLE) from exc


class Kube:
    """The plugin's view of one cluster and namespace."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.namespace = target.namespace or _context_namespace(target)
        self._api = KubeClient(_api_client(target))

    @property
    def server(self) -> str:
        return self._api.host

    def _call(self, action: str, resource: str, namespace: str | None, fn: Callable[[], _T]) -> _T:
        """Run one API call; `action` and `resource` phrase errors ('get', 'pods')."""
        where = f" in namespace {namespace!r}" if namespace else " cluster-wide"
        try:
            return fn()
        except ApiError as exc:
            detail = exc.detail
            if exc.status == 0:
                raise PluginError(
                    f"cannot reach the Kubernetes API at {self.server}: {detail}", PluginExit.UNREACHABLE
                ) from exc
            if exc.status == 403:
                raise PluginError(
                    f"forbidden: you may not {action} {resource}{where} ({detail}); "
                    f"ask your cluster admin for '{action}' on {resource}",
                    PluginExit.FORBIDDEN,
                ) from exc
            if exc.status == 401:
                raise PluginError(
                    f"unauthorized: the API server at {self.server} rejected your credentials ({detail})",
                    PluginExit.FORBIDDEN,
                ) from exc
            if exc.status == 404:
                raise _NotFoundError(detail) from exc
            raise PluginError(f"cannot {action} {resource}{where}: HTTP {exc.status}: {detail}") from exc

    # --- BatchTransformJobs ------------------------------------------------------------------

    def get_job(self, name: str) -> dict[str, Any]:
        """The job named `name` in the target namespace, or in the one namespace holding it (-A)."""
        if self.target.all_namespaces:
            return self._find_job_anywhere(name)
        try:
            job = self._call(
                "get",
                f"{PLURAL}.{API_GROUP}",
                self.namespace,
                lambda: self._api.call("GET", resource_path(BTJ, self.namespace, name)),
            )
        except _NotFoundError as exc:
            raise _job_not_found(name, f"namespace {self.namespace!r}", exc.detail) from exc
        return job

    def _find_job_anywhere(self, name: str) -> dict[str, Any]:
        try:
            listing = self._call("list", f"{PLURAL}.{API_GROUP}", None, lambda: self._api.list(BTJ, None))
        except _NotFoundError as exc:
            raise _job_not_found(name, "any namespace", exc.detail) from exc
        matches = [job for job in listing if job["metadata"]["name"] == name]
        if not matches:
            raise PluginError(f'{KIND} "{name}" not found in any namespace', PluginExit.NOT_FOUND)
        if len(matches) > 1:
            spaces = ", ".join(sorted(job["metadata"]["namespace"] for job in matches))
            raise PluginError(
                f'{KIND} "{name}" exists in several namespaces ({spaces}); pick one with -n', PluginExit.USAGE
            )
        found: dict[str, Any] = matches[0]
        self.namespace = str(found["metadata"]["namespace"])
        return found

    def patch_job_spec(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        try:
            patched = self._call(
                "patch",
                f"{PLURAL}.{API_GROUP}",
                self.namespace,
                lambda: self._api.patch(BTJ, self.namespace, name, {"spec": changes}),
            )
        except _NotFoundError as exc:
            raise _job_not_found(name, f"namespace {self.namespace!r}", exc.detail) from exc
        return patched

    # --- shard pods, progress, credentials ---------------------------------------------------

    def list_shard_pods(self, job_name: str) -> list[dict[str, Any]]:
        """Every pod of the job (all attempts of every shard), as plain dicts."""
        return self._call(
            "list",
            "pods",
            self.namespace,
            lambda: self._api.list("Pod", self.namespace, job_selector(job_name)),
        )

    def progress_data(self, job_name: str) -> dict[str, str]:
        """The progress ConfigMap's data; empty when the shards have not written it yet."""
        name = progress_configmap_name(job_name)
        configmap = self._call(
            "get",
            f"configmaps ({name})",
            self.namespace,
            lambda: self._api.get("ConfigMap", self.namespace, name),
        )
        return dict((configmap or {}).get("data") or {})

    def secret_data(self, name: str) -> dict[str, str]:
        """A Secret's decoded data (used for the job's S3 credentials)."""
        secret = self._call(
            "get", f"secrets ({name})", self.namespace, lambda: self._api.get("Secret", self.namespace, name)
        )
        if secret is None:
            raise PluginError(
                f"Secret {name!r} (the job's spec.s3.credentialsSecret) not found in namespace "
                f"{self.namespace!r}",
                PluginExit.NOT_FOUND,
            )
        return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}

    def pod_log(
        self,
        pod: str,
        *,
        follow: bool,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
    ) -> Iterator[bytes]:
        """Raw chunks of one pod's log, always with kubelet timestamps (used to merge shards)."""
        query = [("follow", str(follow)), ("timestamps", "True")]  # as the typed client spells them
        if tail_lines is not None:
            query.append(("tailLines", str(tail_lines)))
        if since_seconds is not None:
            query.append(("sinceSeconds", str(since_seconds)))
        try:
            response = self._call(
                "get",
                f"pods/log ({pod})",
                self.namespace,
                lambda: self._api.stream("Pod", self.namespace, pod, "log", query),
            )
        except _NotFoundError as exc:
            raise PluginError(f"logs of pod {pod!r} are gone ({exc.detail})", PluginExit.NOT_READY) from exc
        try:
            yield from response.stream(_LOG_CHUNK)
        except urllib3.exceptions.HTTPError as exc:
            raise PluginError(f"log stream of pod {pod!r} broke: {exc}") from exc
        finally:
            response.release_conn()


class _NotFoundError(Exception):
    """A 404 from the API server, resolved into a user message by the caller."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _job_not_found(name: str, where: str, detail: str) -> PluginError:
    if "could not find the requested resource" in detail:
        return PluginError(
            f"the {KIND}/{API_VERSION} API is not installed in this cluster (install the kbt chart)",
            PluginExit.NOT_FOUND,
        )
    return PluginError(f'{KIND} "{name}" not found in {where}', PluginExit.NOT_FOUND)
