#!/usr/bin/env bash
# Benchmark 10k / 100k / 1M SKUs (see scripts/benchmark.py); not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PYTHONPATH="$PWD"
exec .venv/bin/python scripts/benchmark.py "$@"
