# Tousu: `make run` brings the whole system up, `make test` runs every test.
# Both install what they need (Debian packages, Kafka jars from Maven Central, Python packages)
# and are safe to run again.

SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION ?= 0.13.9
PYTHON ?= python3.11
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
UV := $(PYTHON) -m uv
SERVICES := intake routing sla-monitor feedback analytics

# One set of port variables for the scripts (deploy/) and the Python side (TOUSU_*).
PG_PORT ?= 5432
KAFKA_PORT ?= 9092
export PG_PORT KAFKA_PORT
# Intake's random local keys (make run reads the same file); intake refuses to start without keys.
export INTAKE_KEYS_FILE ?= $(or $(TOUSU_DATA_DIR),$(CURDIR)/.data)/intake-keys.env
export TOUSU_PG_PORT ?= $(PG_PORT)
export TOUSU_KAFKA_BOOTSTRAP ?= 127.0.0.1:$(KAFKA_PORT)
# The broker's SASL passwords (deploy/infra.sh writes them): `create-topics` and the tests log
# in as its admin user, each service under test as its own; run-services.sh hands each service
# only its own password.
export TOUSU_KAFKA_PASSWORDS_FILE ?= $(abspath $(or $(TOUSU_DATA_DIR),.data))/kafka-passwords

.PHONY: help install infra migrate run backup restore stop test security bench drills lint asyncapi classifier-report clean-data

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: ## Install Postgres, the Kafka jars and the locked Python environment
	@bash deploy/infra.sh install
	@$(PYTHON) -m uv --version 2>/dev/null | grep -q "$(UV_VERSION)" || \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@$(UV) sync --frozen --quiet

infra: install ## Start Kafka and Postgres (reused when already running)
	@bash deploy/infra.sh up

migrate: infra ## Apply every service's migrations and create the topics
	@$(UV) run --frozen python -m tousu_intake.keys dev-file --file $(INTAKE_KEYS_FILE) >/dev/null
	@. $(INTAKE_KEYS_FILE) && for service in $(SERVICES); do \
		pkg=$$(bash deploy/service-package.sh $$service); \
		$(UV) run --frozen python -m $$pkg migrate || exit 1; \
	done
	@bash deploy/infra.sh harden
	@$(UV) run --frozen python -m tousu_shared.cli create-topics

run: migrate ## Bring the whole system up; Ctrl-C or `make stop` stops it
	@bash deploy/run-services.sh

backup: ## pgBackRest backup of the database (the first turns on continuous WAL archiving)
	@bash deploy/infra.sh backup

restore: ## Restore the database from its latest backup and WAL to the last commit
	@bash deploy/infra.sh restore

stop: ## Stop the services, Kafka and Postgres
	@bash deploy/run-services.sh stop
	@bash deploy/infra.sh down

test: migrate ## Run every test against the real Kafka and Postgres
	@$(UV) run --frozen pytest

SCHEMATHESIS_EXAMPLES ?= 100
security: migrate ## Replay the attacks of issue #13 and fuzz every OpenAPI (full schemathesis run)
	@TOUSU_SCHEMATHESIS_RANDOM=1 TOUSU_SCHEMATHESIS_EXAMPLES=$(SCHEMATHESIS_EXAMPLES) $(UV) run --frozen pytest -m security
	@cat .data/security/schemathesis.json

bench: migrate ## Measure throughput and latency; prints figures
	@$(UV) run --frozen python -m bench

# The drills start a stack of their own (Postgres 15432, Kafka 19092, services 18201-18225,
# data in .data/drills/) and break parts of it; the shared infra is untouched. `make test` runs
# a reduced set (tests/drills). The network-fault drill needs Toxiproxy, built with Go.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
TOXIPROXY := .data/tools/toxiproxy-server
$(TOXIPROXY):
	@mkdir -p .data/tools/go
	@GOPATH=$(CURDIR)/.data/tools/go GOBIN=$(CURDIR)/.data/tools/go/bin GOFLAGS=-modcacherw \
	  $(GO) install github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0
	@mv .data/tools/go/bin/server $(TOXIPROXY)

drills: install $(TOXIPROXY) ## Fault drills (issue #14): every drill, on a stack of their own
	@$(UV) run --frozen python -m drills

lint: install ## Static checks: ruff (lint and format), mypy, and deploy/k8s against the Kubernetes schemas
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy
	@$(UV) run --frozen python deploy/k8s/validate.py

classifier-report: install ## Classifier accuracy, confusion matrix, calibration (test split) and 5-fold CV
	@$(UV) run --frozen python -m tousu_intake.classifier_cli report

asyncapi: install ## Regenerate docs/asyncapi.json from the event contracts
	@$(UV) run --frozen python -m tousu_shared.cli asyncapi --output docs/asyncapi.json

clean-data: ## Stop everything and delete local data
	@bash deploy/run-services.sh stop
	@bash deploy/infra.sh reset
