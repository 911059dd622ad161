"""kbt-sized model calls: the sizing rule (CallSizer), bisection between and within mini-batches
(ModelRunner), and the pipeline's output staying byte-identical to one call per mini-batch."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_runner_pipeline import SumPredictor, lines, make_job, manifest, run_all, write_csv

from kbt.api.models import RetrySettings
from kbt.flavors.base import BatchRejected, ModelInput, ModelOutput, Record
from kbt.flavors.custom_flavor import ScoringScriptPredictor
from kbt.flavors.errors import RecordsRejected
from kbt.flavors.mlflow_flavor import MlflowPredictor
from kbt.flavors.pytorch_flavor import TorchPredictor
from kbt.flavors.sklearn_flavor import SklearnPredictor
from kbt.flavors.tensorflow_flavor import TensorFlowPredictor
from kbt.flavors.transformers_flavor import EncoderPredictor, PipelinePredictor
from kbt.flavors.xgboost_flavor import BoosterPredictor
from kbt.runner.batching import MIB, BatchLimit
from kbt.runner.callsize import GAIN, PAYLOAD_CAP, PROBE_EVERY, RECORD_CAP, CallSizer, call_sizer
from kbt.runner.coalesce import CallPacker, unit_sizes
from kbt.runner.custom_outputs import SyncedPredictor
from kbt.runner.plan import WorkItem
from kbt.runner.predict import ModelRunner, Outcome
from kbt.runner.reader import Batch

NO_RETRIES = RetrySettings(maxRetries=0, timeoutSeconds=30)


def frame_input(values: list[float]) -> ModelInput:
    return ModelInput(
        records=[Record("x.csv", i, b"") for i in range(len(values))], frame=pd.DataFrame({"a": values})
    )


class Rejects:
    """Rejects a whole call holding a negative value, naming the first such value (as a model's
    own validation does, e.g. the heart example's unknown-category guard); records its calls."""

    device = "cpu"
    rows_independent = True

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, batch: ModelInput) -> ModelOutput:
        self.calls.append(len(batch))
        assert batch.frame is not None
        values = batch.frame["a"].to_numpy()
        if (values < 0).any():
            raise BatchRejected(f"value {values[values < 0][0]:g} is not allowed")
        return values * 2


def outcome_per_unit(runner: ModelRunner, values: list[float], units: list[int]) -> list[Outcome]:
    """What one call per mini-batch gives (the behaviour before kbt sized calls), positions global."""
    outcomes, start = [], 0
    for size in units:
        part = runner.run(frame_input(values[start : start + size]))
        outcomes.append(
            Outcome(
                positions=[p + start for p in part.positions],
                rows=part.rows,
                failed={p + start: reason for p, reason in part.failed.items()},
            )
        )
        start += size
    return outcomes


def test_sizer_doubles_while_the_per_record_cost_drops_then_stays() -> None:
    sizer = CallSizer(floor=50, payload_bytes=6 * MIB)
    overhead, per_record = 0.008, 5e-6  # the heart pipeline: about 8 ms a call whatever its size
    sizes = []
    for _ in range(20):
        records = sizer.records
        sizes.append(records)
        sizer.clean_call(records, overhead + per_record * records)
    assert sizes[:4] == [50, 100, 200, 400]
    final = sizes[-1]
    assert sizes[-5:] == [final] * 5
    # doubling from `final / 2` gained less than GAIN: the overhead was below 2 * GAIN there
    # (a doubling saves half of it), and is below GAIN at `final`
    assert overhead / (overhead + per_record * final / 2) < 2 * GAIN
    assert overhead / (overhead + per_record * final / 4) >= 2 * GAIN
    assert overhead / (overhead + per_record * final) < GAIN
    assert sizer.limit() == BatchLimit(records=final, payload_bytes=6 * MIB)


def test_sizer_ignores_short_calls_and_never_passes_the_record_cap() -> None:
    sizer = CallSizer(floor=1000, payload_bytes=PAYLOAD_CAP)
    sizer.clean_call(10, 1.0)  # the tail of the input: says nothing about calls of 1000
    assert sizer.records == 1000 and not sizer.costs
    for _ in range(12):
        sizer.clean_call(sizer.records, 0.5)  # a fixed cost per call: doubling always pays
    assert sizer.records == RECORD_CAP


def test_rejected_calls_halve_the_size_and_memory_failures_cap_it() -> None:
    sizer = CallSizer(floor=50, payload_bytes=PAYLOAD_CAP)
    for _ in range(4):
        sizer.clean_call(sizer.records, 1.0)
    assert sizer.records == 800
    sizer.rejected_call()
    assert sizer.records == 400
    for _ in range(10):
        sizer.rejected_call()
    assert sizer.records == 50  # never below one mini-batch
    sizer.out_of_memory(3000)
    for _ in range(10):
        sizer.clean_call(sizer.records, 1.0)
    assert sizer.records == 1500


# What each flavor's predictor declares (MLflow: only the sklearn/XGBoost models kbt loads itself,
# tests/unit/test_flavor_mlflow.py); scoring scripts and tensor flavors keep one call per mini-batch.
SIZED_PREDICTORS = [SklearnPredictor, BoosterPredictor]
MINI_BATCH_PREDICTORS = [MlflowPredictor, TorchPredictor, TensorFlowPredictor, EncoderPredictor]
MINI_BATCH_PREDICTORS += [PipelinePredictor, ScoringScriptPredictor, SyncedPredictor]


@pytest.mark.parametrize(
    ("declared", "sized"),
    [(cls, True) for cls in SIZED_PREDICTORS] + [(cls, False) for cls in MINI_BATCH_PREDICTORS],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_predictors_declare_whether_kbt_sizes_their_calls(declared: type, sized: bool) -> None:
    assert declared.rows_independent is sized


@pytest.mark.parametrize(
    ("rows_independent", "device", "sized"),
    [(True, "cpu", True), (True, "cuda", False), (True, "cuda:0", False), (False, "cpu", False)],
)
def test_which_models_get_kbt_sized_calls(
    tmp_path: Path, rows_independent: bool, device: str, sized: bool
) -> None:
    job = make_job(tmp_path, tmp_path / "out", miniBatchSize=50, maxPayloadInMB=2)
    predictor = SumPredictor()
    predictor.device, predictor.rows_independent = device, rows_independent
    sizer = call_sizer(job, predictor, BatchLimit.from_job(job))
    assert (sizer is not None) == sized
    if sizer is not None:
        assert (sizer.records, sizer.payload_bytes) == (50, 2 * MIB)
    unlimited = make_job(tmp_path, tmp_path / "out", maxPayloadInMB=0)
    sizer = call_sizer(unlimited, SumPredictor(), BatchLimit.from_job(unlimited))
    assert sizer is not None and sizer.payload_bytes == PAYLOAD_CAP


def test_bad_records_in_a_big_call_fail_alone_with_the_reasons_of_one_call_per_mini_batch() -> None:
    values = [float(i) for i in range(1000)]
    for bad in (17, 18, 333, 999):
        values[bad] = -float(bad)
    units = [50] * 20
    model = Rejects()
    sizer = CallSizer(floor=50, payload_bytes=PAYLOAD_CAP, level=4)
    outcome = ModelRunner(model, NO_RETRIES, sizer=sizer).run(frame_input(values), units)
    per_unit = Rejects()
    before = outcome_per_unit(ModelRunner(per_unit, NO_RETRIES), values, units)
    assert outcome.failed == {p: r for o in before for p, r in o.failed.items()}
    assert outcome.failed == {
        17: "value -17 is not allowed",
        18: "value -18 is not allowed",
        333: "value -333 is not allowed",
        999: "value -999 is not allowed",
    }
    assert outcome.positions == [p for o in before for p in o.positions]
    assert outcome.merged().values == [v * 2 for i, v in enumerate(values) if i not in outcome.failed]
    assert model.calls[0] == 1000 and len(model.calls) < len(per_unit.calls)
    assert sizer.level == 3  # the call was bisected: the next ones are half as big


@pytest.mark.parametrize(
    ("bad", "sized_calls"),
    [
        # each left half is clean, so the rejection lies in the right one, which is not called
        # but searched at once; the bad record is still called alone before it fails
        (63, [64, 32, 16, 8, 4, 2, 1, 1]),
        # each left half is rejected; the right halves wait, and are called as one piece at the end
        (0, [64, 32, 16, 8, 4, 2, 1, 63]),
    ],
)
def test_a_rejected_sized_call_is_searched_in_fewer_calls_than_bisection(
    bad: int, sized_calls: list[int]
) -> None:
    values = [1.0] * 64
    values[bad] = -1.0
    searched, bisected = Rejects(), Rejects()
    sized = ModelRunner(searched, NO_RETRIES, sizer=CallSizer(floor=64, payload_bytes=0)).run(
        frame_input(values)
    )
    plain = ModelRunner(bisected, NO_RETRIES).run(frame_input(values))  # scoring scripts, tensor flavors
    assert sized.failed == plain.failed == {bad: "value -1 is not allowed"}
    assert sized.positions == plain.positions == [p for p in range(64) if p != bad]
    assert searched.calls == sized_calls
    assert sorted(bisected.calls, reverse=True) == [
        64,
        *[size for size in (32, 16, 8, 4, 2, 1) for _ in range(2)],
    ]


def test_records_a_big_call_rejects_by_position_fail_and_the_rest_is_predicted_in_one_more_call() -> None:
    class NamesRecords(Rejects):
        def predict(self, batch: ModelInput) -> ModelOutput:
            assert batch.frame is not None
            values = batch.frame["a"].to_numpy()
            if (values < 0).any():
                self.calls.append(len(batch))
                raise RecordsRejected({int(p): f"a={values[p]:g} < 0" for p in np.flatnonzero(values < 0)})
            return super().predict(batch)

    values = [float(i) for i in range(300)]
    values[7] = values[250] = -1.0
    model = NamesRecords()
    outcome = ModelRunner(model, NO_RETRIES).run(frame_input(values), [100, 100, 100])
    assert outcome.failed == {7: "a=-1 < 0", 250: "a=-1 < 0"}
    assert model.calls == [300, 298]
    assert outcome.merged().values == [v * 2 for i, v in enumerate(values) if i not in (7, 250)]


def test_a_call_that_runs_out_of_memory_is_bisected_and_caps_the_size() -> None:
    class NeedsMemory(Rejects):
        def predict(self, batch: ModelInput) -> ModelOutput:
            if len(batch) > 300:
                self.calls.append(len(batch))
                raise MemoryError(f"Unable to allocate {len(batch) * 8} MiB for an array")
            return super().predict(batch)

    values = [float(i) for i in range(1000)]
    model = NeedsMemory()
    sizer = CallSizer(floor=50, payload_bytes=PAYLOAD_CAP, level=5)
    outcome = ModelRunner(model, NO_RETRIES, sizer=sizer).run(frame_input(values), [50] * 20)
    assert not outcome.failed
    assert outcome.merged().values == [v * 2 for v in values]
    assert model.calls == [1000, 500, 250, 250, 500, 250, 250]
    assert (sizer.cap, sizer.records) == (250, 200)  # the largest call that failed: 500


def test_a_timed_out_call_runs_each_mini_batch_alone_with_its_own_timeout() -> None:
    class SlowOnBigCalls(Rejects):
        def predict(self, batch: ModelInput) -> ModelOutput:
            if len(batch) > 2:
                time.sleep(3)
            return super().predict(batch)

    runner = ModelRunner(SlowOnBigCalls(), RetrySettings(maxRetries=0, timeoutSeconds=1))
    outcome = runner.run(frame_input([1.0, 2.0, 3.0, 4.0]), [2, 2])  # 2 units: a 2 s timeout
    assert not outcome.failed and outcome.merged().values == [2.0, 4.0, 6.0, 8.0]


def test_a_transient_error_in_a_big_call_keeps_each_mini_batch_retries() -> None:
    class FailsTwice(Rejects):
        def predict(self, batch: ModelInput) -> ModelOutput:
            self.calls.append(len(batch))
            if len(self.calls) <= 2:
                raise RuntimeError("connection reset")
            return np.asarray(batch.frame["a"]) * 2 if batch.frame is not None else []

    model = FailsTwice()
    runner = ModelRunner(model, RetrySettings(maxRetries=3, timeoutSeconds=30))
    outcome = runner.run(frame_input([1.0, 2.0, 3.0, 4.0]), [2, 2])
    assert not outcome.failed and outcome.merged().values == [2.0, 4.0, 6.0, 8.0]
    assert model.calls == [4, 2, 2, 2]  # the call, then the first unit retried, then the second


class Guard(SumPredictor):
    """Sums the row like SumPredictor after a fixed cost per call (well above timing noise); a call
    holding a negative ``a`` is rejected, naming it."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def predict(self, batch: ModelInput) -> ModelOutput:
        with self.lock:
            self.sizes.append(len(batch))
        time.sleep(0.003)
        assert batch.frame is not None
        negative = batch.frame["a"] < 0
        if negative.any():
            raise BatchRejected(f"a={batch.frame['a'][negative].iloc[0]} is not allowed")
        return super().predict(batch)


def test_sized_calls_write_exactly_what_one_call_per_mini_batch_writes(tmp_path: Path) -> None:
    data = tmp_path / "in"
    for part in range(3):
        rows = [[-i if i % 997 == 5 else i, part] for i in range(2000)]
        write_csv(data / f"part-{part}.csv", rows, header=["a", "b"])
    write_csv(data / "tiny.csv", [[1, 1]], header=["a", "b"])
    outputs, calls = {}, {}
    for flavor in ("sklearn", "pytorch"):  # pytorch: the call stays the mini-batch
        out = tmp_path / flavor
        predictor = Guard()
        predictor.rows_independent = flavor == "sklearn"
        run_all(make_job(data, out, miniBatchSize=20, model={"flavor": flavor}), predictor)
        written = [path for path in out.rglob("*") if path.is_file()]
        outputs[flavor] = {  # all but the state and the manifest (which names the model and times)
            key: path.read_bytes()
            for path in written
            if not (key := path.relative_to(out).as_posix()).startswith("_kbt/") and key != "_manifest.json"
        }
        calls[flavor] = predictor.sizes
        counts = {"records": 6001, "succeeded": 6001 - 9, "failed": 9, "objects": 4}
        assert manifest(out)["counts"] == counts
    assert outputs["sklearn"] == outputs["pytorch"]
    errors = [
        json.loads(line) for line in lines(tmp_path / "sklearn" / "_errors" / "part-1.csv.errors.jsonl")
    ]
    assert [e["record"] for e in errors] == [5, 1002, 1999]
    assert errors[1]["reason"] == "a=-1002 is not allowed"
    # how far calls grow depends on timing (test_sizer_* pin the rule down): only that they do
    assert max(calls["pytorch"]) == 20 < max(calls["sklearn"])
    assert len(calls["sklearn"]) < len(calls["pytorch"])


def batch_of(ordinal: int, records: int, seq: int = 0) -> Batch:
    item = WorkItem(ordinal=ordinal, key=f"f{ordinal}.csv", name=f"f{ordinal}.csv", size=10, weight=10)
    return Batch(seq, item, [Record(item.key, i, b"1,2") for i in range(records)], [0] * records)


def test_packer_cuts_units_at_the_mini_batch_limit_and_calls_at_the_sizer_limit() -> None:
    packer = CallPacker(
        BatchLimit(records=10, payload_bytes=0), CallSizer(floor=10, payload_bytes=0, level=2)
    )
    placed: list[int | str] = []
    for ordinal, records in enumerate([4, 4, 4, 10, 8, 8, 3]):
        batch = batch_of(ordinal, records)
        if packer.starts_call(batch):
            placed.append("|")
            packer.flush()
        placed.append(packer.place(batch))
    # units of at most 10 records: [4, 4] [4] [10] [8] [8] | [3]; calls of at most 40
    assert placed == [0, 0, 1, 2, 3, 4, "|", 5]
    assert unit_sizes([0, 0, 1, 2, 3], [frame_input([1.0] * n) for n in (4, 4, 4, 10, 8)]) == [8, 4, 10, 8]


def test_without_a_sizer_a_call_is_one_unit_of_whole_files() -> None:
    packer = CallPacker(BatchLimit(records=1 << 60, payload_bytes=0, files=2), None)
    starts = []
    for ordinal, seq in [(0, 0), (0, 1), (1, 2), (2, 3)]:
        batch = batch_of(ordinal, 5, seq)
        starts.append(packer.starts_call(batch))
        if starts[-1]:
            packer.flush()
        packer.place(batch)
    assert starts == [False, False, False, True]  # two files per call, each file whole


def _settle(sizer: CallSizer, seconds_for: Callable[[int], float], calls: int) -> list[int]:
    """The call sizes of ``calls`` clean calls timed by ``seconds_for(records)``."""
    sizes = []
    for _ in range(calls):
        sizes.append(sizer.records)
        sizer.clean_call(sizer.records, seconds_for(sizer.records))
    return sizes


def test_sizer_re_probes_a_size_locked_in_under_contention_and_keeps_it_when_it_pays() -> None:
    sizer = CallSizer(floor=50, payload_bytes=PAYLOAD_CAP)
    overhead, per_record = 0.008, 5e-6
    # the other shard busied the CPUs: calls of 200 were as slow per record as calls of 100
    contended = _settle(sizer, lambda n: (overhead + per_record * n) * (1 if n < 200 else n / 100), 4)
    assert contended == [50, 100, 200, 200] and sizer.top == 2
    quiet = _settle(sizer, lambda n: overhead + per_record * n, PROBE_EVERY + 40)
    assert quiet[:PROBE_EVERY] == [200] * PROBE_EVERY  # kept until the probe
    assert quiet[PROBE_EVERY] == 400  # the probe, which paid: doubling resumed
    fresh = CallSizer(floor=50, payload_bytes=PAYLOAD_CAP)
    settled = _settle(fresh, lambda n: overhead + per_record * n, 40)[-1]
    assert quiet[-1] >= settled  # where a quiet machine settles (later probes may go further)


def test_sizer_goes_back_to_the_kept_size_when_the_probe_does_not_pay() -> None:
    sizer = CallSizer(floor=50, payload_bytes=PAYLOAD_CAP)
    overhead, per_record = 0.002, 5e-6  # settles well below RECORD_CAP
    final = _settle(sizer, lambda n: overhead + per_record * n, 40)[-1]
    kept = sizer.top
    sizes = _settle(sizer, lambda n: overhead + per_record * n, 3 * (PROBE_EVERY + 1))
    probes = [size for size in sizes if size != final]
    assert len(probes) == 3 and min(probes) > final  # one probe every PROBE_EVERY calls at the kept size
    assert sizer.top == kept
    assert sizes[-1] == final and not sizer.probing
