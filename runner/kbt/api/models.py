"""Pydantic models of the kbt.dev/v1alpha1 API: BatchTransformJob and Model.

Field names follow the SageMaker operator's BatchTransformJob so its manifests apply with only
``apiVersion`` changed; Azure ML batch-deployment settings have first-class equivalents
(``miniBatchSize``, ``errorThreshold``, ``retrySettings``, ``transformOutput.outputAction``).
These models are the single source of truth: ``kbt.api.crd`` generates ``crds/*.yaml`` from them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from jsonpath_ng.ext.parser import parse as parse_jsonpath
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from kbt.storage.settings import split_s3_uri

API_GROUP = "kbt.dev"
API_VERSION = "v1alpha1"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# s3://bucket/prefix, an S3 https URL (SageMaker's S3Uri pattern `^(https|s3)://([^/]+)/?(.*)$`),
# file:///abs/path, or a plain local path (for `kbt run`).
DATA_URI = r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?|https://[^/]+(/.*)?|file://.+|[^:]+)$"
ERROR_THRESHOLD = r"^(-1|[0-9]+|[0-9]+(\.[0-9]+)?%)$"

MAX_LIST = 64  # bounds lists so the API server's CEL cost estimate stays within budget


def _alias_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Add each other spelling as a property; neither spelling gets a `default:`.

    The API server applies a CRD's defaults before anything reads the object, so a default on
    either spelling would make a manifest written with the other spelling carry both (#16.1):
    the defaults of aliased fields are applied by pydantic only.
    """
    aliases: dict[str, str] = getattr(model, "ALIASES", {})
    props = schema.get("properties", {})
    required = schema.get("required", [])
    for other, name in aliases.items():
        props[name].pop("default", None)
        origin = getattr(model, "ALIAS_ORIGIN", "")
        props[other] = {**props[name], "description": f"Same as {name} (the {origin} spelling)."}
        if name in required:
            required.remove(name)
            rule = {
                "rule": f"has(self.{name}) != has(self.{other})",
                "message": f"give exactly one of {name} or {other}",
            }
        else:
            rule = {
                "rule": f"!(has(self.{name}) && has(self.{other}))",
                "message": f"give either {name} or {other}, not both",
            }
        schema.setdefault("x-kubernetes-validations", []).append(rule)
    if not required:
        schema.pop("required", None)


class _Model(BaseModel):
    """Base for API objects: camelCase fields, unknown fields rejected (like a structural CRD).

    ``ALIASES`` maps another controller's spelling of a field to the field (``ALIAS_ORIGIN``
    names that controller): either spelling is accepted, never both.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra=_alias_schema)
    ALIASES: ClassVar[dict[str, str]] = {}
    ALIAS_ORIGIN: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _accept_other_spellings(cls, data: Any) -> Any:
        if not cls.ALIASES or not isinstance(data, dict):
            return data
        result = dict(data)
        for other, name in cls.ALIASES.items():
            if other in result:
                if name in result:
                    raise ValueError(f"give either {name} or {other}, not both")
                result[name] = result.pop(other)
            elif cls.model_fields[name].is_required() and name not in result:
                raise ValueError(f"'{name}' is required (or its {cls.ALIAS_ORIGIN} spelling '{other}')")
        return result


# ---------------------------------------------------------------------------------------------
# Enumerations (SageMaker spellings)
# ---------------------------------------------------------------------------------------------


class S3DataType(StrEnum):
    S3_PREFIX = "S3Prefix"
    MANIFEST_FILE = "ManifestFile"


class ContentType(StrEnum):
    """The content types kbt decodes itself; `contentType` and `accept` take any MIME type."""

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
    """The output types kbt encodes itself."""

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


class MiniBatchMode(StrEnum):
    """What a scoring script's mini-batch holds for tabular input (see kbt.api.azureml)."""

    FILES = "files"  # Azure: a list of file paths, each input file whole
    RECORDS = "records"  # a DataFrame of up to miniBatchSize rows


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


# SageMaker's ContentType and Accept: "Length Constraints: Maximum length of 256. Pattern: .*"
# (API reference, TransformInput and TransformOutput): any MIME type, sent to the model as is.
MimeType = Annotated[str, Field(max_length=256)]


def _s3_form(uri: str) -> str:
    """An S3 https URL as the ``s3://bucket/key`` URI it names; other URIs unchanged."""
    if not uri.startswith("https://"):
        return uri
    bucket, key = split_s3_uri(uri)
    return f"s3://{bucket}/{key}"


