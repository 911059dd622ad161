# The kbt runner for CPU shards: every model flavor, torch CPU wheel, tensorflow-cpu.
# Build from the repository root: docker build -f docker/runner.Dockerfile .
FROM python:3.11.13-slim-bookworm AS wheel
WORKDIR /src
RUN pip install --no-cache-dir hatchling==1.27.0
COPY pyproject.toml README.md ./
COPY runner runner
COPY operator operator
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

FROM python:3.11.13-slim-bookworm
ARG TORCH_VERSION=2.13.0
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KBT_LOG_FORMAT=json HF_HUB_OFFLINE=1 MPLCONFIGDIR=/tmp
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin kbt
COPY docker/constraints.txt /tmp/constraints.txt
# The CPU build of torch first, from PyTorch's CPU index, so nothing pulls the CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}"
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --constraint /tmp/constraints.txt \
        "$(ls /tmp/wheels/kbt-*.whl)[mlflow,sklearn,xgboost,torch,tensorflow,transformers,images]" \
    && rm -rf /tmp/wheels /tmp/constraints.txt
USER 1000:1000
WORKDIR /home/kbt
ENTRYPOINT ["kbt"]
CMD ["--help"]
