# Two commands for people: `make run` and `make test`. Both set up whatever is missing first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# `make simulate`: a seed range that moves every day; override with `make simulate SIM_SEEDS=40 SIM_FROM=0`.
SIM_SEEDS ?= 400
SIM_FROM ?= $(shell date +%Y%m%d)0000

.PHONY: setup system-deps run test lint types contracts asl pytest bench simulate layer clean

setup: system-deps $(PY_STAMP) $(NODE_STAMP)

system-deps:
	@scripts/install-system-deps.sh

$(PY_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: setup
	$(BIN)/paysaga run

test: setup lint types contracts pytest

lint:
	$(BIN)/ruff check .

types:
	$(BIN)/mypy

contracts:
	$(BIN)/lint-imports

pytest:
	$(BIN)/pytest

simulate: setup
	$(BIN)/paysaga simulate --jobs 2 --seeds $(SIM_SEEDS) --seed-from $(SIM_FROM)

layer: setup
	$(BIN)/python scripts/build_layer.py

bench: setup
	@for script in bench/*_bench.py; do echo "== $$script"; $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache
