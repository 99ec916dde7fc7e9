"""`[core] hostname_callable` for several Celery workers on one machine (devstack/celery_stack.py).

Airflow records on every task instance the hostname of the process that ran it
(`GET .../taskInstances` -> `hostname`). Two `airflow celery worker` processes on the same
machine would both record the machine's name, so nobody could tell which worker ran a task
(and the Celery tests could not prove the work was spread, or find the worker to kill). Each
worker the native stack starts gets `STOCKSYNC_WORKER_NAME`; its task instances then carry
`<name>@<fqdn>`, the same name as its Celery node (`--celery-hostname <name>@%h`). Processes
without the variable (scheduler, API server, a worker in its own container) keep Airflow's
default, the fully qualified domain name.

Kept free of imports beyond the standard library: every task process imports it.
"""

from __future__ import annotations

import os
import socket

WORKER_NAME_ENV = "STOCKSYNC_WORKER_NAME"


def hostname() -> str:
    name = os.environ.get(WORKER_NAME_ENV, "").strip()
    fqdn = socket.getfqdn()
    return f"{name}@{fqdn}" if name else fqdn
