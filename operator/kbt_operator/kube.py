"""The operator's Kubernetes API calls: plain dicts in and out, errors with what and where.

Uses the official client's configuration and transport (in-cluster service account, else
kubeconfig, token refresh included) with raw JSON paths, so objects stay the plain dicts the
builders produce. The client blocks, so every call runs on a small thread pool.
"""

from __future__ import annotations

import asyncio
import functools
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
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"

# kind -> (API prefix, plural); every kind the operator reads or writes.
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
    """A failed API call: HTTP status (0 = no answer) and the server's message, with the target."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _server_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def _path(kind: str, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    prefix, plural = RESOURCES[kind]
    path = f"{prefix}/namespaces/{namespace}/{plural}"
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


class KubeApi:
    """Asynchronous facade over blocking calls of one API client."""

    def __init__(self, api_client: client.ApiClient, workers: int = 8) -> None:
        self._client = api_client
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kbt-api")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Accept": accept, "Content-Type": content_type}
        try:
            response = self._client.call_api(
                path,
                method,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except ApiException as exc:
            raise ApiError(exc.status or 0, f"{method} {path}: {exc.status} {_server_message(exc)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(0, f"{method} {path}: API server unreachable: {exc}") from None
        data = response.data
        return dict(json.loads(data)) if data else {}

    # --- blocking calls -------------------------------------------------------------------

    def _get(self, kind: str, namespace: str, name: str, accept: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", _path(kind, namespace, name), accept=accept)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _delete(self, kind: str, namespace: str, name: str, propagation: str) -> bool:
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            self._call("DELETE", _path(kind, namespace, name), body=body)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _list(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        answer = self._call("GET", _path(kind, namespace), query=[("labelSelector", selector)])
        return [dict(item) for item in answer.get("items") or []]

    # --- API ------------------------------------------------------------------------------

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        return await self._run(self._get, kind, namespace, name, "application/json")

    async def exists(self, kind: str, namespace: str, name: str) -> bool:
        """Whether the object exists; reads metadata only (the operator never sees Secret data)."""
        return await self._run(self._get, kind, namespace, name, METADATA_ONLY) is not None

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create `obj`; ApiError with status 409 when the name is taken."""
        meta = obj["metadata"]
        return await self._run(self._call, "POST", _path(obj["kind"], meta["namespace"]), dict(obj))

    async def patch(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any], subresource: str | None = None
    ) -> dict[str, Any]:
        """JSON merge patch (None values remove keys)."""
        path = _path(kind, namespace, name, subresource)
        return await self._run(functools.partial(self._call, content_type="application/merge-patch+json"), "PATCH", path, dict(patch))

    async def delete(self, kind: str, namespace: str, name: str, propagation: str) -> bool:
        """Delete with `propagation` (Foreground/Background); False when already gone."""
        return await self._run(self._delete, kind, namespace, name, propagation)

    async def list(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        return await self._run(self._list, kind, namespace, selector)
