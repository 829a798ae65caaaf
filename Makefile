# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing,
# installs torch==2.13.0 first (the CPU wheel cached on these machines; any other spec pulls CUDA),
# then every part of lightspan (each folder below is its own distribution), then runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
# -n 2 on this 2-core machine; override with `make test PYTEST_WORKERS=0` to run serially.
PYTEST_WORKERS ?= 2
# The parts, dependencies first. Each is installed editable; its src/ layout makes that a static .pth
# entry (no import hook), which type checkers and IDEs follow. The root holds no code: a plain install.
PARTS := schemas storage instrumentation cli collector converters serving training demo
EDITABLE := $(foreach p,$(PARTS),-e $(p))

.PHONY: demo test lint typecheck format wheel-check bench clean venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml $(foreach p,$(PARTS),$(p)/pyproject.toml)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet $(EDITABLE) ".[dev]"
	touch $@

venv: $(VENV)/.installed-dev

demo: $(VENV)/.installed-dev
	$(BIN)/lightspan demo $(DEMO_ARGS)

# The static checks run first: a change that breaks formatting, lint or types fails fast.
test: lint typecheck
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile -q $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# basedpyright over every part, tests, benchmarks and examples; errors already in
# .basedpyright/baseline.json are tolerated, any new one fails (the baseline only shrinks).
typecheck: $(VENV)/.installed-dev
	$(BIN)/basedpyright

# Build every part's wheel and import it in a fresh venv (also run by the test suite).
wheel-check: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q tests/test_packaging.py

bench: $(VENV)/.installed-dev
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info */src/*.egg-info .pytest_cache
