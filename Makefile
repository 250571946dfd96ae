# The two commands of the README: `make demo` and `make test`. Both need only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck unit demo bench clean venv apidocs argocd tools image

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) tools
	$(BIN)/pytest -q -n 2 --dist loadfile

test: lint typecheck unit

# Prometheus's own tools for the monitoring tests (promtool check/test rules, a real prometheus in
# tests/e2e/test_monitoring.py): Debian's `prometheus` package provides both. Installed only where
# they are missing and we can (root, apt); anywhere else this says why, and those tests skip.
tools:
	@if command -v promtool >/dev/null && command -v prometheus >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "tools: promtool/prometheus missing and not root: the Prometheus tests will skip"; exit 0; fi; \
	if ! command -v apt-get >/dev/null; then echo "tools: promtool/prometheus missing and no apt-get: the Prometheus tests will skip"; exit 0; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	install="apt-get install -y -qq --no-install-recommends prometheus"; \
	$$install >/dev/null 2>&1 || { apt-get update -qq && $$install >/dev/null; } \
		|| echo "tools: apt-get could not install prometheus: the Prometheus tests will skip"

# The operator image, tagged with the package version (pyproject.toml), e.g. incidentio-operator:0.1.0.
# IMAGE=registry.example.com/team/incidentio-operator make image  # for a registry; then docker push
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE ?= ghcr.io/armor-dev/incidentio-operator
image:
	docker build --tag $(IMAGE):$(VERSION) .

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
