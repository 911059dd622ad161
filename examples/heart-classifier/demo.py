"""`make demo`: train the heart classifier and score the example CSVs on a loopback S3.

Starts a moto S3 server on 127.0.0.1, uploads the inputs to s3://data/heart/ and the MLflow
model to s3://models/heart/, writes a job manifest pointing at them, runs `kbt run` on it and
prints where the predictions are, the first rows of one output and the run's _manifest.json.
Exits non-zero when any step fails.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import prepare
import yaml
from moto.server import ThreadedMotoServer

from staging import run

OUTPUT_URI = "s3://results/heart/"
PREVIEW_ROWS = 5
SUMMARY_KEYS = ("job", "model", "counts", "errors", "timing")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def job_manifest(endpoint: str) -> list[dict[str, object]]:
    """The example's job.yaml with S3 locations instead of local folders."""
    job, model = yaml.safe_load_all((prepare.HERE / "job.yaml").read_text())
    job["spec"]["transformInput"]["dataSource"]["s3DataSource"]["s3Uri"] = "s3://data/heart/"
    job["spec"]["transformOutput"]["s3OutputPath"] = OUTPUT_URI
    job["spec"]["s3"] = {"endpointUrl": endpoint, "addressingStyle": "path"}
    model["spec"]["uri"] = "s3://models/heart/"
    return [job, model]


def show_results(endpoint: str) -> None:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket, _, prefix = OUTPUT_URI.removeprefix("s3://").partition("/")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    print(f"\npredictions written to {OUTPUT_URI} (endpoint {endpoint}):")
    for key in keys:
        print(f"  s3://{bucket}/{key}")
    outputs = [k for k in keys if k.endswith(".out")]
    if outputs:
        body = client.get_object(Bucket=bucket, Key=outputs[0])["Body"].read().decode()
        print(f"\nfirst rows of s3://{bucket}/{outputs[0]}:")
        print("\n".join(body.splitlines()[:PREVIEW_ROWS]))
    manifest_key = prefix + "_manifest.json"
    if manifest_key in keys:
        summary = json.loads(client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
        print(f"\ns3://{bucket}/{manifest_key} (summary):")
        print(json.dumps({key: summary.get(key) for key in SUMMARY_KEYS}, indent=2))
    for key in (k for k in keys if "/_errors/" in k):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        print(f"\nrejected records (s3://{bucket}/{key}):")
        print(body.strip())


def main() -> int:
    started = time.monotonic()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_DEFAULT_REGION="us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request lines from the S3 server
    server.start()
    try:
        print(f"S3 (moto) listening on {endpoint}; training the heart classifier ...")
        accuracy = prepare.prepare(s3_endpoint=endpoint)
        print(f"hold-out accuracy {accuracy:.3f}; uploaded s3://data/heart/ and s3://models/heart/")
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=OUTPUT_URI.removeprefix("s3://").split("/")[0])
        manifest = prepare.WORK / "demo-job.yaml"
        manifest.write_text(yaml.safe_dump_all(job_manifest(endpoint), sort_keys=False))
        kbt = Path(sys.executable).with_name("kbt")
        print(f"$ kbt run {manifest}")
        # The job's data goes through spec.s3.endpointUrl; the Model is fetched with boto3's own
        # configuration, so point that at the same server.
        env = {**os.environ, "AWS_ENDPOINT_URL_S3": endpoint}
        result = subprocess.run([str(kbt), "run", str(manifest)], env=env, check=False)
        if result.returncode != 0:
            print(f"kbt run failed with exit code {result.returncode}", file=sys.stderr)
            return result.returncode
        show_results(endpoint)
    finally:
        server.stop()
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    run(main)
