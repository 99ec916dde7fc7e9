"""A run's data-quality results as people read them (its report, its alert): a check on a derived
flag (unknown_sku records `[false, false]` as its examples) names the SKUs it flagged instead."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from include.stocksync.store.db import query
from include.stocksync.store.mirror import ShopMirror

SKU_FLAG_CHECKS = ("unknown_sku",)  # checks of a derived true/false column: their examples read `false`
SKU_EXAMPLES = 5  # as many as a check records (validate.EXAMPLES)


def with_sku_examples(cur: psycopg.Cursor[dict[str, Any]], run: dict[str, Any],
                      checks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`checks` with the examples of a check on a derived flag (unknown_sku: `[false, false]`)
    replaced by the SKUs of its rows: those it quarantined, else those of the run's raw rows while
    its staging table is kept. A check whose SKUs are gone keeps no examples rather than flags."""
    out = []
    for check in checks:
        name = str(check.get("check_name") or "")
        examples = check.get("examples")
        if isinstance(examples, str):
            examples = json.loads(examples)
        # no examples: the check flagged no row, and there is nothing to look up (at 1M SKUs the
        # look-up is a whole anti-join of the raw rows against the catalog, ~2 s of the teardown)
        if name.split("[", 1)[0] in SKU_FLAG_CHECKS and isinstance(examples, list) and examples \
                and all(isinstance(e, bool) for e in examples):
            check = {**check, "examples": _flagged_skus(cur, run, name)}
        out.append(check)
    return out


def _flagged_skus(cur: psycopg.Cursor[dict[str, Any]], run: dict[str, Any], check_name: str) -> list[str]:
    rows = cur.execute(query("stocksync/select_quarantined_skus"),
                       {"run_id": run["run_id"], "check_name": check_name, "limit": SKU_EXAMPLES}).fetchall()
    if rows:
        return [str(r["sku"]) for r in rows]
    raw = run.get("staging_table")
    if not raw:
        return []
    copy = ShopMirror.of_run(str(run["run_id"]))  # the run's copy of the shop's catalog (shop_mirror.py)
    for table in (f"stocksync.{raw}", copy.catalog_table.as_string(cur.connection)):
        present = cur.execute(query("stocksync/select_table_exists"), {"name": table}).fetchone()
        if not present or not present["present"]:
            return []
    rows = cur.execute(query("stocksync/select_dq_unknown_rows", raw=str(raw), catalog=copy.catalog()),
                       {"limit": SKU_EXAMPLES}).fetchall()
    return [str(r["sku"]) for r in rows]
