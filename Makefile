# The README's commands. `make run` and `make test` create .venv on first use.
SHELL := /bin/bash
PORT ?= 3000
VENV := .venv
BIN := $(VENV)/bin
# Lambda runs python3.12: use it when this machine has it (pyenv or system), else python3.
PYTHON ?= $(shell for p in python3.12 "env PYENV_VERSION=3.12.1 python3" python3; do $$p -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { echo $$p; break; }; done)
STAMP := $(VENV)/.installed

.PHONY: help run test lint fmt invoke bench validate build clean fuzz chaos keys new-workflow

help:
	@echo "make run                      local API on http://127.0.0.1:$(PORT)/api (no Docker, no AWS)"
	@echo "make test                     the whole suite: unit, integration (moto), end-to-end (HTTP)"
	@echo "make fuzz                     schemathesis against the local server, deeper than make test's run"
	@echo "make chaos                    random AWS faults (two a request) on the local stack, deeper than make test's"
	@echo "make lint                     ruff, mypy, cfn-lint"
	@echo "make invoke EVENT=events/x.json   one API Gateway event through the handler (like sam local invoke)"
	@echo "  FUNCTION=RunStatusFunction        another function of the template, e.g. with events/run_status_change.json"
	@echo "make keys ARGS='--stack S create'  API keys of a stack with AuthType CONDUCTOR_KEYS (create|revoke ID|list)"
	@echo "make new-workflow NAME=x      a workflow of your own: ASL file, task function, tagged state machine"
	@echo "make validate                 sam validate --lint and the auth transform check (SAM CLI in .venv-sam)"

$(STAMP): requirements-dev.txt functions/api/requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	PORT=$(PORT) $(BIN)/python -m local_mode.server

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy functions local_mode
	$(BIN)/cfn-lint template.yaml

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

invoke: $(STAMP)
	@test -n "$(EVENT)" || { echo "usage: make invoke EVENT=events/execute_hello_world.json"; exit 2; }
	$(BIN)/python -m local_mode.invoke $(EVENT) $(if $(FUNCTION),--function $(FUNCTION))

# The fuzz test of `make test`, deeper: FUZZ_MAX_EXAMPLES cases per operation and phase, the
# stateful phase too, and a random seed (printed with any failure; FUZZ_SEED=n replays one).
FUZZ_MAX_EXAMPLES ?= 300
fuzz: $(STAMP)
	FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) FUZZ_PHASES=examples,coverage,fuzzing,stateful \
	FUZZ_SEED=$${FUZZ_SEED:-$$RANDOM$$RANDOM} FUZZ_TIMEOUT=3000 \
	$(BIN)/python -m pytest tests/e2e/test_fuzz.py --timeout 3600 $(PYTEST_ARGS)

# The fault suite's random cases (tests/faults/test_chaos.py), deeper: CHAOS_CASES combinations of
# AWS and EventBridge faults from a random seed (printed in the summary; CHAOS_SEED=n replays one).
CHAOS_CASES ?= 300
chaos: $(STAMP)
	CHAOS_CASES=$(CHAOS_CASES) CHAOS_SEED=$${CHAOS_SEED:-$$RANDOM$$RANDOM} \
	$(BIN)/python -m pytest tests/faults/test_chaos.py $(PYTEST_ARGS)

# A workflow of this stack: statemachine/NAME.v1.asl.json, functions/NAME/, and its resources in
# template.yaml (README "Add your workflow"). The standard library only: no .venv needed.
new-workflow:
	@test -n "$(NAME)" || { echo "usage: make new-workflow NAME=order_review"; exit 2; }
	$(PYTHON) scripts/new_workflow.py $(NAME)

# Conductor API keys (AuthType CONDUCTOR_KEYS): e.g. make keys ARGS="--stack workflow-sync create".
keys: $(STAMP)
	@test -n "$(ARGS)" || { echo 'usage: make keys ARGS="--stack <name> create|revoke <keyId>|list"'; exit 2; }
	$(BIN)/python scripts/conductor_keys.py $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py

# SAM CLI pins its own pydantic: it lives in its own environment, away from the Lambda's.
.venv-sam/.installed:
	$(PYTHON) -m venv .venv-sam
	.venv-sam/bin/pip install --quiet aws-sam-cli==1.170.0
	touch $@

# SAM CLI wants a region and credentials even offline: dummies, nothing is called.
SAM_ENV := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x SAM_CLI_TELEMETRY=0

validate: .venv-sam/.installed
	$(SAM_ENV) .venv-sam/bin/sam validate --lint
	$(SAM_ENV) .venv-sam/bin/python scripts/check_auth_transform.py template.yaml

build: .venv-sam/.installed
	$(SAM_ENV) PYENV_VERSION=3.12.1 .venv-sam/bin/sam build

clean:
	rm -rf $(VENV) .venv-sam .aws-sam .pytest_cache .mypy_cache .ruff_cache
