#!/usr/bin/env bash
# The test suite (it starts its own PostgreSQL, MariaDB, WMS service and webhook receiver), on
# pytest-xdist workers: each worker has its own test clusters (tests/workers.py); the modules on the
# shared standalone Airflow run on one worker, a module with a module-scoped fixture on one worker.
#   bash scripts/test.sh               the whole suite
#   bash scripts/test.sh fast          the fast tier: tests/unit and tests/dags without the slow mark
#   bash scripts/test.sh fast -k x     further pytest arguments follow either form
# STOCKSYNC_TEST_WORKERS sets the number of workers (default 2, one per core of the two-core
# machine: each worker pays its own Airflow migration and imports, and 4 workers used twice the CPU
# of one process on the fast tier with no gain in wall time; 0 runs everything in this one process).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PYTHONPATH="$PWD"
workers="${STOCKSYNC_TEST_WORKERS:-2}"
if ! [[ "$workers" =~ ^[0-9]+$ ]]; then
  echo "stocksync: STOCKSYNC_TEST_WORKERS=$workers: set a number of pytest-xdist workers (0 = no workers)" >&2
  exit 2
fi
tier=()
if [ "${1:-}" = fast ]; then
  shift
  tier=(-m "not slow" tests/unit tests/dags)
fi
if [ "$workers" = 0 ]; then
  exec .venv/bin/python -m pytest "${tier[@]}" "$@"
fi
# --no-loadscope-reorder: the workers take the modules up in the order tests/workers.py sets (the
# longest first), not by their number of tests
exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup --no-loadscope-reorder "${tier[@]}" "$@"
