"""Entry point of one contender run in its own process: ``python -m bench.compare.child NAME TASK``.

Each contender times its own section and reports it with ``emit_result``:
- ceiling: only the loop of predict calls over mini-batches already decoded in memory;
- pandas: the whole plain script (load model, read each file, predict, write);
- http: the client (read, split into payloads, POST with N in flight, write); the server is up;
- ray: the Dataset pipeline (read, map_batches on an actor pool, write); Ray is initialised.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench.compare.models import IMAGE_PREP, batch_input, decode_table, load_scorer
from bench.compare.procmon import emit_result
from bench.compare.storage import S3_ENV, Store
from bench.compare.task import Task

CSV_TYPES = {"tabular": "text/csv", "text": "text/csv"}


def _decoded_batches(task: Task, store: Store) -> Iterator[Any]:
    """Mini-batches of `task.batch_size` records in the scorer's input form."""
    names = store.list()
    if task.kind == "image":
        prep = IMAGE_PREP[task.workload]
        for start in range(0, len(names), task.batch_size):
            yield prep.stack([prep.decode(store.read(n)) for n in names[start : start + task.batch_size]])
        return
    for name in names:
        frame = decode_table(store.read(name), task)
        for start in range(0, len(frame), task.batch_size):
            yield batch_input(task, frame.iloc[start : start + task.batch_size])


def ceiling(task: Task) -> None:
    store = Store(task.input_uri, task.s3_endpoint)
    batches = list(_decoded_batches(task, store))
    score = load_scorer(task.workload, Path(task.model_dir))
    started = time.perf_counter()
    records = sum(len(score(batch)) for batch in batches)
    emit_result(seconds=time.perf_counter() - started, records=records)


def pandas_script(task: Task) -> None:
    started = time.perf_counter()
    score = load_scorer(task.workload, Path(task.model_dir))
    source, sink = Store(task.input_uri, task.s3_endpoint), Store(task.output_uri, task.s3_endpoint)
    names = source.list()
    records = 0
    if task.kind == "image":
        prep = IMAGE_PREP[task.workload]
        rows: list[tuple[str, Any]] = []
        for start in range(0, len(names), task.batch_size):
            chunk = names[start : start + task.batch_size]
            rows.extend(
                zip(chunk, score(prep.stack([prep.decode(source.read(n)) for n in chunk])), strict=True)
            )
        sink.write(
            "predictions.csv", pd.DataFrame(rows, columns=["file", "prediction"]).to_csv(index=False).encode()
        )
        records = len(rows)
    else:
        for name in names:
            frame = decode_table(source.read(name), task)
            predictions = score(batch_input(task, frame))
            sink.write(name + ".out", pd.DataFrame({"prediction": predictions}).to_csv(index=False).encode())
            records += len(predictions)
    emit_result(seconds=time.perf_counter() - started, records=records)


# ---------------------------------------------------------------------------------------------
# HTTP invocations client (SageMaker Batch Transform's data plane)
# ---------------------------------------------------------------------------------------------


def _csv_payloads(header: bytes, body: bytes, limit: int) -> Iterator[bytes]:
    """Split CSV rows into payloads of at most `limit` bytes, each starting with the header."""
    lines = body.splitlines(keepends=True)
    payload: list[bytes] = [header]
    size = len(header)
    for line in lines:
        if size + len(line) > limit and len(payload) > 1:
            yield b"".join(payload)
            payload, size = [header], len(header)
        payload.append(line)
        size += len(line)
    if len(payload) > 1:
        yield b"".join(payload)


def _requests(task: Task, source: Store) -> Iterator[tuple[str, bytes, str]]:
    """(output name, body, content type) for every invocation, in input order."""
    limit = task.payload_mb * 1024 * 1024
    for name in source.list():
        data = source.read(name)
        if task.kind == "image":
            yield name, data, "image/jpeg" if task.input_format == "jpeg" else "image/png"
            continue
        if task.kind == "text":
            # Quoted fields span lines, so records are re-encoded; mini-batches of batch_size.
            frame = decode_table(data, task)
            for start in range(0, len(frame), task.batch_size):
                yield (
                    name,
                    frame.iloc[start : start + task.batch_size].to_csv(index=False).encode(),
                    "text/csv",
                )
            continue
        if task.input_format == "parquet":
            data = decode_table(data, task).to_csv(index=False).encode()
        header, _, body = data.partition(b"\n")
        for payload in _csv_payloads(header + b"\n", body, limit):
            yield name, payload, "text/csv"


