"""`kubectl btj status`: the job's summary and one row per shard (pods + progress ConfigMap)."""

from __future__ import annotations

from typing import Any

from kbt_operator.plugin.job import JobView
from kbt_operator.plugin.shards import Shard

COLUMNS = ("SHARD", "STATE", "PROGRESS", "RECORDS", "ERRORS", "REC/S", "DEVICE", "NODE", "RETRIES", "UPDATED")


def shard_row(shard: Shard) -> dict[str, Any]:
    """One shard as plain data (the JSON output, and the table's source)."""
    report, pod = shard.progress, shard.latest
    return {
        "index": shard.index,
        "state": shard.state,
        "percent": report.percent if report else None,
        "recordsProcessed": report.records_processed if report else 0,
        "recordsFailed": report.records_failed if report else 0,
        "recordsPerSecond": report.records_per_second if report else 0.0,
        "device": report.device if report else "",
        "node": pod.node if pod else "",
        "pod": pod.name if pod else "",
        "retries": shard.retries,
        "updatedAt": report.updated_at if report else "",
    }


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    percent = row["percent"]
    return (
        str(row["index"]),
        row["state"],
        f"{percent}%" if percent is not None else "-",
        str(row["recordsProcessed"]),
        str(row["recordsFailed"]),
        f"{row['recordsPerSecond']:.1f}",
        row["device"] or "-",
        row["node"] or "-",
        str(row["retries"]),
        row["updatedAt"] or "-",
    )


def render_table(rows: list[tuple[str, ...]]) -> str:
    """kubectl-style columns: left-aligned, separated by three spaces."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def summary(job: JobView) -> dict[str, Any]:
    status = job.status
    return {
        "name": job.name,
        "namespace": job.namespace,
        "status": job.phase,
        "progress": status.progressSummary or "",
        "model": status.model or job.spec.modelName or (job.spec.model.uri if job.spec.model else ""),
        "kubernetesJob": status.jobName or "",
        "startTime": status.startTime or "",
        "endTime": status.endTime or "",
        "output": status.outputLocation or job.spec.transformOutput.s3OutputPath,
        "failureReason": status.failureReason or "",
        "shardCount": job.shard_count,
    }


def render_status(job: JobView, shards: dict[int, Shard]) -> str:
    info = summary(job)
    header = [
        ("Name:", f"{info['namespace']}/{info['name']}"),
        ("Status:", f"{info['status']}" + (f"   {info['progress']}" if info["progress"] else "")),
        ("Model:", info["model"]),
        ("Job:", info["kubernetesJob"] or "-"),
        ("Started:", info["startTime"] or "-"),
        ("Finished:", info["endTime"] or "-"),
        ("Output:", info["output"]),
    ]
    if info["failureReason"]:
        header.append(("Reason:", info["failureReason"]))
    lines = [f"{key:<10}{value}" for key, value in header]
    lines.append("")
    if not job.started and not any(shard.pods for shard in shards.values()):
        lines.append(f"Not started yet: none of its {job.shard_count} shard(s) has a pod.")
    else:
        lines.append(render_table([COLUMNS, *(_cells(shard_row(shard)) for shard in shards.values())]))
    return "\n".join(lines)
