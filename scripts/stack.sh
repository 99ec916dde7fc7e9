#!/usr/bin/env bash
# The full Airflow 3 UI on the embedded local stack: local PostgreSQL + WMS service + webhook
# receiver + `airflow standalone` on http://127.0.0.1:8080 (options: --port, --skus, --seed, --reseed,
# --shop magento2|prestashop: the DAGs write a store seeded in the dev MariaDB instead of the reference shop).
# Prints the login and the "Stock sync" page URL; Ctrl-C stops Airflow (the rest keeps running:
# `PYTHONPATH=. .venv/bin/python -m include.stocksync stop` ends it).
# With either executor it also starts the availability service on 127.0.0.1:18767 (--availability-port),
# printing the URL to paste into the storefront platform (secret in .local/secrets/availability-secret).
# --executor celery: docker-compose.yaml's CeleryExecutor topology without Docker (Redis, metadata
# DB on the local PostgreSQL, api-server, scheduler, dag-processor, triggerer, two Celery workers;
# devstack/celery_stack.py); --redis-port 16379. Each process is supervised on its own: one that
# dies (a killed worker) is started again with backoff while the rest keep running; Ctrl-C or
# SIGTERM stops them all. Airflow's lost-task detection is docker-compose.yaml's (30 s + 5 s).
# --auth fab [--user alice:ops --user bob:viewer]: per-person logins with roles (Airflow's FAB auth manager,
# as docker-compose.yaml); each account's password is printed at start (.local/airflow-fab/fab_passwords.json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PYTHONPATH="$PWD"
# what the stack writes under .local/ (secrets, alerts, Airflow's DB and logs) is ours only
umask 077
exec .venv/bin/python -m include.stocksync stack "$@"
