"""Structural defaulting as the Kubernetes API server does it, from the CRDs in crds/*.yaml.

The API server fills in every `default:` of a CRD's schema before it stores an object (and
when it reads one), so controllers only ever see defaulted objects. kmock does no defaulting;
`ApiServer` in kmock_cluster applies `apply_defaults` to kbt's objects on create and update.

The rules follow apiextensions-apiserver's structural defaulting: a property's default is set
where the property is absent (or null and not nullable) and its parent object exists; then
every present property, map value and array item is defaulted by its own schema.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


@cache
def crd_schemas() -> dict[str, dict[str, Any]]:
    """Kind -> openAPIV3Schema of the storage version, for every CRD in crds/."""
    schemas: dict[str, dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
        schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


def apply_defaults(value: Any, schema: dict[str, Any]) -> None:
    """Default `value` in place by `schema` (an OpenAPI v3 structural schema)."""
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties") or {}
        for name, prop in properties.items():
            if "default" not in prop:
                continue
            if name not in value or (value[name] is None and not prop.get("nullable")):
                value[name] = copy.deepcopy(prop["default"])
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if name in properties:
                apply_defaults(item, properties[name])
            elif isinstance(extra, dict):
                apply_defaults(item, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


def defaulted(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of a kbt object with its CRD's defaults applied (other kinds: an unchanged copy)."""
    result = copy.deepcopy(obj)
    schema = crd_schemas().get(str(obj.get("kind", "")))
    if schema is not None:
        apply_defaults(result, schema)
    return result


def with_defaults(stored: dict[str, Any] | None, patch: dict[str, Any]) -> dict[str, Any]:
    """`patch` (a create body when `stored` is None) extended so that applying it stores the
    defaulted result, as the API server would; kinds without a CRD here come back unchanged."""
    merged = _merge_patch(stored, patch) if stored is not None else copy.deepcopy(patch)
    combined: dict[str, Any] = _combine(patch, _additions(merged, defaulted(merged)))
    return combined


def _additions(before: Any, after: Any) -> Any:
    """A merge patch turning `before` into `after`, where `after` only adds to `before`."""
    if isinstance(before, dict) and isinstance(after, dict):
        return {
            key: _additions(before.get(key), value)
            for key, value in after.items()
            if before.get(key) != value
        }
    return copy.deepcopy(after)


def _combine(first: Any, then: Any) -> Any:
    """One merge patch with the effect of applying `first`, then `then`."""
    if not isinstance(first, dict) or not isinstance(then, dict):
        return then
    result = dict(first)
    for key, value in then.items():
        result[key] = _combine(first[key], value) if key in first else value
    return result


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: `patch` applied to a copy of `target`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result
