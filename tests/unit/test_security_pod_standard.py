"""Every shard pod the operator's Job builder renders meets the restricted Pod Security Standard.

The checker below implements the baseline and restricted profiles of
https://kubernetes.io/docs/concepts/security/pod-security-standards/ (v1.30) independently of the
builder; it runs on Jobs built from arbitrary valid BatchTransformJobs (hypothesis), so no field a
user controls (podOverrides, GPU instance types, environment, service account) can break it.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from chaos.operator_objects import operator_objects
from chaos.spec_strategies import valid_jobs
from kbt_operator.catalog import UnknownInstanceTypeError

ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What in `pod` (a PodSpec) violates the restricted profile; empty when it complies."""
    problems = []
    pod_context = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"{field} is set")
    if (pod_context.get("windowsOptions") or {}).get("hostProcess"):
        problems.append("hostProcess")
    problems += [
        f"sysctl {s['name']}" for s in pod_context.get("sysctls") or [] if s["name"] not in SAFE_SYSCTLS
    ]
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume['name']} of type {sorted(kinds)}")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    containers = [*pod.get("initContainers", []), *pod["containers"], *pod.get("ephemeralContainers", [])]
    for container in containers:
        name, context = container["name"], container.get("securityContext") or {}
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {capabilities['add']}")
        if set(capabilities.get("add") or []) - BASELINE_CAPABILITIES:
            problems.append(f"{name}: adds non-baseline capabilities")
        if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = (context.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in {"RuntimeDefault", "Localhost"}:
            problems.append(f"{name}: seccompProfile {seccomp!r}")
        if context.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount")
        problems += [
            f"{name}: hostPort {p['hostPort']}" for p in container.get("ports") or [] if p.get("hostPort")
        ]
    return problems


def test_the_checker_catches_what_the_profile_forbids() -> None:
    pod = {
        "hostNetwork": True,
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "containers": [
            {"name": "c", "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}}
        ],
    }
    problems = restricted_violations(pod)
    for expected in (
        "hostNetwork",
        "volume h",
        "privileged",
        "allowPrivilegeEscalation",
        "drop ALL",
        "SYS_ADMIN",
        "runAsNonRoot",
        "seccompProfile",
    ):
        assert any(expected in p for p in problems), (expected, problems)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_jobs)
def test_every_rendered_shard_pod_is_restricted(doc: dict[str, Any]) -> None:
    try:
        *_, job = operator_objects(doc)
    except UnknownInstanceTypeError:
        return
    pod = job["spec"]["template"]["spec"]
    assert restricted_violations(pod) == [], doc["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
