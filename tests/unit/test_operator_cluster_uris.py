"""#16.2: which URIs a shard pod can reach; local paths and file:// are refused with one hint."""

from __future__ import annotations

import pytest

from kbt.api.models import BatchTransformJob, Model
from kbt_operator.cluster_uris import HINT, is_local, local_uri_problem


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("s3://bucket/key", False),
        ("https://bucket.s3.us-east-1.amazonaws.com/key", False),
        ("runs:/0123/model", False),
        ("models:/churn@champion", False),
        ("file:///home/me/model", True),
        ("examples/heart/data/", True),
        ("/abs/path", True),
    ],
)
def test_is_local(uri: str, local: bool) -> None:
    assert is_local(uri) is local


def _job(model: dict[str, str] | None = None, data: str = "s3://data/in/") -> BatchTransformJob:
    spec = {
        "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": data}}},
        "transformOutput": {"s3OutputPath": "out/"},
        "transformResources": {"instanceType": "ml.m5.large", "instanceCount": 1},
        **({"model": model} if model else {"modelName": "m"}),
    }
    return BatchTransformJob.model_validate({"metadata": {"name": "j", "namespace": "ns"}, "spec": spec})


def test_every_local_uri_is_named_with_its_field() -> None:
    job = _job({"uri": "file:///m", "flavor": "sklearn"}, data="in/")
    assert local_uri_problem(job, None) == (
        f"spec.transformInput.dataSource.s3DataSource.s3Uri: in/; spec.transformOutput.s3OutputPath: out/; "
        f"spec.model.uri: file:///m: {HINT}"
    )
    model = Model.model_validate(
        {"metadata": {"name": "m"}, "spec": {"uri": "s3://models/m/", "flavor": "sklearn"}}
    )
    assert local_uri_problem(_job(), model) == f"spec.transformOutput.s3OutputPath: out/: {HINT}"
