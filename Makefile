# Shortcuts for the README's two commands (scripts/demo.sh, scripts/test.sh) and the benchmark.
.PHONY: demo test bench

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

bench:
	bash scripts/setup.sh --no-servers
	.venv/bin/python benchmarks/fsm_batch.py
