# istio-hooks — the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := target/release/istio-hooks
export CARGO_TERM_COLOR ?= never

.PHONY: all build test test-admission test-schema demo demo-sim bench bench-scale fuzz deps venv fmt lint clean stack clusters clusters-down stack-test

all: build

deps:
	@command -v cargo >/dev/null || { echo "cargo is required (rustup)"; exit 1; }
	@command -v jq >/dev/null && dpkg -s libssl-dev >/dev/null 2>&1 || { \
	  echo "installing jq, pkg-config and libssl-dev with apt"; \
	  apt-get update -qq && apt-get install -y -qq jq pkg-config libssl-dev >/dev/null; }
	@command -v promtool >/dev/null || { \
	  echo "installing promtool (Debian package prometheus) with apt"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

$(VENV)/.ok: tests/helm/requirements.txt demo/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r tests/helm/requirements.txt -r demo/requirements.txt
	touch $@

venv: $(VENV)/.ok

build: deps
	cargo build --release --locked

test: deps venv stack
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings
	cargo build --release --locked
	cargo test --locked
	$(PY) tests/helm/render.py
	$(PY) tests/alerts/run.py
	ISTIO_HOOKS_BIN=$(abspath $(BIN)) $(PY) demo/demo.py --e2e --out out/e2e
	$(PY) tests/stack/test_admission.py --start $(STACK_BIN)
	$(PY) tests/stack/test_schema.py --start $(STACK_BIN)
	$(MAKE) --no-print-directory stack-test

# The admission policy in a throwaway etcd + kube-apiserver built by stack/build.sh (127.0.0.77).
STACK_BIN ?= $(or $(ISTIO_HOOKS_STACK_CACHE),.cache/stack)/bin
test-admission: venv
	$(PY) tests/stack/test_admission.py --start $(STACK_BIN)

# Every golden chart render, server-side dry run in a throwaway kube-apiserver (127.0.0.88).
test-schema: venv
	$(PY) tests/stack/test_schema.py --start $(STACK_BIN)

# The main job: both scenarios on the real stack (components built on first use); KEEP=1 leaves
# the multicluster clusters running.
demo: deps venv build stack
	$(PY) stack/clusters.py demo $(if $(KEEP),--keep,)

# The simulated demo (our own stand-in for addon-operator and the apiserver), for machines without Go.
demo-sim: deps venv build
	ISTIO_HOOKS_BIN=$(abspath $(BIN)) $(PY) demo/demo.py

# The real two-cluster stack (SPEC §10): upstream components built once into .cache/stack.
SCENARIO ?= federation
stack:
	bash stack/build.sh

clusters: deps venv build stack
	$(PY) stack/clusters.py up --scenario $(SCENARIO)

clusters-down:
	@if [ -x $(PY) ]; then $(PY) stack/clusters.py down; else python3 stack/clusters.py down; fi

# End-to-end tests on the real stack, both scenarios; the clusters are taken down either way.
stack-test: deps venv build stack
	@set -e; for s in federation multicluster; do \
	  echo "== real stack, scenario $$s"; \
	  $(PY) stack/clusters.py up --scenario $$s || { $(PY) stack/clusters.py down; exit 1; }; \
	  $(PY) tests/stack/e2e.py || { $(PY) stack/clusters.py down; exit 1; }; \
	  $(PY) stack/clusters.py down; \
	done

bench: deps build
	bash bench/run.sh

# Scale on the real stack (issue 14): cluster a federated with N peers x S services; SIZES=10x100,…
bench-scale: deps venv build stack
	$(PY) bench/scale.py $(if $(SIZES),--sizes $(SIZES))

fuzz:
	bash fuzz/run.sh

fmt:
	cargo fmt --all

clean:
	cargo clean; rm -rf $(VENV) out
