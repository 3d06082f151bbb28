# The two commands a newcomer needs: `make run` (the local stack) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000

.PHONY: run moto test lint format bench unit integration e2e package clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

node_modules/.installed: package.json
	npm install --no-audit --no-fund --silent
	touch node_modules/.installed

run: $(STAMP)
	$(PY) -m chalicelib.local.stack --port $(PORT)

# moto on its own, for data that outlives restarts of `make run` (see the README).
moto: $(STAMP)
	$(PY) -m chalicelib.local.moto_server -H 127.0.0.1 -p $${SHIPYARD_MOTO_PORT:-5000}

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(STAMP) node_modules/.installed lint
	$(PY) -m pytest -n 2 --dist loadgroup

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

e2e: $(STAMP) node_modules/.installed
	$(PY) -m pytest tests/e2e

bench: $(STAMP)
	$(PY) -m bench

# The CloudFormation/SAM template of the whole platform, for `aws cloudformation deploy`.
package: $(STAMP)
	mkdir -p infra/build
	$(PY) -m infra.cloudformation > infra/build/resources.json
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/chalice package --stage prod \
		--merge-template infra/build/resources.json infra/build/out

clean:
	rm -rf $(VENV) node_modules .local
