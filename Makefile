# The two commands a newcomer needs: `make run` (the local stack) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000

.PHONY: git-cli edge-installed sandbox-tools run moto test lint format bench unit integration e2e package infra-lint deploy-aws clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# checkov pins boto3 and packaging versions the app's venv can't share: its own venv.
CHECKOV := .venv-checkov
$(CHECKOV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $(CHECKOV)/.installed

node_modules/.installed: package.json
	npm install --no-audit --no-fund --silent
	touch node_modules/.installed

# Git deployments clone with the git CLI (docs/git.md), and the tests make repositories with it.
git-cli:
	@command -v git >/dev/null || { command -v apt-get >/dev/null && apt-get update -q \
		&& apt-get install -y -q git; } || { echo "Install git (e.g. apt-get install git)"; exit 1; }

# The edge in front of the local apps (docs/runtimes.md): Caddy, from the OS's packages.
edge-installed:
	@command -v caddy >/dev/null 2>&1 || { \
		echo "Installing Caddy (the local edge) with apt-get..."; \
		{ command -v apt-get >/dev/null 2>&1 && \
		  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq caddy >/dev/null; } || \
		{ echo "error: could not install Caddy; install the 'caddy' package (Caddy 2.6+) and retry" >&2; exit 1; }; }

# The dashboard's tests drive Debian's chromium (Playwright's own browser download is not
# used): installed here when missing.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "Install Chromium at $(CHROMIUM) (the dashboard tests drive it)"; exit 1; }
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| { echo "Could not install chromium: run 'sudo apt-get install chromium'"; exit 1; }

# The local sandbox of builds and apps (docs/security.md): bubblewrap, socat and setpriv,
# installed with apt-get when missing. Without them the stack refuses to run untrusted code
# unless SHIPYARD_ALLOW_UNSANDBOXED=1.
SANDBOX_TOOLS := bwrap socat setpriv
sandbox-tools:
	@missing=""; for tool in $(SANDBOX_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing the sandbox (missing:$$missing): apt-get install bubblewrap socat util-linux"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo -n"; else sudo=none; fi; \
	  if [ "$$sudo" = none ] || ! { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq bubblewrap socat util-linux; } >/dev/null; then \
	    echo "error: could not install the sandbox: install bubblewrap, socat and util-linux (setpriv)," \
	      "or set SHIPYARD_ALLOW_UNSANDBOXED=1 to run builds and apps without one" >&2; \
	    [ "$$SHIPYARD_ALLOW_UNSANDBOXED" = 1 ] || exit 1; \
	  fi; \
	fi

run: $(STAMP) git-cli edge-installed sandbox-tools
	$(PY) -m chalicelib.local.stack --port $(PORT)

# moto on its own, for data that outlives restarts of `make run` (see the README).
moto: $(STAMP)
	$(PY) -m chalicelib.local.moto_server -H 127.0.0.1 -p $${SHIPYARD_MOTO_PORT:-5000}

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(STAMP) node_modules/.installed $(CHROMIUM) git-cli edge-installed sandbox-tools lint infra-lint
	$(PY) -m pytest -n 2 --dist loadgroup --durations=15

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP) sandbox-tools
	$(PY) -m pytest tests/integration

e2e: $(STAMP) node_modules/.installed $(CHROMIUM) edge-installed sandbox-tools
	$(PY) -m pytest tests/e2e

bench: $(STAMP) edge-installed sandbox-tools package
	$(PY) -m bench

# The CloudFormation/SAM template of the whole platform, for `aws cloudformation deploy`.
package: $(STAMP)
	mkdir -p infra/build
	$(PY) -m infra.cloudformation > infra/build/resources.json
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/chalice package --stage prod \
		--merge-template infra/build/resources.json infra/build/out

# The packaged template, offline: cfn-lint and checkov with no finding left (checkov's skips
# are on the resources, with their reasons), Shipyard's own rules (infra/verify.py: DLQs,
# least privilege, log retention, the ASL), and the bundle under its 20 MB with no build or
# test tool in its layer.
infra-lint: package $(CHECKOV)/.installed
	$(VENV)/bin/cfn-lint infra/build/out/sam.json
	$(CHECKOV)/bin/checkov -f infra/build/out/sam.json --framework cloudformation \
		--quiet --compact --skip-download
	$(PY) -m infra.verify
	$(PY) -m infra.bundle

# Package and deploy to the AWS account of your credentials (docs/aws.md):
#   make deploy-aws [STACK=shipyard] [DEPLOY_BUCKET=...] [PARAMS="AlarmEmail=you@example.com"]
deploy-aws: package
	infra/deploy-aws.sh

clean:
	rm -rf $(VENV) $(CHECKOV) node_modules .local infra/build
