#!/usr/bin/env bash
# Benchmark the nginx checkout gate (see scripts/benchmark_checkout_gate.py); not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PYTHONPATH="$PWD"
exec .venv/bin/python scripts/benchmark_checkout_gate.py "$@"
