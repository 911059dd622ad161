"""Prepare data and models once, then run every contender of every workload, interleaved.

Every contender run is a fresh process, timed from its start to its exit (interpreter start,
imports, model load, and for HTTP the model server's start, for Ray ``ray.init``, included),
with the RSS of its whole process tree sampled. Repetitions rotate the contender order so slow
drift of a noisy machine spreads over all of them.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from bench.compare import datasets, models
from bench.compare.environment import describe_environment
from bench.compare.first_cases import NEEDS, FirstCase, build_cases
from bench.compare.kbt_jobs import (
    heart_example_batch_size,
    write_heart_example_yaml,
    write_job_yaml,
    write_resolved_job,
)
from bench.compare.plan import FIRST_PREDICTION_GOAL, SPEEDUP_GOALS, Plan
from bench.compare.procmon import ContenderFailed, run_measured
from bench.compare.storage import S3_ENV, Store, empty_trash, moto_server, upload_dir
from bench.compare.task import Task

from kbt.datasets import DatasetNotFoundError

REPO = Path(__file__).resolve().parents[2]
KBT = str(Path(sys.executable).with_name("kbt"))
FIRST_SCRIPT = Path(__file__).with_name("first_prediction.py")
WORKLOAD_DATASETS = {
    "tabular": "heart",
    "heart-example": "heart",
    "scale": "heart",
    "mnist": "mnist",
    "resnet50": "imagenet",
    "text": "billsum",
}


@dataclass
class Measurement:
    workload: str
    variant: str
    contender: str
    expected_records: int
    goal: float | None = None  # end to end: kbt's minimum speed-up; first prediction: max time ratio
    seconds: list[float] = field(default_factory=list)  # process start to exit
    peak_rss_mb: list[float] = field(default_factory=list)
    records: int = 0
    error: str = ""


@dataclass(frozen=True)
class Variant:
    workload: str
    label: str  # e.g. "csv / local, 1,000,000 rows", "sklearn"
    task: Task
    contenders: tuple[str, ...]
    repeats: int
    goals: dict[str, float] = field(default_factory=dict)  # contender -> goal
    kbt_job: str = "bench"  # bench: kbt_jobs.job_manifest; example: the heart example's job.yaml
    first_case: FirstCase | None = None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Harness:
    def __init__(self, plan: Plan, work: Path) -> None:
        self.plan = plan
        self.work = work
        self.data = work / "data"
        self.model_dirs = {name: work / "models" / name for name in ("heart", "mnist", "resnet50", "bart")}
        self.measurements: list[Measurement] = []
        self.skipped: dict[str, str] = {}  # workload or flavor -> why it did not run
        self.first_cases: list[FirstCase] = []
        self.env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true",  # the benchmark's own models
            **S3_ENV,
        )
        self.started = time.perf_counter()
        self.load_at_start = os.getloadavg()[0]
        self.runs_done = 0
        self.runs_total = 0

    # ------------------------------------------------------------------ preparation
    def prepare(self) -> None:
        """Build the models and inputs of the chosen workloads (reusing a previous run's under
        --work-dir); a workload whose dataset is missing is skipped with one line."""
        for workload in self.plan.workloads:
            try:
                if workload == "first-prediction":
                    self._prepare_first()
                else:
                    self._prepare(workload)
            except DatasetNotFoundError as exc:
                self.skipped[workload] = str(exc)
                log(f"skipping {workload}: {exc}")

    def _once(self, marker: Path, what: str, build: Callable[[], object]) -> None:
        if not marker.exists():
            log(f"preparing {what}")
            build()
            marker.touch()

    def _model(self, name: str) -> None:
        builders: dict[str, Callable[[Path], None]] = {
            "heart": models.build_heart,
            "mnist": models.build_mnist,
            "resnet50": models.build_resnet50,
            "bart": lambda d: models.build_bart(d, datasets.billsum_texts()),
        }
        directory = self.model_dirs[name]
        self._once(directory.with_suffix(".done"), f"model {name}", lambda: builders[name](directory))

    def _tabular(self, rows: int) -> Path:
        target = self.data / f"tabular-{rows}-{self.plan.files}"
        self._once(
            target.with_suffix(".done"),
            f"{rows:,} tabular rows",
            lambda: datasets.write_tabular(rows, self.plan.files, target),
        )
        return target / "csv"

    def _files(self, name: str, write: Callable[[Path], None]) -> Path:
        target = self.data / name
        self._once(target.with_suffix(".done"), name, lambda: write(target))
        return target

    def _prepare(self, workload: str) -> None:
        plan = self.plan
        if workload in ("tabular", "heart-example", "scale"):
            self._model("heart")
            sizes = {"tabular": [plan.rows, plan.big_rows], "heart-example": [plan.example_rows]}
            for rows in sizes.get(workload, self.scale_rows()):
                if rows:
                    self._tabular(rows)
        elif workload == "mnist":
            self._model("mnist")
            self._files(f"mnist-{plan.mnist_images}", lambda d: datasets.write_mnist(plan.mnist_images, d))
        elif workload == "resnet50":
            self._model("resnet50")
            self._files(f"jpeg-{plan.resnet_images}", lambda d: datasets.write_jpegs(plan.resnet_images, d))
        elif workload == "text":
            self._model("bart")
            self._files(f"bills-{plan.docs}", lambda d: datasets.write_billsum(plan.docs, d))

    def _prepare_first(self) -> None:
        flavors: list[str] = []
        for flavor in self.plan.first_flavors:
            try:
                models.dataset(NEEDS[flavor])
                if flavor == "mlflow-sklearn":
                    self._model("heart")
                elif flavor in ("torch", "hf"):
                    self._model("mnist" if flavor == "torch" else "bart")
                flavors.append(flavor)
            except DatasetNotFoundError as exc:
                self.skipped[f"first prediction: {flavor}"] = str(exc)
                log(f"skipping first prediction of {flavor}: {exc}")
        log("preparing the first-prediction models and one-record inputs")
        self.first_cases = build_cases(self.work / "first", self.model_dirs, tuple(flavors))

    def scale_rows(self) -> list[int]:
        """Input sizes of the scale workload: 1x, 10x and 100x (the last is the tabular size)."""
        return [max(self.plan.rows // factor, self.plan.files) for factor in (100, 10, 1)]

    # ------------------------------------------------------------------ variants
    def _task(self, workload: str, kind: str, fmt: str, input_uri: str, label: str, **kw: Any) -> Task:
        slug = "".join(c if c.isalnum() else "-" for c in f"{workload}-{label}").lower()
        fields: dict[str, Any] = {
            "workers": self.plan.workers,
            "model_dir": str(self.model_dirs.get(workload, "")),
            **kw,
        }
        return Task(
            workload=workload,
            kind=kind,  # type: ignore[arg-type]
            input_format=fmt,  # type: ignore[arg-type]
            input_uri=input_uri if input_uri.endswith("/") else input_uri + "/",  # a prefix, as in S3
            output_uri=str(self.work / "out" / slug),
            **fields,
        )

    def _contenders(self, workload: str, *allowed: str) -> tuple[str, ...]:
        """The plan's contenders that run in `workload` (Ray and HTTP only where the plan says)."""
        plan = self.plan
        chosen = []
        for contender in plan.contenders:
            if contender not in allowed:
                continue
            if contender == "ray" and workload not in plan.ray_workloads:
                continue
            if contender == "http" and workload not in plan.http_workloads:
                continue
            chosen.append(contender)
        return tuple(chosen)

    def _first_variants(self) -> list[Variant]:
        variants = []
        for case in self.first_cases:
            kind = {"csv": "tabular", "png": "image"}[case.input_format] if case.flavor != "hf" else "text"
            task = self._task(
                case.workload, kind, case.input_format, str(case.input_dir), f"first-{case.flavor}",
                batch_size=1, records=1, model_dir=str(case.model_dir), workers=1,
            )  # fmt: skip
            variants.append(
                Variant(
                    "first-prediction",
                    case.flavor,
                    task,
                    ("kbt-run", "script"),
                    self.plan.first_repeats,
                    {"script": FIRST_PREDICTION_GOAL},
                    first_case=case,
                )
            )
        return variants

    def _tabular_variants(self, endpoint: str | None) -> list[Variant]:
        plan = self.plan
        everyone = self._contenders("tabular", "kbt-run", "kbt-shards", "pandas", "ray", "http")
        variants = []
        sizes = [(plan.rows, "tabular", everyone, plan.repeats)]
        if plan.big_rows:
            big = self._contenders("tabular", "kbt-run", "kbt-shards", "pandas")
            sizes.append((plan.big_rows, "tabular-big", big, plan.single_repeats))
        for rows, goals, contenders, repeats in sizes:
            label = f"csv / local, {rows:,} rows"
            task = self._task(
                "heart", "tabular", "csv", str(self._tabular(rows)), label,
                batch_size=plan.tabular_batch, records=rows,
            )  # fmt: skip
            variants.append(Variant("tabular", label, task, contenders, repeats, SPEEDUP_GOALS[goals]))
        if endpoint is not None:
            label = f"csv / S3, {plan.rows:,} rows"
            task = self._task(
                "heart", "tabular", "csv", "s3://bench-in/tabular/", label,
                batch_size=plan.tabular_batch, records=plan.rows,
            )  # fmt: skip
            task = replace(
                task, output_uri=f"s3://bench-out/{Path(task.output_uri).name}/", s3_endpoint=endpoint
            )
            variants.append(Variant("tabular", label, task, everyone, plan.repeats, SPEEDUP_GOALS["tabular"]))
        return variants

    def _example_variant(self) -> Variant:
        rows = self.plan.example_rows
        label = f"csv / local, {rows:,} rows, job.yaml as shipped"
        task = self._task(
            "heart", "tabular", "csv", str(self._tabular(rows)), "example",
            batch_size=heart_example_batch_size(), records=rows,
        )  # fmt: skip
        contenders = self._contenders("heart-example", "kbt-run", "pandas")
        goals = SPEEDUP_GOALS["heart-example"]
        return Variant("heart-example", label, task, contenders, self.plan.single_repeats, goals, "example")

    def _unstructured_variant(self, workload: str) -> Variant:
        plan = self.plan
        contenders = self._contenders(workload, "kbt-run", "kbt-shards", "pandas", "ray", "http")
        if workload == "mnist":
            source = self.data / f"mnist-{plan.mnist_images}"
            task = self._task(
                "mnist", "image", "png", str(source), "png", batch_size=plan.image_batch,
                records=plan.mnist_images,
            )  # fmt: skip
            label = f"png / local, {plan.mnist_images:,} images"
        elif workload == "resnet50":
            source = self.data / f"jpeg-{plan.resnet_images}"
            task = self._task(
                "resnet50", "image", "jpeg", str(source), "jpeg", batch_size=plan.resnet_batch,
                records=plan.resnet_images,
            )  # fmt: skip
            label = f"jpeg / local, {plan.resnet_images:,} images"
        else:
            source = self.data / f"bills-{plan.docs}"
            task = self._task(
                "bart", "text", "csv", str(source), "bills", batch_size=plan.text_batch, records=plan.docs
            )
            label = f"csv / local, {plan.docs:,} documents"
        return Variant(workload, label, task, contenders, plan.repeats, SPEEDUP_GOALS[workload])

    def _scale_variants(self) -> list[Variant]:
        variants = []
        for rows, factor in zip(self.scale_rows(), ("1x", "10x", "100x"), strict=True):
            label = f"{factor} ({rows:,} rows)"
            task = self._task(
                "heart", "tabular", "csv", str(self._tabular(rows)), f"scale-{factor}",
                batch_size=self.plan.tabular_batch, records=rows,
            )  # fmt: skip
            contenders = self._contenders("scale", "kbt-run")  # the goal is about kbt's own memory
            variants.append(Variant("scale", label, task, contenders, self.plan.single_repeats))
        return variants

    def variants(self, endpoint: str | None) -> list[Variant]:
        chosen: list[Variant] = []
        for workload in self.plan.workloads:
            if workload in self.skipped:
                continue
            if workload == "first-prediction":
                chosen += self._first_variants()
            elif workload == "tabular":
                chosen += self._tabular_variants(endpoint)
            elif workload == "heart-example":
                chosen.append(self._example_variant())
            elif workload == "scale":
                chosen += self._scale_variants()
            else:
                chosen.append(self._unstructured_variant(workload))
        return chosen

    # ------------------------------------------------------------------ running
    def command(self, variant: Variant, contender: str, scratch: Path) -> list[str]:
        task = variant.task
        if contender == "kbt-run":
            if variant.kbt_job == "example":  # as the example's README runs it: default workers
                return [KBT, "run", str(write_heart_example_yaml(task, scratch / "job.yaml"))]
            job = write_job_yaml(task, scratch / "job.yaml")
            if variant.first_case is not None:  # one record: kbt's default worker count
                return [KBT, "run", str(job)]
            return [KBT, "run", str(job), "--workers", str(task.workers)]
        if contender == "kbt-shards":
            job = write_resolved_job(task, scratch / "job.json")
            return [sys.executable, "-m", "bench.compare.shards", str(job), str(task.workers)]
        if contender == "script" and variant.first_case is not None:
            case = variant.first_case
            output = Path(task.output_uri) / "prediction.jsonl"
            return [
                sys.executable,
                str(FIRST_SCRIPT),
                case.flavor,
                str(case.model_dir),
                str(case.record),
                str(output),
            ]
        task_file = scratch / f"{contender}.json"
        replace(task, extra={"scratch": str(scratch)}).dump(task_file)
        return [sys.executable, "-m", "bench.compare.child", contender, str(task_file)]

    @staticmethod
    def records_written(contender: str, task: Task, result: dict[str, float]) -> int:
        """Records the contender wrote: kbt's manifest, the child's own count, or its outputs."""
        store = Store(task.output_uri, task.s3_endpoint)
        if contender.startswith("kbt"):
            return int(json.loads(store.read("_manifest.json"))["counts"]["succeeded"])
        if "records" in result:
            return int(result["records"])
        if contender == "script":
            return len(store.read("prediction.jsonl").splitlines())
        blobs = (store.read(name) for name in store.list())  # Ray: CSV blocks with a header each
        return sum(len(pd.read_csv(io.BytesIO(blob))) for blob in blobs if blob.strip())

    def run_variant(self, variant: Variant) -> None:
        results = {
            c: Measurement(variant.workload, variant.label, c, variant.task.records, variant.goals.get(c))
            for c in variant.contenders
        }
        self.measurements.extend(results.values())
        scratch = self.work / "scratch" / Path(variant.task.output_uri.rstrip("/")).name
        scratch.mkdir(parents=True, exist_ok=True)
        Store(variant.task.input_uri, variant.task.s3_endpoint).warm()
        for repeat in range(variant.repeats):
            shift = repeat % len(variant.contenders)
            for contender in variant.contenders[shift:] + variant.contenders[:shift]:
                self._run_once(variant, results[contender], repeat, scratch)

    def _run_once(self, variant: Variant, measurement: Measurement, repeat: int, scratch: Path) -> None:
        self.runs_done += 1
        contender, task = measurement.contender, variant.task
        elapsed = time.perf_counter() - self.started
        log(
            f"[{self.runs_done}/{self.runs_total} {elapsed / 60:4.1f} min] {variant.workload} | "
            f"{variant.label} | {contender} run {repeat + 1}/{variant.repeats}"
        )
        if measurement.error:
            log("  skipped: it failed before")
            return
        Store(task.output_uri, task.s3_endpoint).clear()
        timeout = self.plan.run_timeout_s
        try:
            run = run_measured(
                self.command(variant, contender, scratch),
                env=self.env,
                log_path=scratch / f"{contender}-{repeat}.log",
                timeout=timeout,
            )
            measurement.records = self.records_written(contender, task, run.result)
        except subprocess.TimeoutExpired:
            measurement.error = f"did not finish within {timeout:.0f} s (stopped)"
            log(f"  {measurement.error}")
            return
        except (ContenderFailed, OSError, KeyError, ValueError) as exc:
            measurement.error = str(exc).strip().splitlines()[-1]  # a traceback's last line: the error
            log(f"  FAILED: {exc}")
            return
        measurement.seconds.append(run.wall_seconds)
        measurement.peak_rss_mb.append(run.peak_rss_mb)
        log(f"  {run.wall_seconds:.2f} s  {run.peak_rss_mb:.0f} MiB  {measurement.records:,} records")

    def run(self) -> None:
        self.prepare()
        with ExitStack() as stack:
            endpoint = None
            if self.plan.s3 and "tabular" in self.plan.workloads and "tabular" not in self.skipped:
                endpoint = stack.enter_context(moto_server())
                upload_dir(self._tabular(self.plan.rows), "s3://bench-in/tabular/", endpoint)
            chosen = self.variants(endpoint)
            self.runs_total = sum(len(v.contenders) * v.repeats for v in chosen)
            log(f"{len(chosen)} inputs, {self.runs_total} contender runs")
            try:
                for variant in chosen:
                    self.run_variant(variant)
            finally:
                empty_trash(self.work / "out")

    def save(self, path: Path) -> None:
        path.write_text(
            json.dumps(
                {
                    "plan": asdict(self.plan),
                    "environment": describe_environment() | {"load_average_at_start": self.load_at_start},
                    "first_cases": {case.flavor: case.label for case in self.first_cases},
                    "skipped": self.skipped,
                    "measurements": [asdict(m) for m in self.measurements],
                },
                indent=1,
            )
        )
