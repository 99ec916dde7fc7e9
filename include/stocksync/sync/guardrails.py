"""Guardrails on the plan before any write (shared/DESIGN.md §3.5).

A broken feed (truncated, zeroed, a wrong file) looks like a plan that covers too little
of the catalog, changes too many SKUs, drops too many to zero or moves the total number of
units too much; a replayed or stuck feed looks like one where too many SKUs are stale (their WMS
sequence older than the one the shop last applied: `max_stale_share`). Thresholds live in the
config (`guardrails:`, declared in config/guardrails.py); ops may override them for one run with a
recorded reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson
import psycopg

from include.stocksync.config.settings import Settings
from include.stocksync.domain.errors import PermanentError
from include.stocksync.store.db import query
from include.stocksync.store.mirror import ShopMirror

# Which guardrails exist and their default limits are declared with the settings
# (config/guardrails.py LIMITS); this module judges a plan against them.


class GuardrailFailed(PermanentError):
    """The plan looks like a broken feed; nothing was written."""

    def __init__(self, failed: list[Guardrail]):
        self.failed = failed
        detail = "; ".join(f"{g.name}: {g.observed}" for g in failed)
        # the nightly sync takes no override (settings.run_options): the advice names the ops push
        super().__init__(f"guardrails stopped the run, nothing was written: {detail}. If the feed is right, "
                         "preview it with a dry run of inventory_full_push, then apply it there with "
                         "override_guardrails=true and an override_reason")


@dataclass(frozen=True)
class Guardrail:
    name: str
    value: float
    limit: float
    success: bool
    observed: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def metrics(conn: psycopg.Connection, plan_table: str) -> dict[str, int]:
    """The plan's figures; the enabled catalog is the run's copy of the shop's (shop_mirror.py)."""
    cur = conn.execute(query("stocksync/select_guardrail_metrics", plan=plan_table,
                             enabled_skus=ShopMirror.of_plan(plan_table).enabled_skus()))
    row = cur.fetchone()
    assert row is not None and cur.description is not None
    return {col.name: int(value or 0) for col, value in zip(cur.description, row, strict=True)}


def evaluate(figures: dict[str, int], settings: Settings, subset: bool = False) -> list[Guardrail]:
    """Judge the plan's figures against the configured limits.

    For a push of listed SKUs (`subset`) the plan holds only those SKUs: catalog coverage does
    not apply, and the shares are judged over the listed SKUs once there are at least
    `push_guardrails_min_skus` of them (a long list from a bad file is as dangerous as a bad
    feed); a shorter list is a deliberate fix of a few SKUs and is not judged by shares."""
    limits = settings.guardrails
    applicable = max(figures["applicable"], 1)
    enabled = figures["enabled_catalog"]
    coverage = figures["covered"] / enabled if enabled else 1.0
    changed = figures["changing"] / applicable
    zeroed = figures["zeroed"] / applicable
    before, after = figures["units_before"], figures["units_after"]
    units = abs(after - before) / max(before, 1)

    def pct(x: float) -> str:
        return f"{x * 100:.1f}%"

    results = [
        Guardrail("min_catalog_coverage", coverage, limits["min_catalog_coverage"],
                  subset or coverage >= limits["min_catalog_coverage"],
                  "not applicable to a push of listed SKUs" if subset else
                  f"the snapshot covers {pct(coverage)} of the {enabled} enabled SKUs "
                  f"(at least {pct(limits['min_catalog_coverage'])} required)"),
        Guardrail("max_changed_share", changed, limits["max_changed_share"], changed <= limits["max_changed_share"],
                  f"{pct(changed)} of SKUs would change ({figures['changing']}; at most "
                  f"{pct(limits['max_changed_share'])} allowed)"),
        Guardrail("max_zeroed_share", zeroed, limits["max_zeroed_share"], zeroed <= limits["max_zeroed_share"],
                  f"{pct(zeroed)} of SKUs would drop from in stock to 0 ({figures['zeroed']}; at most "
                  f"{pct(limits['max_zeroed_share'])} allowed)"),
        Guardrail("max_total_units_change", units, limits["max_total_units_change"],
                  units <= limits["max_total_units_change"],
                  f"total units would move {pct(units)} ({before} -> {after}; at most "
                  f"{pct(limits['max_total_units_change'])} allowed)"),
    ]
    # --- a feed whose SKUs are mostly older than what the shop has is a replayed one ---
    known = max(figures.get("known", figures["applicable"]), 1)
    stale = figures.get("stale", 0) / known
    limit = limits.get("max_stale_share", 1.0)
    results.append(Guardrail("max_stale_share", stale, limit, stale <= limit,
                             f"{pct(stale)} of SKUs are stale: the WMS sent an older sequence than the one applied "
                             f"({figures.get('stale', 0)}; at most {pct(limit)} allowed)"))
    # --- end: a feed whose SKUs are mostly older than what the shop has is a replayed one ---
    if subset and figures["applicable"] < settings.push_guardrails_min_skus:
        results = [results[0], *(Guardrail(g.name, g.value, g.limit, True, f"{g.observed} (not enforced for a "
                                           f"push of fewer than {settings.push_guardrails_min_skus} listed SKUs)")
                                 for g in results[1:])]
    return results


def check_plan(conn: psycopg.Connection, run_id: str, plan_table: str, settings: Settings, *,
               subset: bool = False, override_reason: str | None = None) -> list[Guardrail]:
    """Evaluate the plan and record each guardrail with the run's data-quality results (an
    overridden failure as `overridden`). The caller decides whether a failure stops the run."""
    results = evaluate(metrics(conn, plan_table), settings, subset)
    policy = "overridden" if override_reason else "fail"
    with conn.cursor() as cur:
        cur.executemany(query("stocksync/upsert_dq_result"), [
            {"run_id": run_id, "check_name": f"guardrail:{g.name}", "success": g.success,
             "policy": policy if not g.success else "fail", "observed": g.observed,
             "examples": orjson.dumps({"value": g.value, "limit": g.limit}).decode()}
            for g in results])
    return results
