# The two commands: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Services used by the tests when reachable (ARENA_REQUIRE_SERVICES=1 makes them mandatory).
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/arena
PYTEST_ARGS ?=
# Test processes (pytest-xdist); a file's tests stay in one process (module fixtures, servers).
TEST_WORKERS ?= 2

.PHONY: install run test lint bench bench-ratings bench-battles bench-leaderboard bench-import clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	@echo "--- the database tests again, on PostgreSQL ($(TEST_POSTGRES_URL))"
	ARENA_TEST_POSTGRES=1 DATABASE_URL=$(TEST_POSTGRES_URL) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "django_db and not browser" $(PYTEST_ARGS)

# Benchmarks print figures (medians); they assert nothing about time. PostgreSQL is needed
# for bench-leaderboard and for the PostgreSQL half of bench-import.
bench: bench-ratings bench-battles bench-leaderboard bench-import

bench-ratings: install
	$(PY) tests/benchmarks/bench_ratings.py

bench-battles: install
	$(PY) tests/benchmarks/bench_battles.py --battles 50 --rounds 3
	$(PY) tests/benchmarks/bench_battles.py --battles 50 --rounds 3 --spread 10

bench-leaderboard: install
	$(PY) tests/benchmarks/bench_leaderboard.py

bench-import: install
	$(PY) tests/benchmarks/bench_import.py

clean:
	rm -rf $(VENV) .pytest_cache

# The production topology on this machine (nginx, Daphne processes, Celery workers per queue,
# beat; PostgreSQL and Redis must be running): deploy/prod_local.py. Ctrl-C stops it.
PROD_LOCAL_ARGS ?=
.PHONY: prod-local bench-proxy
prod-local: install
	$(PY) deploy/prod_local.py $(PROD_LOCAL_ARGS)

bench-proxy: install
	$(PY) tests/benchmarks/bench_proxy.py
