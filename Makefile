# `make test` and `make demo` work on a fresh clone: they create .venv and install what they need.
# Two installs, so a first `make demo` fetches only the demo's packages (not the test servers: Bugsink,
# Django ...). Either order works: the dev install is a superset of the demo's.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo
DEMO_DURATION ?= 30

.PHONY: test lint typecheck unit unit-fast demo bench clean redis-server

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

# The fleet tests start a real redis-server (Debian's package): installed here when missing, where apt-get
# and root are available (CI), else the message names the package to install.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing the Debian package redis-server (fleet tests)"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "the fleet tests need redis-server: install the Debian package redis-server"; exit 1; \
	  fi; }

# pytest exits 5 when it collects nothing; that is not a failure of the code.
unit: $(DEV_STAMP) redis-server
	$(BIN)/pytest -q tests; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

# The inner loop: every test that starts no process and no server (README, "Contributing").
unit-fast: $(DEV_STAMP)
	$(BIN)/pytest -q -m "not integration" tests

test: lint typecheck unit

demo: $(DEMO_STAMP)
	$(BIN)/otel-model-health demo --duration $(DEMO_DURATION)

bench: $(DEV_STAMP) redis-server
	$(BIN)/python -m tests.benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist
