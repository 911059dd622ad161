"""SageMaker Batch Transform conformance: the developer guide's documented behaviours as cases.

Each case is input bytes, the job settings and the expected output bytes, and cites the section
of SageMaker's developer guide it states: "Associate Prediction Results with Input Records"
(batch-transform-data-processing.md, "DP" below) and the CreateTransformJob API reference for
SplitType / AssembleWith ("API"). Every case runs through the real shard pipeline
(``kbt.runner.shard.run_shard``, what ``kbt run`` and a shard pod run) on local files, with a
model that sums each record's numbers (so the expected prediction follows from the input).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kbt.api.models import BatchTransformJobSpec
from kbt.api.resolved import ResolvedJob
from kbt.flavors import load_predictor
from kbt.flavors.base import LoadContext, ModelInput, ModelOutput
from kbt.runner.errors import ConfigError
from kbt.runner.framing import recordio_frame, tfrecord_frame
from kbt.runner.shard import run_shard


class SumModel:
    """Sums each record's numbers: a frame row's values, or a raw record's byte count."""

    device = "cpu"
    rows_independent = True

    def predict(self, batch: ModelInput) -> ModelOutput:
        if batch.frame is not None:
            return batch.frame.astype(float).sum(axis=1).to_numpy()
        return [len(record.data) for record in batch.records]


@dataclass(frozen=True)
class Case:
    """One documented behaviour: ``data`` in, ``settings`` applied, ``expected`` out."""

    section: str  # where the developer guide states it
    name: str
    data: bytes
    expected: bytes
    content_type: str = "text/csv"
    transform_input: dict[str, Any] = field(default_factory=lambda: {"splitType": "Line"})
    transform_output: dict[str, Any] = field(default_factory=lambda: {"assembleWith": "Line"})
    data_processing: dict[str, Any] | None = None


CSV = b"1,2,3\n4,5,6\n"
CASES = [
    Case("DP: Example: Output Only Inferences", "csv-default", CSV, b"6.0\n15.0\n"),
    Case(
        "DP: Example: Output Only Inferences ($, None, $ mimic the default)",
        "csv-explicit-default",
        CSV,
        b"6.0\n15.0\n",
        data_processing={"inputFilter": "$", "joinSource": "None", "outputFilter": "$"},
    ),
    Case(
        "DP: Example: Output Input Data and Inferences (CSV: [1,2,3] + [1] -> [1,2,3,1])",
        "csv-join",
        CSV,
        b"1,2,3,6.0\n4,5,6,15.0\n",
        data_processing={"joinSource": "Input"},
    ),
    Case(
        "DP: Example: Output an ID Column with Results and Exclude the ID Column from the Input (CSV)",
        "csv-id-column-$[1:]",
        b"7,1,2\n8,3,4\n",
        b"7,1,2,3.0\n8,3,4,7.0\n",
        data_processing={"inputFilter": "$[1:]", "joinSource": "Input", "outputFilter": "$"},
    ),
    Case(
        "DP: Supported JSONPath Operators (negative indexes: -1 is the last element)",
        "csv-negative-index",
        b"7,1,2\n8,3,4\n",
        b"7,3.0\n8,7.0\n",
        data_processing={"inputFilter": "$[1:]", "joinSource": "Input", "outputFilter": "$[0,-1]"},
    ),
    Case(
        "DP: Supported JSONPath Operators (array slice [<start>:<end>])",
        "csv-slice",
        b"1,2,3,4\n",
        b"2,3,4,9.0\n",
        data_processing={"inputFilter": "$[1:]", "joinSource": "Input", "outputFilter": "$[1:]"},
    ),
    Case(
        "DP: Example: Output an ID Attribute with Results and Exclude the ID Attribute from the Input (JSON)",
        "jsonl-id-attribute",
        b'{"id":1,"features":[1,2]}\n{"id":2,"features":[5,5]}\n',
        b'{"id":1,"SageMakerOutput":3.0}\n{"id":2,"SageMakerOutput":10.0}\n',
        content_type="application/jsonlines",
        data_processing={
            "inputFilter": "$.features",
            "joinSource": "Input",
            "outputFilter": "$['id','SageMakerOutput']",
        },
    ),
    Case(
        "DP: Example: Output Input Data and Inferences (JSON object: SageMakerOutput key added)",
        "json-join-object",
        b'{"key":1}\n',
        b'{"key":1,"SageMakerOutput":1.0}\n',
        content_type="application/jsonlines",
        data_processing={"joinSource": "Input"},
    ),
    Case(
        "DP: Example: Output Input Data and Inferences, Note (not an object: SageMakerInput key)",
        "json-join-array",
        b"[1,2,3]\n",
        b'{"SageMakerInput":[1,2,3],"SageMakerOutput":6.0}\n',
        content_type="application/jsonlines",
        data_processing={"joinSource": "Input"},
    ),
    Case(
        "DP: Example: Output Input Data and Inferences, Note (not an object: SageMakerInput key)",
        "json-join-scalar",
        b"5\n",
        b'{"SageMakerInput":5,"SageMakerOutput":5.0}\n',
        content_type="application/jsonlines",
        data_processing={"joinSource": "Input"},
    ),
    Case(
        "DP: Use Data Processing in Batch Transform Jobs (SageMakerOutput in the input is overwritten)",
        "json-join-overwrites-sagemaker-output",
        b'{"SageMakerOutput":9,"a":1}\n',
        b'{"SageMakerOutput":10.0,"a":1}\n',
        content_type="application/jsonlines",
        data_processing={"joinSource": "Input"},
    ),
    Case(
        "API: TransformOutput.AssembleWith (Line: a newline after every transformed record)",
        "assemble-line",
        CSV,
        b"6.0\n15.0\n",
    ),
    Case(
        "API: TransformOutput.AssembleWith (None: the results concatenated in binary format)",
        "assemble-none",
        CSV,
        b"6.015.0",
        transform_output={"assembleWith": "None"},
    ),
    Case(
        "API: TransformInput.SplitType (None: the whole object is one record)",
        "split-none",
        b"ab\ncd\n",
        b"6\n",
        content_type="text/plain",
        transform_input={"splitType": "None"},
    ),
    Case(
        "API: TransformInput.SplitType (Line: one record per line)",
        "split-line",
        b"ab\ncdef\n",
        b"2\n4\n",
        content_type="text/plain",
    ),
    Case(
        "API: TransformInput.SplitType (RecordIO: one record per RecordIO frame)",
        "split-recordio",
        recordio_frame(b"abc") + recordio_frame(b"defgh"),
        b"3\n5\n",
        content_type="application/x-recordio",
        transform_input={"splitType": "RecordIO"},
    ),
    Case(
        "API: TransformInput.SplitType (TFRecord: one record per TFRecord frame)",
        "split-tfrecord",
        tfrecord_frame(b"ab") + tfrecord_frame(b"cdefgh"),
        b"2\n6\n",
        content_type="application/x-tfrecord",
        transform_input={"splitType": "TFRecord"},
    ),
    Case(
        "API: TransformInput.SplitType (None: a RecordIO object is one record)",
        "split-none-recordio",
        recordio_frame(b"abc") + recordio_frame(b"defgh"),
        f"{len(recordio_frame(b'abc') + recordio_frame(b'defgh'))}\n".encode(),
        content_type="application/x-recordio",
        transform_input={"splitType": "None"},
    ),
]


def _job(inputs: Path, output: Path, case: Case, **extra: Any) -> ResolvedJob:
    spec: dict[str, Any] = {
        "transformInput": {
            "contentType": case.content_type,
            "dataSource": {"s3DataSource": {"s3Uri": f"{inputs}/"}},
            "csv": {"header": False},
            **case.transform_input,
        },
        "transformOutput": {"s3OutputPath": str(output), **case.transform_output},
        "transformResources": {"instanceType": "ml.m5.large"},
        "model": {"uri": "unused", "flavor": "sklearn"},
        "retrySettings": {"maxRetries": 0, "timeoutSeconds": 30},
        **extra,
    }
    if case.data_processing is not None:
        spec["dataProcessing"] = case.data_processing
    parsed = BatchTransformJobSpec.model_validate(spec)
    assert parsed.model is not None
    return ResolvedJob(name="conformance", spec=parsed, model=parsed.model, model_ref="unused")


