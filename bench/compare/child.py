"""Entry point of one baseline run in its own process: ``python -m bench.compare.child NAME TASK``.

The harness times the whole process (start to exit); each baseline reports the records it
wrote with ``emit_result``:
- pandas: the plain script a user writes: load the model, read each file (CSV in chunks of
  PANDAS_CHUNK rows, images and texts in mini-batches), predict, write;
- http: SageMaker Batch Transform's data plane: start the model server, wait until it answers
  /ping, then the client (read, split into payloads, POST with N in flight, write);
- ray: ``ray.init``, then a Ray Data pipeline (read, map_batches on an actor pool, write).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench.compare.models import IMAGE_PREP, batch_input, decode_chunks, decode_table, load_scorer
from bench.compare.procmon import emit_result
from bench.compare.servers import model_server
from bench.compare.storage import S3_ENV, Store
from bench.compare.task import Task

PANDAS_CHUNK = 100_000  # CSV rows the plain pandas script reads, predicts and writes at a time


def pandas_script(task: Task) -> None:
    score = load_scorer(task.workload, Path(task.model_dir))
    source, sink = Store(task.input_uri, task.s3_endpoint), Store(task.output_uri, task.s3_endpoint)
    names = source.list()
    records = 0
    if task.kind == "image":
        prep = IMAGE_PREP[task.workload]
        with sink.writer("predictions.csv") as out:
            out.write(b"file,prediction\n")
            for start in range(0, len(names), task.batch_size):
                chunk = names[start : start + task.batch_size]
                predictions = score(prep.stack([prep.decode(source.read(n)) for n in chunk]))
                out.write("".join(f"{n},{p}\n" for n, p in zip(chunk, predictions, strict=True)).encode())
                records += len(predictions)
        emit_result(records=records)
        return
    for name in names:
        rows = task.batch_size if task.kind == "text" else PANDAS_CHUNK
        with source.open(name) as data, sink.writer(name + ".out") as out:
            for index, frame in enumerate(decode_chunks(data, task, rows)):
                predictions = score(batch_input(task, frame))
                pd.DataFrame({"prediction": predictions}).to_csv(out, index=False, header=index == 0)
                records += len(predictions)
    emit_result(records=records)


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
        header, _, body = data.partition(b"\n")
        for payload in _csv_payloads(header + b"\n", body, limit):
            yield name, payload, "text/csv"


def http_client(task: Task) -> None:
    """Start the model server (a user of /invocations pays its start too), then the client."""
    scratch = Path(task.extra["scratch"])
    with model_server(task.workload, Path(task.model_dir), task.workers, scratch / "server.log") as server:
        _invoke_all(task, server.url)


def _invoke_all(task: Task, url: str) -> None:
    import requests

    local = threading.local()

    def invoke(body: bytes, content_type: str) -> list[Any]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        response = session.post(url, data=body, headers={"Content-Type": content_type}, timeout=600)
        response.raise_for_status()
        predictions: list[Any] = response.json()["predictions"]
        return predictions

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
    emit_result(records=sum(map(len, outputs.values())))


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
    source, output = _ray_path(task.input_uri), _ray_path(task.output_uri)
    batch_format = "numpy" if task.kind == "image" else "pandas"
    if task.kind == "image":
        prep = IMAGE_PREP[task.workload]
        size = None if prep.size is None else (prep.size[1], prep.size[0])
        dataset = ray.data.read_images(
            source, filesystem=filesystem, mode=prep.color_mode, size=size, include_paths=True
        )
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
    ray.shutdown()  # the harness counts the records in the output files


CONTENDERS: dict[str, Callable[[Task], None]] = {
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
