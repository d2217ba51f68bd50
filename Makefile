# podgate: the two commands that matter are `make demo` and `make test`.
CARGO ?= cargo

.PHONY: demo test lint unit build devcluster bench bench-full setup

## Run podgate on its embedded default: a gateway in front of two in-process devclusters.
demo:
	$(CARGO) run --quiet -p podgate -- demo

## Every test: formatting, lints, unit and end-to-end tests (real kubectl, real protocol).
test: setup lint
	$(CARGO) test --workspace --all-targets --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

build:
	$(CARGO) build --workspace --all-targets

## A devcluster on its own, writing a kubeconfig to target/devcluster.kubeconfig.
devcluster:
	$(CARGO) run --quiet -p podgate-devcluster --bin devcluster -- --kubeconfig-out target/devcluster.kubeconfig

## Installs what the tests need on a fresh machine (idempotent; does nothing when present).
setup:
	@scripts/setup.sh
