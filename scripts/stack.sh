#!/usr/bin/env bash
# The full Airflow 3 UI on the embedded local stack: local PostgreSQL + WMS service + webhook
# receiver + `airflow standalone` on http://127.0.0.1:8080 (options: --port, --skus, --seed, --reseed).
# Prints the login and the "Stock sync" page URL; Ctrl-C stops Airflow (the rest keeps running:
# `PYTHONPATH=. .venv/bin/python -m include.stocksync stop` ends it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PYTHONPATH="$PWD"
# what the stack writes under .local/ (secrets, alerts, Airflow's DB and logs) is ours only
umask 077
exec .venv/bin/python -m include.stocksync stack "$@"
