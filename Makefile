# Quick start: `make demo` then `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast lint schema bench clean

$(STAMP): pyproject.toml zkml_dvc/data/solc/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,examples,dev]'
	# solc-js from npm (the lock pins it): compiles ezkl's EVM verifiers offline (zkml_dvc/evm.py)
	mkdir -p $(VENV)/solc
	cp zkml_dvc/data/solc/package.json zkml_dvc/data/solc/package-lock.json $(VENV)/solc/
	npm ci --prefix $(VENV)/solc --no-audit --no-fund --loglevel=error
	touch $(STAMP)

# Test tools kept apart from the project's dependencies: mitmproxy (fault injection in the tests)
# pins a cryptography release that conflicts with the project's.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

$(TOOLS_STAMP):
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q "mitmproxy==11.0.2"
	touch $(TOOLS_STAMP)

venv: $(STAMP)

# The main job end to end against the embedded local store, ending with a clean-room verdict.
demo: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" bash .ci/demo.sh

# Chromium from Debian's packages for the run page's browser test (Playwright drives it; it never
# downloads a browser of its own).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get install -y -q chromium || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

test: venv $(TOOLS_STAMP) $(CHROMIUM)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

test-fast: venv $(TOOLS_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not slow"

lint: venv
	$(BIN)/ruff check zkml_dvc tests benchmarks
	$(BIN)/mypy zkml_dvc

schema: venv
	$(BIN)/zkml-dvc schema > docs/manifest.schema.json

bench: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/run_all.py

clean:
	rm -rf build .pytest_cache
