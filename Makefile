# Two commands for a new user: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test test-slow bench lint mutation clean

$(INSTALLED): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3
	# torch comes from this machine's disk with the exact pins; the lock pins everything else.
	$(BIN)/pip install --quiet -r requirements.lock
	# The lock already holds every extra's packages: naming them here resolves nothing more.
	$(BIN)/pip install --quiet --no-deps -e '.[service,ray,test,dev,neuralop]'
	touch $@

demo: $(INSTALLED)
	$(BIN)/autoq demo

# Lint first: a type or style error fails the run before the (minutes-long) tests.
test: lint
	$(BIN)/python -m pytest -m "not slow" --durations=15

test-slow: $(INSTALLED)
	$(BIN)/python -m pytest -m slow

# Figures for benchmarks/RESULTS.md; the search-quality comparison alone takes hours on 2 cores.
bench: $(INSTALLED)
	$(BIN)/python benchmarks/datagen.py
	$(BIN)/python benchmarks/float_baselines.py
	$(BIN)/python benchmarks/float_reuse.py
	$(BIN)/python benchmarks/uniform_regimes.py
	$(BIN)/python benchmarks/trial_overhead.py
	$(BIN)/python benchmarks/service_load.py
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/search_quality.py

# mypy takes no arguments: [tool.mypy] in pyproject.toml lists the packages.
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Mutation testing of the core modules against their fast tests (mutmut, 2 workers; about 20
# minutes on 2 cores): per module, ≥ 90 % of mutants killed.
mutation: $(INSTALLED)
	$(BIN)/python benchmarks/mutation.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build dist mutants
