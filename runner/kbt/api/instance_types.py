"""The SageMaker instance types kbt knows, as one table, and the names a cluster catalog file adds.

Both `kbt validate` (offline, in the runner package) and the operator's catalog
(``kbt_operator.catalog``, which adds scheduling: requests, nodeSelector, tolerations, GPU image)
read the table below, so they agree on what is known. A cluster may add types in its own catalog
file (the chart's ``instanceTypes`` value, path in ``KBT_INSTANCE_TYPES``); `catalog_file_entries`
reads that file for both.

Names: every value of SageMaker's ``TransformInstanceType`` enum (TransformResources.InstanceType,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformResources.html, as shipped
in botocore 1.44's sagemaker service model), plus the x86 types of the same families SageMaker
lists for hosting (``ProductionVariantInstanceType``: ml.t2, ml.m5d, ml.c5d, ml.r5, ml.r5d,
ml.inf1, ml.p4d, ml.p4de, ml.p5, ml.trn1n, ml.c4.large, ml.c5.large) and training
(``TrainingInstanceType``: ml.t3, ml.p3dn, ml.r5.8xlarge/16xlarge). Sizes are the EC2 ones of
the same name (https://aws.amazon.com/ec2/instance-types/): vCPUs, memory in GiB, and the
accelerators a pod requests: ``gpu`` = ``nvidia.com/gpu`` (with the GPU's product label, as the
NVIDIA GPU feature discovery names it), ``neuron`` = ``aws.amazon.com/neuron`` devices
(Inferentia/Trainium chips, as the AWS Neuron device plugin counts them).
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import yaml

GPU_RESOURCE = "nvidia.com/gpu"
NEURON_RESOURCE = "aws.amazon.com/neuron"
CATALOG_ENV = "KBT_INSTANCE_TYPES"

# name               vCPU  GiB  accelerator count  GPU product
_TABLE = """
ml.t2.medium           2      4
ml.t2.large            2      8
ml.t2.xlarge           4     16
ml.t2.2xlarge          8     32
ml.t3.medium           2      4
ml.t3.large            2      8
ml.t3.xlarge           4     16
ml.t3.2xlarge          8     32
ml.m4.xlarge           4     16
ml.m4.2xlarge          8     32
ml.m4.4xlarge         16     64
ml.m4.10xlarge        40    160
ml.m4.16xlarge        64    256
ml.m5.large            2      8
ml.m5.xlarge           4     16
ml.m5.2xlarge          8     32
ml.m5.4xlarge         16     64
ml.m5.12xlarge        48    192
ml.m5.24xlarge        96    384
ml.m5d.large           2      8
ml.m5d.xlarge          4     16
ml.m5d.2xlarge         8     32
ml.m5d.4xlarge        16     64
ml.m5d.12xlarge       48    192
ml.m5d.24xlarge       96    384
ml.m6i.large           2      8
ml.m6i.xlarge          4     16
ml.m6i.2xlarge         8     32
ml.m6i.4xlarge        16     64
ml.m6i.8xlarge        32    128
ml.m6i.12xlarge       48    192
ml.m6i.16xlarge       64    256
ml.m6i.24xlarge       96    384
ml.m6i.32xlarge      128    512
ml.m7i.large           2      8
ml.m7i.xlarge          4     16
ml.m7i.2xlarge         8     32
ml.m7i.4xlarge        16     64
ml.m7i.8xlarge        32    128
ml.m7i.12xlarge       48    192
ml.m7i.16xlarge       64    256
ml.m7i.24xlarge       96    384
ml.m7i.48xlarge      192    768
ml.c4.large            2   3.75
ml.c4.xlarge           4    7.5
ml.c4.2xlarge          8     15
ml.c4.4xlarge         16     30
ml.c4.8xlarge         36     60
ml.c5.large            2      4
ml.c5.xlarge           4      8
ml.c5.2xlarge          8     16
ml.c5.4xlarge         16     32
ml.c5.9xlarge         36     72
ml.c5.18xlarge        72    144
ml.c5d.large           2      4
ml.c5d.xlarge          4      8
ml.c5d.2xlarge         8     16
ml.c5d.4xlarge        16     32
ml.c5d.9xlarge        36     72
ml.c5d.18xlarge       72    144
ml.c6i.large           2      4
ml.c6i.xlarge          4      8
ml.c6i.2xlarge         8     16
ml.c6i.4xlarge        16     32
ml.c6i.8xlarge        32     64
ml.c6i.12xlarge       48     96
ml.c6i.16xlarge       64    128
ml.c6i.24xlarge       96    192
ml.c6i.32xlarge      128    256
ml.c7i.large           2      4
ml.c7i.xlarge          4      8
ml.c7i.2xlarge         8     16
ml.c7i.4xlarge        16     32
ml.c7i.8xlarge        32     64
ml.c7i.12xlarge       48     96
ml.c7i.16xlarge       64    128
ml.c7i.24xlarge       96    192
ml.c7i.48xlarge      192    384
ml.r5.large            2     16
ml.r5.xlarge           4     32
ml.r5.2xlarge          8     64
ml.r5.4xlarge         16    128
ml.r5.8xlarge         32    256
ml.r5.12xlarge        48    384
ml.r5.16xlarge        64    512
ml.r5.24xlarge        96    768
ml.r5d.large           2     16
ml.r5d.xlarge          4     32
ml.r5d.2xlarge         8     64
ml.r5d.4xlarge        16    128
ml.r5d.12xlarge       48    384
ml.r5d.24xlarge       96    768
ml.r6i.large           2     16
ml.r6i.xlarge          4     32
ml.r6i.2xlarge         8     64
ml.r6i.4xlarge        16    128
ml.r6i.8xlarge        32    256
ml.r6i.12xlarge       48    384
ml.r6i.16xlarge       64    512
ml.r6i.24xlarge       96    768
ml.r6i.32xlarge      128   1024
ml.r7i.large           2     16
ml.r7i.xlarge          4     32
ml.r7i.2xlarge         8     64
ml.r7i.4xlarge        16    128
ml.r7i.8xlarge        32    256
ml.r7i.12xlarge       48    384
ml.r7i.16xlarge       64    512
ml.r7i.24xlarge       96    768
ml.r7i.48xlarge      192   1536
ml.p2.xlarge           4     61  gpu     1  Tesla-K80
ml.p2.8xlarge         32    488  gpu     8  Tesla-K80
ml.p2.16xlarge        64    732  gpu    16  Tesla-K80
ml.p3.2xlarge          8     61  gpu     1  Tesla-V100-SXM2-16GB
ml.p3.8xlarge         32    244  gpu     4  Tesla-V100-SXM2-16GB
ml.p3.16xlarge        64    488  gpu     8  Tesla-V100-SXM2-16GB
ml.p3dn.24xlarge      96    768  gpu     8  Tesla-V100-SXM2-32GB
ml.p4d.24xlarge       96   1152  gpu     8  NVIDIA-A100-SXM4-40GB
ml.p4de.24xlarge      96   1152  gpu     8  NVIDIA-A100-SXM4-80GB
ml.p5.4xlarge         16    256  gpu     1  NVIDIA-H100-80GB-HBM3
ml.p5.48xlarge       192   2048  gpu     8  NVIDIA-H100-80GB-HBM3
ml.g4dn.xlarge         4     16  gpu     1  Tesla-T4
ml.g4dn.2xlarge        8     32  gpu     1  Tesla-T4
ml.g4dn.4xlarge       16     64  gpu     1  Tesla-T4
ml.g4dn.8xlarge       32    128  gpu     1  Tesla-T4
ml.g4dn.12xlarge      48    192  gpu     4  Tesla-T4
ml.g4dn.16xlarge      64    256  gpu     1  Tesla-T4
ml.g5.xlarge           4     16  gpu     1  NVIDIA-A10G
ml.g5.2xlarge          8     32  gpu     1  NVIDIA-A10G
ml.g5.4xlarge         16     64  gpu     1  NVIDIA-A10G
ml.g5.8xlarge         32    128  gpu     1  NVIDIA-A10G
ml.g5.12xlarge        48    192  gpu     4  NVIDIA-A10G
ml.g5.16xlarge        64    256  gpu     1  NVIDIA-A10G
ml.g5.24xlarge        96    384  gpu     4  NVIDIA-A10G
ml.g5.48xlarge       192    768  gpu     8  NVIDIA-A10G
ml.g6.xlarge           4     16  gpu     1  NVIDIA-L4
ml.g6.2xlarge          8     32  gpu     1  NVIDIA-L4
ml.g6.4xlarge         16     64  gpu     1  NVIDIA-L4
ml.g6.8xlarge         32    128  gpu     1  NVIDIA-L4
ml.g6.12xlarge        48    192  gpu     4  NVIDIA-L4
ml.g6.16xlarge        64    256  gpu     1  NVIDIA-L4
ml.g6.24xlarge        96    384  gpu     4  NVIDIA-L4
ml.g6.48xlarge       192    768  gpu     8  NVIDIA-L4
ml.g6e.xlarge          4     32  gpu     1  NVIDIA-L40S
ml.g6e.2xlarge         8     64  gpu     1  NVIDIA-L40S
ml.g6e.4xlarge        16    128  gpu     1  NVIDIA-L40S
ml.g6e.8xlarge        32    256  gpu     1  NVIDIA-L40S
ml.g6e.12xlarge       48    384  gpu     4  NVIDIA-L40S
ml.g6e.16xlarge       64    512  gpu     1  NVIDIA-L40S
ml.g6e.24xlarge       96    768  gpu     4  NVIDIA-L40S
ml.g6e.48xlarge      192   1536  gpu     8  NVIDIA-L40S
ml.inf1.xlarge         4      8  neuron  1
ml.inf1.2xlarge        8     16  neuron  1
ml.inf1.6xlarge       24     48  neuron  4
ml.inf1.24xlarge      96    192  neuron 16
ml.inf2.xlarge         4     16  neuron  1
ml.inf2.8xlarge       32    128  neuron  1
ml.inf2.24xlarge      96    384  neuron  6
ml.inf2.48xlarge     192    768  neuron 12
ml.trn1.2xlarge        8     32  neuron  1
ml.trn1.32xlarge     128    512  neuron 16
ml.trn1n.32xlarge    128    512  neuron 16
"""

Accelerator = Literal["gpu", "neuron"]


@dataclass(frozen=True)
class InstanceSpec:
    """The nominal size of one instance type."""

    vcpus: int
    memory_mib: int
    accelerator: Accelerator | None = None
    accelerators: int = 0
    gpu_product: str | None = None

    @property
    def accelerator_resource(self) -> str | None:
        return (
            {"gpu": GPU_RESOURCE, "neuron": NEURON_RESOURCE}[self.accelerator] if self.accelerator else None
        )


def _parse_row(line: str) -> tuple[str, InstanceSpec]:
    name, vcpus, memory_gib, *accelerator = line.split()
    kind, count, *product = accelerator or ["", "0"]
    if kind not in ("", "gpu", "neuron"):
        raise ValueError(f"instance-type table: {name}: unknown accelerator {kind!r}")
    spec = InstanceSpec(
        vcpus=int(vcpus),
        memory_mib=int(float(memory_gib) * 1024),
        accelerator=cast(Accelerator, kind) if kind else None,
        accelerators=int(count),
        gpu_product=product[0] if product else None,
    )
    return name, spec


INSTANCE_TYPES: dict[str, InstanceSpec] = dict(_parse_row(line) for line in _TABLE.strip().splitlines())


class CatalogError(ValueError):
    """The catalog file is unreadable or an entry is invalid."""


def catalog_file_entries(path: Path) -> dict[str, Any]:
    """The raw entries (name -> entry) of a cluster catalog file; an empty file has none."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: cannot read the instance-type catalog: {exc}") from None
    return catalog_document_entries(document, str(path))


def catalog_document_entries(document: Any, source: str) -> dict[str, Any]:
    """The entries of a parsed catalog document (None = empty), keyed by name as text."""
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise CatalogError(f"{source}: expected a mapping of instance-type names to entries")
    return {str(name): entry for name, entry in document.items()}


def known_names(catalog_file: Path | None) -> frozenset[str]:
    """Names a job may use: the built-in table plus the cluster catalog file's, when given."""
    extra = catalog_file_entries(catalog_file) if catalog_file else {}
    return frozenset(INSTANCE_TYPES) | frozenset(extra)


def summarize(names: Collection[str]) -> str:
    """The names, sorted, with a family of several sizes shown once as ``ml.m5.*``."""
    families = Counter(name.rsplit(".", 1)[0] for name in names if "." in name)
    shown = {
        f"{name.rsplit('.', 1)[0]}.*" if families[name.rsplit(".", 1)[0]] > 1 else name for name in names
    }
    return ", ".join(sorted(shown))


def unknown_message(name: str, known: Collection[str]) -> str:
    """Why `name` is refused: the known types by family, and the closest names."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.8)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    return f"unknown instanceType {name!r}{hint}; known types: {summarize(known)}"
