#!/usr/bin/env bash
# The test suite (it starts its own PostgreSQL, MariaDB, WMS service and webhook receiver), on
# pytest-xdist workers: each worker has its own test clusters (tests/workers.py); the modules on the
# shared standalone Airflow run on one worker, a module with a module-scoped fixture on one worker.
#   bash scripts/test.sh               the whole suite
#   bash scripts/test.sh fast          the fast tier: tests/unit and tests/dags without the slow mark
#   bash scripts/test.sh fast -k x     further pytest arguments follow either form
# STOCKSYNC_TEST_WORKERS sets the number of workers; 0 runs everything in this one process. The
# defaults, for the two-core machine: 3 for the whole suite (on 2 the machine stays a quarter idle
# while tests wait on Airflow runs, boots and heartbeat bounds: 10:42 there against 8:49-9:20 on 3),
# 2 for the fast tier (it waits on nothing; each worker pays its own Airflow migration and imports,
# and 4 workers used twice the CPU of one process with no gain in wall time).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PYTHONPATH="$PWD"
tier=()
default_workers=3
if [ "${1:-}" = fast ]; then
  shift
  tier=(-m "not slow" tests/unit tests/dags)
  default_workers=2
fi
workers="${STOCKSYNC_TEST_WORKERS:-$default_workers}"
if ! [[ "$workers" =~ ^[0-9]+$ ]]; then
  echo "stocksync: STOCKSYNC_TEST_WORKERS=$workers: set a number of pytest-xdist workers (0 = no workers)" >&2
  exit 2
fi
if [ "$workers" = 0 ]; then
  exec .venv/bin/python -m pytest "${tier[@]}" "$@"
fi
# --no-loadscope-reorder: the workers take the modules up in the order tests/workers.py sets (the
# longest first), not by their number of tests
exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup --no-loadscope-reorder "${tier[@]}" "$@"
