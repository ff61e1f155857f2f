# The README's commands. Repeated runs reuse what is there: the venv is rebuilt only when
# pyproject.toml changes, Debian packages and Kafka jars are fetched only when missing.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv deps test test-fast lint bench demo

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Prometheus + Alertmanager + Chromium (report test) (Debian packages) when missing, then the Kafka broker jars.
deps: venv
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null \
	    && command -v prometheus-alertmanager >/dev/null && command -v chromium >/dev/null; then :; else \
	  echo "installing Debian packages prometheus prometheus-alertmanager chromium"; \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus prometheus-alertmanager chromium; \
	fi
	$(BIN)/python -m monitor.stack ensure

test: deps
	$(BIN)/ruff check .
	$(BIN)/pytest -q tests/

test-fast: venv
	$(BIN)/pytest -q -m "not integration" tests/

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy detectors monitor

bench: venv
	@set -e; for script in $(wildcard bench/*.py); do \
	  echo "== $$script"; $(BIN)/python $$script; \
	done

demo: deps
	$(BIN)/stagewatch demo
