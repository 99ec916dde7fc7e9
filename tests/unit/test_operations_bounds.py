"""The time bounds of the operations settings (`include/stocksync/config/operations.py`) and the stale-share guardrail,
on the shipped config and on hand-made ones: what the README's worst-case table is computed from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from include.stocksync.config.operations import covered_worst_case, freeze_ttl, heartbeat_bound
from include.stocksync.config.settings import CONFIG_PATH, ConfigError, load_settings
from include.stocksync.sync.guardrails import evaluate

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
    # W = 3 x (180 + 120 + 120 + 120) + 4 x 2 x 30 + 60 = 1920 s: the timeouts alone would allow
    # 32 min, so the configured maximum (freeze_ttl_seconds = 300) is the TTL and the run budget
    assert covered_worst_case(SHIPPED) == 1920
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
    # retries are at least 2 (task_support.default_args): 3 x 60 + 4 x 2 x 5 + 60 = 280 < 300
    assert covered_worst_case(settings) == 280
    assert freeze_ttl(settings) == 280


def test_the_heartbeat_bound_never_drops_below_the_longest_retry_delay(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, **{"operations.heartbeat_timeout_seconds": 20}), environ={})
    # between two tries nothing beats: 30 s of retry delay + 3 beats of 10 s
    assert heartbeat_bound(settings) == 60


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
    ({"operations.dead_after_beats": 1}, "dead_after_beats must be >= 2"),
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


# ------------------------------------------------ a lost worker, at the values the files ship

ROOT = CONFIG_PATH.parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
AIRFLOW_KEYS = {"heartbeat_timeout": "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT",
                "detection_interval": "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL",
                "supervisor_beat": "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"}
# From a retry becoming due to its task's first beat on a worker, and validate + merge + one apply
# (README benchmarks: 1.4 + 1.2 s at 1M SKUs, ~20 s at 10M), as docs/operations.md states them.
TASK_START = 15.0
APPLY = 30.0


def shipped_files() -> tuple[dict[str, Any], dict[str, dict[str, str]], dict[str, Any]]:
    """The Airflow environment docker-compose.yaml gives every Airflow container, the native Celery
    stack's per process (devstack/celery_stack.topology()), and stocksync.yaml, as shipped."""
    from devstack.celery_stack import topology

    compose = yaml.safe_load(COMPOSE.read_text())["x-airflow-common"]["environment"]
    native = {name: process["env"] for name, process in topology()["processes"].items()}
    return compose, native, yaml.safe_load(CONFIG_PATH.read_text())


