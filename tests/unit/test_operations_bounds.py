"""The time bounds of issue 12 (`include/stocksync/ops_settings.py`) and the stale-share guardrail,
on the shipped config and on hand-made ones: what the README's worst-case table is computed from."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from include.stocksync.guardrails import evaluate
from include.stocksync.ops_settings import covered_worst_case, freeze_ttl, heartbeat_bound
from include.stocksync.settings import CONFIG_PATH, ConfigError, load_settings

SHIPPED = load_settings(environ={})


def write(tmp_path: Path, **changes: object) -> Path:
    raw = yaml.safe_load(CONFIG_PATH.read_text())
    for key, value in changes.items():
        if "." in key:
            section, name = key.split(".")
            raw[section] = {**raw.get(section, {}), name: value}
        else:
            raw[key] = value
    path = tmp_path / "stocksync.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_full_mode_freeze_is_at_most_five_minutes() -> None:
    # W = 3 x (180 + 120 + 120 + 120) + 4 x 2 x 60 + 60 = 2160 s: the timeouts alone would allow
    # 36 min, so the configured maximum (freeze_ttl_seconds = 300) is the TTL and the run budget
    assert covered_worst_case(SHIPPED) == 2160
    assert freeze_ttl(SHIPPED) == SHIPPED.freeze_ttl_seconds == 300
    assert heartbeat_bound(SHIPPED) == 120
    assert SHIPPED.operations.extract_timeout_seconds > SHIPPED.extract_deadline_seconds
    assert SHIPPED.operations.load_timeout_seconds > SHIPPED.lock_timeout_seconds


def test_short_timeouts_make_a_shorter_ttl(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, task_retries=0, max_retry_delay_seconds=5, extract_deadline_seconds=10,
                                   lock_timeout_seconds=5, **{"operations.extract_timeout_seconds": 20,
                                                              "operations.validate_timeout_seconds": 10,
                                                              "operations.merge_timeout_seconds": 10,
                                                              "operations.load_timeout_seconds": 20}), environ={})
    # retries are at least 2 (dag_factory.default_args): 3 x 60 + 4 x 2 x 5 + 60 = 280 < 300
    assert covered_worst_case(settings) == 280
    assert freeze_ttl(settings) == 280


def test_the_heartbeat_bound_never_drops_below_the_longest_retry_delay(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, **{"operations.heartbeat_timeout_seconds": 20}), environ={})
    # between two tries nothing beats: 60 s of retry delay + 3 beats of 10 s
    assert heartbeat_bound(settings) == 90


def test_environment_overrides_one_operations_entry() -> None:
    settings = load_settings(environ={"STOCKSYNC_OPERATIONS__HEARTBEAT_INTERVAL_SECONDS": "0.5",
                                      "STOCKSYNC_OPERATIONS__WATCHED_DAG_IDS": "a, b"})
    assert settings.operations.heartbeat_interval_seconds == 0.5
    assert settings.operations.watched_dag_ids == ("a", "b")
    assert settings.operations.load_timeout_seconds == SHIPPED.operations.load_timeout_seconds


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"operations.extract_timeout_seconds": 150}, "extract_timeout_seconds (150) must exceed extract_deadline_seconds"),
    ({"operations.load_timeout_seconds": 60}, "load_timeout_seconds (60) must exceed lock_timeout_seconds"),
    ({"operations.alert_read_timeout_seconds": 60}, "may not exceed 30"),
    ({"operations.heartbeat_timeout_seconds": 15}, "at least twice heartbeat_interval_seconds"),
    ({"operations.watchdog_schedule_typo": "x"}, "watchdog_schedule_typo"),
])
def test_bad_operations_values_are_named(tmp_path: Path, changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match="operations") as info:
        load_settings(write(tmp_path, **changes), environ={})
    assert fragment in str(info.value)


def test_a_config_without_the_new_keys_still_loads(tmp_path: Path) -> None:
    raw = yaml.safe_load(CONFIG_PATH.read_text())
    del raw["operations"]
    del raw["guardrails"]["max_stale_share"]
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(raw))
    settings = load_settings(path, environ={})
    assert settings.guardrails["max_stale_share"] == 0.10
    assert settings.operations.heartbeat_interval_seconds == 10


def figures(stale: int, known: int = 1000) -> dict[str, int]:
    return {"enabled_catalog": 1000, "covered": known, "applicable": known - stale, "changing": 10, "zeroed": 0,
            "units_before": 100_000, "units_after": 100_100, "stale": stale, "known": known}


def test_a_feed_with_41_percent_stale_skus_trips_the_stale_guardrail() -> None:
    results = {g.name: g for g in evaluate(figures(410), SHIPPED)}
    assert not results["max_stale_share"].success
    assert results["max_stale_share"].observed.startswith("41.0% of SKUs are stale")
    assert all(g.success for name, g in results.items() if name != "max_stale_share")


def test_a_few_stale_skus_pass_and_old_figures_without_a_stale_count_too() -> None:
    assert all(g.success for g in evaluate(figures(50), SHIPPED))
    old = {k: v for k, v in figures(0).items() if k not in ("stale", "known")}
    assert next(g for g in evaluate(old, SHIPPED) if g.name == "max_stale_share").value == 0


def test_a_short_sku_push_is_not_judged_by_the_stale_share() -> None:
    results = evaluate({**figures(3, known=5), "covered": 5}, SHIPPED, subset=True)
    stale = next(g for g in results if g.name == "max_stale_share")
    assert stale.success and "not enforced" in stale.observed
