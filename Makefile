# crm_kernel: `make demo` brings the CRM up, `make test` proves it works.
# Both start from a bare checkout: they build .venv and install what the machine lacks.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_SCALE ?= 1
DEMO_SEED  ?= 42
PORT       ?= 8866
CHROMIUM   := /usr/bin/chromium

.PHONY: demo serve test lint format db db-stop postgres chromium venv clean help

help:
	@echo "make demo   start the embedded PostgreSQL, load demo data, serve the dashboards on http://127.0.0.1:$(PORT)"
	@echo "make serve  serve the dashboards again (the database must be up: make db)"
	@echo "make test   run the whole test suite (installs what is missing)"
	@echo "make lint   ruff check and ruff format --check over the package, tests and benchmarks"
	@echo "make format ruff format and the fixable ruff checks, in place"
	@echo "make db     start the embedded PostgreSQL and apply migrations"

venv: $(VENV)/.installed

# uv resolves and installs the stack in seconds; pip only bootstraps it.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev]'
	touch $@

# PostgreSQL server binaries with pg_trgm, from the distribution when missing.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ls /usr/share/postgresql/*/extension/pg_trgm.control >/dev/null 2>&1; then \
		echo "PostgreSQL binaries: $$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "Installing PostgreSQL with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql postgresql-contrib >/dev/null; \
	else \
		echo "PostgreSQL server binaries (with contrib/pg_trgm) are missing: install them with your package manager" >&2; exit 1; \
	fi

# Debian's Chromium for the browser tests (Playwright drives it; `playwright install` cannot download).
chromium:
	@if [ -x $(CHROMIUM) ]; then \
		echo "Chromium: $$($(CHROMIUM) --version 2>/dev/null)"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Chromium with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "Chromium is missing at $(CHROMIUM): the browser tests need it; install it with your package manager" >&2; exit 1; \
	fi

db: venv postgres
	$(BIN)/crm db start
	$(BIN)/crm db migrate

db-stop: venv
	$(BIN)/crm db stop

demo: db
	$(BIN)/crm demo-data --scale $(DEMO_SCALE) --seed $(DEMO_SEED) --if-empty
	$(BIN)/crm snapshot export           # the workbench's DuckDB choice works from the start
	$(BIN)/crm snapshot prune --keep 3
	@echo
	@echo "The CRM is up: $$($(BIN)/crm db url)  (the password: $(BIN)/crm db url --show-password)"
	@echo "Notebooks: $(BIN)/jupyter lab notebooks/getting_started.ipynb"
	@echo "Stop the database with: make db-stop"
	@echo
	@echo "Pipeline board: http://127.0.0.1:$(PORT)/voila/render/pipeline.ipynb"
	@echo "Dashboards: http://127.0.0.1:$(PORT)  (Ctrl-C stops serving them; the database keeps running)"
	$(BIN)/crm serve --port $(PORT) --no-sign-in

# The Voilà dashboards in the foreground, until Ctrl-C: on this machine only, without sign-in
# (serving a team: see the README's Dashboards section).
serve: venv
	$(BIN)/crm serve --port $(PORT) --no-sign-in

test: venv postgres chromium
	$(BIN)/python -m pytest

# One formatter (ruff format, 120 columns) so that a diff shows what changed, not how it was typed.
RUFF_PATHS := crm_kernel tests benchmarks conftest.py

lint: venv
	$(BIN)/ruff check $(RUFF_PATHS)
	$(BIN)/ruff format --check $(RUFF_PATHS)

format: venv
	$(BIN)/ruff format $(RUFF_PATHS)
	$(BIN)/ruff check --fix $(RUFF_PATHS)

clean:
	-$(BIN)/crm db stop
	rm -rf $(VENV) .crm
