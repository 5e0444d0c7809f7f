# amebo: `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-faults lint format bench clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv with amebo and the dev tools

run: $(STAMP) ## start amebo (embedded PostgreSQL unless AMEBO_DATABASE_URL is set)
	$(BIN)/amebo serve $(ARGS)

test: $(STAMP) ## run the test suite (finds or starts PostgreSQL itself)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-faults: $(STAMP) ## the full fault suite: thousands of events per fault, a 10-minute soak
	rm -f fault-report.txt
	AMEBO_FAULTS=full AMEBO_FAULT_REPORT=fault-report.txt \
		$(BIN)/python -m pytest tests/faults --timeout 1800 $(PYTEST_ARGS)
	@cat fault-report.txt

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check amebo tests benchmarks
	$(BIN)/ruff format --check amebo tests benchmarks
	$(BIN)/mypy amebo

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix amebo tests benchmarks
	$(BIN)/ruff format amebo tests benchmarks

bench: $(STAMP) ## quick benchmarks of every scenario (ARGS="publish --full" for others)
	@$(BIN)/python -c "import matplotlib, tqdm, psutil, procrastinate" 2>/dev/null \
		|| $(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks $(or $(ARGS),all --quick)

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
