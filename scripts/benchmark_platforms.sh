#!/usr/bin/env bash
# Benchmark 100k / 1M SKUs into Magento 2 and PrestaShop on MariaDB (see scripts/benchmark_platforms.py);
# not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PYTHONPATH="$PWD"
exec .venv/bin/python scripts/benchmark_platforms.py "$@"
