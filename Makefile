# `make test` and `make demo` work on a fresh clone: they create .venv and install what they need.
# Two installs, so a first `make demo` fetches only the demo's packages (not the test servers: Bugsink,
# Django ...). Either order works: the dev install is a superset of the demo's.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo
DEMO_DURATION ?= 30

.PHONY: test lint typecheck unit unit-fast demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	touch $@

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[demo]'
	touch $@

lint: $(DEV_STAMP)
	$(BIN)/ruff check otel_model_health tests examples
	$(BIN)/ruff format --check otel_model_health tests examples

typecheck: $(DEV_STAMP)
	$(BIN)/mypy otel_model_health

# pytest exits 5 when it collects nothing; that is not a failure of the code.
unit: $(DEV_STAMP)
	$(BIN)/pytest -q tests; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

# The inner loop: every test that starts no process and no server (README, "Contributing").
unit-fast: $(DEV_STAMP)
	$(BIN)/pytest -q -m "not integration" tests

test: lint typecheck unit

demo: $(DEMO_STAMP)
	$(BIN)/otel-model-health demo --duration $(DEMO_DURATION)

bench: $(DEV_STAMP)
	$(BIN)/python -m tests.benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist
