# kbt developer entry points. `make install` is idempotent; everything else assumes it ran.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PYTEST_ARGS ?=

.PHONY: help install demo test test-fast lint crds docs bench bench-runner bench-flavors bench-operator e2e

help: ## List targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	uv venv --quiet --allow-existing --python 3.11 $(VENV)
	@# Bytecode at install: every later process starts from cached .pyc (PYTHONDONTWRITEBYTECODE may be set).
	uv pip install --quiet --compile-bytecode --python $(PY) $(FIND_LINKS) -e '.[all,dev,bench]'
	$(PY) -m compileall -q -j 0 runner operator >/dev/null
	@touch $@

install: $(VENV)/.installed ## Create .venv with kbt and every model framework, test and bench tool

demo: install ## Train the heart classifier and score the example data on a loopback S3 (no cluster)
	$(PY) examples/heart-classifier/demo.py

test: install ## Run the whole test suite (unit, integration; e2e when KUBECONFIG reaches a cluster)
	@# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

e2e: install ## Operator and fault tests on the cluster in KUBECONFIG (settings: docs/e2e.md)
	$(PY) -m pytest tests/e2e -m e2e -v $(PYTEST_ARGS)

bench-operator: install ## Operator in its own process on kmock: 1,000 BatchTransformJobs -> Jobs (goal 30 s), calls, RSS
	$(PY) bench/operator_bench.py

lint: install ## ruff (lint and format) and mypy
	$(VENV)/bin/ruff check runner operator tests bench examples
	$(VENV)/bin/ruff format --check runner operator tests bench examples
	$(VENV)/bin/mypy

bench-runner: install ## Runner throughput: kbt run --workers 2 vs an in-process baseline, 1M heart rows
	$(PY) bench/runner_bench.py

crds: install ## Regenerate crds/ and the chart's copy from the pydantic models
	$(VENV)/bin/kbt crds --output-dir crds
	$(MAKE) --no-print-directory chart-sync

# --- chart, docs, images, local cluster (kind) ------------------------------------------------
KIND_CLUSTER ?= kbt
# Images are tagged with the project version, the chart's appVersion (its default image tag).
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
RELEASE ?= kbt
KBT_NAMESPACE ?= kbt-system
DOCKER ?= docker
KIND_IMAGES ?= kbt/operator:$(IMAGE_TAG) kbt/runner:$(IMAGE_TAG)
need = @command -v $(1) >/dev/null 2>&1 || { echo "$@: '$(1)' is not installed or not on PATH ($(2))" >&2; exit 1; }
# Images (docker/Dockerfile, docs/operations.md#images). BASE_IMAGE: the public python image, or
# the one `make base-image` makes where no registry answers. CA_BUNDLE (the host's, for PyPI
# behind a TLS-inspecting proxy) and WHEELS (a local wheel folder, e.g. the CPU torch) are staged
# into build/image-inputs for the build stage only, never into an image.
BASE_IMAGE ?= python:3.11.13-slim-bookworm
LOCAL_BASE_IMAGE ?= kbt/base:bookworm
CA_BUNDLE ?= $(or $(PIP_CERT),$(SSL_CERT_FILE))
WHEELS ?= $(PIP_FIND_LINKS)
DOCKER_BUILD_ARGS ?=
RUNNER_FRAMEWORKS_tabular := mlflow,sklearn,xgboost
RUNNER_FRAMEWORKS_torch := mlflow,torch,transformers,images
RUNNER_FRAMEWORKS_tf := mlflow,tensorflow,images
docker_build = $(DOCKER) build -f docker/Dockerfile --build-arg BASE_IMAGE=$(BASE_IMAGE) $(DOCKER_BUILD_ARGS)

.PHONY: chart-sync image-constraints images kind-up kind-down kind-load deploy undeploy minio
.PHONY: base-image image-inputs image-base-ready images-cpu images-runners image-operator image-runner image-runner-cuda image-test bench-image

