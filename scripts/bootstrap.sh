#!/usr/bin/env bash
# Prepare a fresh Debian machine (Python 3.11, root) for stocksync: PostgreSQL and MariaDB server
# binaries from Debian (no Docker), the virtualenv with pinned dependencies. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "stocksync: missing system packages ($*); run as root or: sudo apt-get install -y $*" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # try the package lists we have; refresh them only when that fails (a fresh machine has none)
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "stocksync: installing Debian's postgresql server package" >&2
  apt_install postgresql
fi

# MariaDB, the shop database of the magento2 and prestashop adapters in development and tests
# (devstack/local_mariadb.py runs its own server on 127.0.0.1, never the system one), and what the
# mysqlclient driver (C) builds against
if ! command -v mariadb-install-db >/dev/null 2>&1 || ! command -v setfacl >/dev/null 2>&1 \
   || ! pkg-config --exists libmariadb 2>/dev/null; then
  echo "stocksync: installing Debian's mariadb-server and libmariadb-dev packages (magento2/prestashop shops)" >&2
  apt_install mariadb-server mariadb-client libmariadb-dev pkg-config gcc python3-dev acl
fi

# Redis, the Celery broker of `scripts/stack.sh --executor celery` and its tests (Debian's package;
# devstack/celery_stack.py runs its own redis-server on 127.0.0.1 with a password, never the system one)
if ! command -v redis-server >/dev/null 2>&1; then
  echo "stocksync: installing Debian's redis-server package (Celery broker)" >&2
  apt_install redis-server
fi

# Docker Compose (Debian's python docker-compose 1.29): tests/unit/test_compose_config.py validates
# docker-compose.yaml with `docker-compose config`, which needs no Docker engine
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "stocksync: installing Debian's docker-compose package (compose file validation)" >&2
  apt_install docker-compose
fi

# nginx (Debian's package) for the checkout-gate tests (tests/integration/test_nginx_freeze.py run
# their own nginx with its own prefix on 127.0.0.1; the package's system service is never used)
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "stocksync: installing Debian's nginx package (checkout gate tests)" >&2
  apt_install nginx
  # Debian starts the package's service on port 80; the tests need only the binary: stop the one
  # we just installed (an nginx that was already there is never touched)
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
  if [ -x /etc/init.d/nginx ]; then /etc/init.d/nginx stop >/dev/null 2>&1 || true; fi  # no systemd (containers)
fi

# Headless Chromium for the browser tests (Debian's package; the tests drive it with Playwright)
if [ "${STOCKSYNC_SKIP_CHROMIUM:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "stocksync: installing Debian's chromium package (browser tests)" >&2
  apt_install chromium fonts-dejavu-core
fi

PYTHON_BIN="${PYTHON:-}"
if [ -z "$PYTHON_BIN" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON_BIN="$candidate"; break; fi
  done
fi
if [ -z "$PYTHON_BIN" ]; then
  echo "stocksync: no python3.11 or python3 on PATH (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
# Debian splits venv/ensurepip out of its python3.11 package
if ! "$PYTHON_BIN" -c "import ensurepip, venv" >/dev/null 2>&1; then
  echo "stocksync: installing Debian's python3-venv package" >&2
  apt_install python3-venv
fi
# a half-made .venv (an earlier failed attempt) has a python but no pip: start it over
if [ -x .venv/bin/python ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  echo "stocksync: .venv is incomplete; recreating it" >&2
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON_BIN" -m venv .venv
fi
stamp=.venv/.stocksync-requirements
wanted="$(cat requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "stocksync: installing Python dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -r requirements.txt -r requirements-dev.txt -c constraints.txt
  echo "$wanted" > "$stamp"
fi
