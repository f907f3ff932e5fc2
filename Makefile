# The two commands that matter: `make demo` and `make test`. Both work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# Two installs: the demo needs only the laptop extra (the simulator, the CLI's output,
# the serve server) - seconds; the tests need every cloud SDK and tool - minutes.
LOCAL_STAMP := $(VENV)/.installed-local
DEV_STAMP := $(VENV)/.installed-dev
DEMO_DIR := out/demo

.PHONY: demo test lint typecheck unit bench serve clean fuzz browser tools azure-worker

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(LOCAL_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e '.[local]'
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev]'
	@touch $@ $(LOCAL_STAMP)  # the dev extra includes the local one

## demo: ingest the example images through the embedded ImgGo simulator into SQLite
demo: $(LOCAL_STAMP)
	@rm -rf $(DEMO_DIR)
	IMGGO_FN_DATA_DIR=$(DEMO_DIR) $(BIN)/imggo-fn ingest examples/*.png examples/*.jpg examples/*.gif \
	  --pattern image-facts --out $(DEMO_DIR)/results.jsonl
	@echo "stored in $(DEMO_DIR)/imggo-fn.db; try: IMGGO_FN_DATA_DIR=$(DEMO_DIR) $(BIN)/imggo-fn jobs list"

NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

## browser: Debian's chromium, which the dashboard tests drive through Playwright (pip, in
## the dev extra; Playwright's own browser download is never used). Installed when missing
## and we may; otherwise those tests fail and say how to get it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the dashboard tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	      || echo "note: could not install chromium: the dashboard tests will fail"; \
	  else \
	    echo "note: no chromium (apt-get install chromium as root): the dashboard tests will fail"; \
	  fi; }

## tools: the descriptor validators the tests run, each in its own venv - SAM CLI on the
## Lambda runtime's Python 3.12 (found by deploy/find-python312.sh; fails clearly if none)
## and checkov (its pins clash with the dev venv's)
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(SAM_STAMP): deploy/tools/sam-requirements.txt deploy/find-python312.sh
	@py312="$$(bash deploy/find-python312.sh)" || exit 1; \
	  test -x $(SAM_VENV)/bin/python || "$$py312" -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r deploy/tools/sam-requirements.txt
	@touch $@

$(CHECKOV_STAMP): deploy/tools/checkov-requirements.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r deploy/tools/checkov-requirements.txt
	@touch $@

tools: $(SAM_STAMP) $(CHECKOV_STAMP)

## azure-worker: the real Azure Functions Python worker (azure-functions-runtime, the
## library worker of Python 3.13+) with the app's requirements.txt, in its own venv on a
## Python 3.13 (found by deploy/find-python.sh: AZURE_PY313, PATH, then pyenv; fails
## clearly if none). tests/azure/test_worker_indexing.py runs function_app.py through it.
AZURE_WORKER_VENV := .venv-azure-worker
AZURE_WORKER_STAMP := $(AZURE_WORKER_VENV)/.installed

$(AZURE_WORKER_STAMP): deploy/tools/azure-worker-requirements.txt requirements.txt deploy/find-python.sh
	@py313="$$(bash deploy/find-python.sh 3.13 AZURE_PY313 'the Azure Functions worker tier runs on it')" \
	  || exit 1; test -x $(AZURE_WORKER_VENV)/bin/python || "$$py313" -m venv $(AZURE_WORKER_VENV)
	$(AZURE_WORKER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r deploy/tools/azure-worker-requirements.txt
	@touch $@

azure-worker: $(AZURE_WORKER_STAMP)

## test: lint, types and the whole test suite (what CI runs)
test: $(DEV_STAMP) $(NODE_STAMP) tools azure-worker browser lint typecheck
	$(BIN)/python -m pytest -q

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check core imggo_cli handlers_aws handlers_gcp handlers_azure bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

unit: $(DEV_STAMP)
	$(BIN)/python -m pytest -q tests/unit

## fuzz: Schemathesis (every check, positive and negative data) against `imggo-fn serve`;
## not part of `make test` (minutes). FUZZ_EXAMPLES=200 for a quicker pass.
FUZZ_VENV := .venv-fuzz
FUZZ_STAMP := $(FUZZ_VENV)/.installed
FUZZ_EXAMPLES ?= 1000
# Its own venv: Schemathesis pins its own hypothesis and friends.
$(FUZZ_STAMP): fuzz/requirements.txt
	@test -x $(FUZZ_VENV)/bin/python || $(PYTHON) -m venv $(FUZZ_VENV)
	$(FUZZ_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r fuzz/requirements.txt
	@touch $(FUZZ_STAMP)

fuzz: $(DEV_STAMP) $(FUZZ_STAMP)
	$(BIN)/python fuzz/run.py --max-examples $(FUZZ_EXAMPLES) --schemathesis $(FUZZ_VENV)/bin/schemathesis

serve: $(LOCAL_STAMP)
	$(BIN)/imggo-fn serve

clean:
	rm -rf $(VENV) $(FUZZ_VENV) $(SAM_VENV) $(CHECKOV_VENV) $(AZURE_WORKER_VENV) out data .pytest_cache .mypy_cache .ruff_cache

## package-aws: the Lambda artifact (core + handlers_aws + runtime deps, python3.12 arm64,
## no boto3, bytecode compiled by a Python 3.12 as the runtime's) in build/aws/ and
## build/aws.zip; `sam build` runs the same recipe. No 3.12, no artifact: Lambda's
## /var/task is read-only, so an artifact without bytecode recompiles on every cold start.
AWS_BUILD := build/aws
AWS_ZIP := build/aws.zip
AWS_STAMP := $(AWS_BUILD)/.built
AWS_SOURCES := $(shell find core handlers_aws -name '*.py' -not -path '*/__pycache__/*' 2>/dev/null)
AWS_PIP ?= $(PYTHON) -m pip

.PHONY: package-aws build-HttpFunction build-WorkerFunction build-UploadFunction build-ReconcileFunction

package-aws: $(AWS_STAMP)
	@echo "Lambda artifact: $(AWS_ZIP) $$(du -k $(AWS_ZIP) | cut -f1) KiB zipped, $$(du -sk --exclude=.built $(AWS_BUILD) | cut -f1) KiB unpacked"

$(AWS_STAMP): handlers_aws/requirements.txt deploy/find-python312.sh $(AWS_SOURCES)
	@# First, before anything is built: the interpreter whose bytecode Lambda can load.
	@py312="$$(bash deploy/find-python312.sh)" || exit 1; \
	set -e; \
	echo "bytecode by $$py312"; \
	rm -rf $(AWS_BUILD) $(AWS_ZIP); \
	mkdir -p $(AWS_BUILD); \
	$(AWS_PIP) install --quiet --disable-pip-version-check --no-compile \
	  --platform manylinux2014_aarch64 --only-binary=:all: --python-version 3.12 \
	  --implementation cp --target $(AWS_BUILD) -r handlers_aws/requirements.txt; \
	if [ -d $(AWS_BUILD)/boto3 ] || [ -d $(AWS_BUILD)/botocore ]; then \
	  echo "boto3/botocore must not be in the artifact (the runtime provides them)"; exit 1; fi; \
	cp -R core handlers_aws $(AWS_BUILD)/; \
	find $(AWS_BUILD) -depth -name '__pycache__' -exec rm -rf {} +; \
	rm -rf $(AWS_BUILD)/bin; \
	"$$py312" -m compileall -q -j 0 --invalidation-mode unchecked-hash $(AWS_BUILD); \
	cd $(AWS_BUILD) && $(PYTHON) -m zipfile -c $(abspath $(AWS_ZIP)) $$(ls -A | grep -v '^\.built$$')
	@touch $(AWS_STAMP)

# SAM's `BuildMethod: makefile`: each function gets the same artifact in ARTIFACTS_DIR.
build-HttpFunction build-WorkerFunction build-UploadFunction build-ReconcileFunction: $(AWS_STAMP)
	cp -R $(AWS_BUILD)/. "$(ARTIFACTS_DIR)"
	rm -f "$(ARTIFACTS_DIR)/.built"

## bench: performance figures (not part of the tests); the cold starts need the Lambda
## artifact (package-aws, defined above: prerequisites expand where a rule is read),
## Azurite (npm ci) and the Firestore emulator (Cloud SDK)
bench: $(DEV_STAMP) $(NODE_STAMP) $(AWS_STAMP)
	$(BIN)/python -m bench
