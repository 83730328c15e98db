# msgstatus developer tasks. Plain POSIX-sh recipes (no .ONESHELL); run `make help`.
#
#   make venv        .venv with the project installed editable (+ dev extras)
#   make infra-up    local Redis + single-node Kafka (.ci/infra.sh up); infra-down stops them
#   make run         venv + infra + the four services (ingest, projector, api, notifier) in the foreground; Ctrl-C stops all
#   make check       ruff lint, ruff format --check, mypy --strict
#   make test        check, then pytest against a real Kafka and Redis (started and stopped here)
#                    and the support desk in Debian's chromium (installed when run as root)
#   make test-cluster  the fault tests (tests/cluster, docs/reliability.md) against a
#                    three-broker Kafka (.ci/kafka-cluster.sh), a Redis and a Redis Cluster of three
#                    masters and three replicas (.ci/redis-cluster.sh), started and stopped here
#   make bench       python -m bench (its own Kafka and Redis on 39092/6381; docs/benchmarks.md)

PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?=

KAFKA_PORT ?= 9092
KAFKA_CONTROLLER_PORT ?= 9093
REDIS_PORT ?= 6379
MSGSTATUS_CACHE ?= $(CURDIR)/.cache
# make test-cluster: node N of the cluster listens on base+N (controller base+10+N).
KAFKA_CLUSTER_BASE_PORT ?= 29100
CLUSTER_REDIS_PORT ?= 6399
# Redis Cluster node N (1-6) listens on base+N.
REDIS_CLUSTER_BASE_PORT ?= 29200
export KAFKA_PORT KAFKA_CONTROLLER_PORT REDIS_PORT MSGSTATUS_CACHE KAFKA_CLUSTER_BASE_PORT \
  REDIS_CLUSTER_BASE_PORT

# `make test` and `make run` record what they start in their own state files, so their
# infra-down stops only that, never a Kafka/Redis brought up by someone else.
TEST_STATE := $(MSGSTATUS_CACHE)/infra-test.state
RUN_STATE := $(MSGSTATUS_CACHE)/infra-run.state

.PHONY: help venv infra-up infra-down run check test test-cluster bench clean

help:
	@sed -n 's/^#   //p' Makefile

venv: $(STAMP)

# Re-installs only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

infra-up:
	bash .ci/infra.sh up

infra-down:
	bash .ci/infra.sh down

run: venv
	MSGSTATUS_INFRA_STATE=$(RUN_STATE) bash .ci/infra.sh up
	MSGSTATUS_INFRA_STATE=$(RUN_STATE) bash .ci/run-local.sh

check: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# pytest's own exit code is kept (5 = no tests collected is a failure too);
# the infrastructure this target started is stopped in every case, Ctrl-C included.
test: venv check
	bash .ci/browser.sh
	@set +e; \
	export MSGSTATUS_INFRA_STATE=$(TEST_STATE); \
	trap 'bash .ci/infra.sh down; exit 130' INT TERM; \
	bash .ci/infra.sh up; rc=$$?; \
	if [ $$rc -eq 0 ]; then \
	  MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(KAFKA_PORT) \
	  MSGSTATUS_REDIS_URL=redis://127.0.0.1:$(REDIS_PORT)/0 \
	  MSGSTATUS_TEST_KAFKA_SCRIPT=$(CURDIR)/.ci/kafka.sh \
	  $(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5): failing" >&2; fi; \
	else \
	  echo "make test: .ci/infra.sh up failed (exit $$rc)" >&2; \
	fi; \
	bash .ci/infra.sh down || echo "make test: .ci/infra.sh down failed" >&2; \
	exit $$rc

# Like `test`, against three brokers: tests/cluster is collected only with
# MSGSTATUS_CLUSTER_TESTS=1, so `make test` never runs it. The tests that need a Redis Cluster
# find it in MSGSTATUS_TEST_REDIS_CLUSTER_URL. Then the read-API tests and the fold's Redis
# tests (CLUSTER_SUITE; empty: skipped) run again with MSGSTATUS_REDIS_URL naming the Redis
# Cluster. Both clusters and this Redis are stopped in every case, Ctrl-C included.
CLUSTER_SUITE ?= tests/test_read_api.py tests/test_store_redis.py tests/test_packed.py \
  tests/test_sweep.py tests/test_pipeline.py tests/test_problems.py tests/test_status_rules.py \
  tests/test_concurrency.py tests/test_providers_e2e.py tests/test_field_reports_provider_ids.py \
  tests/test_rebuild_readiness.py
CLUSTER_DOWN := bash .ci/kafka-cluster.sh down; REDIS_PORT=$(CLUSTER_REDIS_PORT) bash .ci/redis.sh stop; \
  bash .ci/redis-cluster.sh down
test-cluster: venv
	@set +e; \
	trap '$(CLUSTER_DOWN); exit 130' INT TERM; \
	bash .ci/kafka-cluster.sh up && REDIS_PORT=$(CLUSTER_REDIS_PORT) bash .ci/redis.sh start && \
	  bash .ci/redis-cluster.sh up; rc=$$?; \
	if [ $$rc -eq 0 ]; then \
	  MSGSTATUS_CLUSTER_TESTS=1 \
	  MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS=$$(bash .ci/kafka-cluster.sh bootstrap) \
	  MSGSTATUS_REDIS_URL=redis://127.0.0.1:$(CLUSTER_REDIS_PORT)/0 \
	  MSGSTATUS_TEST_REDIS_CLUSTER_URL=$$(bash .ci/redis-cluster.sh urls) \
	  $(BIN)/pytest tests/cluster --basetemp=$(MSGSTATUS_CACHE)/test-cluster $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test-cluster: pytest collected no tests (exit 5): failing" >&2; fi; \
	  if [ -n "$(strip $(CLUSTER_SUITE))" ]; then \
	    echo "make test-cluster: $(words $(CLUSTER_SUITE)) test modules against the Redis Cluster"; \
	    MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS=$$(bash .ci/kafka-cluster.sh bootstrap) \
	    MSGSTATUS_REDIS_URL=$$(bash .ci/redis-cluster.sh urls) \
	    $(BIN)/pytest -p no:cacheprovider $(CLUSTER_SUITE); rc2=$$?; \
	    if [ $$rc -eq 0 ]; then rc=$$rc2; fi; \
	  fi; \
	else \
	  echo "make test-cluster: starting the cluster or Redis failed (exit $$rc)" >&2; \
	fi; \
	$(CLUSTER_DOWN) || echo "make test-cluster: stopping the cluster failed" >&2; \
	exit $$rc

# The suite starts (and stops) its own Kafka and Redis on 39092/6381 unless they answer there,
# so its load never lands on a shared Kafka or Redis; see docs/benchmarks.md.
bench: venv
	$(BIN)/python -m bench $(BENCH_ARGS)

# Build and tool caches. Leaves .venv and .cache (Kafka jars and data) alone:
# `make infra-down` first, then `rm -rf .cache .venv` for a from-scratch state.
clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . \( -path ./.venv -o -path ./.cache -o -path ./.git \) -prune -o \
	  \( -name __pycache__ -o -name '*.egg-info' \) -type d -print -exec rm -rf {} +
