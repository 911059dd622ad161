"""Start the model servers the HTTP contender calls, and wait until they answer /ping."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from bench.compare.storage import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Server:
    url: str  # the /invocations URL
    pid: int
    description: str


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"model server exited {process.returncode}; see {log}")
        try:
            if requests.get(base + "/ping", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"model server at {base} not ready after {timeout:.0f}s; see {log}")


@contextmanager
def model_server(workload: str, model_dir: Path, workers: int, log: Path) -> Iterator[Server]:
    """`mlflow models serve` for the MLflow model; uvicorn + invocations_server for the others."""
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = dict(
        os.environ,
        PATH=os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]),  # mlflow execs `uvicorn`
        PYTHONPATH=str(REPO),
        BENCH_WORKLOAD=workload,
        BENCH_MODEL_DIR=str(model_dir),
    )
    if workload == "heart":
        command = [
            str(bin_dir / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(workers),
        ]
        description = f"mlflow models serve --env-manager local -w {workers}"
    else:
        command = [
            str(bin_dir / "uvicorn"),
            "bench.compare.invocations_server:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ]
        description = f"uvicorn bench.compare.invocations_server --workers {workers}"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, process, log)
            yield Server(url=base + "/invocations", pid=process.pid, description=description)
        finally:
            # The server runs in its own session: end it and the workers it forked, by group id.
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
