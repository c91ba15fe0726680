# Shortcuts for the README's two commands (scripts/demo.sh, scripts/test.sh) and the benchmark.
.PHONY: demo test bench up down dashboard

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

bench:
	bash scripts/setup.sh --no-servers
	.venv/bin/python benchmarks/fsm_batch.py

# A persistent local Ray head with the dashboard (README "Operations"), and its stop.
up:
	.venv/bin/fsm-actors up

down:
	.venv/bin/fsm-actors down

# Regenerate the Grafana dashboard from fsm_actors.metrics.CATALOG.
dashboard:
	.venv/bin/python scripts/make_dashboard.py
