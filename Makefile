# The two commands that matter: `make demo` and `make test`. Both work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR := out/demo

.PHONY: demo test lint typecheck unit bench serve clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## demo: ingest the example images through the embedded ImgGo simulator into SQLite
demo: $(STAMP)
	@rm -rf $(DEMO_DIR)
	IMGGO_FN_DATA_DIR=$(DEMO_DIR) IMGGO_FN_STORE_URL=sqlite:///$(DEMO_DIR)/jobs.db \
	  $(BIN)/imggo-fn ingest examples/*.png examples/*.jpg examples/*.gif \
	  --pattern image-facts --out $(DEMO_DIR)/results.jsonl
	@echo "stored in $(DEMO_DIR)/jobs.db; try: IMGGO_FN_STORE_URL=sqlite:///$(DEMO_DIR)/jobs.db $(BIN)/imggo-fn jobs list"

## test: lint, types and the whole test suite (what CI runs)
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check core imggo_cli

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

## bench: performance figures (not part of the tests)
bench: $(STAMP)
	$(BIN)/python -m bench

serve: $(STAMP)
	$(BIN)/imggo-fn serve

clean:
	rm -rf $(VENV) out data .pytest_cache .mypy_cache .ruff_cache
