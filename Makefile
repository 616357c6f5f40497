# The two commands: `make demo` (set up, run the quickstart, write the report)
# and `make test`. Both run the idempotent setup first.

CARGO ?= cargo
# Each demo starts fresh in its own folder (the committed reports/quickstart/ is
# left alone; `make demo DEMO_OUT=reports/quickstart` regenerates it).
DEMO_OUT ?= runs/demo

.PHONY: setup setup-test demo test test-cuda lint bench

# Release binary for the demo and benchmarks.
setup:
	$(CARGO) run --release -q -- setup

demo: setup
	rm -rf $(DEMO_OUT)
	./target/release/mscr campaign run attacks/quickstart.toml --out $(DEMO_OUT)

# Tests reuse one debug build (dependencies optimised) for the setup and the suite.
setup-test:
	$(CARGO) build -q --bin mscr
	./target/debug/mscr setup --quiet
	bash scripts/test-deps.sh

test: setup-test
	$(CARGO) test --no-fail-fast -- --test-threads=2

# On a machine with an NVIDIA GPU (CUDA 13 and cuDNN 9 libraries on the loader
# path): fetch the CUDA build of ONNX Runtime and check the CUDA path against the CPU.
test-cuda:
	$(CARGO) build -q --bin mscr
	./target/debug/mscr setup --quiet --cuda
	MSCR_TEST_CUDA=1 $(CARGO) test --test cuda -- --test-threads=1 --nocapture

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