def http_client(task: Task) -> None:
    import requests

    if task.http_url is None:
        raise ValueError("the http contender needs task.http_url")
    url = task.http_url
    local = threading.local()

    def invoke(body: bytes, content_type: str) -> list[Any]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        response = session.post(url, data=body, headers={"Content-Type": content_type}, timeout=600)
        response.raise_for_status()
        predictions: list[Any] = response.json()["predictions"]
        return predictions

    started = time.perf_counter()
    source, sink = Store(task.input_uri, task.s3_endpoint), Store(task.output_uri, task.s3_endpoint)
    outputs: dict[str, list[Any]] = {}
    in_flight = threading.BoundedSemaphore(task.workers * 2)
    with ThreadPoolExecutor(max_workers=task.workers) as pool:
        pending = []
        for name, body, content_type in _requests(task, source):
            in_flight.acquire()
            future = pool.submit(invoke, body, content_type)
            future.add_done_callback(lambda _: in_flight.release())
            pending.append((name, future))
        for name, future in pending:
            outputs.setdefault(name, []).extend(future.result())
    for name, predictions in outputs.items():
        sink.write(name + ".out", "".join(f"{json.dumps(p)}\n" for p in predictions).encode())
    emit_result(seconds=time.perf_counter() - started, records=sum(map(len, outputs.values())))


# ---------------------------------------------------------------------------------------------
# Ray Data
# ---------------------------------------------------------------------------------------------


class RayPredictor:
    """The actor class of map_batches: loads the model once, scores numpy/pandas batches."""

    def __init__(self, task_json: str) -> None:
        self.task = Task(**json.loads(task_json))
        self.score = load_scorer(self.task.workload, Path(self.task.model_dir))

    def __call__(self, batch: Any) -> Any:
        if self.task.kind == "image":
            prep = IMAGE_PREP[self.task.workload]
            return {"path": batch["path"], "prediction": np.asarray(self.score(prep.tensor(batch["image"])))}
        if self.task.kind == "text":
            return pd.DataFrame({"prediction": self.score(list(batch[self.task.text_column]))})
        return pd.DataFrame({"prediction": self.score(batch)})


def _ray_filesystem(task: Task) -> Any:
    if task.s3_endpoint is None:
        return None
    from pyarrow import fs

    return fs.S3FileSystem(
        endpoint_override=task.s3_endpoint.removeprefix("http://"),
        scheme="http",
        access_key=S3_ENV["AWS_ACCESS_KEY_ID"],
        secret_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region=S3_ENV["AWS_DEFAULT_REGION"],
    )


def _ray_path(uri: str) -> str:
    return uri.removeprefix("s3://")


def ray_data(task: Task) -> None:
    import ray
    import ray.data
    from pyarrow import csv as pacsv

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    filesystem = _ray_filesystem(task)
    Store(task.output_uri, task.s3_endpoint).clear()
    started = time.perf_counter()
    source, output = _ray_path(task.input_uri), _ray_path(task.output_uri)
    batch_format = "numpy" if task.kind == "image" else "pandas"
    if task.kind == "image":
        prep = IMAGE_PREP[task.workload]
        size = None if prep.size is None else (prep.size[1], prep.size[0])
        dataset = ray.data.read_images(
            source, filesystem=filesystem, mode=prep.color_mode, size=size, include_paths=True
        )
    elif task.input_format == "parquet":
        dataset = ray.data.read_parquet(source, filesystem=filesystem)
    else:
        convert = pacsv.ConvertOptions(column_types={"thal": "string"} if task.workload == "heart" else None)
        parse = pacsv.ParseOptions(newlines_in_values=task.kind == "text")
        dataset = ray.data.read_csv(
            source, filesystem=filesystem, parse_options=parse, convert_options=convert
        )
    predictions = dataset.map_batches(
        RayPredictor,
        fn_constructor_args=(json.dumps(task.__dict__),),
        batch_size=task.batch_size,
        batch_format=batch_format,
        compute=ray.data.ActorPoolStrategy(size=task.workers),
        # The pool shares one logical CPU so read and write tasks keep the other: with 1 CPU
        # per actor, N=2 actors hold both CPUs and the read tasks never get scheduled.
        num_cpus=1 / task.workers,
    )
    predictions.write_csv(output, filesystem=filesystem)
    seconds = time.perf_counter() - started
    records = sum(len(pd.read_csv(io.BytesIO(blob))) for blob in _outputs(task) if blob.strip())
    emit_result(seconds=seconds, records=records)
    ray.shutdown()