def _transform(tmp_path: Path, case: Case) -> Path:
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (inputs / "data").write_bytes(case.data)
    run_shard(_job(inputs, output, case), 0, shards=1, predictor=SumModel(), progress_interval=60)
    return output


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_documented_behaviour_gives_the_documented_bytes(tmp_path: Path, case: Case) -> None:
    output = _transform(tmp_path, case)
    assert (output / "data.out").read_bytes() == case.expected, case.section


def test_output_filter_index_outside_the_joined_record_is_a_record_error(tmp_path: Path) -> None:
    """DP, Supported JSONPath Operators: an index names an element of the joined record; one that
    is not there is an error for that record, naming the filter, never silently dropped."""
    case = Case(
        "DP: Supported JSONPath Operators ([<number> (,<number>)])",
        "csv-index-outside",
        b"1,2\n3,4\n",
        b"",
        data_processing={"joinSource": "Input", "outputFilter": "$[0,3]"},
    )
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (inputs / "data").write_bytes(case.data)
    job = _job(inputs, output, case, errorThreshold=-1)
    run_shard(job, 0, shards=1, predictor=SumModel(), progress_interval=60)
    errors = [json.loads(line) for line in (output / "_errors/data.errors.jsonl").read_text().splitlines()]
    assert [error["record"] for error in errors] == [0, 1]
    for error in errors:
        assert error["reason"].startswith(
            "outputFilter: filter $.[0,3] names column 3, outside the record's 3"
        )
    assert (output / "data.out").read_bytes() == case.expected  # no record written with a column dropped


NPY_SCRIPT = """
import hashlib

import numpy as np


def init():
    pass


def run(mini_batch):
    return [f"{hashlib.sha256(open(p, 'rb').read()).hexdigest()} {np.load(p).sum()}" for p in mini_batch]
"""


def _npy(values: list[float]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array(values))
    return buffer.getvalue()


def test_a_type_kbt_cannot_decode_reaches_a_scoring_script_as_the_stored_bytes(tmp_path: Path) -> None:
    """API TransformInput.ContentType takes any MIME type: kbt hands application/x-npy to a
    scoring script (flavor custom) unchanged, one object per record."""
    data = _npy([1.0, 2.0, 3.5])
    case = Case("API: TransformInput.ContentType", "npy-raw", data, b"", "application/x-npy", {})
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (inputs / "data").write_bytes(data)
    (tmp_path / "code").mkdir()
    script = tmp_path / "code" / "score.py"
    script.write_text(NPY_SCRIPT)
    job = _job(
        inputs, output, case, model={"uri": str(tmp_path), "flavor": "custom", "scoringScript": str(script)}
    )
    context = LoadContext(job.model, tmp_path, tmp_path / "scratch", output_dir=tmp_path / "own")
    run_shard(job, 0, shards=1, predictor=load_predictor(context), progress_interval=60)
    expected = f"{hashlib.sha256(data).hexdigest()} 6.5"
    assert (output / "data.out").read_bytes() == json.dumps(expected).encode() + b"\n"


def test_a_type_kbt_cannot_decode_is_refused_for_a_built_in_flavor_naming_the_field(tmp_path: Path) -> None:
    case = Case("API: TransformInput.ContentType", "npy-built-in", _npy([1.0]), b"", "application/x-npy", {})
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "data").write_bytes(case.data)
    job = _job(inputs, tmp_path / "out", case)
    with pytest.raises(
        ConfigError, match=r"^transformInput.contentType: unknown content type 'application/x-npy'"
    ):
        run_shard(job, 0, shards=1, predictor=SumModel(), progress_interval=60)
