"""Exactly the API permissions the operator uses, as data; the Helm chart's RBAC is generated from it.

``NAMESPACED_RULES`` are needed in every watched namespace (a Role per namespace, or part of the
ClusterRole when watching all of them). The operator runs kopf standalone (no peering objects)
with cluster scanning disabled, so it needs nothing cluster-scoped: no namespaces, no CRDs.
``python -m kbt_operator.rbac`` prints the chart's ``files/operator-rules.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from kbt.api.models import API_GROUP

RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Rule:
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str

    def as_policy_rule(self) -> dict[str, list[str]]:
        return {
            "apiGroups": list(self.api_groups),
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }


NAMESPACED_RULES: tuple[Rule, ...] = (
    Rule(
        (API_GROUP,),
        ("batchtransformjobs",),
        ("list", "watch", "patch"),
        "watch jobs; kopf's handled-state annotation",
    ),
    Rule((API_GROUP,), ("batchtransformjobs/status",), ("patch",), "write status"),
    Rule((API_GROUP,), ("models",), ("list", "watch"), "resolve spec.modelName (from the operator's watch)"),
    Rule(
        ("batch",),
        ("jobs",),
        ("get", "list", "watch", "create", "patch", "delete"),
        "Indexed Jobs: create/adopt, suspend, stop, retry",
    ),
    Rule(("",), ("pods",), ("list",), "termination messages of failed shards"),
    Rule(
        ("",),
        ("configmaps",),
        ("get", "list", "watch", "create", "patch"),
        "job config and progress ConfigMaps; patch because shard pods are granted it (no RBAC escalation)",
    ),
    Rule(("",), ("serviceaccounts",), ("get", "create"), "per-job shard ServiceAccount"),
    Rule(
        (RBAC_GROUP,),
        ("roles", "rolebindings"),
        ("get", "create"),
        "per-job Role/RoleBinding on one progress ConfigMap",
    ),
    Rule(
        ("",),
        ("secrets",),
        ("get",),
        "check spec.s3.credentialsSecret exists (metadata only; values never read)",
    ),
    Rule(("",), ("events",), ("create",), "events on transitions and shard failures"),
)
CLUSTER_RULES: tuple[Rule, ...] = ()  # needed whatever the scope
CLUSTER_WIDE_ONLY_RULES: tuple[Rule, ...] = ()  # needed only when watching every namespace


def allows(api_group: str, resource: str, verb: str) -> bool:
    """Whether the operator's rules grant `verb` on `resource` (e.g. 'batchtransformjobs/status')."""
    return any(
        api_group in rule.api_groups and resource in rule.resources and verb in rule.verbs
        for rule in (*NAMESPACED_RULES, *CLUSTER_RULES, *CLUSTER_WIDE_ONLY_RULES)
    )


def render_rules_yaml() -> str:
    """The chart's files/operator-rules.yaml."""
    document = {
        "namespaced": [rule.as_policy_rule() for rule in NAMESPACED_RULES],
        "cluster": [rule.as_policy_rule() for rule in CLUSTER_RULES],
        "clusterWideOnly": [rule.as_policy_rule() for rule in CLUSTER_WIDE_ONLY_RULES],
    }
    header = "# Generated from kbt_operator.rbac by `make chart-sync`. Do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False)


if __name__ == "__main__":
    print(render_rules_yaml(), end="")
