#!/usr/bin/env bash
# The crash measurements of docs/operations.md ("Measured (shipped settings)"), at the SHIPPED
# timing, nothing shortened: a Celery worker killed holding the stock lock (about 100 s a
# repetition after a 20-30 s stack start) and a crashed nightly whose freeze the next run releases
# (about 145 s a repetition). The test suite runs the same tests at a scaled timing
# (tests/fault_timing.py); this is the run whose figures go into the runbook.
# Options: --repeats N (default 3). Prints one FAULT-MEASURE line per repetition.
# Uses its own test PostgreSQL (.local/pg/measure, port 55439 unless STOCKSYNC_TEST_PG_PORT is set).
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=3
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats) repeats="$2"; shift 2 ;;
    *) echo "usage: bash scripts/measure_worker_loss.sh [--repeats N]" >&2; exit 2 ;;
  esac
done
bash scripts/bootstrap.sh
export PYTHONPATH="$PWD"
export STOCKSYNC_FAULT_TIMING=shipped STOCKSYNC_FAULT_REPEATS="$repeats"
export STOCKSYNC_TEST_PG_NAME="${STOCKSYNC_TEST_PG_NAME:-measure}" STOCKSYNC_TEST_PG_PORT="${STOCKSYNC_TEST_PG_PORT:-55439}"
log="$(mktemp -t stocksync-worker-loss.XXXXXX)"
status=0
.venv/bin/python -m pytest -s -q -p no:cacheprovider \
  "tests/integration/test_celery_stack.py::test_worker_killed_holding_the_lock_the_stack_stays_up_and_the_night_syncs" \
  "tests/integration/test_operations_faults.py::test_a_crashed_run_s_freeze_is_released_by_a_run_started_soon_after" \
  >"$log" 2>&1 || status=$?
grep '^FAULT-MEASURE\|FAULT-MEASURE {' "$log" | sed 's/.*FAULT-MEASURE /FAULT-MEASURE /' || true
tail -n 3 "$log"
echo "full log: $log"
exit "$status"
