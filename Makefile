# The verbs of this project. `make demo` and `make test` set up everything they need themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.13: prefer it, fall back to pyenv's, then to any python3 (>= 3.11).
# (Each candidate is run, because a pyenv shim can exist without a working interpreter behind it.)
PYTHON ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13 python3; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
ENV ?= default
FN ?= post
EVENT ?= events/post.json
POSTINGS ?=
# `make remote-invoke FN=post` -> the template's logical id PostFunction (a logical id passes as is).
FN_ID = $(if $(filter %Function,$(FN)),$(FN),$(shell printf %s '$(FN)' | sed 's/^./\U&/')Function)
# Log groups `sam logs` does not discover by itself: the result events' audit log group.
LOG_GROUPS = $(shell tools/sam.sh list stack-outputs --config-env $(ENV) --output json 2>/dev/null \
	| python3 -c 'import json,sys; print(" ".join(o["OutputValue"] for o in json.load(sys.stdin) if o["OutputKey"] == "ResultsLogGroupName"))' 2>/dev/null)

.PHONY: help venv engines test unit lint format demo soak bench cost build validate deploy invoke remote-invoke logs schema clean

help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# requirements-dev.lock pins every package, transitive ones included, with the hashes of its files:
# pip refuses anything else. Regenerate it after changing requirements-dev.txt or layer/requirements.txt:
#   pip-compile --generate-hashes --allow-unsafe --no-strip-extras --no-emit-index-url \
#     --no-emit-find-links --output-file requirements-dev.lock requirements-dev.txt
$(INSTALLED): requirements-dev.lock requirements-dev.txt layer/requirements.txt pyproject.toml
	@echo "==> creating $(VENV) with $(PYTHON) and installing hash-checked dependencies"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

venv: $(INSTALLED) ## create .venv with the pinned dependencies

engines: $(INSTALLED) ## install the local engines (DynamoDB Local) into the cache
	@$(BIN)/posting local install

# The nested applications' templates (plain CloudFormation): linted and scanned as they are.
NESTED_TEMPLATES := $(wildcard templates/*.yaml)

lint: $(INSTALLED) ## ruff, mypy, cfn-lint, actionlint, checkov and parliament on the SAM-translated template, templates/ and deploy/
	$(BIN)/ruff check src tools tests
	$(BIN)/ruff format --check src tools tests
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml $(NESTED_TEMPLATES) deploy/bootstrap.yaml
	$(BIN)/actionlint -shellcheck= -pyflakes= .github/workflows/*.yml
	PYTHON=$(PYTHON) tools/checkov.sh translate --output build/translated-template.json
	PYTHON=$(PYTHON) tools/checkov.sh --file build/translated-template.json $(foreach t,$(NESTED_TEMPLATES),--file $(t)) \
	  --file deploy/bootstrap.yaml
	@# The same template deployed with a FIFO posting queue (PostingQueueType=fifo).
	PYTHON=$(PYTHON) tools/checkov.sh translate --default PostingQueueType=fifo --output build/translated-template-fifo.json
	$(BIN)/cfn-lint build/translated-template-fifo.json
	PYTHON=$(PYTHON) tools/checkov.sh --file build/translated-template-fifo.json
	PYTHON=$(PYTHON) tools/checkov.sh parliament --translated build/translated-template.json --source template.yaml \
	  --template deploy/bootstrap.yaml --policy deploy/scp.json

format: $(INSTALLED) ## format and fix what ruff can
	$(BIN)/ruff format src tools tests
	$(BIN)/ruff check --fix src tools tests

test: lint engines ## lint, then every suite (unit, integration on DynamoDB Local, end-to-end on the local stack)
	$(BIN)/pytest

unit: $(INSTALLED) ## the pure unit tests only (seconds, no engines)
	$(BIN)/pytest tests/unit

demo: engines ## run the whole pipeline locally on realistic traffic, with a summary
	$(BIN)/posting local demo $(if $(POSTINGS),--postings $(POSTINGS))

SEED ?= 1
soak: engines ## every fault injected (a killed process too) on demo-like traffic, then every invariant proven (POSTINGS=3000 SEED=1)
	AWS_EC2_METADATA_DISABLED=true $(BIN)/posting local soak --faults all --postings $(or $(POSTINGS),3000) --seed $(SEED)

bench: engines ## measure throughput, latency, cold start, memory and cost; JSON + Markdown report with charts
	$(BIN)/python -m posting_cli.bench

cost: $(INSTALLED) ## the cost model alone, in seconds, no engines: $ per million by line at 20M/month and 1,111/s
	@$(BIN)/python -m posting_cli.bench.cost

schema: $(INSTALLED) ## regenerate the published JSON Schemas (and the template's nested schema registry) from the models
	$(BIN)/posting schema --write schema/ --template template.yaml

build: ## sam build (arm64, python3.13), offline
	tools/sam.sh build

validate: ## sam validate --lint
	tools/sam.sh validate --lint

deploy: build $(INSTALLED) ## sam deploy with samconfig.toml (ENV=default|prod; CFN_ROLE_ARN= deploys through CloudFormation's role)
	@overrides="$$($(BIN)/python -m posting_cli.deploy_check --config-env $(ENV) $(if $(ALARM_TOPIC_ARN),--override AlarmTopicArn=$(ALARM_TOPIC_ARN)) \
	    $(if $(CFN_ROLE_ARN),--override DeploymentRoleArn=$(CFN_ROLE_ARN)))" && \
	  tools/sam.sh deploy --config-env $(ENV) $(if $(CFN_ROLE_ARN),--role-arn $(CFN_ROLE_ARN)) --parameter-overrides "$$overrides"

invoke: $(INSTALLED) ## run one handler on one event file, like `sam local invoke` (FN=validate|post|emit EVENT=...)
	$(BIN)/posting local invoke $(FN) --event $(EVENT)

logs: ## tail the deployed stack's logs: functions, workflow and result events (ENV=...)
	tools/sam.sh logs --config-env $(ENV) --tail $(foreach group,$(LOG_GROUPS),--cw-log-group $(group))

remote-invoke: ## invoke a deployed function on an event file (FN=validate|post|emit EVENT=events/...json ENV=...)
	tools/sam.sh remote invoke $(FN_ID) --config-env $(ENV) --event-file $(EVENT)

clean: ## remove the venvs, build output and local state
	rm -rf $(VENV) .venv-sam .aws-sam .posting-local
