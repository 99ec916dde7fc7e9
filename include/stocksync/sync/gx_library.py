"""Great Expectations, imported once per process and quietly.

Its import is the slowest part of a small night's validation (about 3.7 s of CPU on the two-core
machine, 5-6 s under load): a Celery worker imports this module once when it starts, before it
forks its pool (Celery's `imports`, include/stocksync/airflow/celery_config.py), so the validate
task, inside the checkout freeze, finds the library loaded. On import Great Expectations logs about
150 "Skipping registering function ..." lines at INFO from its API-docs registry, which would fill
every validate task's log: that logger is set to WARNING first.
"""

from __future__ import annotations

import logging

logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)

import great_expectations as gx  # noqa: E402  (after its logger is quiet)

__all__ = ["gx"]
