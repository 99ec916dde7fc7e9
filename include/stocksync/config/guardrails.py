"""The `guardrails:` section of the config: which guardrails exist, their default limits, and
the checks a configured set of limits must pass.

Declared here, in config, so the settings can validate the section without importing the code
that judges a plan (`include/stocksync/sync/guardrails.py` imports this module, never the
reverse). `STOCKSYNC_GUARDRAILS__<NAME>` overrides one limit.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

# Every guardrail, declared once: its name and its default limit (None: the config must set it).
# Adding one: an entry here, its judgement in sync/guardrails.py `evaluate`, its threshold in the
# config (and its figure in select_guardrail_metrics.sql if it needs a new one).
LIMITS: dict[str, float | None] = {
    "min_catalog_coverage": None,    # share of the enabled catalog the snapshot covers
    "max_changed_share": None,       # share of SKUs whose stock would change
    "max_zeroed_share": None,        # share of SKUs that would drop from >0 to 0
    "max_total_units_change": None,  # |total units after - before| / before
    "max_stale_share": 0.10,         # share of SKUs whose WMS seq is older than the applied one
}


def _with_defaults(value: Any) -> Any:
    """Guardrails with a default limit may be left out of the config (one written before they existed)."""
    defaults = {name: limit for name, limit in LIMITS.items() if limit is not None}
    return {**defaults, **value} if isinstance(value, dict) else value


def _every_guardrail_a_share(limits: dict[str, float]) -> dict[str, float]:
    if set(limits) != set(LIMITS):
        raise ValueError(f"guardrails must set exactly: {', '.join(LIMITS)}; got {', '.join(limits)}")
    for name, value in limits.items():
        if not 0 <= value <= 1:
            raise ValueError(f"guardrails.{name} must be a share between 0 and 1; got {value}")
    return limits


# The section's type: name -> limit, the defaults filled in before, every guardrail a share after.
GuardrailLimits = Annotated[dict[str, float], BeforeValidator(_with_defaults), AfterValidator(_every_guardrail_a_share)]