DataUri = Annotated[str, Field(min_length=1, max_length=2048, pattern=DATA_URI), AfterValidator(_s3_form)]


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
        description=(
            "How many classes per record: columns class, probability (topK 1) or class_1, probability_1, ..."
        ),
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
    ALIASES: ClassVar[dict[str, str]] = {"s3URI": "s3Uri"}
    ALIAS_ORIGIN: ClassVar[str] = "ACK"

    s3DataType: S3DataType = S3DataType.S3_PREFIX
    s3Uri: DataUri = Field(
        description=(
            "Prefix (S3Prefix) or manifest object (ManifestFile) to read: s3://bucket/key or an S3"
            " https URL (https://bucket.s3.region.amazonaws.com/key, https://s3.region.amazonaws.com/bucket/key)."
        )
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
    contentType: MimeType = Field(
        ContentType.CSV.value,
        description=(
            "MIME type of the input, any string as in SageMaker (parameters such as `; charset=utf-8`"
            f" allowed). The built-in flavors decode {', '.join(ContentType)}; a scoring script"
            " (flavor custom) gets any other type as raw bytes."
        ),
    )
    compressionType: CompressionType = CompressionType.NONE
    splitType: SplitType = SplitType.NONE
    csv: CsvOptions = Field(default_factory=CsvOptions)


class TransformOutput(_Model):
    ALIASES: ClassVar[dict[str, str]] = {"kmsKeyID": "kmsKeyId"}
    ALIAS_ORIGIN: ClassVar[str] = "ACK"

    s3OutputPath: DataUri = Field(
        description="Where outputs go: s3://bucket/prefix or an S3 https URL, like s3Uri."
    )
    accept: MimeType | None = Field(
        None,
        description="MIME type of the output, any string as in SageMaker (default: like input;"
        " Azure-shaped appendRow jobs: Azure's append_row rows, fields separated by a space, no header).",
    )
    assembleWith: AssembleWith = AssembleWith.LINE
    kmsKeyId: Annotated[str, Field(max_length=2048)] | None = Field(
        None,
        description=(
            "KMS key (id, ARN or alias) for SSE-KMS: every object the job writes under"
            " s3OutputPath is encrypted with it (ServerSideEncryption aws:kms)."
        ),
    )
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
    ALIASES: ClassVar[dict[str, str]] = {"volumeKMSKeyID": "volumeKmsKeyId"}
    ALIAS_ORIGIN: ClassVar[str] = "ACK"

    instanceCount: Annotated[int, Field(ge=1, le=1000)] = 1
    instanceType: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        description="A name from the operator's instance-type catalog, e.g. ml.m5.xlarge."
    )
    volumeKmsKeyId: Annotated[str, Field(max_length=2048)] | None = None


class DataProcessing(_Model):
    """SageMaker's associate-predictions-with-input settings (JSONPath filters, join)."""

    ALIASES: ClassVar[dict[str, str]] = {
        "InputFilter": "inputFilter",
        "OutputFilter": "outputFilter",
        "JoinSource": "joinSource",
    }
    ALIAS_ORIGIN: ClassVar[str] = "SageMaker operator"

    inputFilter: Annotated[str, Field(max_length=1024)] | None = None
    outputFilter: Annotated[str, Field(max_length=1024)] | None = None
    joinSource: JoinSource = JoinSource.NONE

    @field_validator("inputFilter", "outputFilter")
    @classmethod
    def _jsonpath(cls, expression: str | None) -> str | None:
        """Parsed by the parser the runner uses (jsonpath-ng's extended one), so it fails here."""
        if expression is not None and expression.strip() not in ("", "$"):
            try:
                parse_jsonpath(expression)
            except Exception as exc:  # jsonpath-ng raises several types, some without a base
                raise ValueError(f"invalid JSONPath {expression!r}: {exc}") from None
        return expression


class RetrySettings(_Model):
    """Azure ML `retry_settings`: each mini-batch gets this many retries and this timeout."""

    maxRetries: Annotated[int, Field(ge=0, le=100)] = 3
    timeoutSeconds: Annotated[int, Field(ge=1, le=86400)] = 300


class ModelClientConfig(_Model):
    """SageMaker's ModelClientConfig (ACK's `modelClientConfig`): kbt reads it as retrySettings."""

    invocationsMaxRetries: Annotated[int, Field(ge=0, le=3)] | None = Field(
        None, description="retrySettings.maxRetries (SageMaker default 3)."
    )
    invocationsTimeoutInSeconds: Annotated[int, Field(ge=1, le=3600)] | None = Field(
        None, description="retrySettings.timeoutSeconds (SageMaker default 600)."
    )

    def retry_settings(self) -> dict[str, int]:
        """The retrySettings it stands for, with SageMaker's defaults (API reference, ModelClientConfig)."""
        retries, timeout = self.invocationsMaxRetries, self.invocationsTimeoutInSeconds
        return {"maxRetries": 3 if retries is None else retries, "timeoutSeconds": timeout or 600}


