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
	uv pip install --quiet --python $(PY) $(FIND_LINKS) -e '.[all,dev,bench]'
	@touch $@

install: $(VENV)/.installed ## Create .venv with kbt and every model framework, test and bench tool

demo: install ## Train the heart classifier and score the example data on a loopback S3 (no cluster)
	$(PY) examples/heart-classifier/demo.py

test: install ## Run the whole test suite (unit, integration; e2e when KUBECONFIG reaches a cluster)
	@# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

e2e: install ## Operator tests on the cluster in KUBECONFIG (env: tests/e2e/test_operator_cluster.py)
	$(PY) -m pytest tests/e2e -m e2e -v $(PYTEST_ARGS)

bench-operator: install ## Operator on kmock: 200 BatchTransformJobs -> Jobs, status lag, RSS
	$(PY) bench/operator_bench.py --jobs 200

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check runner operator tests bench examples
	$(VENV)/bin/mypy

bench-runner: install ## Runner throughput: kbt run --workers 2 vs an in-process baseline, 1M heart rows
	$(PY) bench/runner_bench.py

crds: install ## Regenerate crds/ and the chart's copy from the pydantic models
	$(VENV)/bin/kbt crds --output-dir crds
	$(MAKE) --no-print-directory chart-sync

# --- chart, docs, images, local cluster (kind) ------------------------------------------------
KIND_CLUSTER ?= kbt
IMAGE_TAG ?= dev
RELEASE ?= kbt
KBT_NAMESPACE ?= kbt-system
DOCKER ?= docker
KIND_IMAGES ?= kbt/operator:$(IMAGE_TAG) kbt/runner:$(IMAGE_TAG)
need = @command -v $(1) >/dev/null 2>&1 || { echo "$@: '$(1)' is not installed or not on PATH ($(2))" >&2; exit 1; }

.PHONY: chart-sync image-constraints images kind-up kind-down kind-load deploy undeploy minio

chart-sync: ## Copy crds/ into charts/kbt/crds and regenerate the chart's RBAC from kbt_operator.rbac
	cp crds/*.yaml charts/kbt/crds/
	$(PY) -m kbt_operator.rbac > charts/kbt/files/operator-rules.yaml

docs: install ## Regenerate docs/crd-reference.md from the API models
	$(PY) -m kbt.api.docs docs/crd-reference.md

image-constraints: install ## Pin the images' Python packages to the versions in .venv
	{ echo "# Pinned versions for the images: the versions the test suite ran with."; \
	  echo "# Regenerate: make image-constraints"; \
	  uv pip freeze --python $(PY) | grep -v -e '^-e' -e '^kbt[= @]' -e 'file://' | sed 's/+cpu$$//'; } > docker/constraints.txt

images: ## Build the operator, runner (CPU) and runner-cuda images, tagged $(IMAGE_TAG)
	$(call need,$(DOCKER),install Docker or set DOCKER=podman)
	@$(DOCKER) info >/dev/null 2>&1 || { echo "images: '$(DOCKER)' cannot reach its daemon; start Docker and retry" >&2; exit 1; }
	$(DOCKER) build -f docker/operator.Dockerfile -t kbt/operator:$(IMAGE_TAG) .
	$(DOCKER) build -f docker/runner.Dockerfile -t kbt/runner:$(IMAGE_TAG) .
	$(DOCKER) build -f docker/runner-cuda.Dockerfile -t kbt/runner-cuda:$(IMAGE_TAG) .

kind-up: ## Create the kind cluster: control plane, a CPU worker, a GPU-labelled tainted worker
	$(call need,kind,https://kind.sigs.k8s.io/docs/user/quick-start/)
	kind get clusters | grep -qx $(KIND_CLUSTER) || kind create cluster --name $(KIND_CLUSTER) --config kind-config.yaml

kind-down: ## Delete the kind cluster
	$(call need,kind,https://kind.sigs.k8s.io/docs/user/quick-start/)
	kind delete cluster --name $(KIND_CLUSTER)

kind-load: ## Load the images into kind (KIND_IMAGES; add kbt/runner-cuda:$(IMAGE_TAG) for GPU jobs)
	$(call need,kind,https://kind.sigs.k8s.io/docs/user/quick-start/)
	kind load docker-image --name $(KIND_CLUSTER) $(KIND_IMAGES)

deploy: ## helm upgrade --install the chart with charts/kbt/ci/kind-values.yaml into $(KBT_NAMESPACE)
	$(call need,helm,https://helm.sh/docs/intro/install/)
	helm upgrade --install $(RELEASE) charts/kbt --namespace $(KBT_NAMESPACE) --create-namespace \
	  --values charts/kbt/ci/kind-values.yaml $(HELM_ARGS) --wait --timeout 5m

undeploy: ## helm uninstall the chart (the CRDs and your jobs stay)
	$(call need,helm,https://helm.sh/docs/intro/install/)
	helm uninstall $(RELEASE) --namespace $(KBT_NAMESPACE)

minio: ## MinIO in kbt-system, buckets data/models/results, the kbt-s3 Secret
	$(call need,kubectl,https://kubernetes.io/docs/tasks/tools/)
	kubectl apply -f deploy/minio.yaml
	kubectl -n kbt-system rollout status deployment/minio --timeout=180s
	kubectl -n kbt-system wait --for=condition=complete job/minio-buckets --timeout=180s

bench-flavors: install ## Flavor overhead vs a bare framework loop on CPU (MNIST torch/keras, ResNet50)
	$(PY) bench/flavors_bench.py

BENCH_ARGS ?=
bench: install ## kbt vs HTTP invocations, Ray Data, pandas, in-memory ceiling -> bench/results/latest.md (~15-20 min; BENCH_ARGS=--quick, --rows 10000000)
	$(PY) -m bench.compare $(BENCH_ARGS)

.PHONY: chaos
chaos: install ## Fault injection at full strength (50 shard kills per mode, S3 faults, 20 operator kills, disk full, OOM) + bad input, fuzz, security; prints a summary table
	$(PY) bench/chaos_report.py
