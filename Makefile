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

.PHONY: setup run test bench viz browser clean-venv

setup: $(STAMP)

# torch is pinned to the local CPU build in the lock; pip resolves nothing beyond it.
$(STAMP): requirements/lock.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements/lock.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: setup
	dvc repro
	@echo
	@echo "Results are in data/08_reporting/:"
	@echo "  evaluation.json, evaluation_comparison.png, evaluation_videos/  robot evaluation"
	@echo "  sample_efficiency.csv/.png          FoG vs PPO against world-model transitions"
	@echo "  policy_training.json, policy_imagination.png                     FoG training"
	@echo "  world_model_metrics.json, surrogate_metrics.json                 model fidelity"
	@echo "Policy bundles: data/06_models/policy, data/06_models/ppo_policy"
	@echo "Tables: dvc metrics show    Curves: dvc plots show    DAG: make viz"

# Headless Chromium for the kedro-viz browser test (tests/e2e). `make test` installs it
# only where it can (root with apt-get, as on CI); elsewhere, or if the install fails
# (no network), that one test skips and says why.
CAN_APT := $(if $(and $(shell command -v apt-get),$(filter 0,$(shell id -u))),yes)

browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif [ -n "$(CAN_APT)" ]; then \
	  echo "Installing chromium (apt-get) for the kedro-viz browser test"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || echo "WARNING: chromium install failed: the browser test will skip"; \
	else echo "No chromium and no root apt-get: the browser test will skip"; fi

test: setup $(if $(CAN_APT),browser)
	ruff check src tests benchmarks notebooks scripts
	ruff format --check src tests benchmarks notebooks scripts
	pytest -n 2 --dist loadfile

bench: setup
	python benchmarks/cleaning_throughput.py

viz: setup
	kedro viz run

clean-venv:
	rm -rf $(VENV)
