"""Property-based fuzzing of the operator's pure functions: status derivation, Job planning, shard sets.

Whatever a cluster shows (any Job conditions, index sets, pod termination messages, malformed
progress reports, invalid specs that slipped past the API server), the functions return a
well-formed answer without raising, and deriving the status again from its own output converges.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.cluster_strategies import jobs, pods, progress_data, setups
from chaos.spec_strategies import fuzzed_jobs, valid_jobs
from kbt.api.models import BatchTransformJob, BatchTransformJobStatus, TransformJobStatus
from kbt_operator.plan import plan_jobs
from kbt_operator.shards import format_indexes, parse_indexes
from kbt_operator.status import CONDITION_TYPES, Observation, derive_status
from kbt_operator.views import IndexedJob

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
NOW = "2024-05-01T12:00:00Z"


@st.composite
def observations(draw: st.DrawFn) -> dict[str, Any]:
    """The arguments of `Observation.parse`: objects as the API returns them."""
    btj = draw(valid_jobs | fuzzed_jobs())
    btj["metadata"]["generation"] = draw(st.integers(1, 5))
    try:
        total = BatchTransformJob.model_validate(btj).spec.shards
    except ValueError:
        total = 2
    total = min(total, 12)
    job = draw(st.none() | jobs(total))
    completions = (job or {}).get("spec", {}).get("completions", total)
    return {
        "btj": btj,
        "job": job,
        "pods": draw(pods(completions)),
        "progress": draw(progress_data(total)),
        "setup": draw(setups),
    }


def _comparable(status: dict[str, Any], job_gone: bool) -> dict[str, Any]:
    """The status without transition times (and, while the known bug below lives, the Running reason
    of a terminal job whose Job is gone:
    test_terminal_status_keeps_its_running_reason_when_the_job_is_gone)."""
    terminal = status.get("transformJobStatus") in {"Completed", "Failed", "Stopped"}
    skip = {"lastTransitionTime"}
    conditions = [
        {
            k: v
            for k, v in c.items()
            if k not in skip and not (job_gone and terminal and c["type"] == "Running" and k == "reason")
        }
        for c in status.get("conditions", [])
    ]
    return {k: v for k, v in status.items() if k != "conditions"} | {"conditions": conditions}


@FUZZ
@given(observations())
def test_status_derivation_is_total_well_formed_and_converges(raw: dict[str, Any]) -> None:
    obs = Observation.parse(now=NOW, **raw)
    derived = derive_status(obs)
    status = derived.status
    assert [c.type for c in status.conditions] == list(CONDITION_TYPES)
    true_terminal = [
        c.type
        for c in status.conditions
        if c.type in {"Complete", "Failed", "Stopped"} and c.status == "True"
    ]
    assert len(true_terminal) <= 1, status.conditions
    if status.transformJobStatus == TransformJobStatus.FAILED:
        assert status.failureReason, f"Failed without a reason: {status}"
    if status.shards is not None:
        assert 0 <= status.shards.succeeded <= status.shards.total
        assert 0 <= status.shards.failed <= status.shards.total
    if status.progress is not None:
        assert 0 <= status.progress.percent <= 100
        assert (status.progress.percent == 100) == (
            status.shards is not None and status.shards.succeeded == status.shards.total
        )
    # The operator writes the status and observes again: the same cluster gives the same status.
    again = derive_status(
        Observation.parse(
            **{**raw, "btj": {**raw["btj"], "status": status.model_dump(exclude_none=True)}},
            now="2024-05-01T12:01:00Z",
        )
    ).status
    first, second = status.model_dump(exclude_none=True), again.model_dump(exclude_none=True)
    assert _comparable(second, obs.job is None) == _comparable(first, obs.job is None)
    assert [c.lastTransitionTime for c in again.conditions] == [
        c.lastTransitionTime for c in status.conditions
    ]


@FUZZ
@given(valid_jobs, st.data())
def test_job_planning_is_total_and_never_creates_a_second_job_for_a_live_one(
    doc: dict[str, Any], data: st.DataObject
) -> None:
    spec = BatchTransformJob.model_validate(doc).spec
    total = min(spec.shards, 12)
    existing = data.draw(st.lists(jobs(total), max_size=3, unique_by=lambda j: j["metadata"]["name"]))
    previous = data.draw(
        st.sampled_from([{}, {"jobName": "btj-j-0", "retryGeneration": 0, "transformJobStatus": "Failed"}])
    )
    plan = plan_jobs(
        spec, [IndexedJob.parse(j) for j in existing], BatchTransformJobStatus.model_validate(previous)
    )
    if plan.create is not None:
        live = [
            j
            for j in existing
            if not j["metadata"].get("deletionTimestamp") and j["metadata"]["name"] not in plan.delete
        ]
        finished = [
            j
            for j in live
            if any(
                c["type"] in {"Complete", "Failed"} and c["status"] == "True"
                for c in j["status"]["conditions"]
            )
        ]
        assert len(live) == len(finished), f"creates a Job while {live} still runs"
        assert plan.create.shard_map is None or set(plan.create.shard_map) <= set(range(spec.shards))


@FUZZ
@given(st.sets(st.integers(0, 10_000), max_size=50))
def test_index_sets_round_trip(indexes: set[int]) -> None:
    assert parse_indexes(format_indexes(indexes)) == indexes


@FUZZ
@given(st.lists(st.sampled_from(["0", "7", "12", "-", ",", " ", "x", "--", "3-1"]), max_size=8).map("".join))
def test_malformed_index_strings_fail_with_a_value_error_naming_them(text: str) -> None:
    try:
        parse_indexes(text)
    except ValueError as exc:
        assert repr(text) in str(exc)


def test_terminal_status_keeps_its_running_reason_when_the_job_is_gone() -> None:
    btj = {
        "apiVersion": "kbt.dev/v1alpha1",
        "kind": "BatchTransformJob",
        "metadata": {"name": "j", "namespace": "team-a", "uid": "u", "generation": 1},
        "spec": {
            "modelName": "m",
            "stop": True,
            "transformInput": {"dataSource": {"s3DataSource": {"s3Uri": "s3://inputs/x"}}},
            "transformOutput": {"s3OutputPath": "s3://outputs/x"},
            "transformResources": {"instanceCount": 1, "instanceType": "ml.m5.xlarge"},
        },
    }
    first = derive_status(Observation.parse(btj=btj, job=None, now=NOW)).status
    assert first.transformJobStatus == TransformJobStatus.STOPPED
    second = derive_status(
        Observation.parse(btj={**btj, "status": first.model_dump(exclude_none=True)}, job=None, now=NOW)
    ).status
    assert [(c.type, c.reason) for c in second.conditions] == [(c.type, c.reason) for c in first.conditions]
