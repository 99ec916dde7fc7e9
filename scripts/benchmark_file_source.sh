#!/usr/bin/env bash
# File-drop source extract benchmark (see scripts/benchmark_file_source.py); not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PYTHONPATH="$PWD"
exec .venv/bin/python scripts/benchmark_file_source.py "$@"
