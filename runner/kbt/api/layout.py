"""The keys a job writes under its output prefix (``<out>`` = transformOutput.s3OutputPath).

::

    <out>/<name>.out                                 perInput output of input object <name>
    <out>/<appendRowFileName>                        appendRow output (every row, input order)
    <out>/_manifest.json                             job manifest, written by finalization
    <out>/_errors/<name>[.part-NNNNN].errors.jsonl   rejected records of one work item
    <out>/_kbt/progress/shard-NNNNN.json             progress reports (``kbt.api.progress``)
    <out>/_kbt/logs/shard-NNNNN.log                  archived shard logs (``kubectl btj logs``)
    <out>/_kbt/state/<fp>/plan.json                  the shard plan (fp = job fingerprint)
    <out>/_kbt/state/<fp>/done/FFFFFFFF-LLLLLLLL-T.json  done-markers of work items FFFFFFFF..LLLLLLLL
    <out>/_kbt/state/<fp>/parts/NNNNNNNN.out         output part of a split / appendRow item
    <out>/_kbt/state/<fp>/shards/shard-NNNNN.json    done-marker of a shard (its totals)
    <out>/_kbt/state/<fp>/finalized.json             written once finalization has completed
    <out>/_kbt/state/current-<job>.json              the fingerprint a job (object) runs under now

Every function returns a key relative to ``<out>``. Names come from object keys and ManifestFile
entries, which may hold ``.`` and ``..`` segments; such segments are written as ``%2E`` and
``%2E%2E`` so that every key stays under ``<out>``.
"""

from __future__ import annotations

import re

MANIFEST_NAME = "_manifest.json"
ERRORS_DIR = "_errors/"
KBT_DIR = "_kbt/"  # everything kbt keeps for itself
PROGRESS_DIR = f"{KBT_DIR}progress/"
LOGS_DIR = f"{KBT_DIR}logs/"
STATE_DIR = f"{KBT_DIR}state/"
SHARD_LOG_NAME = re.compile(r"shard-(\d+)\.log$")  # matches log_key(i) and gives back i

_ESCAPED_SEGMENTS = {".": "%2E", "..": "%2E%2E"}


def contained(name: str) -> str:
    """``name`` with its ``.``/``..`` segments escaped, so ``prefix + name`` stays under prefix."""
    if "." not in name:
        return name
    return "/".join(_ESCAPED_SEGMENTS.get(segment, segment) for segment in name.split("/"))


def output_key(name: str) -> str:
    return f"{contained(name)}.out"


def errors_key(name: str, part: int | None) -> str:
    """Rejected records of input ``name`` (of its part ``part`` when the object was split)."""
    suffix = f".part-{part:05d}" if part is not None else ""
    return f"{ERRORS_DIR}{contained(name)}{suffix}.errors.jsonl"


def progress_file_key(shard: int) -> str:
    return f"{PROGRESS_DIR}shard-{shard:05d}.json"


def log_key(shard: int) -> str:
    return f"{LOGS_DIR}shard-{shard:05d}.log"


def state_dir(fingerprint: str) -> str:
    """Restart state of one job fingerprint (a new spec, model or plan starts afresh)."""
    return f"{STATE_DIR}{fingerprint}/"


def current_key(job: str) -> str:
    """Names the state the job object ``job`` (``kbt.runner.plan.job_identity``) runs under."""
    return f"{STATE_DIR}current-{job}.json"


def plan_key(fingerprint: str) -> str:
    return state_dir(fingerprint) + "plan.json"


def done_dir(fingerprint: str) -> str:
    return state_dir(fingerprint) + "done/"


def done_key(fingerprint: str, first: int, last: int, token: str) -> str:
    """One group of done-markers (work items ``first`` to ``last`` of one shard, some of them),
    written by one writer: ``token`` keeps two writers of a shard (a pod and its replacement)
    from replacing each other's groups."""
    return f"{done_dir(fingerprint)}{first:08d}-{last:08d}-{token}.json"


def parts_dir(fingerprint: str) -> str:
    return state_dir(fingerprint) + "parts/"


def part_key(fingerprint: str, ordinal: int) -> str:
    return f"{parts_dir(fingerprint)}{ordinal:08d}.out"


def shards_dir(fingerprint: str) -> str:
    return state_dir(fingerprint) + "shards/"


def shard_done_key(fingerprint: str, shard: int) -> str:
    return f"{shards_dir(fingerprint)}shard-{shard:05d}.json"


def finalized_key(fingerprint: str) -> str:
    return state_dir(fingerprint) + "finalized.json"
