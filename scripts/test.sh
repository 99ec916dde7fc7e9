#!/usr/bin/env bash
# The whole test suite (it starts its own PostgreSQL, WMS service and webhook receiver).
# Fast tier only: bash scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PYTHONPATH="$PWD"
exec .venv/bin/python -m pytest "$@"
