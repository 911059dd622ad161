"""Deterministic names and labels of everything the operator creates for a BatchTransformJob.

Names are a pure function of the BatchTransformJob's name (and the retry generation for Jobs),
so a restarted operator finds what it created before: creating an existing name answers 409,
which the operator treats as adoption after checking the owner. Every name is a valid DNS label
(no dots: Indexed Job pods use ``<job>-<index>`` as their hostname); long or dotted names are
shortened and suffixed with a hash of the original so two jobs never share a name.
"""

from __future__ import annotations

import hashlib
import re

JOB_NAME_LIMIT = 52  # pod hostname `<job>-<index>` and generated pod names stay within 63
OBJECT_NAME_LIMIT = 63
LABEL_VALUE_LIMIT = 63
_HASH_LENGTH = 8
_NOT_DNS_LABEL = re.compile(r"[^a-z0-9-]")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_LENGTH]


def bounded(name: str, limit: int, suffix: str = "") -> str:
    """`name` + `suffix` as a DNS label of at most `limit` characters.

    Names that are already valid and short enough are kept as they are; others are cut and get
    `-<hash of name>` so that distinct inputs stay distinct.
    """
    clean = _NOT_DNS_LABEL.sub("-", name.lower())
    if clean == name and len(name) + len(suffix) <= limit:
        return name + suffix
    keep = max(1, limit - len(suffix) - _HASH_LENGTH - 1)
    head = clean[:keep].strip("-") or "x"
    return f"{head}-{_digest(name)}{suffix}"


def label_value(name: str) -> str:
    """A label value standing for `name` (label values are limited to 63 characters)."""
    return bounded(name, LABEL_VALUE_LIMIT)


def _base(btj_name: str, suffix: str, limit: int) -> str:
    return bounded(f"btj-{btj_name}", limit, suffix)


def job_name(btj_name: str, generation: int) -> str:
    """The Indexed Job of retry generation `generation` (0 for the first run)."""
    return _base(btj_name, f"-{generation}", JOB_NAME_LIMIT)


def job_config_name(btj_name: str) -> str:
    """The ConfigMap holding the ResolvedJob JSON, mounted at /etc/kbt."""
    return _base(btj_name, "-job", OBJECT_NAME_LIMIT)


def shard_identity_name(btj_name: str) -> str:
    """The ServiceAccount, Role and RoleBinding of the shard pods."""
    return _base(btj_name, "-shard", OBJECT_NAME_LIMIT)
