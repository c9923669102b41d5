# Pactum: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint format bench install install-dev clean

run: ## Install, migrate, seed the demo, start web + worker + beat (Ctrl-C stops all)
	@PYTHON=$(PYTHON) scripts/bootstrap.sh run
	@scripts/run.sh

test: ## Lint and run the whole test suite on throwaway PostgreSQL + Redis
	@PYTHON=$(PYTHON) scripts/bootstrap.sh dev
	@scripts/test.sh

lint: ## ruff + mypy (django-stubs)
	@PYTHON=$(PYTHON) scripts/bootstrap.sh dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=true $(BIN)/mypy .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: ## Benchmarks (timings live here, never in tests)
	@PYTHON=$(PYTHON) scripts/bootstrap.sh dev
	@scripts/test.sh --bench

install:
	@PYTHON=$(PYTHON) scripts/bootstrap.sh run

install-dev:
	@PYTHON=$(PYTHON) scripts/bootstrap.sh dev

clean: ## Remove the virtualenv and local data (database, broker files)
	rm -rf $(VENV) var
