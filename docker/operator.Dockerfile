# The kbt operator (kopf, run by `python -m kbt_operator`). Build from the repository root: docker build -f docker/operator.Dockerfile .
# Versions are pinned by docker/constraints.txt; runs as uid 1000 with a read-only root filesystem.
FROM python:3.11.13-slim-bookworm AS wheel
WORKDIR /src
RUN pip install --no-cache-dir hatchling==1.27.0
COPY pyproject.toml README.md ./
COPY runner runner
COPY operator operator
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

FROM python:3.11.13-slim-bookworm
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KBT_LOG_FORMAT=json
RUN useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin kbt
COPY docker/constraints.txt /tmp/constraints.txt
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --constraint /tmp/constraints.txt "$(ls /tmp/wheels/kbt-*.whl)[operator]" \
    && rm -rf /tmp/wheels /tmp/constraints.txt
USER 1000:1000
WORKDIR /home/kbt
EXPOSE 8080 9090
# Settings come from KBT_* variables (the Helm chart sets them; see kbt_operator/config.py).
ENTRYPOINT ["python", "-m", "kbt_operator"]
