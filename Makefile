# A2A Studio — set-up and everyday commands. `make run` and `make test` are the two that matter.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_MODEL_PORT ?= 8911

# The distributed pass of `make test` talks to these; override them to point elsewhere.
A2A_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/a2a_studio
A2A_TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# The embedded pass runs on this many test processes (pytest-xdist; 1: one process).
TEST_PROCESSES ?= 2
XDIST := $(if $(filter-out 0 1,$(TEST_PROCESSES)),-n $(TEST_PROCESSES) --dist loadfile)
# The services pass runs on this many test processes (1: one process). On several, every process
# of the pass gets SERVICES_DB_THREADS (3) database threads: two held at most 23 of PostgreSQL's
# default 100 connections together. The first process keeps A2A_TEST_REDIS_URL's Redis database
# and each other takes its own, in order, from A2A_TEST_REDIS_WORKER_DBS.
SERVICES_TEST_PROCESSES ?= 2
SERVICES_DB_THREADS ?= 3
A2A_TEST_REDIS_WORKER_DBS ?= 7
SERVICES_XDIST := $(if $(filter-out 0 1,$(SERVICES_TEST_PROCESSES)),-n $(SERVICES_TEST_PROCESSES) --dist loadfile)

# `make dev-distributed` runs against these (this machine's PostgreSQL and Redis by default).
DEV_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/a2a_dev
DEV_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: help run dev-distributed test test-embedded test-services lint format worker beat web fakellm clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt $(VENV)/.runtime
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@

run: $(VENV)/.runtime  ## set up and start the app on embedded defaults at http://127.0.0.1:8000
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "Open http://$(HOST):$(PORT)/ — the offline demo model listens on port $(DEMO_MODEL_PORT)."
	@trap 'kill 0' EXIT INT TERM; \
	  $(PY) manage.py fakellm --host 127.0.0.1 --port $(DEMO_MODEL_PORT) & \
	  A2A_DEMO_MODEL_URL=$${A2A_DEMO_MODEL_URL:-http://127.0.0.1:$(DEMO_MODEL_PORT)} $(PY) manage.py runserver $(HOST):$(PORT)

dev-distributed: $(VENV)/.runtime  ## the distributed mode on this machine: demo model, daphne, 2 workers, beat
	DATABASE_URL="$${DATABASE_URL:-$(DEV_DATABASE_URL)}" REDIS_URL="$${REDIS_URL:-$(DEV_REDIS_URL)}" \
	  $(PY) manage.py dev_distributed --host $(HOST) --port $(PORT) --demo-port $(DEMO_MODEL_PORT)

test: test-embedded test-services  ## the whole suite: embedded mode, then PostgreSQL + Redis + browser

test-embedded: $(VENV)/.dev  ## the suite on SQLite and the in-memory layer (no services)
	env -u DATABASE_URL -u REDIS_URL -u A2A_EXECUTION_MODE \
	  $(VENV)/bin/pytest -m "not services and not browser" $(XDIST) $(PYTEST_ARGS)

# On several processes, the fault tests marked `serial` (killed workers, Redis restarts, memory
# limits) run after the rest, alone: their timings are the machine's, not shared with another.
test-services: $(VENV)/.dev  ## the whole suite on PostgreSQL and Redis, with workers and the browser
	A2A_TEST_DATABASE_URL="$(A2A_TEST_DATABASE_URL)" A2A_TEST_REDIS_URL="$(A2A_TEST_REDIS_URL)" bash .ci/prepare
ifeq ($(SERVICES_XDIST),)
	DATABASE_URL="$(A2A_TEST_DATABASE_URL)" REDIS_URL="$(A2A_TEST_REDIS_URL)" A2A_REQUIRE_SERVICES=1 \
	  $(VENV)/bin/pytest $(PYTEST_ARGS)
else
	DATABASE_URL="$(A2A_TEST_DATABASE_URL)" REDIS_URL="$(A2A_TEST_REDIS_URL)" A2A_REQUIRE_SERVICES=1 \
	  A2A_TEST_REDIS_WORKER_DBS="$(A2A_TEST_REDIS_WORKER_DBS)" A2A_DB_THREADS="$(SERVICES_DB_THREADS)" \
	  $(VENV)/bin/pytest -m "not serial" $(SERVICES_XDIST) $(PYTEST_ARGS)
	DATABASE_URL="$(A2A_TEST_DATABASE_URL)" REDIS_URL="$(A2A_TEST_REDIS_URL)" A2A_REQUIRE_SERVICES=1 \
	  $(VENV)/bin/pytest -m serial $(PYTEST_ARGS) || [ $$? = 5 ]  # 5: PYTEST_ARGS chose none of them
endif

lint: $(VENV)/.dev  ## ruff (lint and format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy a2a_site agents workflows monitoring

format: $(VENV)/.dev  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

web: $(VENV)/.runtime  ## distributed mode: collect the static files, serve HTTP and WebSockets with daphne
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) a2a_site.asgi:application

worker: $(VENV)/.runtime  ## distributed mode: a Celery worker (start as many as you like)
	$(VENV)/bin/celery -A a2a_site worker --loglevel=INFO

beat: $(VENV)/.runtime  ## distributed mode: the periodic scheduler (exactly one)
	$(VENV)/bin/celery -A a2a_site beat --loglevel=INFO

fakellm: $(VENV)/.runtime  ## only the offline demo model (OpenAI, Anthropic and Ollama protocols)
	$(PY) manage.py fakellm --port $(DEMO_MODEL_PORT)

clean:  ## remove the virtualenv, the SQLite database and test artifacts
	rm -rf $(VENV) var test-artifacts
