#!/usr/bin/env bash
# Benchmark the availability service (see scripts/benchmark_availability.py); not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PYTHONPATH="$PWD"
exec .venv/bin/python scripts/benchmark_availability.py "$@"
