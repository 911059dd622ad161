"""kbt's one Kubernetes API client (operator and `kubectl btj`): plain dicts in and out, errors
with what and where.

Uses the official client's configuration and transport (service account or kubeconfig, token
refresh included) with raw JSON paths, so objects stay the plain dicts the builders produce.
`KubeClient` makes blocking calls (the plugin uses it directly); `KubeApi` is the operator's
asynchronous facade that runs them on a small thread pool.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from kbt.api.models import API_GROUP, API_VERSION

_T = TypeVar("_T")
REQUEST_TIMEOUT_SECONDS = 30
JSON = "application/json"
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"

# kind -> (API prefix, plural); every kind kbt reads or writes.
RESOURCES: dict[str, tuple[str, str]] = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Secret": ("/api/v1", "secrets"),
    "Pod": ("/api/v1", "pods"),
    "Event": ("/api/v1", "events"),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "Job": ("/apis/batch/v1", "jobs"),
    "Model": (f"/apis/{API_GROUP}/{API_VERSION}", "models"),
    "BatchTransformJob": (f"/apis/{API_GROUP}/{API_VERSION}", "batchtransformjobs"),
}


class ApiError(Exception):
    """A failed API call: HTTP status (0 = no answer), the server's own words, and the target."""

    def __init__(self, status: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or message


def _server_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def resource_path(
    kind: str, namespace: str | None, name: str | None = None, subresource: str | None = None
) -> str:
    """The resource path; `namespace` None lists cluster-wide."""
    prefix, plural = RESOURCES[kind]
    path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace is not None else f"{prefix}/{plural}"
    if name is not None:
        path += f"/{name}"
    if subresource is not None:
        path += f"/{subresource}"
    return path


def load_configuration() -> client.Configuration:
    """The pod's service account, else the kubeconfig (KUBECONFIG, else ~/.kube/config)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        # KUBECONFIG is read now, not when the kubernetes package was imported.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration)
    return configuration


def load_client() -> client.ApiClient:
    return client.ApiClient(load_configuration())


class KubeClient:
    """Blocking calls through one API client."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._client = api_client

    @property
    def host(self) -> str:
        return str(self._client.configuration.host)

    def close(self) -> None:
        self._client.close()

    def _open(
        self,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str],
        *,
        query: list[tuple[str, str]],
        timeout: float | None,
    ) -> Any:
        """The raw urllib3 response of one call, not read yet."""
        try:
            return self._client.call_api(
                path,
                method,
                query_params=query,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=timeout,
            )
        except ApiException as exc:
            detail = _server_message(exc)
            raise ApiError(exc.status or 0, f"{method} {path}: {exc.status} {detail}", detail) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, f"{method} {path}: API server unreachable: {exc}", str(exc)) from None

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: list[tuple[str, str]] | None = None,
        content_type: str = JSON,
        accept: str = JSON,
    ) -> dict[str, Any]:
        """One request answered with JSON (within REQUEST_TIMEOUT_SECONDS)."""
        headers = {"Accept": accept, "Content-Type": content_type}
        data = self._open(
            method, path, body, headers, query=query or [], timeout=REQUEST_TIMEOUT_SECONDS
        ).data
        return dict(json.loads(data)) if data else {}

    def get(self, kind: str, namespace: str, name: str, accept: str = JSON) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.call("GET", resource_path(kind, namespace, name), accept=accept)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def exists(self, kind: str, namespace: str, name: str) -> bool:
        """Whether the object exists; reads metadata only (the operator never sees Secret data)."""
        return self.get(kind, namespace, name, METADATA_ONLY) is not None

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create `obj`; ApiError with status 409 when the name is taken."""
        return self.call("POST", resource_path(obj["kind"], obj["metadata"]["namespace"]), dict(obj))

    def patch(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any], subresource: str | None = None
    ) -> dict[str, Any]:
        """JSON merge patch (None values remove keys)."""
        path = resource_path(kind, namespace, name, subresource)
        return self.call("PATCH", path, dict(patch), content_type="application/merge-patch+json")

    def delete(self, kind: str, namespace: str, name: str, propagation: str) -> bool:
        """Delete with `propagation` (Foreground/Background); False when already gone."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            self.call("DELETE", resource_path(kind, namespace, name), body=body)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def stream(
        self, kind: str, namespace: str, name: str, subresource: str, query: list[tuple[str, str]]
    ) -> Any:
        """An open response of a streaming subresource (pod logs): read with ``.stream()``, then
        ``.release_conn()``; no read timeout, as a followed log may stay quiet for long."""
        path = resource_path(kind, namespace, name, subresource)
        return self._open(
            "GET", path, None, {"Accept": JSON, "Content-Type": JSON}, query=query, timeout=None
        )

    def list(self, kind: str, namespace: str | None, selector: str | None = None) -> list[dict[str, Any]]:
        """Objects of `kind` in `namespace` (None: every namespace), optionally label-selected."""
        query = [("labelSelector", selector)] if selector else []
        answer = self.call("GET", resource_path(kind, namespace), query=query)
        return [dict(item) for item in answer.get("items") or []]


class KubeApi:
    """Asynchronous facade over the blocking calls of one `KubeClient`."""

    def __init__(self, api_client: client.ApiClient, workers: int = 8) -> None:
        self._blocking = KubeClient(api_client)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kbt-api")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._blocking.close()

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        return await self._run(self._blocking.get, kind, namespace, name)

    async def exists(self, kind: str, namespace: str, name: str) -> bool:
        """Whether the object exists; reads metadata only (the operator never sees Secret data)."""
        return await self._run(self._blocking.exists, kind, namespace, name)

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create `obj`; ApiError with status 409 when the name is taken."""
        return await self._run(self._blocking.create, obj)

    async def patch(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any], subresource: str | None = None
    ) -> dict[str, Any]:
        """JSON merge patch (None values remove keys)."""
        return await self._run(self._blocking.patch, kind, namespace, name, patch, subresource)

    async def delete(self, kind: str, namespace: str, name: str, propagation: str) -> bool:
        """Delete with `propagation` (Foreground/Background); False when already gone."""
        return await self._run(self._blocking.delete, kind, namespace, name, propagation)

    async def list(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        return await self._run(self._blocking.list, kind, namespace, selector)
