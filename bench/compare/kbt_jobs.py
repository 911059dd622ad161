"""Express a benchmark task as a kbt BatchTransformJob (for `kbt run`) and a ResolvedJob (shards)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from bench.compare.models import GENERATION, HEART_EXAMPLE, IMAGE_PREP
from bench.compare.task import Task

from kbt.api.models import BatchTransformJob
from kbt.api.resolved import ResolvedJob

CONTENT_TYPES = {
    "csv": "text/csv",
    "png": "image/png",
    "jpeg": "image/jpeg",
}
HEART_EXAMPLE_JOB = HEART_EXAMPLE / "job.yaml"
TORCH_CLASSES = {"mnist": "torch_nets:MnistDigits", "resnet50": "torch_nets:ResNet50Classes"}


def model_spec(task: Task) -> dict[str, Any]:
    """The inline model of the job: same files the other contenders load."""
    model_dir = Path(task.model_dir)
    if task.workload == "heart":
        return {
            "uri": str(model_dir),
            "flavor": "mlflow",
            "environment": [{"name": "MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "value": "true"}],
        }
    if task.workload in ("heart-sklearn", "heart-xgboost"):
        return {"uri": str(model_dir), "flavor": task.workload.removeprefix("heart-")}
    if task.workload == "mnist-keras":  # the seed SavedModel, as examples/mnist-classifier serves it
        gray = {"colorMode": "L", "layout": "NHW", "scale": 1 / 255}
        return {"uri": str(model_dir), "flavor": "tensorflow", "imagePreprocessing": gray}
    if task.workload in TORCH_CLASSES:
        prep = IMAGE_PREP[task.workload]
        preprocessing: dict[str, Any] = {
            "colorMode": prep.color_mode,
            "scale": prep.scale,
            "layout": prep.layout,
        }
        if prep.size is not None:
            preprocessing |= {"width": prep.size[0], "height": prep.size[1]}
        if prep.mean is not None:
            preprocessing |= {"mean": prep.mean, "std": prep.std}
        return {
            "uri": str(model_dir / "model.pt"),
            "flavor": "pytorch",
            "modelClass": TORCH_CLASSES[task.workload],
            "codePaths": [str(model_dir)],
            "imagePreprocessing": preprocessing,
        }
    if task.workload == "bart":
        return {
            "uri": str(model_dir),
            "flavor": "transformers",
            "task": "summarization",
            "generation": {**GENERATION, "batch_size": task.batch_size},
        }
    raise ValueError(f"unknown workload {task.workload!r}")


def job_manifest(task: Task, name: str) -> dict[str, Any]:
    """A BatchTransformJob with the task's data, model, batch size and S3 endpoint."""
    transform_input: dict[str, Any] = {
        "contentType": CONTENT_TYPES[task.input_format],
        "splitType": "Line" if task.input_format == "csv" else "None",
        "dataSource": {"s3DataSource": {"s3DataType": "S3Prefix", "s3Uri": task.input_uri}},
    }
    spec: dict[str, Any] = {
        "model": model_spec(task),
        "transformInput": transform_input,
        "transformOutput": {"s3OutputPath": task.output_uri, "assembleWith": "Line"},
        "transformResources": {"instanceCount": task.workers, "instanceType": "ml.m5.large"},
        "miniBatchSize": task.batch_size,
        "maxPayloadInMB": task.payload_mb,
        "maxConcurrentTransforms": 1,
    }
    if task.s3_endpoint is not None:
        spec["s3"] = {"endpointUrl": task.s3_endpoint, "addressingStyle": "path"}
    return {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": name},
        "spec": spec,
    }


def write_job_yaml(task: Task, path: Path, name: str = "bench") -> Path:
    path.write_text(yaml.safe_dump(job_manifest(task, name), sort_keys=False))
    return path


def write_heart_example_yaml(task: Task, path: Path) -> Path:
    """examples/heart-classifier/job.yaml as shipped (its miniBatchSize, errorThreshold, Model),
    with only its input, output and model paths pointed at the benchmark's."""
    documents = list(yaml.safe_load_all(HEART_EXAMPLE_JOB.read_text()))
    for document in documents:
        spec = document["spec"]
        if document["kind"] == "BatchTransformJob":
            spec["transformInput"]["dataSource"]["s3DataSource"]["s3Uri"] = task.input_uri
            spec["transformOutput"]["s3OutputPath"] = task.output_uri
        else:
            spec["uri"] = task.model_dir
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def heart_example_batch_size() -> int:
    """The miniBatchSize the heart example ships with."""
    job = next(
        d for d in yaml.safe_load_all(HEART_EXAMPLE_JOB.read_text()) if d["kind"] == "BatchTransformJob"
    )
    return int(job["spec"]["miniBatchSize"])


def write_resolved_job(task: Task, path: Path, name: str = "bench") -> Path:
    """The ResolvedJob a Job's pods get (ConfigMap in a cluster), with one shard per worker."""
    job = BatchTransformJob.model_validate(job_manifest(task, name))
    spec = job.spec.model_copy(update={"shardCount": task.workers})
    if spec.model is None:
        raise ValueError("benchmark jobs carry an inline model")
    ResolvedJob(name=name, spec=spec, model=spec.model, model_ref=spec.model.uri).dump(path)
    return path
