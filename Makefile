# vdrift: two commands do all set-up on a fresh machine with Python 3.11 and make.
#   make demo   create .venv, install, ingest data/samples/demo, audit, attribute, explain, render the incident report
#   make test   create .venv, install (and chromium for the report tests, java for the Spark tests), run the whole suite
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLES := data/samples/demo
DEMO_DB := demo.duckdb
BASELINE := 2026-11-02..2026-11-09
COMPARISON := 2026-11-09..2026-11-16

.PHONY: demo test lint venv chromium java lab bench bench-100m clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 is required (python3.11 not found)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "vdrift needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (vdrift)" > /dev/null
	touch $(STAMP)

# Headless Chromium is what the report tests load the HTML with (Debian package), driven by Playwright
# (tests/browser.py, executable_path): Playwright's own browser download is never used.
chromium:
	@if ! command -v chromium > /dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null; fi; \
	fi
	@# /usr/bin/chromium sources /etc/chromium.d/dev-shm, whose `[ $$shm_avail -lt ... ]` breaks when findmnt lists
	@# /dev/shm more than once (stacked mounts, as in containers) and prints "[: ...: unexpected operator" (harmless:
	@# the test is only whether to add --disable-dev-shm-usage). That one line is dropped from the probe's stderr.
	@command -v chromium > /dev/null && { chromium --version 2>&1 1>&3 | { grep -v ': unexpected operator$$' || true; } >&2; } 3>&1

# A Java runtime is what pyspark (the `spark` extra, --engine spark, tests/engine/test_spark.py) starts its JVM with (Debian package).
java:
	@if ! command -v java > /dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless > /dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless > /dev/null; fi; \
	fi
	@java -version

demo: venv
	rm -f $(DEMO_DB) $(DEMO_DB).wal
	$(BIN)/vdrift ingest artifacts   $(SAMPLES)/artifacts.csv     --db $(DEMO_DB)
	$(BIN)/vdrift ingest deployments $(SAMPLES)/deployments.jsonl --db $(DEMO_DB)
	$(BIN)/vdrift ingest predictions $(SAMPLES)/predictions.csv.gz --db $(DEMO_DB)
	$(BIN)/vdrift status --db $(DEMO_DB)
	$(BIN)/vdrift audit --db $(DEMO_DB)
	$(BIN)/vdrift attribute --db $(DEMO_DB) --metric rate:prediction=approved \
	    --baseline $(BASELINE) --comparison $(COMPARISON) --method all
	$(BIN)/vdrift explain --db $(DEMO_DB) --metric rate:prediction=approved \
	    --baseline $(BASELINE) --comparison $(COMPARISON)
	$(BIN)/vdrift report incident --db $(DEMO_DB) --param metric=rate:prediction=approved --param baseline=$(BASELINE) --param comparison=$(COMPARISON) \
	    --param title="Sample service: approval-rate drop"
	@echo "make demo: done. Open the report.html printed above in a browser (it needs no network);"
	@echo "reports/index.html lists every run; 'make lab' opens the report notebooks in JupyterLab."

test: venv chromium java lint
	$(BIN)/python -m pytest -q --durations=20

# ruff over the package, the tests and the benchmarks (rules in pyproject.toml); `make test` runs it first.
# mypy (files and settings in pyproject.toml: toolkit and benchmarks) runs after it.
lint: venv
	$(BIN)/ruff check toolkit tests benchmarks
	$(BIN)/mypy

# JupyterLab on localhost only; as root (these machines, many containers) it needs --allow-root.
# LAB_FLAGS adds options, e.g. make lab LAB_FLAGS="--port=9999 --no-browser".
LAB_FLAGS ?=
lab: venv
	cd notebooks && ../$(BIN)/jupyter lab --notebook-dir=. --ip=127.0.0.1 \
	    $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_FLAGS)

bench: venv
	$(BIN)/python benchmarks/run.py --tiers 1m 10m

bench-100m: venv
	$(BIN)/python benchmarks/run.py --tiers 1m 10m 100m

clean:
	rm -rf $(VENV) $(DEMO_DB) $(DEMO_DB).wal .pytest_cache
