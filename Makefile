# Two commands for a newcomer: `make demo` and `make test`. Both build .venv from nothing when it is
# missing or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The sample site's own hosts (mx1, mx2, out1, app*.example.org) are internal hops, not peers.
demo: $(STAMP)
	$(BIN)/tlslog report sample_logs/ --internal .example.org --period all -o weekly.html --quiet
	@echo "wrote weekly.html (a self-contained report: open it in a browser)"
	$(BIN)/tlslog summary sample_logs/ --internal .example.org

lint: $(STAMP)
	$(BIN)/ruff check tlslog tests benchmarks
	$(BIN)/lint-imports

test: lint
	MPLBACKEND=Agg $(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/harness.py

clean:
	rm -rf $(VENV) .pytest_cache weekly.html
