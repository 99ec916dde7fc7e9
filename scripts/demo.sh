#!/usr/bin/env bash
# The main job on the embedded default: local PostgreSQL + WMS service + one nightly sync.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PYTHONPATH="$PWD"
# what the stack writes under .local/ (secrets, alerts, Airflow's DB and logs) is ours only
umask 077
exec .venv/bin/python -m include.stocksync demo "$@"
