# Two commands for people: `make run` and `make test`. Both set up whatever is missing first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# The Lambda dependencies layer (scripts/build_layer.py): rebuilt when pyproject.toml or the script changes; the CDK
# app refuses to synthesize without it (cdk.json's context `dependencies_layer_zip` names this path).
LAYER_ZIP := dist/dependencies-layer.zip
# `make simulate`: a seed range that moves every day; override with `make simulate SIM_SEEDS=40 SIM_FROM=0`.
SIM_SEEDS ?= 400
SIM_FROM ?= $(shell date +%Y%m%d)0000

.PHONY: setup system-deps run test checks lint types contracts asl pytest pytest-a pytest-b pytest-c pytest-d bench simulate layer synth clean

setup: system-deps $(PY_STAMP) $(NODE_STAMP)

system-deps:
	@scripts/install-system-deps.sh

# uv installs the same packages from the same registry as pip, in seconds instead of minutes (measured on a clean
# clone: pip 255 s, uv 16 s).
$(PY_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: setup
	$(BIN)/paysaga run

# The infra tests synthesize the stack (so the layer first) and run cfn-lint and cdk-nag on it
# (tests/unit/infra/test_lint.py). The static checks run beside the test groups: those mostly wait on servers.
test: setup layer
	@$(MAKE) --no-print-directory -j 5 --output-sync=target checks pytest-a pytest-b pytest-c pytest-d

checks: lint types contracts

lint:
	$(BIN)/ruff check .

types:
	$(BIN)/mypy

contracts:
	$(BIN)/lint-imports

# Independent groups side by side (each session starts its own servers on free ports): the integration, end-to-end
# and simulation tests spend most of their time waiting on servers, not on a core, so a session each on two cores
# finishes sooner than two sessions. Each group's output is printed whole when it ends, and any failing fails the run.
PYTEST_GROUP_A := tests/unit
PYTEST_GROUP_B := tests/integration
PYTEST_GROUP_C := tests/e2e
PYTEST_GROUP_D := tests/sim

pytest:
	@$(MAKE) --no-print-directory -j 4 --output-sync=target pytest-a pytest-b pytest-c pytest-d

pytest-a:
	$(BIN)/pytest $(PYTEST_GROUP_A)

pytest-b:
	$(BIN)/pytest $(PYTEST_GROUP_B)

pytest-c:
	$(BIN)/pytest $(PYTEST_GROUP_C)

pytest-d:
	$(BIN)/pytest $(PYTEST_GROUP_D)

simulate: setup
	$(BIN)/paysaga simulate --jobs 2 --seeds $(SIM_SEEDS) --seed-from $(SIM_FROM)

layer: $(LAYER_ZIP)

# pip's cache (~/.cache/pip) keeps a rebuild to seconds; the zip is written whole or not at all.
$(LAYER_ZIP): pyproject.toml scripts/build_layer.py | $(PY_STAMP)
	$(BIN)/python scripts/build_layer.py --out $@

# What `cdk synth` writes into cdk.out (cdk-nag's findings printed, then cfn-lint's), without the CDK CLI: cdk.json's
# app command with cdk.json's context, as the CLI hands it over.
synth: setup layer
	CDK_CONTEXT_JSON="$$($(BIN)/python -c 'import json; print(json.dumps(json.load(open("cdk.json"))["context"]))')" \
	  JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_OUTDIR=cdk.out $(BIN)/python -m infra.app
	$(BIN)/cfn-lint --ignore-checks W3005 -- cdk.out/Paysaga.template.json

bench: setup
	@for script in bench/*_bench.py; do echo "== $$script"; $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache dist cdk.out
