#!/usr/bin/env bash
# The README's test command: installs everything the tests need, then lints and runs the
# whole suite. Needs only Python >= 3.11 (and apt-get with root or sudo for the servers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check fsm_actors resource_actors patterns tests benchmarks examples
# the layer contracts of docs/architecture.md (pyproject.toml [tool.importlinter])
.venv/bin/lint-imports --no-cache
.venv/bin/python -m pytest -q --durations=30 "$@"
