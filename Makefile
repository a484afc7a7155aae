# `make test` and `make demo` work on a fresh clone: they create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck unit demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check otel_model_health tests examples
	$(BIN)/ruff format --check otel_model_health tests examples

typecheck: $(STAMP)
	$(BIN)/mypy otel_model_health

# pytest exits 5 when it collects nothing; that is not a failure of the code.
unit: $(STAMP)
	$(BIN)/pytest -q tests; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

test: lint typecheck unit

demo: $(STAMP)
	$(BIN)/otel-model-health demo --duration 30

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist
