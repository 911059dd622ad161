"""Instance-type catalog (built-in and from a file) and the operator's environment configuration."""

from __future__ import annotations

from pathlib import Path

import botocore.session
import pytest
import yaml

from kbt.api.instance_types import INSTANCE_TYPES
from kbt_operator.catalog import (
    BUILTIN_TYPES,
    Catalog,
    CatalogError,
    RequestPercent,
    UnknownInstanceTypeError,
)
from kbt_operator.config import ConfigError, OperatorConfig

REPO = Path(__file__).resolve().parents[2]


def test_builtin_catalog_has_cpu_and_gpu_types() -> None:
    catalog = Catalog.builtin()
    m5 = catalog.lookup("ml.m5.xlarge")
    assert m5.container_resources() == {
        "requests": {"cpu": "3600m", "memory": "14745Mi"},
        "limits": {"cpu": "4", "memory": "16Gi"},
    }
    assert not m5.has_gpu and m5.pod_tolerations() == [] and m5.nodeSelector == {}
    for name, product in [
        ("ml.g4dn.xlarge", "Tesla-T4"),
        ("ml.g5.xlarge", "NVIDIA-A10G"),
        ("ml.p3.2xlarge", "Tesla-V100-SXM2-16GB"),
    ]:
        gpu = catalog.lookup(name)
        assert gpu.has_gpu and gpu.resources.limits["nvidia.com/gpu"] == "1"
        assert gpu.nodeSelector == {"nvidia.com/gpu.product": product}
        assert gpu.pod_tolerations() == [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]


def test_unknown_instance_type_lists_the_known_ones() -> None:
    with pytest.raises(UnknownInstanceTypeError) as caught:
        Catalog.builtin().lookup("ml.z9.huge")
    assert str(caught.value).startswith("unknown instanceType 'ml.z9.huge'; known types: ml.c4.*, ml.c5.*, ")
    assert caught.value.known == sorted(BUILTIN_TYPES) and "ml.g5.*" in str(caught.value)
    assert "ml.p3dn.24xlarge" in str(caught.value)  # a family of one size is named in full
    with pytest.raises(UnknownInstanceTypeError, match=r"\(did you mean 'ml\.m4\.xlarge'"):
        Catalog.builtin().lookup("ml.m4.xlarg")


def test_every_sagemaker_transform_instance_type_is_built_in() -> None:
    """SageMaker's TransformInstanceType enum, from botocore's own service model."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    transform_types = set(model.shape_for("TransformInstanceType").metadata["enum"])
    assert len(transform_types) > 100 and transform_types <= set(BUILTIN_TYPES)
    assert set(BUILTIN_TYPES) == set(INSTANCE_TYPES)


@pytest.mark.parametrize(
    ("name", "vcpus", "memory", "accelerator"),
    [
        ("ml.m4.xlarge", "4", "16Gi", {}),  # the SageMaker operator's own sample asks for it
        ("ml.c4.large", "2", "3840Mi", {}),
        ("ml.r7i.48xlarge", "192", "1536Gi", {}),
        ("ml.p2.16xlarge", "64", "732Gi", {"nvidia.com/gpu": "16"}),
        ("ml.g6e.12xlarge", "48", "384Gi", {"nvidia.com/gpu": "4"}),
        ("ml.p5.48xlarge", "192", "2048Gi", {"nvidia.com/gpu": "8"}),
        ("ml.inf2.24xlarge", "96", "384Gi", {"aws.amazon.com/neuron": "6"}),
    ],
)
def test_builtin_sizes_match_the_instance_types(
    name: str, vcpus: str, memory: str, accelerator: dict[str, str]
) -> None:
    entry = Catalog.builtin().lookup(name)
    assert entry.resources.limits == {"cpu": vcpus, "memory": memory, **accelerator}
    assert {k: v for k, v in entry.resources.requests.items() if k not in ("cpu", "memory")} == accelerator
    assert entry.has_gpu == ("nvidia.com/gpu" in accelerator)
    if "aws.amazon.com/neuron" in accelerator:
        assert entry.pod_tolerations() == [
            {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}
        ]


def test_request_percent_scales_the_builtin_requests_only() -> None:
    small = Catalog.builtin(RequestPercent(cpu=25, memory=50)).lookup("ml.m5.large")
    assert small.resources.requests == {"cpu": "500m", "memory": "4096Mi"}
    assert small.resources.limits == {"cpu": "2", "memory": "8Gi"}
    config = OperatorConfig.from_env({"KBT_CPU_REQUEST_PERCENT": "25", "KBT_MEMORY_REQUEST_PERCENT": "50"})
    assert config.load_catalog().lookup("ml.m5.large") == small
    assert OperatorConfig.from_env({}).request_percent == RequestPercent(90, 90)


def test_file_entries_add_and_replace_builtin_types(tmp_path: Path) -> None:
    path = tmp_path / "types.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "ml.g5.xlarge": {
                    "gpu": True,
                    "resources": {
                        "requests": {"cpu": "4", "nvidia.com/gpu": 1},
                        "limits": {"memory": "16Gi", "nvidia.com/gpu": 1},
                    },
                    "nodeSelector": {"node.kubernetes.io/instance-type": "g5.xlarge"},
                    "tolerations": [{"key": "gpu-pool", "operator": "Exists", "effect": "NoSchedule"}],
                },
                "local.small": {"resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
            }
        )
    )
    catalog = Catalog.load(path)
    g5 = catalog.lookup("ml.g5.xlarge")
    assert g5.resources.limits == {"memory": "16Gi", "nvidia.com/gpu": "1"}
    assert g5.nodeSelector == {"node.kubernetes.io/instance-type": "g5.xlarge"}
    assert g5.pod_tolerations() == [{"key": "gpu-pool", "operator": "Exists", "effect": "NoSchedule"}]
    assert catalog.lookup("local.small").container_resources() == {
        "requests": {"cpu": "250m", "memory": "256Mi"}
    }
    assert "ml.m5.xlarge" in catalog.types


def test_the_helm_charts_catalog_loads() -> None:
    values = yaml.safe_load((REPO / "charts" / "kbt" / "values.yaml").read_text())
    catalog = Catalog.from_document(values["instanceTypes"], "charts/kbt/values.yaml")
    for name in values["instanceTypes"]:
        assert catalog.lookup(name) is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a mapping of instance-type names"),
        ("ml.x: {resources: {limits: {cpu: lots}}}\n", "ml.x: resources.limits.cpu"),
        ("ml.x: {cpu: 4}\n", "ml.x: resources: Field required"),
        ("ml.x: {resources: {}, gpus: 1}\n", "ml.x: gpus: Extra inputs are not permitted"),
        ("ml.x: [\n", "cannot read the instance-type catalog"),
    ],
)
def test_bad_catalog_files_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError, match=str(path)) as caught:
        Catalog.load(path)
    assert message in str(caught.value)


def test_config_from_environment() -> None:
    config = OperatorConfig.from_env(
        {
            "KBT_NAMESPACES": "team-a, team-b,",
            "KBT_RUNNER_IMAGE": "kbt/runner:1",
            "KBT_DEFAULT_S3_ENDPOINT": "http://minio:9000",
            "KBT_DEFAULT_S3_SECRET": "kbt-s3",
            "KBT_METRICS_PORT": "0",
            "KBT_STATUS_INTERVAL": "0.5",
        }
    )
    assert config.namespaces == ("team-a", "team-b") and not config.clusterwide
    assert config.runner_images.default == config.runner_images.gpu == "kbt/runner:1"
    assert config.default_s3_endpoint == "http://minio:9000" and config.default_s3_secret == "kbt-s3"
    assert config.metrics_port == 0 and config.status_interval == 0.5 and config.health_port == 8080
    defaults = OperatorConfig.from_env({})
    assert (
        defaults.clusterwide
        and defaults.runner_images.default.startswith("kbt/runner:")
        and defaults.catalog_path is None
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KBT_METRICS_PORT": "ninety"}, "KBT_METRICS_PORT='ninety': expected an integer"),
        ({"KBT_STATUS_INTERVAL": "-1"}, "KBT_STATUS_INTERVAL='-1': must not be negative"),
        ({"KBT_IMAGE_PULL_POLICY": "Sometimes"}, "KBT_IMAGE_PULL_POLICY='Sometimes'"),
        ({"KBT_DEFAULT_S3_ENDPOINT": "minio:9000"}, "expected an http(s):// URL"),
        ({"KBT_DEFAULT_S3_SECRET": "Bad_Name"}, "not a valid Secret name"),
        ({"KBT_CPU_REQUEST_PERCENT": "half"}, "KBT_CPU_REQUEST_PERCENT='half': expected an integer"),
    ],
)
def test_bad_configuration_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        OperatorConfig.from_env(env)
    assert message in str(caught.value)
