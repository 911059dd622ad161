"""Pydantic models of the kbt.dev/v1alpha1 API: BatchTransformJob and Model.

Field names follow the SageMaker operator's BatchTransformJob so its manifests apply with only
``apiVersion`` changed; Azure ML batch-deployment settings have first-class equivalents
(``miniBatchSize``, ``errorThreshold``, ``retrySettings``, ``transformOutput.outputAction``).
These models are the single source of truth: ``kbt.api.crd`` generates ``crds/*.yaml`` from them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

API_GROUP = "kbt.dev"
API_VERSION = "v1alpha1"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# s3://bucket/prefix, file:///abs/path, or a plain local path (for `kbt run`).
DATA_URI = r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?|file://.+|[^:]+)$"
ERROR_THRESHOLD = r"^(-1|[0-9]+|[0-9]+(\.[0-9]+)?%)$"

MAX_LIST = 64  # bounds lists so the API server's CEL cost estimate stays within budget


class _Model(BaseModel):
    """Base for API objects: camelCase fields, unknown fields rejected (like a structural CRD)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_enum_values=True)


# ---------------------------------------------------------------------------------------------
# Enumerations (SageMaker spellings)
# ---------------------------------------------------------------------------------------------


class S3DataType(StrEnum):
    S3_PREFIX = "S3Prefix"
    MANIFEST_FILE = "ManifestFile"


class ContentType(StrEnum):
    CSV = "text/csv"
    JSONLINES = "application/jsonlines"
    X_JSONLINES = "application/x-jsonlines"
    JSON = "application/json"
    PARQUET = "application/x-parquet"
    PARQUET_ALT = "application/vnd.apache.parquet"
    TEXT = "text/plain"
    PNG = "image/png"
    JPEG = "image/jpeg"
    IMAGE = "application/x-image"
    RECORDIO = "application/x-recordio"
    TFRECORD = "application/x-tfrecord"
    OCTET_STREAM = "application/octet-stream"


class AcceptType(StrEnum):
    CSV = "text/csv"
    JSONLINES = "application/jsonlines"
    X_JSONLINES = "application/x-jsonlines"
    JSON = "application/json"
    PARQUET = "application/x-parquet"


class CompressionType(StrEnum):
    NONE = "None"
    GZIP = "Gzip"


class SplitType(StrEnum):
    NONE = "None"
    LINE = "Line"
    RECORDIO = "RecordIO"
    TFRECORD = "TFRecord"


class AssembleWith(StrEnum):
    NONE = "None"
    LINE = "Line"


class BatchStrategy(StrEnum):
    MULTI_RECORD = "MultiRecord"
    SINGLE_RECORD = "SingleRecord"


class JoinSource(StrEnum):
    INPUT = "Input"
    NONE = "None"


class OutputAction(StrEnum):
    """What the job writes: SageMaker's one `.out` per input, or Azure's output actions."""

    PER_INPUT = "perInput"
    APPEND_ROW = "appendRow"
    SUMMARY_ONLY = "summaryOnly"


class Flavor(StrEnum):
    MLFLOW = "mlflow"
    SKLEARN = "sklearn"
    XGBOOST = "xgboost"
    PYTORCH = "pytorch"
    TENSORFLOW = "tensorflow"
    TRANSFORMERS = "transformers"
    CUSTOM = "custom"


class Precision(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"


class DevicePreference(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class TransformJobStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


# ---------------------------------------------------------------------------------------------
# Small shared shapes
# ---------------------------------------------------------------------------------------------


class EnvVar(_Model):
    """One environment variable for the model container (SageMaker's `environment` list)."""

    name: Annotated[str, Field(pattern=ENV_NAME, max_length=256)]
    value: Annotated[str, Field(max_length=10240)] = ""


class Tag(_Model):
    key: Annotated[str, Field(min_length=1, max_length=128)]
    value: Annotated[str, Field(max_length=256)] = ""


class LocalObjectReference(_Model):
    name: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=253)]


