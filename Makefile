# taskmix — everything set up from nothing: `make demo`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test test-all bench clean

$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0          # the pinned CPU build first: an unpinned torch pulls CUDA
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: $(VENV)/.core
	$(PIP) install -e '.[text,e5,logging,mlflow,wandb,ray,dev]'   # mlflow, wandb: the tracking tests run, not skip
	touch $@

demo: $(VENV)/.core            ## the main job on the built-in benchmark
	$(VENV)/bin/taskmix demo --out demo

test: $(VENV)/.dev             ## the layers contract, then the default (fast) test suite
	$(VENV)/bin/lint-imports
	$(PY) tools/import_graph.py src/taskmix
	$(VENV)/bin/ruff check --no-cache src/taskmix
	$(VENV)/bin/mypy
	$(PY) -m pytest

test-all: $(VENV)/.dev         ## including slow end-to-end tests
	$(PY) -m pytest -m ''

bench: $(VENV)/.dev            ## benchmarks -> BENCHMARKS.md
	$(PY) benchmarks/bench_core.py

clean:
	rm -rf $(VENV) demo .pytest_cache