def _outputs(task: Task) -> Iterator[bytes]:
    sink = Store(task.output_uri, task.s3_endpoint)
    for name in sink.list():
        yield sink.read(name)


# ---------------------------------------------------------------------------------------------
# kbt: the local runner, and shard processes as an Indexed Job's pods run them
# ---------------------------------------------------------------------------------------------

KBT = str(Path(sys.executable).with_name("kbt"))


def _kbt_succeeded_records(task: Task) -> int:
    """Records kbt scored, from the job manifest it writes next to the outputs."""
    manifest = json.loads(Store(task.output_uri, task.s3_endpoint).read("_manifest.json"))
    return int(manifest["counts"]["succeeded"])


def _kbt_loaded_seconds(task: Task) -> float:
    """Seconds the shards needed once their model was loaded: records over the summed rates of
    the shards' last progress reports (rate = records / time since the model was ready)."""
    store = Store(task.output_uri, task.s3_endpoint)
    reports = [json.loads(store.read(name)) for name in store.list() if name.startswith("_kbt/progress/")]
    rate = sum(report["recordsPerSecond"] for report in reports)
    return sum(report["recordsProcessed"] for report in reports) / rate if rate else float("nan")


def _emit_kbt_result(task: Task, seconds: float) -> None:
    emit_result(
        seconds=seconds, records=_kbt_succeeded_records(task), loaded_seconds=_kbt_loaded_seconds(task)
    )


def kbt_run(task: Task) -> None:
    import subprocess

    from bench.compare.kbt_jobs import write_job_yaml

    job = write_job_yaml(task, Path(task.extra["scratch"]) / "job.yaml")
    started = time.perf_counter()
    subprocess.run([KBT, "run", str(job), "--workers", str(task.workers)], check=True, stdout=sys.stderr)
    _emit_kbt_result(task, time.perf_counter() - started)


def kbt_shards(task: Task) -> None:
    import subprocess

    from bench.compare.kbt_jobs import write_resolved_job

    job = write_resolved_job(task, Path(task.extra["scratch"]) / "job.json")
    started = time.perf_counter()
    shards = [
        subprocess.Popen([KBT, "shard", "--job", str(job), "--index", str(index)], stdout=sys.stderr)
        for index in range(task.workers)
    ]
    failed = [index for index, shard in enumerate(shards) if shard.wait() != 0]
    if failed:
        raise SystemExit(f"kbt shard failed for indexes {failed}")
    _emit_kbt_result(task, time.perf_counter() - started)


CONTENDERS: dict[str, Callable[[Task], None]] = {
    "kbt-run": kbt_run,
    "kbt-shards": kbt_shards,
    "ceiling": ceiling,
    "pandas": pandas_script,
    "http": http_client,
    "ray": ray_data,
}


def main() -> None:
    name, task_path = sys.argv[1], Path(sys.argv[2])
    if name not in CONTENDERS:
        raise SystemExit(f"unknown contender {name!r}; known: {', '.join(CONTENDERS)}")
    os.environ.update(S3_ENV)
    CONTENDERS[name](Task.load(task_path))


if __name__ == "__main__":
    main()
