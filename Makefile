# ragplane: `make run` starts the local stack and answers a question; `make test` runs the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export RAGPLANE_CACHE ?= $(HOME)/.cache/ragplane
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PATH := $(CURDIR)/.bin:$(PATH)

PYTHON := .venv/bin/python
RAGPLANE := .venv/bin/ragplane
TENANT ?= demo
QUESTION ?= How do I create a virtual environment with the venv module?
PY_SOURCES := protos/python/src runtime/src cli/src services/*/src tests bench

.PHONY: help install install-test protos run ask stop status test test-unit helm-lint lint format clean images

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

install: ## install what running needs: Weaviate, Redis, .venv with the models (idempotent; cached)
	@scripts/install.sh

install-test: install ## and the tools only the tests use: grpcurl, grpc_health_probe, toxiproxy, helm, promtool
	@scripts/install-test.sh

protos: install ## regenerate the Python stubs from protos/
	@scripts/gen-protos.sh

run: install ## start the stack and answer QUESTION (the first run ingests the demo corpus: first pages, then the rest in the background)
	@$(RAGPLANE) stack up
	@scripts/demo.sh "$(TENANT)" "$(QUESTION)"
	@echo; echo "The stack stays up: '.venv/bin/ragplane ask \"...\"' asks more, 'make stop' stops it."

ask: ## ask QUESTION of the running stack
	@$(RAGPLANE) ask --tenant $(TENANT) "$(QUESTION)"

stop: ## stop the local stack (data stays in .run/)
	@$(RAGPLANE) stack down

status: ## show which parts of the local stack run
	@$(RAGPLANE) stack status

lint: install ## ruff and mypy (mypy's cache is this machine's, shared by every clone: it checks each file's hash)
	@.venv/bin/ruff check $(PY_SOURCES)
	@.venv/bin/ruff format --check $(PY_SOURCES)
	@.venv/bin/mypy --cache-dir $(RAGPLANE_CACHE)/mypy

format: install ## apply ruff's formatting and fixes
	@.venv/bin/ruff format $(PY_SOURCES)
	@.venv/bin/ruff check --fix $(PY_SOURCES)

# Test workers side by side, each with its own local stack; a module runs whole on one worker
# (its fixtures start processes once), longest modules first (tests/scheduling.py).
TEST_WORKERS ?= 2

test: install-test lint helm-lint images ## lint, the Helm chart, the images, then unit and integration tests against real components
	@RAGPLANE_LLM_THREADS=1 $(PYTHON) -m pytest --ignore=tests/helm \
		--numprocesses $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

helm-lint: install-test ## the Helm chart: helm lint --strict, Kubernetes 1.27/1.37 schemas, policy, promtool on the alerts
	@$(PYTHON) -m pytest tests/helm

images: install-test ## build the four service images with podman (layers cached; the CUDA one: scripts/build-images.sh embedding-cuda)
	@scripts/build-images.sh

test-unit: install ## only the tests that need no running component
	@$(PYTHON) -m pytest tests/unit

clean: stop ## stop the stack and delete its data and the virtual environment
	rm -rf .run .venv .bin

.PHONY: bench-embedding
bench-embedding: install ## embedding: served vs in-process limit, unbatched, Infinity
	@scripts/install-bench.sh
	@$(PYTHON) -m bench.embedding

.PHONY: bench-ingest
bench-ingest: install ## ingestion: chunks/s served through Ingest vs the in-process embedding limit
	@$(PYTHON) -m bench.ingest

.PHONY: load
load: install ## ghz load profiles (bench/load/profiles) against the local stack, summarised; Embed over 1 vs 3 replicas
	@scripts/install-load.sh
	@$(RAGPLANE) stack up
	@$(PYTHON) -m bench.load
	@$(PYTHON) -m bench.load.replicas

.PHONY: bench-shadow
bench-shadow: install-test ## shadow mode: callers' p50 with shadow at 100% (its provider slowed 5 s by toxiproxy) vs off, side by side
	@$(PYTHON) -m bench.shadow

.PHONY: bench-generation
bench-generation: install ## generation: answers under injected faults, overhead over the LLM server
	@$(PYTHON) -m bench.generation

.PHONY: eval-retrieval
# RERANKER=DIR adds hybrid + rerank with that cross-encoder (a deployment's own; see README).
eval-retrieval: install ## retrieval quality on the whole demo corpus (nDCG/Recall/MRR) and p50 latency per search mode
	@$(PYTHON) -m bench.retrieval $(if $(RERANKER),--reranker "$(RERANKER)")

.PHONY: eval-faithfulness
eval-faithfulness: install ## faithfulness score on tests/data/faithfulness-eval.jsonl: AUC, p50 scoring time on vs off (JUDGE=1: also the LLM judge)
	@$(PYTHON) -m bench.faithfulness $(if $(JUDGE),--judge)

.PHONY: fuzz chaos
fuzz: install ## the fuzz suite with many cases per RPC (make test runs a few); prints the statuses seen
	@RAGPLANE_FUZZ_EXAMPLES=300 $(PYTHON) -m pytest tests/fuzz

chaos: install ## the durability test with 24 Weaviate kill cycles under a CPU burner (make test runs 6)
	@RAGPLANE_DURABILITY_CYCLES=24 $(PYTHON) -m pytest tests/integration/test_retrieval_durability.py
