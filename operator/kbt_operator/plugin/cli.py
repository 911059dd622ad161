"""The `kubectl btj` command line (installed as `kubectl-btj`, so kubectl finds it as a plugin).

Connection flags follow kubectl: -n/--namespace, -A/--all-namespaces, --context, --kubeconfig.
Exit codes are `PluginExit`; every failure is one `error: ...` line on stderr.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, TypeVar

import typer

from kbt.api.models import TransformJobStatus
from kbt_operator.plugin.errors import PluginError, PluginExit
from kbt_operator.plugin.job import JobView
from kbt_operator.plugin.kube import KIND, Kube, Target
from kbt_operator.plugin.logs import LogOptions, LogReader
from kbt_operator.plugin.shards import collect_shards, parse_progress
from kbt_operator.plugin.status import render_status, shard_row, summary

app = typer.Typer(
    name="kubectl btj",
    help="Follow, inspect, stop and retry kbt BatchTransformJobs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

NameArg = Annotated[str, typer.Argument(help="BatchTransformJob name.", show_default=False)]
NamespaceOpt = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's).")
]
AllNamespacesOpt = Annotated[
    bool, typer.Option("--all-namespaces", "-A", help="Find the job by name in any namespace.")
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context to use.")]
KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", help="Path of the kubeconfig file.")]

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_R = TypeVar("_R")


def parse_duration(text: str) -> timedelta:
    """kubectl's --since form: 45s, 10m, 2h, 1h30m."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise typer.BadParameter(f"{text!r} is not a duration such as 45s, 10m, 2h or 1h30m")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _err(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _run(action: Callable[[], _R]) -> _R:
    """Run a command body, turning a PluginError into its message and exit code."""
    try:
        return action()
    except PluginError as exc:
        _err(exc.message)
        raise typer.Exit(int(exc.code)) from exc


def _connect(
    namespace: str | None, all_namespaces: bool, context: str | None, kubeconfig: str | None
) -> Kube:
    if namespace and all_namespaces:
        raise PluginError("give either -n/--namespace or -A/--all-namespaces, not both", PluginExit.USAGE)
    return Kube(
        Target(namespace=namespace, all_namespaces=all_namespaces, context=context, kubeconfig=kubeconfig)
    )


@app.command()
def logs(
    name: NameArg,
    *,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream new lines and new shards.")] = False,
    tail: Annotated[int | None, typer.Option("--tail", min=0, help="Last N lines of each shard.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only lines newer than this (45s, 10m, 2h).")
    ] = None,
    shard: Annotated[int | None, typer.Option("--shard", min=0, help="Only this shard index.")] = None,
    timestamps: Annotated[bool, typer.Option("--timestamps", help="Show each line's timestamp.")] = False,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.05, hidden=True, help="Seconds between pod scans (-f).")
    ] = 2.0,
    namespace: NamespaceOpt = None,
    all_namespaces: AllNamespacesOpt = False,
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Print the logs of every shard, each line prefixed [shard I], merged in time order.

    Shards whose pods are gone are read from the archive the runner writes under the job's
    output path (<s3OutputPath>/_kbt/logs/); S3 settings come from AWS_* variables or the job.
    """
    window = parse_duration(since) if since else None
    options = LogOptions(
        tail=tail, since=window, shard=shard, timestamps=timestamps, poll_seconds=poll_interval
    )

    def body() -> None:
        kube = _connect(namespace, all_namespaces, context, kubeconfig)
        job = JobView.parse(kube.get_job(name))
        reader = LogReader(kube, job, options, emit=typer.echo, notify=_note)
        if follow:
            reader.follow(lambda: JobView.parse(kube.get_job(name)))
        else:
            reader.print_once()

    try:
        _run(body)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def status(
    name: NameArg,
    *,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    namespace: NamespaceOpt = None,
    all_namespaces: AllNamespacesOpt = False,
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Show the job and one row per shard: state, progress, records, errors, node, retries."""
    if output not in {"table", "json"}:
        raise typer.BadParameter(f"--output must be table or json, not {output!r}")

    def body() -> None:
        kube = _connect(namespace, all_namespaces, context, kubeconfig)
        job = JobView.parse(kube.get_job(name))
        pods = kube.list_shard_pods(job.name)
        try:
            progress = parse_progress(kube.progress_data(job.name))
        except PluginError as exc:
            if exc.code != PluginExit.FORBIDDEN:
                raise
            _note(f"warning: {exc.message}; showing pod states only")
            progress = {}
        shards = collect_shards(pods, progress, job.shard_count)
        if output == "json":
            document = {**summary(job), "shards": [shard_row(shard) for shard in shards.values()]}
            typer.echo(json.dumps(document, indent=2))
        else:
            typer.echo(render_status(job, shards))

    _run(body)


@app.command()
def stop(
    name: NameArg,
    *,
    namespace: NamespaceOpt = None,
    all_namespaces: AllNamespacesOpt = False,
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Stop a job (sets spec.stop=true): running shards get their grace period, then it is Stopped."""

    def body() -> None:
        kube = _connect(namespace, all_namespaces, context, kubeconfig)
        job = JobView.parse(kube.get_job(name))
        if job.phase in {TransformJobStatus.COMPLETED, TransformJobStatus.FAILED}:
            raise PluginError(
                f"job {job.name} already finished ({job.phase}); nothing to stop", PluginExit.INVALID_STATE
            )
        if job.spec.stop or job.phase == TransformJobStatus.STOPPED:
            typer.echo(f"{KIND}/{job.name} is already stopping ({job.phase})")
            return
        kube.patch_job_spec(job.name, {"stop": True})
        typer.echo(f"{KIND}/{job.name} stop requested")

    _run(body)


def _retry_outcome(job: JobView) -> str:
    """What a retry of Failed `job` does: re-run its failed shards, or its setup when none ran."""
    if not job.status.jobName:
        return "no shard ran (setup failed); setup runs again and then every shard"
    failed = job.status.shards.failedIndexes if job.status.shards else ""
    return f"failed shards {failed} will run again" if failed else "its failed shards will run again"


@app.command()
def retry(
    name: NameArg,
    *,
    namespace: NamespaceOpt = None,
    all_namespaces: AllNamespacesOpt = False,
    context: ContextOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Re-run only the failed shards of a Failed job (increments spec.retryFailedShards)."""

    def body() -> None:
        kube = _connect(namespace, all_namespaces, context, kubeconfig)
        job = JobView.parse(kube.get_job(name))
        if job.phase != TransformJobStatus.FAILED:
            raise PluginError(
                f"job {job.name} is {job.phase}: retry re-runs the failed shards of a Failed job only",
                PluginExit.INVALID_STATE,
            )
        attempt = job.spec.retryFailedShards + 1
        kube.patch_job_spec(job.name, {"retryFailedShards": attempt})
        typer.echo(f"{KIND}/{job.name} retry {attempt} requested: {_retry_outcome(job)}")

    _run(body)


def main() -> None:
    """Console entry point `kubectl-btj`."""
    app(prog_name="kubectl btj")
