# Two entry points for a fresh machine: `make run` and `make test`.
# `make test-pg`: the tests that use a database again, on a throw-away PostgreSQL 16 (pgserver).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: install run test test-pg lint bench
install: $(STAMP)

run: $(STAMP)
	$(BIN)/alvh start

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-pg: $(STAMP)
	ALVH_TEST_PG=1 $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	for f in bench/bench_*.py; do $(BIN)/python $$f || exit 1; done