# ---------------------------------------------------------------------------------------------
# Model (resource and inline)
# ---------------------------------------------------------------------------------------------


class ClassifyOptions(_Model):
    """Turn each record's row of class scores into its most likely classes."""

    topK: Annotated[int, Field(ge=1, le=1000)] = Field(
        1,
        description="How many classes per record: columns class, probability (topK 1) or class_1, probability_1, ...",
    )
    labels: Annotated[list[Annotated[str, Field(max_length=256)]], Field(max_length=100_000)] | None = Field(
        None, description="Class names by score index (default: the index itself)."
    )


class ImagePreprocessing(_Model):
    """How image records become tensors before they reach the model."""

    colorMode: Literal["L", "RGB"] = Field("RGB", description="L = grayscale, RGB = 3 channels.")
    width: Annotated[int, Field(ge=1, le=8192)] | None = Field(None, description="Resize width.")
    height: Annotated[int, Field(ge=1, le=8192)] | None = Field(None, description="Resize height.")
    scale: float = Field(1.0, description="Multiply pixel values (0..255) by this first.")
    mean: Annotated[list[float], Field(max_length=4)] | None = Field(
        None, description="Per-channel mean subtracted after scaling."
    )
    std: Annotated[list[float], Field(max_length=4)] | None = Field(
        None, description="Per-channel std divided by after mean subtraction."
    )
    layout: Literal["NCHW", "NHWC", "NHW", "flat"] = Field(
        "NHWC", description="Tensor layout handed to the model; `flat` gives one vector per image."
    )


class ModelSpec(_Model):
    """Where a model lives and how to load it; shared by the Model resource and inline models."""

    uri: Annotated[str, Field(min_length=1, max_length=2048)] = Field(
        description=(
            "s3://, file:// or a local path; for MLflow also runs:/, models:/name/version and "
            "models:/name@alias (resolved against MLFLOW_TRACKING_URI)."
        )
    )
    flavor: Flavor = Field(description="Which loader serves the model.")
    image: Annotated[str, Field(max_length=512)] | None = Field(
        None, description="Runner image with this model's dependencies (default: operator's)."
    )
    environment: Annotated[list[EnvVar], Field(max_length=MAX_LIST)] = Field(default_factory=list)
    modelClass: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")] | None = Field(
        None, description="PyTorch state_dict models: `module:Class` shipped with the model."
    )
    modelClassArgs: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for modelClass.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    task: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="Transformers pipeline task, e.g. summarization, text-classification."
    )
    generation: dict[str, Any] = Field(
        default_factory=dict,
        description="Generation / pipeline keyword arguments (max_new_tokens, num_beams, ...).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    scoringScript: Annotated[str, Field(max_length=1024)] | None = Field(
        None, description="Custom flavor: path of a Python file with init() and run(mini_batch)."
    )
    codePaths: Annotated[list[Annotated[str, Field(max_length=1024)]], Field(max_length=16)] = Field(
        default_factory=list, description="Extra directories put on sys.path."
    )
    precision: Precision = Field(Precision.FP32, description="fp16/bf16 apply on GPU only.")
    device: DevicePreference = Field(DevicePreference.AUTO)
    imagePreprocessing: ImagePreprocessing | None = None
    predictMethod: Literal["predict", "predict_proba"] = Field(
        "predict", description="scikit-learn/XGBoost: which estimator method produces output."
    )
    classify: ClassifyOptions | None = Field(
        None, description="The model outputs class scores: write the top classes and their scores instead."
    )

    @model_validator(mode="after")
    def _flavor_requirements(self) -> ModelSpec:
        if self.flavor == Flavor.CUSTOM and not self.scoringScript:
            raise ValueError("flavor 'custom' needs scoringScript")
        if self.flavor == Flavor.TRANSFORMERS and not self.task:
            raise ValueError("flavor 'transformers' needs task")
        return self


class ModelStatus(_Model):
    model_config = ConfigDict(extra="allow")
    jobsUsing: int | None = None


class ObjectMeta(BaseModel):
    """The subset of Kubernetes ObjectMeta kbt reads; everything else is kept untouched."""

    model_config = ConfigDict(extra="allow")
    name: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=253)] | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    generation: int | None = None


class Model(BaseModel):
    """A namespaced model that many BatchTransformJobs reference by `modelName`."""

    model_config = ConfigDict(extra="forbid")
    apiVersion: Literal["kbt.dev/v1alpha1"] = "kbt.dev/v1alpha1"
    kind: Literal["Model"] = "Model"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ModelSpec
    status: ModelStatus | None = None


# ---------------------------------------------------------------------------------------------
# BatchTransformJob spec
# ---------------------------------------------------------------------------------------------


class S3DataSource(_Model):
    s3DataType: S3DataType = S3DataType.S3_PREFIX
    s3Uri: Annotated[str, Field(min_length=1, max_length=2048, pattern=DATA_URI)] = Field(
        description="Prefix (S3Prefix) or manifest object (ManifestFile) to read."
    )


class DataSource(_Model):
    s3DataSource: S3DataSource


class CsvOptions(_Model):
    header: bool | None = Field(
        None,
        description=(
            "First row holds column names: true, false, or unset to detect it (a first row"
            " without any numeric field is a header, so SageMaker's headerless numeric CSV and"
            " files with a header row both work without this setting)."
        ),
    )
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    columns: Annotated[list[str], Field(max_length=4096)] | None = Field(
        None, description="Column names when the files have no header row."
    )


class TransformInput(_Model):
    dataSource: DataSource
    contentType: ContentType = ContentType.CSV
    compressionType: CompressionType = CompressionType.NONE
    splitType: SplitType = SplitType.NONE
    csv: CsvOptions = Field(default_factory=CsvOptions)


class TransformOutput(_Model):
    s3OutputPath: Annotated[str, Field(min_length=1, max_length=2048, pattern=DATA_URI)]
    accept: AcceptType | None = Field(None, description="Output format (default: like input).")
    assembleWith: AssembleWith = AssembleWith.LINE
    kmsKeyId: Annotated[str, Field(max_length=2048)] | None = None
    outputAction: OutputAction = OutputAction.PER_INPUT
    appendRowFileName: Annotated[str, Field(pattern=r"^[\w.\-]+$", max_length=255)] = "predictions.csv"
    includeSource: bool = Field(
        False,
        description=(
            "Put the input object's name in every output row, right before the prediction (CSV"
            " column / JSON and Parquet field `file`): which file each appendRow row came from."
        ),
    )


class TransformResources(_Model):
    instanceCount: Annotated[int, Field(ge=1, le=1000)] = 1
    instanceType: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        description="A name from the operator's instance-type catalog, e.g. ml.m5.xlarge."
    )
    volumeKmsKeyId: Annotated[str, Field(max_length=2048)] | None = None


_DP_ALIASES = {"InputFilter": "inputFilter", "OutputFilter": "outputFilter", "JoinSource": "joinSource"}


class DataProcessing(_Model):
    """SageMaker's associate-predictions-with-input settings (JSONPath filters, join)."""

    inputFilter: Annotated[str, Field(max_length=1024)] | None = None
    outputFilter: Annotated[str, Field(max_length=1024)] | None = None
    joinSource: JoinSource = JoinSource.NONE

    @model_validator(mode="before")
    @classmethod
    def _accept_operator_spellings(cls, data: Any) -> Any:
        """The SageMaker operator spells some of these capitalised; accept both, not both at once."""
        if not isinstance(data, dict):
            return data
        result = dict(data)
        for capitalised, camel in _DP_ALIASES.items():
            if capitalised in result:
                if camel in result:
                    raise ValueError(f"give either {camel} or {capitalised}, not both")
                result[camel] = result.pop(capitalised)
        return result


def _dataprocessing_schema_extra(schema: dict[str, Any]) -> None:
    props = schema.setdefault("properties", {})
    for capitalised, camel in _DP_ALIASES.items():
        props[capitalised] = {**props[camel], "description": f"Alias of {camel} (SageMaker operator)."}


DataProcessing.model_config["json_schema_extra"] = _dataprocessing_schema_extra


class RetrySettings(_Model):
    """Azure ML `retry_settings`: each mini-batch gets this many retries and this timeout."""

    maxRetries: Annotated[int, Field(ge=0, le=100)] = 3
    timeoutSeconds: Annotated[int, Field(ge=1, le=86400)] = 300


class S3Connection(_Model):
    """Where S3 is and which Secret holds its credentials (never inline)."""

    endpointUrl: Annotated[str, Field(pattern=r"^https?://.+", max_length=1024)] | None = Field(
        None, description="S3-compatible endpoint (MinIO, Ceph, ...); default AWS."
    )
    credentialsSecret: LocalObjectReference | None = Field(
        None,
        description="Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (optionally "
        "AWS_SESSION_TOKEN, AWS_ENDPOINT_URL) in the job's namespace.",
    )
    addressingStyle: Literal["auto", "path", "virtual"] = "auto"


_FREE_FORM: dict[str, JsonValue] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P)?$"
Quantity = int | Annotated[str, Field(pattern=QUANTITY, max_length=64)]


class ResourceOverrides(_Model):
    """Container requests/limits by resource name (cpu, memory, nvidia.com/gpu, ...)."""

    requests: dict[str, Quantity] | None = None
    limits: dict[str, Quantity] | None = None


class Toleration(_Model):
    """A Kubernetes toleration (same fields and meaning as core/v1 Toleration)."""

    key: Annotated[str, Field(max_length=316)] | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: Annotated[str, Field(max_length=63)] | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = None


class PodOverrides(_Model):
    """Per-job overrides of what the instance-type catalog puts on shard pods."""

    resources: ResourceOverrides | None = None
    nodeSelector: dict[str, str] | None = None
    tolerations: Annotated[list[Toleration], Field(max_length=MAX_LIST)] | None = None
    affinity: dict[str, Any] | None = Field(None, json_schema_extra=_FREE_FORM)
    serviceAccountName: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=253)] | None = None
    scratchSizeLimit: Annotated[str, Field(pattern=r"^[0-9]+(Ki|Mi|Gi|Ti)?$")] = "10Gi"


class BatchTransformJobSpec(_Model):
    """What to score, with which model, where to write, on what hardware."""

    # --- SageMaker operator fields ---
    transformJobName: Annotated[str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")] | None = None
    region: Annotated[str, Field(max_length=64)] | None = Field(
        None, description="S3 region (SageMaker compatibility)."
    )
    sageMakerEndpoint: Annotated[str, Field(max_length=1024)] | None = Field(
        None, description="Accepted for SageMaker manifests; ignored by kbt."
    )
    modelName: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=253)] | None = Field(
        None, description="Name of a Model resource in the job's namespace."
    )
    transformInput: TransformInput
    transformOutput: TransformOutput
    transformResources: TransformResources
    batchStrategy: BatchStrategy = BatchStrategy.MULTI_RECORD
    maxConcurrentTransforms: Annotated[int, Field(ge=0, le=64)] = Field(
        1, description="Concurrent mini-batches per shard (0 = 1)."
    )
    maxPayloadInMB: Annotated[int, Field(ge=0, le=100)] = Field(
        6, description="Upper bound of one mini-batch's payload; 0 = bounded by count only."
    )
    environment: Annotated[list[EnvVar], Field(max_length=MAX_LIST)] = Field(default_factory=list)
    dataProcessing: DataProcessing | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)

    # --- kbt / Azure ML equivalents ---
    model: ModelSpec | None = Field(None, description="Inline model, instead of modelName.")
    miniBatchSize: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        1000, description="Records per mini-batch (Azure mini_batch_size), within maxPayloadInMB."
    )
    errorThreshold: Annotated[int | str, Field(json_schema_extra={"pattern": ERROR_THRESHOLD})] = Field(
        -1,
        description="Bad records tolerated per shard before it fails: a count, a percent "
        "such as '5%', or -1 for unlimited (Azure semantics).",
    )
    retrySettings: RetrySettings = Field(default_factory=RetrySettings)
    shardCount: Annotated[int, Field(ge=1, le=10000)] | None = Field(
        None, description="Shards (Indexed Job completions); default instanceCount."
    )
    s3: S3Connection = Field(default_factory=S3Connection)
    podOverrides: PodOverrides = Field(default_factory=PodOverrides)
    backoffLimitPerIndex: Annotated[int, Field(ge=0, le=100)] = Field(2, description="Retries of each shard.")
    maxFailedIndexes: Annotated[int, Field(ge=0)] | None = None
    activeDeadlineSeconds: Annotated[int, Field(ge=1)] | None = None
    queueName: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=63)] | None = Field(
        None,
        description=(
            "Kueue LocalQueue (at most 63 characters: it becomes a label value); the Job is"
            " created suspended and Kueue admits it."
        ),
    )
    # --- mutable while running ---
    stop: bool = Field(False, description="Stop the job: shards get their grace period.")
    suspend: bool = Field(False, description="Pause the job (shards are deleted, state kept).")
    retryFailedShards: Annotated[int, Field(ge=0)] = Field(
        0, description="Increase to re-run only the failed shards of a Failed job."
    )

    @field_validator("errorThreshold")
    @classmethod
    def _threshold_form(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if value < -1:
                raise ValueError("errorThreshold must be -1 (unlimited) or >= 0")
            return value
        if not re.fullmatch(ERROR_THRESHOLD, value):
            raise ValueError("errorThreshold must be -1, a count such as 10, or a percent such as '5%'")
        return int(value) if not value.endswith("%") else value

    @model_validator(mode="after")
    def _one_model(self) -> BatchTransformJobSpec:
        if (self.modelName is None) == (self.model is None):
            raise ValueError("give exactly one of modelName or model")
        return self

    @property
    def shards(self) -> int:
        return self.shardCount or self.transformResources.instanceCount


MUTABLE_SPEC_FIELDS = ("stop", "suspend", "retryFailedShards")


# ---------------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------------


class Condition(_Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    lastTransitionTime: str | None = None
    observedGeneration: int | None = None


class ShardCounts(_Model):
    total: int = 0
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    completedIndexes: str = ""
    failedIndexes: str = ""


class Progress(_Model):
    recordsProcessed: int = 0
    recordsFailed: int = 0
    bytesProcessed: int = 0
    bytesTotal: int = 0
    recordsPerSecond: float = 0.0
    percent: int = 0


class BatchTransformJobStatus(_Model):
    model_config = ConfigDict(extra="allow")
    transformJobStatus: TransformJobStatus | None = None
    observedGeneration: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    shards: ShardCounts | None = None
    progress: Progress | None = None
    progressSummary: str | None = Field(None, description="e.g. '7/8 shards, 91%'.")
    model: str | None = None
    jobName: str | None = None
    startTime: str | None = None
    endTime: str | None = None
    outputLocation: str | None = None
    failureReason: str | None = None
    retryGeneration: int | None = None


class BatchTransformJob(BaseModel):
    """A batch transform: score every record under an input prefix, write predictions."""

    model_config = ConfigDict(extra="forbid")
    apiVersion: Literal["kbt.dev/v1alpha1"] = "kbt.dev/v1alpha1"
    kind: Literal["BatchTransformJob"] = "BatchTransformJob"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: BatchTransformJobSpec
    status: BatchTransformJobStatus | None = None
