"""A shard pod of the project's runner image, run with `docker run` as the kubelet would run it.

Shared by tests/image and bench/image_bench.py (plain functions, no pytest): `shard_pod` turns a
manifest into the Indexed Job's pod template and job ConfigMap exactly as the operator's reconcile
does, and `pod_run_arguments` turns that pod into `docker run` arguments (command, env, user,
read-only root filesystem, dropped capabilities, configMap and emptyDir volumes).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kbt.api.resolved import resolve_job
from kbt_operator.config import OperatorConfig
from kbt_operator.job_builder import JobRequest, build_job
from kbt_operator.owned import ObjectRef, job_config_map
from kbt_operator.reconcile import with_s3_defaults
from kbt_operator.resolve import parse_job, parse_model

NAMESPACE = "default"
S3_SECRET_NAME = "s3-credentials"
S3_SECRET = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
QUANTITY = re.compile(r"^(?P<number>[0-9]+)(?P<unit>Ki|Mi|Gi|Ti|k|M|G|T)?$")
UNITS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


@dataclass(frozen=True)
class ShardPod:
    """The Job's pod template, how many shards it runs, and its ConfigMap written to a folder."""

    pod: dict[str, Any]
    completions: int
    files: dict[str, Path]

    @property
    def image(self) -> str:
        return str(self.pod["containers"][0]["image"])

    def run_arguments(self, index: int, command: Sequence[str] = ()) -> list[str]:
        """`docker run` arguments of shard `index`; `command` replaces the container's."""
        return pod_run_arguments(self.pod, self.files, {S3_SECRET_NAME: S3_SECRET}, index, command)


def with_output(manifest: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """A copy of the [job, model] manifest writing to s3://results/<prefix>/, with the metadata
    the apiserver adds."""
    job, model = json.loads(json.dumps(manifest))
    job["spec"]["transformOutput"]["s3OutputPath"] = f"s3://results/{prefix}/"
    job["metadata"] = {"name": "heart-classifier", "namespace": NAMESPACE, "uid": str(uuid.uuid4())}
    model["metadata"] = {"name": job["spec"]["modelName"], "namespace": NAMESPACE}
    return [job, model]


def shard_pod(manifest: list[dict[str, Any]], operator_env: dict[str, str], config_dir: Path) -> ShardPod:
    """What the operator (configured by `operator_env`) makes of a [job, model] manifest
    (reconcile.create_job's steps), its job ConfigMap written to `config_dir`."""
    job_raw, model_raw = json.loads(json.dumps(manifest))
    job_raw["spec"]["s3"]["credentialsSecret"] = {"name": S3_SECRET_NAME}
    config = OperatorConfig.from_env(operator_env)
    job = with_s3_defaults(parse_job(job_raw), config)
    resolved = resolve_job(job, {model_raw["metadata"]["name"]: parse_model(model_raw)})
    owner = ObjectRef.parse(job_raw)
    config_map = job_config_map(resolved, owner)
    request = JobRequest(
        resolved=resolved,
        instance=config.load_catalog().lookup(job.spec.transformResources.instanceType),
        images=config.runner_images,
    )
    indexed_job = build_job(request, owner)
    config_dir.mkdir(parents=True, exist_ok=True)
    for key, text in config_map["data"].items():
        (config_dir / key).write_text(text)
    config_dir.chmod(0o755)
    return ShardPod(
        pod=indexed_job["spec"]["template"]["spec"],
        completions=indexed_job["spec"]["completions"],
        files={config_map["metadata"]["name"]: config_dir},
    )


def tmpfs_size(quantity: str) -> int:
    match = QUANTITY.match(quantity)
    if not match:
        raise ValueError(f"emptyDir sizeLimit {quantity!r} is not a quantity shard_pods understands")
    return int(match["number"]) * UNITS[match["unit"]]


def pod_run_arguments(
    pod: dict[str, Any],
    files: dict[str, Path],
    env_from: dict[str, dict[str, str]],
    index: int,
    command: Sequence[str] = (),
) -> list[str]:
    """`docker run` arguments for completion `index` of the Job's pod template: the container's
    command (or `command`), env (fieldRefs and envFrom resolved as the kubelet does), user,
    security context and volumes (configMaps from `files`, emptyDirs as tmpfs)."""
    (container,) = pod["containers"]
    pod_security, security = pod["securityContext"], container["securityContext"]
    if not pod_security["runAsNonRoot"] or pod_security["runAsUser"] == 0:
        raise ValueError(f"the shard pod runs as root: {pod_security}")
    arguments = [
        "--rm",
        "--network",
        "host",
        "--user",
        f"{pod_security['runAsUser']}:{pod_security['runAsGroup']}",
    ]
    arguments += ["--group-add", str(pod_security["fsGroup"])]
    if security.get("readOnlyRootFilesystem"):
        arguments.append("--read-only")
    if security.get("allowPrivilegeEscalation") is False:
        arguments += ["--security-opt", "no-new-privileges"]
    arguments += [f"--cap-drop={cap}" for cap in security.get("capabilities", {}).get("drop", [])]
    pod_name = f"shard-{index}-{uuid.uuid4().hex[:5]}"
    fields = {"metadata.namespace": NAMESPACE, "metadata.name": pod_name}
    environment = {"JOB_COMPLETION_INDEX": str(index)}  # the Indexed Job controller sets it
    for source in container.get("envFrom", []):
        environment.update(env_from[source["secretRef"]["name"]])
    for variable in container["env"]:
        environment[variable["name"]] = (
            variable["value"]
            if "value" in variable
            else fields[variable["valueFrom"]["fieldRef"]["fieldPath"]]
        )
    for name, value in environment.items():
        arguments += ["--env", f"{name}={value}"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            arguments += ["--volume", f"{files[volume['configMap']['name']]}:{mount['mountPath']}:ro"]
        else:
            size = tmpfs_size(volume["emptyDir"]["sizeLimit"])
            arguments += ["--tmpfs", f"{mount['mountPath']}:rw,exec,mode=1777,size={size}"]
    command = list(command) or container["command"] + container.get("args", [])
    return [*arguments, "--entrypoint", command[0], container["image"], *command[1:]]
