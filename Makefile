# tabpipe: `make run` trains on the bundled demo, `make test` runs the whole suite.
# Both build .venv from requirements.lock first (exact pins), so a fresh clone needs nothing else.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Quiet, offline, persistent Prefect (docs/prefect.md): the same project home `tabpipe` uses.
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_EPHEMERAL_ENABLED := true
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 60

DEMO_CONFIG ?= configs/penguins.yaml
SERVER_PORT ?= 4200

.PHONY: setup run test lint typecheck docs unit browser bench corpus server server-stop serve clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet --requirement requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --editable .
	$(BIN)/python -m compileall -q flows tasks schemas  # as pip does for an installed package
	touch $(STAMP)

# Debian's chromium for the browser tests (the UI and report pages are products).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

run: $(STAMP)
	$(BIN)/tabpipe train $(DEMO_CONFIG)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# A broken link or a page missing from the nav fails the build (strict).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(CURDIR)/site

test: $(STAMP) browser lint typecheck docs
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# Zero-config tabpipe against a careful script on real tables: make corpus CORPUS=/path/to/folder
# (writes benchmarks/corpus.md; CPU-heavy, 10-20 minutes).
CORPUS ?=
corpus: $(STAMP)
	@if [ -z "$(CORPUS)" ]; then \
		echo "Say which folder holds the tables: make corpus CORPUS=/path/to/folder"; exit 2; fi
	$(BIN)/python -m benchmarks.corpus "$(CORPUS)"

# The project's Prefect server in the background (UI at http://127.0.0.1:$(SERVER_PORT)); every
# tabpipe command (make run, make serve, the README's) then reports to it.
server: $(STAMP)
	$(BIN)/tabpipe server start --port $(SERVER_PORT)

server-stop: $(STAMP)
	$(BIN)/tabpipe server stop

# Deployments of every config in configs/, on the server `make server` started.
serve: $(STAMP)
	$(BIN)/tabpipe serve

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache site
