"""The runner's commands: ``kbt run`` (a whole job on this machine) and ``kbt shard`` (one shard,
what a pod runs). ``register(app)`` adds them to the ``kbt`` typer app."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from kbt.api.manifest import ManifestError, load_manifest
from kbt.api.models import BatchTransformJob, Model

if TYPE_CHECKING:
    from kbt.api.resolved import ResolvedJob


def _load_jobs(manifest: Path, model_files: list[Path]) -> tuple[list[BatchTransformJob], dict[str, Model]]:
    jobs, models = load_manifest(manifest)
    for path in model_files:
        extra_jobs, extra_models = load_manifest(path)
        models.update(extra_models)
        jobs.extend(extra_jobs if not jobs else [])
    return jobs, models


def _shard_count(
    job: ResolvedJob, shards: int | None, workers: int | None, *, cpus: int, split: int
) -> tuple[int, str]:
    """The shards to plan and why: ``--shards``; else max(job's shards, ``--workers``); else as
    many as the input has work for on the CPUs (``useful_shards``), at least the job's."""
    from kbt.runner.plan import useful_shards  # noqa: PLC0415 (keeps kbt --help fast)

    if shards:
        return shards, "--shards"
    if workers:
        return max(job.spec.shards, workers), "max(job's shards, --workers)"
    if job.spec.shards >= cpus:  # no listing needed: the input cannot use more shards than CPUs
        return job.spec.shards, f"the job's; {cpus} CPU(s)"
    fitting = useful_shards(job, cpus, split)
    work = f"the input has work for {fitting} of {cpus} CPU(s)"
    if fitting <= job.spec.shards:
        return job.spec.shards, f"the job's; {work}"
    return fitting, work


def run(
    manifest: Annotated[
        Path, typer.Argument(help="Manifest with a BatchTransformJob (and optionally its Model).")
    ],
    *,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", help="Worker processes (default: min(shards, CPUs)).")
    ] = None,
    model_file: Annotated[
        list[Path] | None, typer.Option("--model-file", "-m", help="Manifest(s) with Model documents.")
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write here instead of transformOutput.s3OutputPath.")
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(
            "--shards",
            help="Shards to plan (default: max(job's shards, workers); without --workers, as many as "
            "CPUs while each shard gets 4 MiB of input and a work item).",
        ),
    ] = None,
    split_size_mb: Annotated[
        float | None, typer.Option("--split-size-mb", help="Split objects larger than this (default 64).")
    ] = None,
    job_name: Annotated[
        str | None, typer.Option("--job", help="Run only the BatchTransformJob with this name.")
    ] = None,
) -> None:
    """Run a BatchTransformJob on this machine: same shards, same output as in a cluster."""
    from kbt.api.exitcodes import ExitCode  # noqa: PLC0415 (keeps kbt --help fast)
    from kbt.api.resolved import ModelNotFoundError, resolve_job  # noqa: PLC0415 (keeps kbt --help fast)
    from kbt.runner.local import run_local  # noqa: PLC0415 (keeps kbt --help fast)
    from kbt.runner.plan import MIB, split_bytes_setting  # noqa: PLC0415 (keeps kbt --help fast)

    console = Console(stderr=True)
    try:
        jobs, models = _load_jobs(manifest, model_file or [])
    except ManifestError as exc:
        console.print(f"[red]✗ {exc}[/red]")
        raise typer.Exit(2) from None
    jobs = [j for j in jobs if job_name is None or j.metadata.name == job_name]
    if not jobs:
        console.print(
            f"[red]✗ {manifest}: no BatchTransformJob{' named ' + job_name if job_name else ''} to run[/red]"
        )
        raise typer.Exit(2)
    for job in jobs:
        if output is not None:
            job.spec.transformOutput.s3OutputPath = output
        try:
            resolved = resolve_job(job, models)
        except ModelNotFoundError as exc:
            console.print(f"[red]✗ {exc}[/red]")
            raise typer.Exit(int(ExitCode.CONFIG_ERROR)) from None
        cpus = os.cpu_count() or 1
        split = int(split_size_mb * MIB) if split_size_mb else split_bytes_setting()
        try:
            shard_count, why = _shard_count(resolved, shards, workers, cpus=cpus, split=split)
        except Exception as exc:
            from kbt.runner.errors import exit_code_for, one_line  # noqa: PLC0415 (keeps kbt --help fast)

            console.print(f"[red]✗ {resolved.name}: {one_line(exc)}[/red]")
            raise typer.Exit(int(exit_code_for(exc))) from None
        worker_count = workers or min(shard_count, cpus)
        console.print(
            f"kbt run: job [bold]{resolved.name}[/bold], {shard_count} shard(s) ({why}), "
            f"{worker_count} worker(s)"
        )
        try:
            summary = run_local(resolved, worker_count, shard_count, split, console)
        except Exception as exc:
            from kbt.runner.errors import exit_code_for, one_line  # noqa: PLC0415 (keeps kbt --help fast)

            console.print(f"[red]✗ {resolved.name}: {one_line(exc)}[/red]")
            raise typer.Exit(int(exit_code_for(exc))) from None
        if summary.exit_code != 0:
            console.print(f"[red]✗ job {resolved.name} failed:[/red]")
            for reason in summary.reasons:
                console.print(f"  {reason}")
            raise typer.Exit(summary.exit_code)
        rate = summary.records / summary.seconds if summary.seconds else 0.0
        console.print(
            f"[green]✓[/green] {resolved.name}: {summary.records} records, {summary.failed} errors, "
            f"{summary.seconds:.1f} s, {rate:,.0f} records/s -> {summary.output}"
        )


def shard(ctx: typer.Context) -> None:
    """Run one shard of a resolved job; exit code and termination message tell the operator why."""
    from kbt.runner.__main__ import main  # noqa: PLC0415 (keeps kbt --help fast)

    raise typer.Exit(main(ctx.args, prog="kbt shard"))


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``shard`` to the ``kbt`` command line."""
    app.command("run")(run)
    # `kbt shard` is `python -m kbt.runner`: that parser owns the options (and --help).
    passthrough = {"allow_extra_args": True, "ignore_unknown_options": True}
    app.command("shard", context_settings=passthrough, add_help_option=False)(shard)
