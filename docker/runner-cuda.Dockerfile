# The kbt runner for GPU shards: CUDA runtime base, GPU builds of torch and tensorflow.
# Build from the repository root: docker build -f docker/runner-cuda.Dockerfile .
# TORCH_CUDA picks PyTorch's wheel index (cu126, cu128, ...) matching the base image's CUDA.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

FROM python:3.11.13-slim-bookworm AS wheel
WORKDIR /src
RUN pip install --no-cache-dir hatchling==1.27.0
COPY pyproject.toml README.md ./
COPY runner runner
COPY operator operator
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

FROM ${CUDA_IMAGE}
ARG TORCH_VERSION=2.13.0
ARG TORCH_CUDA=cu128
ARG TENSORFLOW_VERSION=2.21.0
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 KBT_LOG_FORMAT=json HF_HUB_OFFLINE=1 MPLCONFIGDIR=/tmp \
    PATH=/opt/kbt/bin:$PATH
RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3.11 python3.11-venv libgomp1 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/kbt \
    && useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin kbt
COPY docker/constraints.txt /tmp/constraints.txt
RUN pip install --index-url "https://download.pytorch.org/whl/${TORCH_CUDA}" "torch==${TORCH_VERSION}" \
    && grep -v '^tensorflow-cpu' /tmp/constraints.txt > /tmp/constraints-gpu.txt \
    && pip install --constraint /tmp/constraints-gpu.txt "tensorflow[and-cuda]==${TENSORFLOW_VERSION}"
COPY --from=wheel /wheels /tmp/wheels
# The tensorflow extra names tensorflow-cpu on x86_64; the GPU build is installed above instead.
RUN pip install --constraint /tmp/constraints-gpu.txt \
        "$(ls /tmp/wheels/kbt-*.whl)[mlflow,sklearn,xgboost,transformers,images]" \
    && rm -rf /tmp/wheels /tmp/constraints.txt /tmp/constraints-gpu.txt
USER 1000:1000
WORKDIR /home/kbt
ENTRYPOINT ["kbt"]
CMD ["--help"]
