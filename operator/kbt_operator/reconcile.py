"""Make the cluster match one BatchTransformJob: carry out `plan.plan_jobs` with API calls.

Creating a Job first checks everything a shard needs (instance type, Model, credentials Secret)
and creates the owned objects; a check that fails raises `SetupFailedError` with a stable reason,
which the handler turns into a condition, an event and a retry (or no retry when permanent).
Few calls per job: the Model comes from the operator's watch (no read), a Secret found is
remembered for a minute, the owned objects are created at once, and nothing is read back
unless a create answers 409.
Every create treats 409 AlreadyExists as adoption when the existing object is owned by this
BatchTransformJob, so a restart at any moment leaves exactly one Job per generation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kbt.api.models import BatchTransformJob, LocalObjectReference, Model
from kbt.api.resolved import resolve_job
from kbt_operator.catalog import Catalog, UnknownInstanceTypeError
from kbt_operator.cluster_uris import local_uri_problem
from kbt_operator.config import OperatorConfig
from kbt_operator.events import Event
from kbt_operator.job_builder import JobRequest, build_job, completions
from kbt_operator.kube import ApiError, KubeApi
from kbt_operator.metrics import JOBS_CREATED
from kbt_operator.owned import ObjectRef, is_owned_by, shard_objects
from kbt_operator.plan import NewJob, Plan, plan_jobs
from kbt_operator.recorder import EventRecorder
from kbt_operator.resolve import InvalidResourceError, parse_model
from kbt_operator.scaling import SeenRecently, Turns
from kbt_operator.status import Reason, Setup
from kbt_operator.syncer import Key, StatusSyncer, own_fields
from kbt_operator.views import BtjView, IndexedJob

EventFn = Callable[[Event], Awaitable[None]]
ModelLookup = Callable[[str, str], Mapping[str, Any] | None]  # (namespace, name) -> Model body


class SetupFailedError(Exception):
    """A job cannot get its Indexed Job yet (or ever, when `permanent`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.setup = Setup(False, reason, message)

    @property
    def permanent(self) -> bool:
        return self.setup.permanent


@dataclass
class OperatorContext:
    api: KubeApi
    config: OperatorConfig
    catalog: Catalog
    syncer: StatusSyncer
    recorder: EventRecorder
    models: ModelLookup  # the operator's index of Models
    turns: Turns
    secrets: SeenRecently


def with_s3_defaults(job: BatchTransformJob, config: OperatorConfig) -> BatchTransformJob:
    """The operator's default S3 endpoint and credentials Secret for jobs that name none."""
    s3 = job.spec.s3
    updates: dict[str, Any] = {}
    if s3.endpointUrl is None and config.default_s3_endpoint:
        updates["endpointUrl"] = config.default_s3_endpoint
    if s3.credentialsSecret is None and config.default_s3_secret:
        updates["credentialsSecret"] = LocalObjectReference(name=config.default_s3_secret)
    if not updates:
        return job
    spec = job.spec.model_copy(update={"s3": s3.model_copy(update=updates)})
    return job.model_copy(update={"spec": spec})


async def ensure(api: KubeApi, obj: Mapping[str, Any], owner: ObjectRef) -> bool:
    """Create `obj`, or adopt the existing one if this job owns it; True when created."""
    try:
        await api.create(obj)
        return True
    except ApiError as exc:
        if exc.status != 409:
            raise
    meta = obj["metadata"]
    existing = await api.get(obj["kind"], meta["namespace"], meta["name"])
    if existing is None:
        raise ApiError(409, f"{obj['kind']} {meta['name']} was being deleted while created; retrying")
    if not is_owned_by(existing, owner.uid):
        raise SetupFailedError(
            Reason.NAME_CONFLICT,
            f"{obj['kind']} {meta['namespace']}/{meta['name']} already exists and is not owned by this "
            "BatchTransformJob; delete or rename it",
        )
    return False


async def ensure_all(api: KubeApi, objects: Sequence[Mapping[str, Any]], owner: ObjectRef) -> None:
    """`ensure` every object at once; the first failure (in `objects` order) is raised."""
    outcomes = await asyncio.gather(*(ensure(api, obj, owner) for obj in objects), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def _model(models: ModelLookup, job: BatchTransformJob) -> Model | None:
    name, namespace = job.spec.modelName, job.metadata.namespace or "default"
    if name is None:
        return None
    raw = models(namespace, name)
    if raw is None:
        raise SetupFailedError(Reason.MODEL_NOT_FOUND, f"Model {name} not found in namespace {namespace}")
    try:
        return parse_model(raw)
    except InvalidResourceError as exc:
        raise SetupFailedError(Reason.INVALID_MODEL, str(exc)) from None


async def _check_secret(ctx: OperatorContext, namespace: str, name: str) -> None:
    if not await ctx.secrets.exists((namespace, name), lambda: ctx.api.exists("Secret", namespace, name)):
        raise SetupFailedError(
            Reason.SECRET_NOT_FOUND,
            f"spec.s3.credentialsSecret: Secret {name} not found in namespace {namespace}",
        )


async def create_job(ctx: OperatorContext, job: BatchTransformJob, owner: ObjectRef, new: NewJob) -> bool:
    """Check, create owned objects and the Indexed Job of `new`; True when the Job is new (False:
    adopted). The Ready condition is set before the objects exist (and taken back when they
    cannot be made), so the one status write the new Job's watch event triggers carries it."""
    try:
        instance = ctx.catalog.lookup(job.spec.transformResources.instanceType)
    except UnknownInstanceTypeError as exc:
        raise SetupFailedError(
            Reason.UNKNOWN_INSTANCE_TYPE, f"spec.transformResources.instanceType: {exc}"
        ) from None
    model = _model(ctx.models, job)
    local = local_uri_problem(job, model)
    if local is not None:
        raise SetupFailedError(Reason.LOCAL_PATH, local)
    job = with_s3_defaults(job, ctx.config)
    namespace = owner.namespace
    secret = job.spec.s3.credentialsSecret
    if secret is not None:
        await _check_secret(ctx, namespace, secret.name)
    resolved = resolve_job(job, {job.spec.modelName: model} if job.spec.modelName and model else {})
    request = JobRequest(
        resolved=resolved,
        instance=instance,
        images=ctx.config.runner_images,
        image_pull_policy=ctx.config.image_pull_policy,
        generation=new.generation,
        shard_map=new.shard_map,
    )
    manifest = build_job(request, owner)
    what = "every shard" if new.shard_map is None else f"shards {','.join(map(str, new.shard_map))}"
    ready = f"Job {manifest['metadata']['name']} runs {what} ({completions(request)} pods)"
    key: Key = (owner.namespace, owner.name)
    before = ctx.syncer.setup_of(key)
    ctx.syncer.set_setup(key, Setup(True, Reason.JOB_CREATED, ready))
    try:
        await ensure_all(ctx.api, shard_objects(resolved, owner), owner)  # the Job's pods need them all
        created = await ensure(ctx.api, manifest, owner)
    except BaseException:
        ctx.syncer.set_setup(key, before)
        raise
    if created:
        JOBS_CREATED.inc()
    return created


async def apply_plan(
    ctx: OperatorContext, job: BatchTransformJob, owner: ObjectRef, plan: Plan, post: EventFn
) -> None:
    key: Key = (owner.namespace, owner.name)
    for note in plan.notes:
        await post(Event("Warning", "Ignored", note))
    created = plan.create is not None and await create_job(ctx, job, owner, plan.create)
    for name in plan.delete:
        await ctx.api.delete("Job", key[0], name, "Background")
    if plan.stop is not None:
        await ctx.syncer.flush(key)  # record what completed before the Job goes
        await ctx.api.delete("Job", key[0], plan.stop, "Foreground")
        await post(
            Event("Normal", Reason.STOP_REQUESTED, f"deleting Job {plan.stop}; shards get their grace period")
        )
    if plan.suspend is not None:
        await ctx.api.patch("Job", key[0], plan.suspend.job, {"spec": {"suspend": plan.suspend.suspend}})
        reason = "Suspended" if plan.suspend.suspend else "Resumed"
        await post(
            Event(
                "Normal", reason, f"Job {plan.suspend.job}: spec.suspend={str(plan.suspend.suspend).lower()}"
            )
        )
    if not created:  # a new Job's watch event marks the job once the Job is in the index
        ctx.syncer.mark(key)


async def reconcile(
    ctx: OperatorContext, body: Mapping[str, Any], jobs: Sequence[IndexedJob], post: EventFn
) -> None:
    """Bring the Jobs of BatchTransformJob `body` in line with its spec (see `plan`)."""
    owner = ObjectRef.parse(body)
    key: Key = (owner.namespace, owner.name)
    previous = ctx.syncer.last_written(key) or own_fields(body.get("status") or {})
    btj = BtjView.parse({**body, "status": previous})
    if btj.job is None:
        raise SetupFailedError(Reason.INVALID_SPEC, btj.invalid)
    await apply_plan(ctx, btj.job, owner, plan_jobs(btj.job.spec, jobs, btj.status), post)
