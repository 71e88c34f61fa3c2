# Regime Lab. `make help` lists the targets.
# A virtual environment is created in .venv unless one is already active ($VIRTUAL_ENV, or a
# conda env other than base in $CONDA_PREFIX), in which case that one is used.

.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3

ifneq ($(strip $(VIRTUAL_ENV)),)
VENV := $(VIRTUAL_ENV)
else ifneq ($(filter-out base,$(strip $(CONDA_DEFAULT_ENV))),)
VENV := $(CONDA_PREFIX)
else
VENV := .venv
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.regime-lab-installed
EXTRAS ?= dev,lab,bench
PYTEST_WORKERS ?= auto
LLAMA_BUILD_ARGS ?=
XDIST := -n $(PYTEST_WORKERS) --no-loadscope-reorder

## Create the virtual environment (if none is active), install the package and register the kernel
install: $(STAMP)

# uv (from PyPI, into the environment) installs the same versions as pip in well under half
# the time; where it cannot be installed or cannot reach the index (a pip.conf mirror it does not
# read), pip does the install. Byte-compiled either way: with PYTHONDONTWRITEBYTECODE set,
# every process would otherwise compile every module it imports.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "creating virtual environment $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@if $(BIN)/python -m pip install --quiet uv >/dev/null 2>&1 \
	  && $(BIN)/python -m uv pip install --python $(BIN)/python --quiet --compile-bytecode -e ".[$(EXTRAS)]"; then \
	  echo "installed with uv"; \
	else \
	  echo "installing with pip"; \
	  $(BIN)/python -m pip install --quiet --upgrade pip && $(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"; \
	fi
	$(BIN)/python -m research.pipeline.kernel
	@touch $@

## Run every notebook with default parameters and render reports/_site/index.html (ARGS="--force" etc.)
report: install
	$(BIN)/research run $(ARGS)

# PYTEST_WORKERS processes (pytest-xdist); the tests of one notebook execution share a worker
## Run the whole test suite: every notebook executed once, both renders checked in a browser
test: install postgres browser
	$(BIN)/python -m research.testing.warm
	$(BIN)/python -m pytest tests -p no:cacheprovider --durations=15 -rs $(XDIST) $(PYTEST_ARGS)

## The suite without the slow tier (no notebook execution, render or browser): the edit loop
test-fast: install
	$(BIN)/python -m research.testing.warm
	$(BIN)/python -m pytest tests -m "not slow" -p no:cacheprovider --durations=10 $(XDIST) $(PYTEST_ARGS)

## Build llama.cpp's llama-server once into ~/.cache/regime-lab and fetch the default model (local LLM)
llama-server: install
	@$(BIN)/python -c "import sys; from research.llm.local_build import built_server, default_model_path; sys.exit(built_server() is None or default_model_path() is None)" \
	  || echo "one-time build of llama-server from PyPI's llama-cpp-python source (about 4 minutes on 2 cores; needs cmake, ninja, g++)"
	$(BIN)/research llm build-server $(LLAMA_BUILD_ARGS)

## Serve a local model on 127.0.0.1:8080 until Ctrl-C, building the server first if needed (ARGS="--model F.gguf")
serve-local: llama-server
	$(BIN)/research llm serve-local $(ARGS)

## Tests against a real local model server on 127.0.0.1 (builds it first when missing)
test-llm-local: install llama-server
	$(BIN)/python -m pytest tests/llm/test_local_server.py -p no:cacheprovider -v -rs $(PYTEST_ARGS)

## Install Debian's PostgreSQL server for the database tests when it is missing (as root, apt)
postgres: install
	@if $(BIN)/python -c "import sys; from research.testing.postgres import unavailable; sys.exit(unavailable() is not None)"; then \
	  echo "PostgreSQL binaries found: the database tests run against a throwaway server"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing PostgreSQL (apt-get install postgresql) for the database tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	    || echo "could not install PostgreSQL: the database tests will be skipped"; \
	else \
	  echo "PostgreSQL binaries not found and not installable here (needs root and apt-get): the database tests will be skipped"; \
	fi

## Install Debian's Chromium and its WebDriver for the browser test of the site (as root, apt)
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
	  echo "Chromium and chromedriver found: the browser test opens every page"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Chromium (apt-get install chromium chromium-driver) for the browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "could not install Chromium: the browser test will be skipped"; \
	else \
	  echo "Chromium not found and not installable here (needs root and apt-get): the browser test will be skipped"; \
	fi

## Open JupyterLab in the project's environment (kernel "Python (Regime Lab)")
lab: install
	$(BIN)/jupyter lab --notebook-dir=notebooks

## Lint and type-check (ruff, ruff format --check, mypy strict)
lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_import_layers.py

## Print benchmark figures (benchmarks/*.py)
bench: install
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

## Remove generated outputs (executed notebooks, site, build folders)
clean:
	rm -rf reports/executed reports/_site reports/.site-build-* reports/.quarto build data/cache

## List the targets
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-zA-Z_-]+:/{if(doc){split($$1,t,":"); printf "  \033[36m%-10s\033[0m %s\n", t[1], doc}; doc=""}' $(MAKEFILE_LIST)

.PHONY: install report test test-fast llama-server serve-local test-llm-local postgres browser lab lint bench clean help
