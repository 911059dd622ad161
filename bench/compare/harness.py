"""Prepare data and models once, then run every contender of every workload, interleaved.

Repetitions rotate the contender order so slow drift of a noisy machine spreads over all of
them; each run is a fresh process whose tree RSS is sampled (plus the model server's, for HTTP).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bench.compare import datasets, models
from bench.compare.plan import Plan
from bench.compare.procmon import ContenderFailed, run_measured
from bench.compare.report import LOADED_SUFFIX
from bench.compare.servers import Server, model_server
from bench.compare.storage import S3_ENV, Store, moto_server, upload_dir
from bench.compare.task import Task

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Measurement:
    workload: str
    variant: str  # e.g. "csv / S3", "1x", "4 workers"
    contender: str
    expected_records: int
    seconds: list[float] = field(default_factory=list)
    wall_seconds: list[float] = field(default_factory=list)  # whole child process
    peak_rss_mb: list[float] = field(default_factory=list)
    records: int = 0
    error: str = ""
    note: str = ""


@dataclass(frozen=True)
class Variant:
    label: str
    task: Task
    contenders: tuple[str, ...]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Harness:
    def __init__(self, plan: Plan, work: Path) -> None:
        self.plan = plan
        self.work = work
        self.data = work / "data"
        self.model_dirs = {name: work / "models" / name for name in ("heart", "mnist", "resnet50", "bart")}
        self.measurements: list[Measurement] = []
        self.server_descriptions: dict[str, str] = {}
        self.env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **S3_ENV
        )

    # ------------------------------------------------------------------ preparation
    def prepare(self) -> None:
        """Build the models and inputs the chosen workloads need, reusing a previous run's."""
        plan = self.plan
        wanted = set(plan.workloads)
        builders = {
            "heart": ({"tabular", "scale"}, models.build_heart),
            "mnist": ({"mnist"}, models.build_mnist),
            "resnet50": ({"resnet50"}, models.build_resnet50),
            "bart": ({"text"}, self._build_bart),
        }
        for name, (users, build) in builders.items():
            marker = self.model_dirs[name].with_suffix(".done")
            if users & wanted and not marker.exists():
                log(f"building model {name}")
                build(self.model_dirs[name])
                marker.touch()
        steps: dict[str, tuple[set[str], Callable[[Path], object]]] = {
            self.tabular_name(plan.rows): (
                {"tabular", "scale"},
                lambda d: datasets.write_tabular(plan.rows, plan.files, d),
            ),
            f"mnist-{plan.mnist_images}": ({"mnist"}, lambda d: datasets.write_mnist(plan.mnist_images, d)),
            f"jpeg-{plan.resnet_images}": (
                {"resnet50"},
                lambda d: datasets.write_jpegs(plan.resnet_images, d),
            ),
            f"bills-{plan.docs}": ({"text"}, lambda d: datasets.write_billsum(plan.docs, d)),
        }
        for rows in self.scale_rows()[:-1]:
            steps[self.tabular_name(rows)] = ({"scale"}, functools.partial(self._write_tabular, rows))
        for name, (users, write) in steps.items():
            target, marker = self.data / name, self.data / f"{name}.done"
            if users & wanted and not marker.exists():
                log(f"generating {name}")
                target.mkdir(parents=True, exist_ok=True)
                write(target)
                marker.touch()

    def _write_tabular(self, rows: int, target: Path) -> None:
        datasets.write_tabular(rows, self.plan.files, target)

    @staticmethod
    def _build_bart(model_dir: Path) -> None:
        models.build_bart(model_dir, datasets.billsum_texts())

    def tabular_name(self, rows: int) -> str:
        return f"tabular-{rows}-{self.plan.files}"

    def scale_rows(self) -> list[int]:
        """Input sizes of the scale workload: 1x, 10x and 100x (the last is the tabular size)."""
        return [max(self.plan.rows // factor, self.plan.files) for factor in (100, 10, 1)]

    def local(self, name: str) -> Path:
        return self.data / name

    # ------------------------------------------------------------------ tasks
    def _task(self, workload: str, kind: str, fmt: str, input_uri: str, label: str, **kw: object) -> Task:
        slug = "".join(c if c.isalnum() else "-" for c in f"{workload}-{label}").lower()
        return Task(
            workload=workload,
            kind=kind,  # type: ignore[arg-type]
            input_format=fmt,  # type: ignore[arg-type]
            input_uri=input_uri if input_uri.endswith("/") else input_uri + "/",  # a prefix, as in S3
            output_uri=str(self.work / "out" / slug),
            model_dir=str(self.model_dirs[workload]),
            workers=self.plan.workers,
            **kw,  # type: ignore[arg-type]
        )

    def _s3_output(self, task: Task, endpoint: str) -> Task:
        slug = Path(task.output_uri).name
        return replace(task, output_uri=f"s3://bench-out/{slug}/", s3_endpoint=endpoint)

    def tabular_variants(self, endpoint: str) -> list[Variant]:
        plan = self.plan
        base = self.local(self.tabular_name(plan.rows))
        variants: list[Variant] = []
        for fmt in ("csv", "parquet"):
            task = self._task(
                "heart",
                "tabular",
                fmt,
                f"s3://bench-in/tabular/{fmt}/",
                f"{fmt}-s3",
                batch_size=plan.tabular_batch,
                records=plan.rows,
            )
            contenders = tuple(c for c in plan.contenders if fmt == "csv" or c != "ceiling")
            variants.append(Variant(f"{fmt} / S3", self._s3_output(task, endpoint), contenders))
        if plan.local_tabular:
            for fmt in ("csv", "parquet"):
                task = self._task(
                    "heart",
                    "tabular",
                    fmt,
                    str(base / fmt),
                    f"{fmt}-local",
                    batch_size=plan.tabular_batch,
                    records=plan.rows,
                )
                variants.append(
                    Variant(f"{fmt} / local", task, tuple(c for c in plan.contenders if c != "ceiling"))
                )
        return variants

    def image_variants(self, workload: str, endpoint: str) -> list[Variant]:
        plan = self.plan
        if workload == "mnist":
            # 100k-object prefixes are impractical on moto (per-request cost): local files.
            task = self._task(
                "mnist",
                "image",
                "png",
                str(self.local(f"mnist-{plan.mnist_images}")),
                "png-local",
                batch_size=plan.image_batch,
                records=plan.mnist_images,
            )
            return [Variant("png / local", task, plan.contenders)]
        task = self._task(
            "resnet50",
            "image",
            "jpeg",
            "s3://bench-in/jpeg/",
            "jpeg-s3",
            batch_size=plan.resnet_batch,
            records=plan.resnet_images,
        )
        return [Variant("jpeg / S3", self._s3_output(task, endpoint), plan.contenders)]

    def text_variants(self, endpoint: str) -> list[Variant]:
        task = self._task(
            "bart",
            "text",
            "csv",
            "s3://bench-in/bills/",
            "csv-s3",
            batch_size=self.plan.text_batch,
            records=self.plan.docs,
        )
        return [Variant("csv / S3", self._s3_output(task, endpoint), self.plan.contenders)]

    def scale_variants(self) -> Iterator[Variant]:
        plan = self.plan
        scale_contenders = tuple(c for c in ("kbt-run", "pandas") if c in plan.contenders)
        for rows, label in zip(self.scale_rows(), ("1x", "10x", "100x"), strict=True):
            task = self._task(
                "heart",
                "tabular",
                "csv",
                str(self.local(self.tabular_name(rows)) / "csv"),
                f"scale-{label}",
                batch_size=plan.tabular_batch,
                records=rows,
            )
            yield Variant(f"{label} ({rows:,} rows)", task, scale_contenders)
        worker_contenders = tuple(c for c in ("kbt-run", "ray") if c in plan.contenders)
        full = self.local(self.tabular_name(plan.rows)) / "csv"
        for workers in plan.worker_counts:
            task = self._task(
                "heart",
                "tabular",
                "csv",
                str(full),
                f"workers-{workers}",
                batch_size=plan.tabular_batch,
                records=plan.rows,
            )
            yield Variant(f"{workers} workers", replace(task, workers=workers), worker_contenders)

    # ------------------------------------------------------------------ running
    def run_variant(self, workload: str, variant: Variant, repeats: int, server: Server | None) -> None:
        results = {
            c: Measurement(workload, variant.label, c, variant.task.records) for c in variant.contenders
        }
        self.measurements.extend(results.values())
        scratch = self.work / "scratch" / Path(variant.task.output_uri.rstrip("/")).name
        scratch.mkdir(parents=True, exist_ok=True)
        for repeat in range(repeats):
            shift = repeat % len(variant.contenders)
            order = variant.contenders[shift:] + variant.contenders[:shift]
            for contender in order:
                measurement = results[contender]
                if measurement.error:
                    continue
                task = replace(variant.task, extra={"scratch": str(scratch)})
                if contender == "http":
                    if server is None:
                        continue
                    task = replace(task, http_url=server.url)
                Store(task.output_uri, task.s3_endpoint).clear()
                task_file = scratch / f"{contender}.json"
                task.dump(task_file)
                log(f"[{workload} | {variant.label}] {contender} run {repeat + 1}/{repeats}")
                try:
                    run = run_measured(
                        [sys.executable, "-m", "bench.compare.child", contender, str(task_file)],
                        env=self.env,
                        log_path=scratch / f"{contender}-{repeat}.log",
                        extra_pids=(server.pid,) if contender == "http" and server else (),
                    )
                except ContenderFailed as exc:
                    measurement.error = str(exc).splitlines()[0]
                    log(f"  FAILED: {exc}")
                    continue
                measurement.seconds.append(run.result.get("seconds", run.wall_seconds))
                measurement.wall_seconds.append(run.wall_seconds)
                measurement.peak_rss_mb.append(run.peak_rss_mb)
                measurement.records = int(run.result.get("records", 0))
                if "loaded_seconds" in run.result:
                    self._record_loaded(results, measurement, float(run.result["loaded_seconds"]))
                log(
                    f"  {measurement.seconds[-1]:.2f}s  {run.peak_rss_mb:.0f} MiB  "
                    f"{measurement.records} records"
                )

    def _record_loaded(
        self, results: dict[str, Measurement], measurement: Measurement, seconds: float
    ) -> None:
        """kbt's time once its model is loaded, as a contender of its own (``<kbt>-loaded``)."""
        name = f"{measurement.contender}{LOADED_SUFFIX}"
        if name not in results:
            results[name] = Measurement(
                measurement.workload, measurement.variant, name, measurement.expected_records
            )
            self.measurements.append(results[name])
        loaded = results[name]
        loaded.seconds.append(seconds)
        loaded.wall_seconds.append(seconds)
        loaded.peak_rss_mb.append(measurement.peak_rss_mb[-1])
        loaded.records = measurement.records

    def run(self) -> None:
        plan = self.plan
        self.prepare()
        with ExitStack() as stack:
            endpoint = stack.enter_context(moto_server())
            uploads = {
                "tabular": (self.tabular_name(plan.rows), "s3://bench-in/tabular/"),
                "resnet50": (f"jpeg-{plan.resnet_images}", "s3://bench-in/jpeg/"),
                "text": (f"bills-{plan.docs}", "s3://bench-in/bills/"),
            }
            for workload, (name, uri) in uploads.items():
                if workload in plan.workloads:
                    upload_dir(self.local(name), uri, endpoint)
            groups: list[tuple[str, str, list[Variant]]] = []
            if "tabular" in plan.workloads:
                groups.append(("tabular", "heart", self.tabular_variants(endpoint)))
            for workload in ("mnist", "resnet50"):
                if workload in plan.workloads:
                    groups.append((workload, workload, self.image_variants(workload, endpoint)))
            if "text" in plan.workloads:
                groups.append(("text", "bart", self.text_variants(endpoint)))
            for workload, model, variants in groups:
                with ExitStack() as serving:
                    server = None
                    if "http" in plan.contenders:
                        server = serving.enter_context(
                            model_server(
                                model,
                                self.model_dirs[model],
                                plan.workers,
                                self.work / "logs" / f"server-{model}.log",
                            )
                        )
                        self.server_descriptions[workload] = server.description
                    for variant in variants:
                        self.run_variant(workload, variant, plan.repeats, server)
            if "scale" in plan.workloads:
                for variant in self.scale_variants():
                    self.run_variant("scale", variant, plan.scale_repeats, None)

    def save(self, path: Path) -> None:
        path.write_text(
            json.dumps(
                {
                    "plan": asdict(self.plan),
                    "servers": self.server_descriptions,
                    "measurements": [asdict(m) for m in self.measurements],
                },
                indent=1,
            )
        )
