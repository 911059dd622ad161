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

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check runner operator tests bench examples
	$(VENV)/bin/mypy

crds: install ## Regenerate crds/ and the chart's copy from the pydantic models
	$(VENV)/bin/kbt crds --output-dir crds
