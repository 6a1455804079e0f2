# Lead orchestrator. `make help` lists every target; README.md explains the two that matter:
#   make run   — set everything up and run the whole system
#   make test  — set everything up and run the whole test suite against real Kafka/PostgreSQL
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
PY := $(UV) run --frozen
# Test processes (pytest-xdist): most integration and e2e time is spent waiting on Kafka,
# PostgreSQL and child processes, so more workers than cores pay; each has its own test database.
TEST_WORKERS ?= 4
export PATH := $(HOME)/.local/bin:$(PATH)
# LOCAL_KAFKA_BROKERS=3 (environment or .env): `make up`/`run`/`test` use the local 3-node
# cluster (infra/kafka.sh); leadctl and the services get its bootstrap list. Empty otherwise.
LOCAL_KAFKA_CLUSTER := $(shell bash infra/kafka.sh cluster-bootstrap 2>/dev/null)
ifneq ($(LOCAL_KAFKA_CLUSTER),)
export KAFKA_BOOTSTRAP_SERVERS := $(LOCAL_KAFKA_CLUSTER)
endif

.PHONY: help install up down status migrate topics run test test-unit test-integration lint \
        format bench chaos clean schemas local-secrets

help: ## List the targets
	@grep -E '^[a-z-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}'

install: ## Install uv (if missing) and the locked Python dependencies into .venv
	@bash infra/python.sh

up: install local-secrets ## Start (or reuse) Kafka and PostgreSQL, migrate, create topics (LOCAL_KAFKA_BROKERS=3: a 3-node Kafka)
	@bash infra/up.sh
	@$(PY) leadctl migrate up 2>&1 | grep -v '^INFO' || true
	@$(PY) leadctl topics create | sed 's/^/  /' | grep -v '^  exists' || true

down: ## Stop the Kafka and PostgreSQL that `make up` started
	@bash infra/down.sh

status: ## Say what runs
	@bash infra/status.sh

migrate: install ## Apply database migrations (leadctl migrate up)
	@$(PY) leadctl migrate up

topics: install ## Create every topic and its DLQ (idempotent)
	@$(PY) leadctl topics create

local-secrets: install ## Generate the local secrets (ID_SECRET, LINK_SIGNING_KEYS, ...) into .env.local once
	@$(PY) leadctl secrets local

run: up ## Set up and run the whole system (Ctrl-C stops it)
	@$(PY) leadctl run

test: up ## Set up, then run the whole test suite (unit, integration, e2e) on real Kafka/PostgreSQL
	@bash infra/browser.sh
	@$(PY) python -m schemas.generate --check
	@$(PY) pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal --durations=15 tests

test-unit: install ## Unit tests only (no Kafka or PostgreSQL needed)
	@$(PY) pytest -q -n $(TEST_WORKERS) --dist worksteal tests/unit

test-integration: up ## Integration and e2e tests only
	@bash infra/browser.sh
	@$(PY) pytest -q -n $(TEST_WORKERS) --dist worksteal tests/integration tests/e2e

lint: install ## ruff (lint + format check) and mypy (strict on services/ and schemas/)
	@$(PY) ruff check .
	@$(PY) ruff format --check .
	@$(PY) mypy

format: install ## Apply ruff's fixes and formatting
	@$(PY) ruff check --fix .
	@$(PY) ruff format .

schemas: install ## Regenerate the JSON Schema files from the contracts
	@$(PY) python -m schemas.generate

bench: up ## Run every benchmark (bench/*/run.py but chaos); figures in .local/bench/
	@set -e; shopt -s nullglob; for b in bench/*/run.py; do [[ $$b == */chaos/* ]] && continue; \
		echo "== $$b"; $(PY) python $$b; done

chaos: install ## Chaos suite on a private 3-node cluster and PostgreSQL; figures in .local/bench/chaos.json
	@$(PY) python bench/chaos/run.py $(CHAOS_ARGS)

clean: down ## Stop infrastructure and remove local state (.local/, caches; keeps .venv)
	rm -rf .local .pytest_cache .mypy_cache .ruff_cache
