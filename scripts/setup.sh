#!/usr/bin/env bash
# Creates .venv and installs the project with its test dependencies, and the database
# servers the tests start themselves (PostgreSQL, MariaDB; not with --no-servers). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# This machine's pip config names local mirrors that may be absent: drop those warnings only.
pip_install() {
    .venv/bin/python -m pip install -q "$@" 2>&1 | { grep -v "WARNING: Location" || true; }
}
pip_install --upgrade pip
pip_install -e ".[test]"
# The demo needs no database server: `setup.sh --no-servers` skips them.
if [ "${1:-}" != "--no-servers" ]; then
    bash scripts/install-servers.sh
fi
