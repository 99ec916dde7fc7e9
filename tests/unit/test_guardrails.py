"""The guardrail judgement (`include/stocksync/sync/guardrails.py: evaluate`) on hand-made plan figures."""

from __future__ import annotations

from include.stocksync.config.settings import load_settings
from include.stocksync.sync.guardrails import evaluate

SETTINGS = load_settings(environ={}).model_copy(update={"push_guardrails_min_skus": 100})


def figures(applicable: int, changing: int, zeroed: int, before: int, after: int,
            enabled: int = 1000, covered: int | None = None) -> dict[str, int]:
    return {"enabled_catalog": enabled, "covered": applicable if covered is None else covered,
            "applicable": applicable, "changing": changing, "zeroed": zeroed,
            "units_before": before, "units_after": after}


def failed(results: list) -> set[str]:
    return {g.name for g in results if not g.success}


def test_a_normal_night_passes() -> None:
    assert failed(evaluate(figures(1000, 40, 3, 100_000, 99_500), SETTINGS)) == set()


def test_a_zeroed_feed_trips_the_zero_and_units_guardrails() -> None:
    assert failed(evaluate(figures(1000, 1000, 990, 100_000, 0), SETTINGS)) == {
        "max_changed_share", "max_zeroed_share", "max_total_units_change"}


def test_a_truncated_feed_trips_coverage() -> None:
    assert failed(evaluate(figures(500, 10, 0, 50_000, 50_000, covered=500), SETTINGS)) == {"min_catalog_coverage"}


def test_a_short_sku_list_is_not_judged_by_shares_or_coverage() -> None:
    results = evaluate(figures(3, 3, 3, 300, 0, covered=3), SETTINGS, subset=True)
    assert failed(results) == set()
    assert all("not enforced" in g.observed for g in results if g.name != "min_catalog_coverage")


def test_a_long_sku_list_is_judged_over_the_listed_skus() -> None:
    results = evaluate(figures(150, 150, 120, 15_000, 0, covered=150), SETTINGS, subset=True)
    assert failed(results) == {"max_changed_share", "max_zeroed_share", "max_total_units_change"}
    coverage = next(g for g in results if g.name == "min_catalog_coverage")
    assert coverage.success and "not applicable" in coverage.observed
