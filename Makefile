# The two commands of the README: `make demo` and `make test`. Both need only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck unit demo bench clean venv apidocs argocd

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

demo: $(STAMP)
	$(BIN)/incidentio-operator demo

apidocs: $(STAMP)
	$(BIN)/python -m incidentio_operator.offline.apidocs docs/api.md

argocd: $(STAMP)
	$(BIN)/python -m incidentio_operator.offline.argocd manifests/argocd

bench: $(STAMP)
	$(BIN)/python -m bench --runs 3 --json bench/results/latest.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
