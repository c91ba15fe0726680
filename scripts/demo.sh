#!/usr/bin/env bash
# The README's demo command: the orders pipeline over a generated CSV (a small input: in-process).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh --no-servers
.venv/bin/python examples/make_orders.py --rows 200000 --out examples/data/orders.csv
.venv/bin/fsm-actors run examples/orders_fsm.yaml --input examples/data/orders.csv \
    --output out/orders.jsonl
