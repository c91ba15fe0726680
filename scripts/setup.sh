#!/usr/bin/env bash
# Creates .venv and installs the project with its test dependencies, and the database
# servers the tests start themselves (PostgreSQL, MariaDB). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
if [ -x scripts/install-servers.sh ] || [ -f scripts/install-servers.sh ]; then
    bash scripts/install-servers.sh
fi
