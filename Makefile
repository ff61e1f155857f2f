# The README's commands. Repeated runs reuse what is there: the venv is rebuilt only when
# pyproject.toml or the Rust sources change, Debian packages and Kafka jars are fetched only when missing.

PYTHON ?= python3.11
VENV   := .venv

# The compiled detectors (Cargo.toml, core/src) are built by `pip install` with cargo: rustup's
# (~/.cargo/bin, not on the PATH of every shell) when present, else the system's, else Debian's
# `cargo` is installed. Debian bookworm's cargo (1.65) reads the crates index only with the sparse
# protocol, unstable there (stable in 1.68): the build turns it on for such a cargo.
ifneq ($(wildcard $(HOME)/.cargo/bin/cargo),)
export PATH := $(HOME)/.cargo/bin:$(PATH)
endif
OLD_CARGO_ENV := if cargo --version | awk '{split($$2, v, "."); exit !(v[1] == 1 && v[2] < 68)}'; then \
  export RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_SPARSE_REGISTRY=true; fi
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends

.PHONY: venv deps test-deps test test-fast lint bench demo

# the engine's per-event Python compiled by mypyc (core/mypyc_build.py), rebuilt when its source changed;
# without a C compiler it stays plain Python (slower, the same results)
venv: $(STAMP)
	$(BIN)/python core/mypyc_build.py --if-stale

$(STAMP): pyproject.toml Cargo.toml Cargo.lock $(wildcard core/src/*.rs)
	@command -v cargo >/dev/null || { echo "installing Debian packages cargo rustc (no Rust toolchain found)"; \
	  $(SUDO) apt-get update && \
	  $(APT_INSTALL) cargo rustc gcc libc6-dev; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import pathlib, sys, sysconfig; sys.exit(not pathlib.Path(sysconfig.get_paths()['include'], 'Python.h').exists())" \
	  || { echo "installing Debian package python3.11-dev (C headers: the compiled engine, core/mypyc_build.py)"; \
	  $(SUDO) apt-get update && $(APT_INSTALL) python3.11-dev gcc; }
	$(OLD_CARGO_ENV); $(BIN)/pip install -q -e '.[dev]'
	touch $@

# Prometheus + Alertmanager (Debian packages, without the packages they only recommend) when missing,
# then the Kafka broker jars. The tests also need Chromium (the HTML report's browser test).
deps: venv
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null \
	    && command -v prometheus-alertmanager >/dev/null; then :; else \
	  echo "installing Debian packages prometheus prometheus-alertmanager"; \
	  $(SUDO) apt-get update && $(APT_INSTALL) prometheus prometheus-alertmanager; \
	fi
	$(BIN)/python -m monitor.stack ensure

test-deps: deps
	@command -v chromium >/dev/null || { echo "installing Debian package chromium (the HTML report's browser test)"; \
	  $(SUDO) apt-get update && $(APT_INSTALL) chromium; }

test: test-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -q tests/

test-fast: venv
	$(BIN)/pytest -q -m "not integration" tests/

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy detectors monitor

# every script runs even when one fails (e.g. check_identical after a deliberate alert change); the
# failures are named at the end and make the target fail
bench: venv
	@failed=""; for script in $(filter-out bench/_%,$(wildcard bench/*.py)); do \
	  echo "== $$script"; $(BIN)/python $$script || failed="$$failed $$script"; \
	done; \
	if [ -n "$$failed" ]; then echo "bench: failed:$$failed"; exit 1; fi

demo: deps
	$(BIN)/stagewatch demo