class ExperimentConfig(_Model):
    """SageMaker's ExperimentConfig (ACK's `experimentConfig`): accepted, and ignored by kbt."""

    experimentName: Annotated[str, Field(max_length=120)] | None = None
    trialName: Annotated[str, Field(max_length=120)] | None = None
    trialComponentDisplayName: Annotated[str, Field(max_length=120)] | None = None
    runName: Annotated[str, Field(max_length=120)] | None = None


def _list_or_map_schema(schema: dict[str, Any]) -> None:
    """A structural schema cannot say "a list or a map": leave the shape to the validators."""
    description = schema.get("description", "")
    schema.clear()
    schema.update({"description": description, "x-kubernetes-preserve-unknown-fields": True})


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
    maxConcurrentTransforms: Annotated[int, Field(ge=0)] = Field(
        1, description="Concurrent mini-batches per shard (0 = 1); no upper bound, as in SageMaker."
    )
    maxPayloadInMB: Annotated[int, Field(ge=0, le=100)] = Field(
        6, description="Upper bound of one mini-batch's payload; 0 = bounded by count only."
    )
    environment: Annotated[list[EnvVar], Field(max_length=MAX_LIST)] = Field(
        default_factory=list,
        description=(
            "Environment of the model: a list of {name, value} (SageMaker operator) or a map of"
            " name to value (ACK)."
        ),
        json_schema_extra=_list_or_map_schema,
    )
    dataProcessing: DataProcessing | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)
    modelClientConfig: ModelClientConfig | None = Field(
        None, exclude=True, description="ACK's spelling of retrySettings; give one of the two."
    )
    experimentConfig: ExperimentConfig | None = None

    # --- kbt / Azure ML equivalents ---
    model: ModelSpec | None = Field(None, description="Inline model, instead of modelName.")
    miniBatchSize: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        1000,
        description="Records per mini-batch (Azure mini_batch_size), within maxPayloadInMB; files with"
        " miniBatchMode files.",
    )
    miniBatchMode: MiniBatchMode | None = Field(
        None,
        description=(
            "Scoring scripts (flavor custom): `files` hands run() a list of up to miniBatchSize"
            " file paths, each input file whole (Azure; no maxPayloadInMB bound); `records` hands"
            " it up to miniBatchSize records (a DataFrame for tabular input). Default: `files` for"
            " Azure-shaped jobs (flavor custom, splitType None), `records` otherwise."
        ),
    )
    errorThreshold: Annotated[int | str, Field(json_schema_extra={"pattern": ERROR_THRESHOLD})] | None = (
        Field(
            None,
            description="Bad records the job tolerates over its whole input (Azure error_threshold): a "
            "count, a percent such as '5%', or -1 for unlimited. Unset: -1 when failFast is set or the "
            "job is Azure-shaped (a scoring script over unsplit files); otherwise SageMaker's semantics, "
            "the first bad record fails the job and its object gets no output.",
        )
    )
    failFast: bool | None = Field(
        None,
        description="Fail a shard when the first 100 records of its run all failed the same way "
        "(the input does not fit the model). Default: on, off when errorThreshold is -1.",
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

    @field_validator("environment", mode="before")
    @classmethod
    def _environment_map(cls, value: Any) -> Any:
        """ACK writes the environment as a map; kbt keeps the SageMaker operator's list."""
        if isinstance(value, dict):
            return [{"name": name, "value": text} for name, text in value.items()]
        return value

    @model_validator(mode="before")
    @classmethod
    def _model_client_config(cls, data: Any) -> Any:
        """ACK's modelClientConfig becomes retrySettings (timeout and retries of each invocation)."""
        if not isinstance(data, dict) or data.get("modelClientConfig") is None:
            return data
        if data.get("retrySettings") is not None:
            raise ValueError("give either retrySettings or modelClientConfig, not both")
        result = dict(data)
        config = ModelClientConfig.model_validate(result.pop("modelClientConfig"))
        result["retrySettings"] = config.retry_settings()
        return result

    @field_validator("errorThreshold")
    @classmethod
    def _threshold_form(cls, value: int | str | None) -> int | str | None:
        if value is None:
            return None
        if isinstance(value, int):
            if value < -1:
                raise ValueError("errorThreshold must be -1 (unlimited) or >= 0")
            return value
        if not re.fullmatch(ERROR_THRESHOLD, value):
            raise ValueError("errorThreshold must be -1, a count such as 10, or a percent such as '5%'")
        return int(value) if not value.endswith("%") else value

    @model_validator(mode="after")
    def _fail_fast_with_unlimited(self) -> BatchTransformJobSpec:
        if self.failFast and self.errorThreshold == -1:
            raise ValueError("failFast: true contradicts errorThreshold: -1 (bad records never fail the job)")
        return self

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
