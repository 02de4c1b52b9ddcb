# The two commands of the README:
#   make run   set up the environment (once) and reproduce the default DAG with DVC
#   make test  set up the environment (once) and run the test suite
# Both are idempotent: the environment is rebuilt only when the lock file changes, and
# `dvc repro` reruns only stages whose code, parameters or inputs changed.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
export KEDRO_DISABLE_TELEMETRY := true
export SDL_VIDEODRIVER := dummy
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup run test bench viz clean-venv

setup: $(STAMP)

# torch is pinned to the local CPU build in the lock; pip resolves nothing beyond it.
$(STAMP): requirements/lock.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements/lock.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: setup
	dvc repro
	@echo "Results: data/08_reporting/ (dvc metrics show; dvc plots show)"

test: setup
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks
	pytest -n 2 --dist loadfile

bench: setup
	python benchmarks/cleaning_throughput.py

clean-venv:
	rm -rf $(VENV)
