"""A SageMaker-style model server (GET /ping, POST /invocations) for the image and text models.

``mlflow models serve`` takes only JSON/CSV frames, not raw image bytes, so the image and text
workloads are served by this Starlette app under uvicorn (one model copy per uvicorn worker),
configured by BENCH_WORKLOAD and BENCH_MODEL_DIR. Images: one image per request, as SageMaker
sends with SplitType None. Text: a CSV mini-batch with a `text` column.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pandas as pd
from bench.compare.models import IMAGE_PREP, load_scorer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

WORKLOAD = os.environ.get("BENCH_WORKLOAD", "mnist")
score = load_scorer(WORKLOAD, Path(os.environ.get("BENCH_MODEL_DIR", ".")))


def ping(_: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def invocations(request: Request) -> JSONResponse:
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("image/"):
        prep = IMAGE_PREP[WORKLOAD]
        batch: Any = prep.stack([prep.decode(body)])
    elif content_type.startswith("text/csv"):
        batch = list(pd.read_csv(io.BytesIO(body))["text"])
    else:
        return JSONResponse({"error": f"unsupported content type {content_type!r}"}, status_code=415)
    return JSONResponse({"predictions": score(batch)})


app = Starlette(
    routes=[Route("/ping", ping), Route("/invocations", invocations, methods=["POST"])],
)
