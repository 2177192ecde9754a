# The README's commands. `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo sync test test-fast bench docs lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Generate the simulated town if absent, run the nightly sync on SQLite, print the summary.
demo: $(STAMP)
	$(BIN)/guichet demo

## Run the nightly job against the configured sources (guichet.toml / $$GUICHET_CONFIG).
sync: $(STAMP)
	$(BIN)/guichet sync

## The whole test suite, on the SQLite and PostgreSQL warehouses.
test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/sync_bench.py
	$(BIN)/python bench/reconcile_bench.py
	$(BIN)/python -m pip install -q -e '.[splink]'
	$(BIN)/python bench/linkage_compare.py
	$(BIN)/python bench/connector_bench.py

docs: $(STAMP)
	$(BIN)/guichet docs

lint: $(STAMP)
	$(BIN)/python -m pip install -q ruff && $(BIN)/ruff check .

clean:
	rm -rf var .pytest_cache
