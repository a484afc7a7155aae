# `make test` and `make demo` work on a fresh clone: they create .venv and install what they need.
# Two installs, so a first `make demo` fetches only the demo's packages (not the test servers: Bugsink,
# Django ...). Either order works: the dev install is a superset of the demo's.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo
DEMO_DURATION ?= 30

# Debian packages the tests use, as package:command; a package is installed when its command is missing
# (apt-get as root; elsewhere the target fails naming what to install). chromium: the status page's browser
# tests; prometheus: promtool, which checks the shipped alert rules; redis-server: the fleet store's tests
# and benchmark.
SYSTEM_PACKAGES := chromium:chromium prometheus:promtool redis-server:redis-server

.PHONY: test lint typecheck unit unit-fast demo bench clean system-packages

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

system-packages:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
	  command -v "$${entry##*:}" >/dev/null 2>&1 || missing="$$missing $${entry%%:*}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
	  echo "missing Debian packages:$$missing; install them (apt-get install$$missing) and rerun" >&2; exit 1; \
	fi

# pytest exits 5 when it collects nothing; that is not a failure of the code.
unit: $(DEV_STAMP) system-packages
	$(BIN)/pytest -q tests; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

# The inner loop: every test that starts no process and no server (README, "Contributing").
unit-fast: $(DEV_STAMP)
	$(BIN)/pytest -q -m "not integration" tests

test: lint typecheck unit

demo: $(DEMO_STAMP)
	$(BIN)/otel-model-health demo --duration $(DEMO_DURATION)

bench: $(DEV_STAMP) system-packages
	$(BIN)/python -m tests.benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist
