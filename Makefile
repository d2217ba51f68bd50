# podgate: the two commands that matter are `make demo` and `make test`.
CARGO ?= cargo

.PHONY: demo test lint unit build devcluster bench bench-full setup web

## Run podgate on its embedded default: a gateway in front of two in-process devclusters.
demo: web
	$(CARGO) run --quiet -p podgate -- demo

## Every test: formatting, lints, unit and end-to-end tests (real kubectl, real protocol).
test: setup web lint
	$(CARGO) test --workspace --all-targets --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

build: web
	$(CARGO) build --workspace --all-targets

## The browser terminal (gateway/web) into gateway/web/dist, which the gateway embeds:
## `npm ci` when node_modules is missing or the lockfile changed, then esbuild.
web:
	@scripts/web.sh

## A devcluster on its own, writing a kubeconfig to target/devcluster.kubeconfig.
devcluster:
	$(CARGO) run --quiet -p podgate-devcluster --bin devcluster -- --kubeconfig-out target/devcluster.kubeconfig

## Installs what the tests need on a fresh machine (idempotent; does nothing when present).
setup:
	@scripts/setup.sh

BENCH_DIR ?= $(or $(CARGO_TARGET_DIR),target)

## Load benchmark, quick profile (< 3 min): a devcluster and podgate as processes, every
## scenario directly and through the gateway; a table on stdout, target/bench/summary.json.
## Then throughput and interactive again with every session recorded (summary-recording.json:
## recording's cost, against that run's direct path). Then the fleet bench at 1,000 cluster
## ids (about 1 min; bench-full: 10,000), fleet.json, kubectl port-forward through podgate
## against direct (portforward.json), and 1,000 sessions dropped and resumed at once
## (resume.json, about 10 s). Then the pod search in Chromium with 5,000 pods per cluster:
## time to first results and keystroke latency (search.json, about 10 s; skipped without
## Chromium).
bench:
	$(CARGO) build --release --quiet -p podgate -p podgate-devcluster -p podgate-benches
	$(BENCH_DIR)/release/podgate-load --spawn --profile quick --out $(BENCH_DIR)/bench/summary.json
	$(BENCH_DIR)/release/podgate-load --spawn --profile quick --scenario throughput,interactive --recording best_effort --out $(BENCH_DIR)/bench/summary-recording.json
	$(BENCH_DIR)/release/podgate-fleet --clusters 1000 --settle 15s --rest 20s --heap-clusters 200 --out $(BENCH_DIR)/bench/fleet.json
	$(BENCH_DIR)/release/podgate-agents --agents 1000 --out $(BENCH_DIR)/bench/agents.json
	$(BENCH_DIR)/release/podgate-portforward --bytes 67108864 --requests 500 --out $(BENCH_DIR)/bench/portforward.json
	$(BENCH_DIR)/release/podgate-resume --sessions 1000 --out $(BENCH_DIR)/bench/resume.json
	$(CARGO) test --release -p podgate-testkit --test ui_search -- --ignored --nocapture

## The targets' full sizes (10,000 idle, 1,000 interactive at 10/s, churn of 100,000, 5 min soak;
## about 25 min), then the criterion micro-benchmarks. Writes target/bench/summary-full.json.
bench-full:
	$(CARGO) build --release --quiet -p podgate -p podgate-devcluster -p podgate-benches
	$(BENCH_DIR)/release/podgate-load --spawn --profile full --out $(BENCH_DIR)/bench/summary-full.json
	$(BENCH_DIR)/release/podgate-fleet --clusters 10000 --settle 100s --rest 60s --heap-clusters 1000 --out $(BENCH_DIR)/bench/fleet-full.json
	$(BENCH_DIR)/release/podgate-portforward --out $(BENCH_DIR)/bench/portforward-full.json
	$(CARGO) bench -p podgate-benches --bench codec
	$(CARGO) bench -p podgate-auth --bench verify
