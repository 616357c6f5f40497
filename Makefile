# The two commands: `make demo` (set up, run the quickstart, write the report)
# and `make test`. Both run the idempotent setup first.

CARGO ?= cargo
DEMO_OUT ?= reports/quickstart

.PHONY: setup setup-test demo test lint bench

# Release binary for the demo and benchmarks.
setup:
	$(CARGO) run --release -q -- setup

demo: setup
	./target/release/mscr campaign run attacks/quickstart.toml --out $(DEMO_OUT)

# Tests reuse one debug build (dependencies optimised) for the setup and the suite.
setup-test:
	$(CARGO) build -q --bin mscr
	./target/debug/mscr setup --quiet
	bash scripts/test-deps.sh

test: setup-test
	$(CARGO) test --no-fail-fast -- --test-threads=2

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