chart-sync: ## Copy crds/ into charts/kbt/crds and regenerate the chart's RBAC from kbt_operator.rbac
	cp crds/*.yaml charts/kbt/crds/
	$(PY) -m kbt_operator.rbac > charts/kbt/files/operator-rules.yaml

docs: install ## Regenerate docs/crd-reference.md from the API models
	$(PY) -m kbt.api.docs docs/crd-reference.md

image-constraints: install ## Pin the images' Python packages to the versions in .venv
	{ echo "# Pinned versions for the images: the versions the test suite ran with."; \
	  echo "# Regenerate: make image-constraints"; \
	  uv pip freeze --python $(PY) | grep -v -e '^-e' -e '^kbt[= @]' -e 'file://' | sed 's/+cpu$$//'; } > docker/constraints.txt

images: images-cpu image-runner-cuda ## Build kbt/operator, kbt/runner (CPU) and kbt/runner-cuda, tagged $(IMAGE_TAG)

images-cpu: image-operator image-runner images-runners ## Build kbt/operator, kbt/runner (all CPU frameworks) and the family runners, not the CUDA image

images-runners: image-runner-tabular image-runner-torch image-runner-tf ## Build kbt/runner-tabular, -torch, -tf (one framework family each)

base-image: ## Make $(LOCAL_BASE_IMAGE) from Debian bookworm packages (debootstrap; root); then add BASE_IMAGE=$(LOCAL_BASE_IMAGE)
	$(call need,debootstrap,apt-get install debootstrap)
	@$(DOCKER) info >/dev/null 2>&1 || { echo "$@: '$(DOCKER)' cannot reach its daemon; start Docker and retry" >&2; exit 1; }
	DOCKER=$(DOCKER) docker/base-image.sh $(LOCAL_BASE_IMAGE)

image-base-ready:
	$(call need,$(DOCKER),install Docker or set DOCKER=podman)
	@$(DOCKER) info >/dev/null 2>&1 || { echo "images: '$(DOCKER)' cannot reach its daemon; start Docker and retry" >&2; exit 1; }
	@$(DOCKER) image inspect $(BASE_IMAGE) >/dev/null 2>&1 || $(DOCKER) pull --quiet $(BASE_IMAGE) >/dev/null 2>&1 || { \
	  echo "images: base image $(BASE_IMAGE) is not here and cannot be pulled; run 'make base-image' and add BASE_IMAGE=$(LOCAL_BASE_IMAGE)" >&2; exit 1; }

image-inputs: ## Stage build/image-inputs: the CA bundle (CA_BUNDLE) and local wheels (WHEELS) for the build stage
	rm -rf build/image-inputs && mkdir -p build/image-inputs/wheels
	$(if $(CA_BUNDLE),cp -p $(CA_BUNDLE) build/image-inputs/ca.crt)
	$(if $(wildcard $(WHEELS)/*.whl),for wheel in $(WHEELS)/*.whl; do ln -f "$$wheel" build/image-inputs/wheels/ 2>/dev/null || cp -p "$$wheel" build/image-inputs/wheels/; done)

image-operator: image-base-ready image-inputs
	$(docker_build) --target operator -t kbt/operator:$(IMAGE_TAG) .

image-runner: image-base-ready image-inputs
	$(docker_build) --target runner -t kbt/runner:$(IMAGE_TAG) .

image-runner-%: image-base-ready image-inputs
	$(if $(RUNNER_FRAMEWORKS_$*),,$(error no runner family '$*'; known: tabular torch tf))
	$(docker_build) --target runner --build-arg FRAMEWORKS=$(RUNNER_FRAMEWORKS_$*) -t kbt/runner-$*:$(IMAGE_TAG) .

image-runner-cuda: image-base-ready image-inputs
	$(docker_build) --target runner-cuda -t kbt/runner-cuda:$(IMAGE_TAG) .

image-test: install image-operator image-runner-tabular ## Build kbt/operator and kbt/runner-tabular, then run tests/image against them
	KBT_IMAGE_TAG=$(IMAGE_TAG) DOCKER=$(DOCKER) $(PY) -m pytest tests/image -v $(PYTEST_ARGS)

bench-image: install image-runner-tabular ## In-pod start-up: heart shard vs a minimal script in kbt/runner-tabular, first prediction
	DOCKER=$(DOCKER) $(PY) bench/image_bench.py --image kbt/runner-tabular:$(IMAGE_TAG)

kind-up: ## Create the kind cluster: control plane, a CPU worker, a GPU-labelled tainted worker
	$(call need,kind,https://kind.sigs.k8s.io/docs/user/quick-start/)
	kind get clusters | grep -qx $(KIND_CLUSTER) || kind create cluster --name $(KIND_CLUSTER) --config kind-config.yaml

kind-down: ## Delete the kind cluster
	$(call need,kind,https://kind.sigs.k8s.io/docs/user/quick-start/)
	kind delete cluster --name $(KIND_CLUSTER)

kind-load: ## Load the images into kind (KIND_IMAGES; add kbt/runner-cuda:$(IMAGE_TAG) for GPU jobs)
	$(call need,kind,https://kind.sigs.k8s.io/docs/user/quick-start/)
	kind load docker-image --name $(KIND_CLUSTER) $(KIND_IMAGES)

# Without a helm binary, deploy/helm_release.py does the same through helm-python-sdk (.venv).
no_helm = echo "$@: needs a helm binary (https://helm.sh/docs/intro/install/) or helm-python-sdk in $(VENV) (make install)" >&2; exit 1
helm_sdk = $(PY) -c 'import helm_python' 2>/dev/null

deploy: ## helm upgrade --install the chart with charts/kbt/ci/kind-values.yaml into $(KBT_NAMESPACE) (helm or helm-python-sdk)
	@if command -v helm >/dev/null 2>&1; then set -x; \
	  helm upgrade --install $(RELEASE) charts/kbt --namespace $(KBT_NAMESPACE) --create-namespace \
	    --values charts/kbt/ci/kind-values.yaml $(HELM_ARGS) --wait --timeout 5m; \
	elif $(helm_sdk); then set -x; \
	  $(PY) deploy/helm_release.py install $(RELEASE) charts/kbt --namespace $(KBT_NAMESPACE) \
	    --values charts/kbt/ci/kind-values.yaml $(HELM_ARGS) --wait --timeout 300; \
	else $(no_helm); fi

undeploy: ## helm uninstall the chart (the CRDs and your jobs stay)
	@if command -v helm >/dev/null 2>&1; then set -x; helm uninstall $(RELEASE) --namespace $(KBT_NAMESPACE); \
	elif $(helm_sdk); then set -x; $(PY) deploy/helm_release.py uninstall $(RELEASE) --namespace $(KBT_NAMESPACE); \
	else $(no_helm); fi

minio: ## MinIO in kbt-system, buckets data/models/results, the kbt-s3 Secret
	$(call need,kubectl,https://kubernetes.io/docs/tasks/tools/)
	kubectl apply -f deploy/minio.yaml
	kubectl -n kbt-system rollout status deployment/minio --timeout=180s
	kubectl -n kbt-system wait --for=condition=complete job/minio-buckets --timeout=180s

bench-flavors: install ## Flavor overhead vs a bare framework loop on CPU (MNIST torch/keras, ResNet50)
	$(PY) bench/flavors_bench.py

BENCH_ARGS ?=
bench: install ## Time to first prediction + end to end vs pandas, Ray Data, HTTP -> bench/results/latest.md (<20 min; BENCH_ARGS=--quick: <3 min -> bench/results/quick/)
	$(PY) -m bench.compare $(BENCH_ARGS)

.PHONY: chaos
chaos: install ## Fault injection at full strength (50 shard kills per mode, S3 faults, 20 operator kills, disk full, OOM) + bad input, fuzz, security; prints a summary table
	$(PY) bench/chaos_report.py
