# The two commands of the README: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint bench clean

$(PY):
	bash scripts/setup.sh --no-servers

setup:
	bash scripts/setup.sh

demo: $(PY)
	$(PY) examples/make_orders.py --rows 200000 --out examples/data/orders.csv
	$(VENV)/bin/fsm-actors run examples/orders_fsm.yaml --input examples/data/orders.csv --output out/orders.jsonl

test: setup
	$(VENV)/bin/ruff check fsm_actors resource_actors patterns tests benchmarks examples
	$(VENV)/bin/python -m pytest -q

bench: $(PY)
	$(PY) benchmarks/fsm_batch.py

clean:
	rm -rf out .pytest_cache
