"""Hypothesis strategies for BatchTransformJob manifests: valid ones and mutated ones.

``valid_jobs`` draws documents every value of which lies inside its constraint (often at the
edges); ``fuzzed_jobs`` mutates one of those up to three times: a key dropped, a value replaced
by a near miss (an enum in the wrong case, an integer just out of range) or by arbitrary JSON,
an unknown key added, or the job renamed within what the API server allows.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from kbt.api.models import (
    AcceptType,
    AssembleWith,
    BatchStrategy,
    CompressionType,
    ContentType,
    Flavor,
    JoinSource,
    OutputAction,
    S3DataType,
    SplitType,
)

JsonDict = dict[str, Any]
Path = tuple[str | int, ...]

dns_labels = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z")
# DNS subdomains (what the API accepts for names of most objects), long and dotted included.
dns_subdomains = (
    dns_labels
    | st.from_regex(r"\A[a-z0-9]([-a-z0-9.]{0,250}[a-z0-9])?\Z")
    | st.sampled_from(["a" * 253, "x.y.z"])
)
job_names = dns_subdomains
odd_text = st.text(max_size=20)
json_leaves = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | odd_text
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3),
    max_leaves=6,
)


def _values(enum: Any) -> st.SearchStrategy[str]:
    return st.sampled_from([member.value for member in enum])


def _optional(**strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[JsonDict]:
    return st.fixed_dictionaries({}, optional=strategies)


data_uris = st.one_of(
    st.builds(
        lambda bucket, prefix: f"s3://{bucket}/{prefix}",
        st.from_regex(r"\A[a-z0-9][a-z0-9.\-]{1,20}[a-z0-9]\Z"),
        st.text(alphabet="abc/._-é ", max_size=12),
    ),
    st.sampled_from(["file:///data/in/", "/data/in", "relative/in"]),
)
env_vars = st.lists(
    st.builds(
        lambda name, extra: {"name": name, **extra},
        st.from_regex(r"\A[-._a-zA-Z][-._a-zA-Z0-9]{0,12}\Z"),
        _optional(value=odd_text),
    ),
    max_size=3,
)


def _model_spec(flavor: str, extra: JsonDict) -> JsonDict:
    needs = {"custom": {"scoringScript": "score.py"}, "transformers": {"task": "summarization"}}
    return {"uri": "s3://models/m/", "flavor": flavor, **needs.get(flavor, {}), **extra}


model_specs = st.builds(
    _model_spec,
    _values(Flavor),
    _optional(
        precision=st.sampled_from(["fp32", "fp16", "bf16"]),
        device=st.sampled_from(["auto", "cpu", "cuda"]),
        environment=env_vars,
        modelClass=st.sampled_from(["net:Net", "pkg.mod:Cls"]),
        predictMethod=st.sampled_from(["predict", "predict_proba"]),
        image=st.sampled_from(["registry.local/kbt-runner:1", "ghcr.io/org/runner@sha256:" + "a" * 64]),
        codePaths=st.lists(st.sampled_from(["code", "lib/extra"]), max_size=2),
    ),
)

pod_overrides = _optional(
    resources=st.sampled_from(
        [
            {"limits": {"cpu": "2", "memory": "4Gi"}},
            {"limits": {"nvidia.com/gpu": 1}, "requests": {"cpu": "500m"}},
        ]
    ),
    nodeSelector=st.dictionaries(
        st.sampled_from(["zone", "kubernetes.io/arch"]), st.sampled_from(["a", "amd64"]), max_size=2
    ),
    tolerations=st.lists(
        st.sampled_from(
            [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}, {"operator": "Exists"}]
        ),
        max_size=2,
    ),
    serviceAccountName=dns_subdomains,
    scratchSizeLimit=st.sampled_from(["10Gi", "512Mi", "1", "1Ti"]),
)

transform_input = st.builds(
    lambda uri, data_type, extra: {"dataSource": {"s3DataSource": {"s3Uri": uri, **data_type}}, **extra},
    data_uris,
    _optional(s3DataType=_values(S3DataType)),
    _optional(
        contentType=_values(ContentType),
        compressionType=_values(CompressionType),
        splitType=_values(SplitType),
        csv=_optional(
            header=st.booleans(),
            delimiter=st.sampled_from([",", ";", "\t", "|"]),
            columns=st.lists(st.text(max_size=5), max_size=3),
        ),
    ),
)
transform_output = st.builds(
    lambda uri, extra: {"s3OutputPath": uri, **extra},
    data_uris,
    _optional(
        accept=_values(AcceptType),
        assembleWith=_values(AssembleWith),
        outputAction=_values(OutputAction),
        appendRowFileName=st.sampled_from(["predictions.csv", "out.jsonl", "a-b_c.csv"]),
        kmsKeyId=st.just("arn:aws:kms:us-east-1:1:key/k"),
    ),
)
transform_resources = st.builds(
    lambda count, instance_type: {"instanceCount": count, "instanceType": instance_type},
    st.integers(1, 1000),
    st.sampled_from(["ml.m5.xlarge", "ml.g4dn.xlarge", "cpu-small"]),
)

optional_spec_fields = _optional(
    batchStrategy=_values(BatchStrategy),
    maxConcurrentTransforms=st.integers(0, 64),
    maxPayloadInMB=st.integers(0, 100),
    miniBatchSize=st.integers(1, 1_000_000),
    errorThreshold=st.integers(-1, 100) | st.sampled_from(["5%", "10", "2.5%", "0%"]),
    retrySettings=_optional(maxRetries=st.integers(0, 100), timeoutSeconds=st.integers(1, 86400)),
    shardCount=st.integers(1, 10000),
    backoffLimitPerIndex=st.integers(0, 100),
    maxFailedIndexes=st.integers(0, 5),
    activeDeadlineSeconds=st.integers(1, 10**6),
    queueName=dns_labels,
    environment=env_vars,
    tags=st.lists(
        st.fixed_dictionaries({"key": st.text(min_size=1, max_size=8), "value": st.text(max_size=8)}),
        max_size=2,
    ),
    dataProcessing=_optional(
        inputFilter=st.sampled_from(["$[1:]", "$.features", "$"]),
        outputFilter=st.sampled_from(["$[0]", "$"]),
        joinSource=_values(JoinSource),
    ),
    s3=_optional(
        endpointUrl=st.sampled_from(["http://minio:9000", "https://s3.example.com"]),
        credentialsSecret=st.fixed_dictionaries({"name": dns_subdomains}),
        addressingStyle=st.sampled_from(["auto", "path", "virtual"]),
    ),
    podOverrides=pod_overrides,
    stop=st.booleans(),
    suspend=st.booleans(),
    retryFailedShards=st.integers(0, 3),
    region=st.sampled_from(["us-east-1", "eu-west-1"]),
)

specs = st.builds(
    lambda required, model_choice, extra: {**required, **model_choice, **extra},
    st.fixed_dictionaries(
        {
            "transformInput": transform_input,
            "transformOutput": transform_output,
            "transformResources": transform_resources,
        }
    ),
    st.fixed_dictionaries({"modelName": dns_subdomains}) | st.fixed_dictionaries({"model": model_specs}),
    optional_spec_fields,
)

valid_jobs: st.SearchStrategy[JsonDict] = st.builds(
    lambda name, spec: {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": name, "namespace": "team-a", "uid": "0f6c2f0e-uid"},
        "spec": spec,
    },
    dns_labels,
    specs,
)


def near_misses(value: Any) -> st.SearchStrategy[Any]:
    """Values close to `value` that a careless validator might let through."""
    if isinstance(value, bool):
        return st.sampled_from(["true", 1, None])
    if isinstance(value, int):
        return st.sampled_from([value - 10**6, value + 10**6, -2, 0, str(value), float(value) + 0.5])
    if isinstance(value, str):
        return st.sampled_from(
            [value.lower(), value.upper(), value + " ", "", " ", "../" + value, value * 100, 7]
        )
    return json_values


def _paths(node: Any, prefix: Path = ()) -> list[Path]:
    """Every path to a value inside a JSON document, parents before children."""
    found: list[Path] = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _get(doc: Any, path: Path) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _with(doc: Any, path: Path, value: Any, delete: bool = False) -> Any:
    """A copy of `doc` with the value at `path` replaced (or deleted)."""
    head, rest = path[0], path[1:]
    copy: Any = dict(doc) if isinstance(doc, dict) else list(doc)
    if rest:
        copy[head] = _with(copy[head], rest, value, delete)
    elif delete:
        del copy[head]
    else:
        copy[head] = value
    return copy


@st.composite
def fuzzed_jobs(draw: st.DrawFn) -> JsonDict:
    """A valid job with up to three mutations applied (it may still be valid)."""
    doc: JsonDict = draw(valid_jobs)
    for _ in range(draw(st.integers(1, 3))):
        # The API server guarantees metadata (name, namespace, uid): only the name's form varies.
        paths = [p for p in _paths(doc) if p[0] == "spec"]
        if not paths:
            break
        action = draw(st.sampled_from(["delete", "near_miss", "replace", "add", "rename"]))
        if action == "rename":
            doc = _with(doc, ("metadata", "name"), draw(job_names))
            continue
        parents = [p for p in paths if isinstance(_get(doc, p), dict)]
        if action == "add" and parents:
            parent = draw(st.sampled_from(parents))
            key = draw(st.sampled_from(["unknownField", "Spec", "status", "x"]))
            doc = _with(doc, (*parent, key), draw(json_values))
            continue
        path = draw(st.sampled_from(paths))
        if action == "delete":
            doc = _with(doc, path, None, delete=True)
        elif action == "near_miss":
            doc = _with(doc, path, draw(near_misses(_get(doc, path))))
        else:
            doc = _with(doc, path, draw(json_values))
    return doc
