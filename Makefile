# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing,
# installs torch==2.13.0 first (the CPU wheel cached on these machines; any other spec pulls CUDA),
# then lightspan with the extras the role needs, then runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
# -n 2 on this 2-core machine; override with `make test PYTEST_WORKERS=0` to run serially.
PYTEST_WORKERS ?= 2

.PHONY: demo test lint wheel-check bench clean venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml setup.py
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

venv: $(VENV)/.installed-dev

demo: $(VENV)/.installed-dev
	$(BIN)/lightspan demo $(DEMO_ARGS)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile -q $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check . || true

# Build the wheel and import every part from it in a fresh venv (also run by the test suite).
wheel-check: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q tests/test_packaging.py

bench: $(VENV)/.installed-dev
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
