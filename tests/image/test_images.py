"""The project's images, run the way the cluster runs them (needs a Docker engine and the images:
`make image-test` builds kbt/operator and kbt/runner-tabular, then runs this).

* The runner image scores the heart example against a loopback S3 exactly as a shard pod would:
  command, environment, user, read-only root filesystem and volumes are taken from the Indexed
  Job that `kbt_operator.job_builder` builds for the manifest, and its outputs must be byte for
  byte those of `kbt run` on the same job.
* The operator image starts against the kmock emulator, answers /healthz and turns a
  BatchTransformJob into an Indexed Job.
* Every image (kbt/runner-cuda too, when built) runs as uid 1000, ships compiled bytecode,
  carries no pip, no build inputs (the host's CA bundle) and, for CPU runners, no NVIDIA packages
  and no CUDA libraries.

Skipped when no Docker engine answers or an image is not built. Env: DOCKER (default docker),
KBT_IMAGE_TAG (default: kbt's version), KBT_IMAGE_TEST_RUNNER (default kbt/runner-tabular:TAG).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import boto3
import kmock
import pytest
import yaml
from shard_pods import NAMESPACE, S3_SECRET, shard_pod, with_output

from harness.kmock_cluster import ApiServer, Client, eventually, write_kubeconfig

pytestmark = [pytest.mark.image, pytest.mark.xdist_group("images")]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "heart-classifier"
DOCKER = os.environ.get("DOCKER", "docker")
TAG = os.environ.get("KBT_IMAGE_TAG") or version("kbt")
OPERATOR_IMAGE = f"kbt/operator:{TAG}"
RUNNER_IMAGE = os.environ.get("KBT_IMAGE_TEST_RUNNER") or f"kbt/runner-tabular:{TAG}"
GPU_RUNNER_IMAGE = f"kbt/runner-cuda:{TAG}"  # `make image-runner-cuda`; its test skips without it


def docker(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        pytest.fail(
            f"{DOCKER} {' '.join(args[:3])} ... exited {result.returncode}:\n"
            f"{(result.stdout + result.stderr)[-4000:]}"
        )
    return result


@pytest.fixture(scope="module")
def engine() -> None:
    if shutil.which(DOCKER) is None:
        pytest.skip(f"no {DOCKER} on PATH")
    if subprocess.run([DOCKER, "info"], capture_output=True, timeout=60, check=False).returncode != 0:
        pytest.skip(f"no Docker engine answers {DOCKER} info")


def built(image: str) -> str:
    if docker("image", "inspect", image, check=False).returncode != 0:
        pytest.skip(f"image {image} is not built (make image-test builds it)")
    return image


@pytest.fixture(scope="module")
def runner_image(engine: None) -> str:
    return built(RUNNER_IMAGE)


@pytest.fixture(scope="module")
def operator_image(engine: None) -> str:
    return built(OPERATOR_IMAGE)


@pytest.fixture(scope="module")
def gpu_runner_image(engine: None) -> str:
    return built(GPU_RUNNER_IMAGE)


def _load(path: Path, name: str) -> ModuleType:
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def heart_on_s3(
    s3_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The heart model and inputs on the loopback S3; yields the endpoint and demo.py's manifest."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {**S3_SECRET, "AWS_DEFAULT_REGION": "us-east-1"}.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        prepare = _load(EXAMPLE / "prepare.py", "prepare")
        demo = _load(EXAMPLE / "demo.py", "image_test_heart_demo")
        prepare.prepare(work=tmp_path_factory.mktemp("heart"), s3_endpoint=s3_server)
        s3(s3_server).create_bucket(Bucket="results")
        yield s3_server, demo.job_manifest(s3_server)


def s3(endpoint: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", **{k.lower(): v for k, v in S3_SECRET.items()}
    )


def outputs(endpoint: str, prefix: str) -> dict[str, bytes]:
    """Every prediction and rejected-record object under results/<prefix>/, by relative key."""
    client = s3(endpoint)
    keys = [
        o["Key"] for o in client.list_objects_v2(Bucket="results", Prefix=f"{prefix}/").get("Contents", [])
    ]
    wanted = [key for key in keys if key.endswith(".out") or "/_errors/" in key]
    return {
        key.removeprefix(f"{prefix}/"): client.get_object(Bucket="results", Key=key)["Body"].read()
        for key in wanted
    }


def test_runner_image_scores_like_kbt_run_as_a_shard_pod(
    runner_image: str, heart_on_s3: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    endpoint, manifest = heart_on_s3
    local = tmp_path / "local.yaml"
    local.write_text(yaml.safe_dump_all(with_output(manifest, "local")))
    run = subprocess.run(
        [str(Path(sys.executable).with_name("kbt")), "run", str(local)],
        env={
            **os.environ,
            **S3_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr

    # What the operator makes of the manifest, the image under test as its tabular (MLflow) image.
    pod = shard_pod(
        with_output(manifest, "pod"), {"KBT_RUNNER_TABULAR_IMAGE": runner_image}, tmp_path / "job-config"
    )
    assert pod.image == runner_image
    for index in range(pod.completions):
        shard = docker("run", *pod.run_arguments(index), check=False)
        assert shard.returncode == 0, (
            f"shard {index} exited {shard.returncode}:\n{(shard.stdout + shard.stderr)[-4000:]}"
        )

    expected, written = outputs(endpoint, "local"), outputs(endpoint, "pod")
    assert any(key.endswith(".out") for key in expected), sorted(expected)
    assert sorted(written) == sorted(expected)
    for key, body in expected.items():
        assert written[key] == body, f"{key} differs between the shard pod and kbt run"


# --- the operator image against the emulator -----------------------------------------------------


def _btj(runner_namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": "image-probe", "namespace": runner_namespace},
        "spec": {
            "model": {"uri": "s3://models/heart/", "flavor": "sklearn"},
            "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://data/heart/"}}},
            "transformOutput": {"s3OutputPath": "s3://results/image-probe/"},
            "transformResources": {"instanceCount": 1, "instanceType": "ml.m5.large"},
        },
    }


async def _healthy(url: str, container: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            state = await asyncio.to_thread(docker, "inspect", "--format", "{{.State.Running}}", container)
            if state.stdout.strip() != "true":
                logs = await asyncio.to_thread(docker, "logs", container, check=False)
                pytest.fail(f"the operator container stopped:\n{(logs.stdout + logs.stderr)[-4000:]}")
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    pytest.fail(f"{url} never answered 200")


async def test_operator_image_is_healthy_and_creates_the_job(operator_image: str, tmp_path: Path) -> None:
    from conftest import free_port  # noqa: PLC0415 (conftest: importable under pytest only)

    async with ApiServer() as api, kmock.Server(api) as server:
        url = str(server.url).rstrip("/")
        kubeconfig = write_kubeconfig(tmp_path, url)
        kubeconfig.chmod(0o644)
        health, metrics = free_port(), free_port()
        started = await asyncio.to_thread(
            docker,
            "run", "--detach", "--network", "host", "--read-only", "--tmpfs", "/tmp", "--user", "1000:1000",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--volume", f"{kubeconfig}:/etc/kbt-test/kubeconfig:ro",
            "--env", "KUBECONFIG=/etc/kbt-test/kubeconfig",
            "--env", f"KBT_HEALTH_PORT={health}", "--env", f"KBT_METRICS_PORT={metrics}",
            "--env", "KBT_RUNNER_IMAGE=kbt/runner:probe", operator_image,
        )  # fmt: skip
        container = started.stdout.strip()
        try:
            await _healthy(f"http://127.0.0.1:{health}/healthz", container)
            async with aiohttp.ClientSession(base_url=url) as session:
                await Client(session).create_btj(_btj(NAMESPACE))

                def job_created() -> dict[str, Any]:
                    jobs = api.list_objects("batch/v1/jobs", NAMESPACE)
                    assert len(jobs) == 1, f"{len(jobs)} Jobs"
                    return jobs[0]

                try:
                    job = await eventually(job_created, timeout=60)
                except AssertionError:
                    logs = await asyncio.to_thread(docker, "logs", container, check=False)
                    btj = api.read("kbt.dev/v1alpha1/batchtransformjobs", NAMESPACE, "image-probe") or {}
                    pytest.fail(
                        f"no Job in 60 s; status {btj.get('status')}; "
                        f"log:\n{(logs.stdout + logs.stderr)[-3000:]}"
                    )
            assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "kbt/runner:probe"
        finally:
            await asyncio.to_thread(docker, "rm", "--force", container, check=False)


# --- what every image is ---------------------------------------------------------------------------

IMAGE_FACTS = """
import importlib.metadata as metadata, importlib.util, json, os, pathlib, re, sys, sysconfig
CUDA = re.compile("cuda|nccl|cudnn|cublas")
site = pathlib.Path(sysconfig.get_paths()["purelib"])
tag = sys.implementation.cache_tag
uncompiled = [
    str(p) for p in (site / "kbt").rglob("*.py")
    if not (p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").exists()
]
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "dont_write_bytecode": sys.flags.dont_write_bytecode,
    "uncompiled": uncompiled, "pip": importlib.util.find_spec("pip") is not None,
    "build_inputs": os.path.exists("/build"),
    "cuda_libraries": sorted(p.name for p in site.rglob("*.so*") if CUDA.search(p.name)),
    "distributions": sorted(d.metadata["Name"].lower() for d in metadata.distributions()),
}))
"""


def facts(image: str) -> dict[str, Any]:
    result = docker("run", "--rm", "--read-only", "--entrypoint", "python", image, "-c", IMAGE_FACTS)
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


@pytest.mark.parametrize("which", ["operator", "runner", "gpu_runner"])
def test_images_are_unprivileged_compiled_and_carry_no_build_inputs(
    which: str, request: pytest.FixtureRequest
) -> None:
    image = request.getfixturevalue(f"{which}_image")
    found = facts(image)
    assert (found["uid"], found["gid"]) == (1000, 1000)
    assert found["dont_write_bytecode"] and found["uncompiled"] == []
    assert not found["pip"] and not found["build_inputs"]
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["User"] == "1000:1000"
    assert not [
        variable for variable in config["Env"] if variable.startswith(("PIP_", "SSL_CERT", "REQUESTS_CA"))
    ]
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "image-inputs" not in history and "ca.crt" not in history
    if which == "operator":
        assert not {"pandas", "pyarrow", "numpy", "boto3"} & set(found["distributions"])
    elif which == "gpu_runner":
        assert "kubernetes" in found["distributions"]
        assert {"torch", "tensorflow", "xgboost"} <= set(found["distributions"])
        assert "nvidia-cudnn-cu12" in found["distributions"]  # the CUDA libraries come as packages
    else:
        assert "kubernetes" in found["distributions"]  # shards patch their progress ConfigMap
        assert not [name for name in found["distributions"] if name.startswith("nvidia-")]
        assert "xgboost" not in found["distributions"]  # xgboost-cpu: no CUDA build of libxgboost
        assert found["cuda_libraries"] == []


def test_host_ca_bundle_is_not_in_any_layer(runner_image: str, operator_image: str) -> None:
    """Certificates the host trusts beyond the image's own bundle (a TLS-inspecting proxy's) were
    used for the build and appear in no file of the images."""
    host_bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if not host_bundle.is_file():
        pytest.skip(f"no host CA bundle at {host_bundle}")
    pem = re.compile(r"-----BEGIN CERTIFICATE-----\n(.*?)-----END CERTIFICATE-----", re.S)
    for image in (runner_image, operator_image):
        own = docker(
            "run", "--rm", "--entrypoint", "cat", image, "/etc/ssl/certs/ca-certificates.crt", check=False
        ).stdout
        extra = set(pem.findall(host_bundle.read_text())) - set(pem.findall(own))
        probes = [body.splitlines()[2] for body in extra if len(body.splitlines()) > 3]
        if not probes:
            continue
        patterns = [argument for line in probes for argument in ("-e", line)]
        found = docker(
            "run",
            "--rm",
            "--user",
            "0",
            "--entrypoint",
            "grep",
            image,
            "-rlsF",
            *patterns,
            "/opt",
            "/etc",
            "/home",
            check=False,
        )
        assert found.returncode == 1 and not found.stdout, (
            f"{image} holds the host's CA certificates: {found.stdout}"
        )