def bound_problems(compose: dict[str, Any], native: dict[str, dict[str, str]], raw: dict[str, Any]) -> list[str]:
    """Every way the shipped timing breaks 'one lost worker during the apply still ends in a synced
    night, checkout closed at most one apply retry + the detection time', computed here from the
    raw values (Airflow's retry formula: delay x multiplier^(try-1), plus up to as much again of
    hash jitter, capped at max_retry_delay)."""
    problems = []
    airflow = {}
    for name, key in AIRFLOW_KEYS.items():
        values = {"compose": compose.get(key), **{f"native {p}": env.get(key) for p, env in native.items()}}
        if None in values.values() or len(set(map(str, values.values()))) != 1:
            problems.append(f"{key} differs or is missing: {values}")
            continue
        airflow[name] = float(str(compose[key]))
    if problems:
        return problems
    settings = load_settings_from(raw)
    ops = raw["operations"]
    if (ops["airflow_task_heartbeat_timeout_seconds"], ops["airflow_heartbeat_check_seconds"]) != (
            airflow["heartbeat_timeout"], airflow["detection_interval"]):
        problems.append("stocksync.yaml's operations.airflow_* do not say what the deployment sets")
    if airflow["heartbeat_timeout"] < 4 * airflow["supervisor_beat"]:
        problems.append("Airflow's heartbeat timeout leaves a live task fewer than 4 beats")
    detection = airflow["heartbeat_timeout"] + airflow["detection_interval"]
    first_retry = min(2 * raw["retry_delay_seconds"], raw["max_retry_delay_seconds"])  # try 1: [d, 2d)
    any_retry = raw["max_retry_delay_seconds"]
    recovery = detection + any_retry + TASK_START
    ttl = min(raw["freeze_ttl_seconds"], settings_ttl(settings))
    reserve = ops["budget_reserve_seconds"]
    if first_retry > any_retry or recovery >= ttl:
        problems.append(f"recovery {recovery} s does not fit the freeze {ttl} s")
    if reserve < recovery + APPLY:
        problems.append(f"budget reserve {reserve} s < detection + retry + start + apply ({recovery + APPLY} s)")
    if raw["extract_deadline_seconds"] + reserve + TASK_START + 5 > ttl:
        problems.append(f"extract deadline + reserve leave the freeze ({ttl} s) no room")
    watchdog = max(ops["heartbeat_timeout_seconds"], any_retry + 3 * ops["heartbeat_interval_seconds"])
    if watchdog <= ops["heartbeat_interval_seconds"] + recovery:
        problems.append(f"watchdog bound {watchdog} s <= one beat + Airflow's detection + retry delay + start "
                        f"({ops['heartbeat_interval_seconds'] + recovery} s): it abandons runs Airflow retries")
    if watchdog + ops["heartbeat_interval_seconds"] >= ttl:
        problems.append(f"watchdog bound {watchdog} s leaves a crashed run's freeze to its TTL ({ttl} s)")
    if ops["holder_wait_seconds"] <= watchdog + ops["heartbeat_interval_seconds"]:
        problems.append("a new run stops waiting before a crashed holder can be proven dead")
    if ops["freeze_checkout_timeout_seconds"] <= ops["holder_wait_seconds"] + 2 * TASK_START:
        problems.append("the setup's execution_timeout cuts its wait for a holder short")
    if ops["dead_after_beats"] * ops["heartbeat_interval_seconds"] >= watchdog:
        problems.append("dead_after_beats x interval is not below the watchdog bound")
    if ops["extract_timeout_seconds"] <= raw["extract_deadline_seconds"] + 5:
        problems.append("Airflow kills the extract before its own deadline")
    if ops["load_timeout_seconds"] <= raw["lock_timeout_seconds"] + 5:
        problems.append("Airflow kills the load before its lock wait ends")
    if ops["nightly_deadline_seconds"] < ops["freeze_checkout_timeout_seconds"] + ttl + ops["release_timeout_seconds"]:
        problems.append("the nightly's deadline fires before a run that waited and used its budget can end")
    return problems


def load_settings_from(raw: dict[str, Any]) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "stocksync.yaml"
        path.write_text(yaml.safe_dump(raw))
        return load_settings(path, environ={})


def settings_ttl(settings: Any) -> float:
    return freeze_ttl(settings)


def test_shipped_settings_survive_one_lost_worker_inside_the_freeze_budget() -> None:
    compose, native, raw = shipped_files()
    assert bound_problems(compose, native, raw) == []
    from include.stocksync.config.operations import check_worker_loss, worker_recovery

    # the same rules as the code states them (ops_settings.check_worker_loss), and the bound stated
    # in docs/operations.md: 30 + 5 (Airflow) + 30 (retry delay) + 15 (start) = 80 s of recovery
    assert check_worker_loss(SHIPPED) == []
    assert worker_recovery(SHIPPED) == 30 + 5 + 30 + 15
    assert heartbeat_bound(SHIPPED) == 120 > 10 + 80


@pytest.mark.parametrize(("where", "key", "value", "fragment"), [
    ("compose", "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT", "300", "differs"),  # Airflow's default
    ("native", "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL", "10", "differs"),
    ("yaml", "max_retry_delay_seconds", 60, "budget reserve"),
    ("yaml", "operations.heartbeat_timeout_seconds", 90, "abandons runs Airflow retries"),
    ("yaml", "operations.budget_reserve_seconds", 60, "budget reserve"),
    ("yaml", "operations.holder_wait_seconds", 120, "stops waiting"),
    ("yaml", "operations.freeze_checkout_timeout_seconds", 60, "cuts its wait"),
    ("yaml", "operations.airflow_task_heartbeat_timeout_seconds", 300, "do not say what the deployment sets"),
    ("yaml", "extract_deadline_seconds", 170, "no room"),
    ("yaml", "freeze_ttl_seconds", 200, "no room"),
])
def test_changing_one_shipped_value_breaks_the_fit(where: str, key: str, value: Any, fragment: str) -> None:
    compose, native, raw = shipped_files()
    if where == "compose":
        compose = {**compose, key: value}
    elif where == "native":
        native = {**native, "worker-b": {**native["worker-b"], key: value}}
    elif "." in key:
        section, name = key.split(".")
        raw = {**raw, section: {**raw[section], name: value}}
    else:
        raw = {**raw, key: value}
    assert any(fragment in problem for problem in bound_problems(compose, native, raw)), \
        bound_problems(compose, native, raw)
