# Quick start: `make demo` then `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast lint schema bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,examples,dev]'
	touch $(STAMP)

venv: $(STAMP)

# The main job end to end against the embedded local store, ending with a clean-room verdict.
demo: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" bash .ci/demo.sh

test: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

test-fast: venv
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
