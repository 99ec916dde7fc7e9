"""Configuration loading and validation (`include/stocksync/config/settings.py`).

Every test writes its own YAML file (a copy of the real config, edited) so the checks
do not depend on the values shipped in `include/config/stocksync.yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from include.stocksync.config.settings import CONFIG_PATH, ConfigError, Settings, load_settings

# A complete, valid config written out by hand: the tests below edit one key at a time.
BASE: dict[str, Any] = {
    "schedule": "30 2 * * *",
    "shop_conn_id": "shop",
    "wms_conn_id": "wms",
    "alerts_conn_id": "alerts",
    "alerts_endpoint": "/alerts",
    "task_retries": 2,
    "retry_delay_seconds": 60,
    "retry_exponential_backoff": 2.0,
    "max_retry_delay_seconds": 600,
    "page_size": 500,
    "http_timeout_seconds": 30,
    "http_attempts": 5,
    "http_backoff_seconds": 0.5,
    "retry_after_max_seconds": 30,
    "extract_deadline_seconds": 300,
    "walk_page_margin": 0.1,
    "walk_extra_pages": 2,
    "max_page_bytes": 67108864,
    "clock_skew_seconds": 120,
    "max_snapshot_age_seconds": 21600,
    "freeze_mode": "full",
    "freeze_ttl_seconds": 1800,
    "freeze_shopper_message": "Back at {expected_end}.",
    "lock_timeout_seconds": 60,
    "adjustment_mode": "unsent_orders",
    "unsent_statuses": ["placed", "paid"],
    "unsent_order_cutoff_hours": 24,
    "active_cart_cutoff_hours": 12,
    "watermark_source": "wms",
    "max_quantity": 1000000000,
    "sku_pattern": "^[A-Z0-9-]+$",
    "reports_dir": "reports",
    "staging_retention_days": 2,
    "row_count_band": 0.1,
    "unknown_sku_max_share": 0.01,
    "quarantine_max_share": 0.01,
    "dq_policies": {"sku_not_null": "fail", "sku_unique": "fail", "sku_length": "fail", "sku_format": "fail",
                    "quantity_not_null": "fail", "quantity_integer": "fail", "quantity_non_negative": "fail",
                    "quantity_max": "fail", "available_consistent": "fail", "unknown_sku": "quarantine"},
    "guardrails": {"min_catalog_coverage": 0.95, "max_changed_share": 0.3, "max_zeroed_share": 0.05,
                   "max_total_units_change": 0.3},
    "push_guardrails_min_skus": 100,
    "run_override_bounds": {"page_size": [10, 10000], "unsent_order_cutoff_hours": [0.25, 168],
                            "active_cart_cutoff_hours": [0.25, 168], "freeze_ttl_seconds": [60, 3600]},
}


def write_config(tmp_path: Path, **changes: Any) -> Path:
    """BASE with `changes` applied (a value of `...` removes the key)."""
    raw = {k: v for k, v in BASE.items() if changes.get(k, None) is not ...}
    raw.update({k: v for k, v in changes.items() if v is not ...})
    path = tmp_path / "stocksync.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_valid_file_loads_with_types(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path), environ={})
    assert isinstance(settings, Settings)
    assert settings.page_size == 500 and isinstance(settings.page_size, int)
    assert settings.retry_delay_seconds == 60.0 and isinstance(settings.retry_delay_seconds, float)
    assert settings.unsent_statuses == ("placed", "paid")
    assert settings.active_cart_cutoff_hours == 12.0
    assert settings.freeze_mode == "full"


def test_shipped_config_loads() -> None:
    settings = load_settings(CONFIG_PATH, environ={})
    # The shipped defaults the design relies on (DESIGN.md §3.1 and §5).
    assert settings.freeze_mode == "full"
    assert settings.adjustment_mode == "unsent_orders"
    assert settings.watermark_source == "wms"
    assert settings.unsent_order_cutoff_hours == 24.0
    assert settings.active_cart_cutoff_hours == 24.0
    assert settings.max_quantity == 1_000_000_000
    assert settings.unsent_statuses == ("placed", "paid", "processing")


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config keys") as info:
        load_settings(write_config(tmp_path, freez_mode="full"), environ={})
    assert "freez_mode" in str(info.value)


def test_missing_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing config keys") as info:
        load_settings(write_config(tmp_path, lock_timeout_seconds=...), environ={})
    assert "lock_timeout_seconds" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml", environ={})


@pytest.mark.parametrize(("key", "bad", "allowed"), [
    ("freeze_mode", "partial", ("full", "apply", "none")),
    ("adjustment_mode", "orders", ("none", "unsent_orders", "unsent_orders_and_carts")),
    ("watermark_source", "clock", ("wms", "request_time")),
])
def test_bad_enum_names_key_and_allowed_values(tmp_path: Path, key: str, bad: str,
                                               allowed: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path, **{key: bad}), environ={})
    message = str(info.value)
    assert key in message
    assert repr(bad) in message
    for value in allowed:
        assert value in message


@pytest.mark.parametrize(("key", "bad", "fragment"), [
    ("page_size", 0, "page_size"),
    ("page_size", 10001, "page_size"),
    ("page_size", "many", "page_size"),
    ("page_size", 2.5, "page_size"),
    ("http_attempts", 0, "http_attempts"),
    ("task_retries", -1, "task_retries"),
    ("freeze_ttl_seconds", 0, "freeze_ttl_seconds"),
    ("unsent_order_cutoff_hours", 0, "unsent_order_cutoff_hours"),
    ("active_cart_cutoff_hours", -1, "active_cart_cutoff_hours"),
    ("max_quantity", 0, "max_quantity"),
    ("unsent_statuses", [], "unsent_statuses"),
])
def test_bad_values_name_the_key(tmp_path: Path, key: str, bad: Any, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_settings(write_config(tmp_path, **{key: bad}), environ={})


def test_empty_unsent_statuses_allowed_without_adjustment(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, unsent_statuses=[], adjustment_mode="none"), environ={})
    assert settings.unsent_statuses == ()


def test_env_overrides_top_level_keys(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    settings = load_settings(path, environ={
        "STOCKSYNC_FREEZE_MODE": "apply",
        "STOCKSYNC_PAGE_SIZE": "25",
        "STOCKSYNC_HTTP_BACKOFF_SECONDS": "0.05",
        "STOCKSYNC_UNSENT_STATUSES": "placed, processing ,",
        "UNRELATED": "x",
    })
    assert settings.freeze_mode == "apply"
    assert settings.page_size == 25
    assert settings.http_backoff_seconds == 0.05
    assert settings.unsent_statuses == ("placed", "processing")
    # The file itself is untouched by the override.
    assert load_settings(path, environ={}).freeze_mode == "full"


def test_env_override_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="freeze_mode") as info:
        load_settings(write_config(tmp_path), environ={"STOCKSYNC_FREEZE_MODE": "sometimes"})
    assert "full, apply, none" in str(info.value)
    with pytest.raises(ConfigError, match="page_size"):
        load_settings(write_config(tmp_path), environ={"STOCKSYNC_PAGE_SIZE": "ten"})


def test_for_run_overrides_run_keys(tmp_path: Path) -> None:
    base = load_settings(write_config(tmp_path), environ={})
    run = base.for_run({
        "freeze_mode": "none",
        "adjustment_mode": "unsent_orders_and_carts",
        "unsent_statuses": ["placed"],
        "unsent_order_cutoff_hours": 2,
        "active_cart_cutoff_hours": 0.5,
        "watermark_source": "request_time",
        "freeze_ttl_seconds": 90,
        "page_size": 100,
    })
    assert run.freeze_mode == "none"
    assert run.adjustment_mode == "unsent_orders_and_carts"
    assert run.unsent_statuses == ("placed",)
    assert run.unsent_order_cutoff_hours == 2.0
    assert run.active_cart_cutoff_hours == 0.5
    assert run.watermark_source == "request_time"
    assert run.freeze_ttl_seconds == 90
    assert run.page_size == 100
    # The base settings are unchanged (frozen dataclass, new object).
    assert base.freeze_mode == "full" and base.page_size == 500


def test_for_run_ignores_non_run_keys_and_none(tmp_path: Path) -> None:
    base = load_settings(write_config(tmp_path), environ={})
    run = base.for_run({"shop_conn_id": "elsewhere", "override_reason": "ops said so", "freeze_mode": None})
    assert run.shop_conn_id == "shop"
    assert run.freeze_mode == "full"
    assert base.for_run(None) == base


@pytest.mark.parametrize(("conf", "fragment"), [
    ({"freeze_mode": "half"}, "freeze_mode must be one of full, apply, none"),
    ({"adjustment_mode": "carts"}, "adjustment_mode must be one of none, unsent_orders, unsent_orders_and_carts"),
    ({"watermark_source": "now"}, "watermark_source must be one of wms, request_time"),
    ({"page_size": 0}, "page_size"),
    ({"page_size": "lots"}, "page_size"),
    ({"unsent_order_cutoff_hours": -3}, "unsent_order_cutoff_hours"),
    ({"unsent_order_cutoff_hours": "soon"}, "unsent_order_cutoff_hours"),
    ({"freeze_ttl_seconds": 0}, "freeze_ttl_seconds"),
    ({"unsent_statuses": []}, "unsent_statuses"),
])
def test_for_run_rejects_bad_values(tmp_path: Path, conf: dict[str, Any], fragment: str) -> None:
    base = load_settings(write_config(tmp_path), environ={})
    with pytest.raises(ConfigError) as info:
        base.for_run(conf)
    assert fragment in str(info.value)


# Values that would break (or silently weaken) a run later must fail at load, naming the key:
# lock_timeout 0 means "wait forever" in PostgreSQL, -1 is a server error at apply time, a zero
# HTTP timeout fails at the first page, a broken regex only in validation, a typo'd placeholder
# in the shopper message in every freeze_checkout.
@pytest.mark.parametrize(("key", "bad"), [
    ("lock_timeout_seconds", 0),
    ("lock_timeout_seconds", -1),
    ("http_timeout_seconds", 0),
    ("sku_pattern", "[A-Z"),
    ("freeze_shopper_message", "Back after {expected_ned}."),
])
def test_values_that_break_a_run_later_are_rejected_at_load(tmp_path: Path, key: str, bad: Any) -> None:
    with pytest.raises(ConfigError, match=key):
        load_settings(write_config(tmp_path, **{key: bad}), environ={})


@pytest.mark.parametrize(("key", "bad", "fragment"), [
    ("dq_policies", {"sku_unique": "ignore"}, "dq_policies"),
    ("dq_policies", {"unknown_sku": "skip"}, "dq_policies.unknown_sku must be one of fail, quarantine"),
    ("guardrails", {**BASE["guardrails"], "max_changed_share": 1.5}, "guardrails.max_changed_share must be a share"),
    ("guardrails", {"max_changed_share": 0.3}, "guardrails must set exactly"),
    ("row_count_band", 2, "row_count_band must be 0..1"),
    ("push_guardrails_min_skus", 0, "push_guardrails_min_skus must be at least 1"),
])
def test_dq_policies_and_guardrails_are_checked(tmp_path: Path, key: str, bad: Any, fragment: str) -> None:
    value = bad
    if key == "dq_policies" and set(bad) <= set(BASE["dq_policies"]):
        value = {**BASE["dq_policies"], **bad}
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path, **{key: value}), environ={})
    assert fragment in str(info.value)


def test_env_overrides_one_guardrail(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path), environ={"STOCKSYNC_GUARDRAILS__MAX_CHANGED_SHARE": "0.5"})
    assert settings.guardrails["max_changed_share"] == 0.5
    assert settings.guardrails["max_zeroed_share"] == BASE["guardrails"]["max_zeroed_share"]
    with pytest.raises(ConfigError, match="guardrails must set exactly"):
        load_settings(write_config(tmp_path), environ={"STOCKSYNC_GUARDRAILS__MAX_TYPO": "0.5"})


def test_unknown_run_parameter_is_refused() -> None:
    from include.stocksync.config.settings import run_options

    with pytest.raises(ConfigError, match="unknown run parameter\\(s\\): freez_mode"):
        run_options({"freez_mode": "none"})
    assert run_options({"freeze_mode": "none", "page_size": 100, "dry_run": True}).dry_run is True


@pytest.mark.parametrize(("conf", "fragment"), [
    # JSON types are strict: what arrives over REST conf is not coerced
    ({"page_size": "100"}, "page_size must be a whole number; got '100' (str)"),
    ({"page_size": True}, "page_size must be a whole number"),
    ({"active_cart_cutoff_hours": "0.5"}, "active_cart_cutoff_hours must be a number"),
    ({"freeze_mode": 3}, "freeze_mode must be text"),
    ({"unsent_statuses": "placed"}, "unsent_statuses must be a list"),
    ({"unsent_statuses": ["placed", "<b>x</b>"]}, "unsent_statuses must be a list"),
    # limits not on the form only within run_override_bounds, naming value, bounds and config key
    ({"page_size": 5}, "page_size=5 is outside the bounds a run may set: 10..10000"),
    ({"page_size": 50000}, "run_override_bounds.page_size"),
    ({"unsent_order_cutoff_hours": 10000}, "unsent_order_cutoff_hours=10000"),
    ({"freeze_ttl_seconds": 86400}, "freeze_ttl_seconds=86400 is outside the bounds a run may set: 60..3600"),
])
def test_run_values_are_typed_and_bounded(tmp_path: Path, conf: dict[str, Any], fragment: str) -> None:
    base = load_settings(write_config(tmp_path), environ={})
    with pytest.raises(ConfigError) as info:
        base.for_run(conf)
    assert fragment in str(info.value)


def test_freeze_ttl_has_a_hard_upper_bound(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="freeze_ttl_seconds must be 1..14400"):
        load_settings(write_config(tmp_path, freeze_ttl_seconds=86400), environ={})
    bounds = {**BASE["run_override_bounds"], "freeze_ttl_seconds": [60, 20000]}
    with pytest.raises(ConfigError, match="may not exceed 14400"):
        load_settings(write_config(tmp_path, run_override_bounds=bounds), environ={})


@pytest.mark.parametrize("key", ["dry_run", "skus", "override_guardrails", "override_reason"])
def test_nightly_refuses_ops_only_options(key: str) -> None:
    from include.stocksync.config.settings import run_options

    value = {"dry_run": True, "skus": ["SKU-1"], "override_guardrails": True, "override_reason": "x"}[key]
    with pytest.raises(ConfigError, match=f"{key} belong to the ops push"):
        run_options({key: value}, ops=False)
    ops = run_options({key: value, "override_reason": "stock take"}, ops=True)  # the ops push takes them
    # (a reason without an override is not kept: nothing was overridden)
    assert getattr(ops, key) == {"dry_run": True, "skus": ("SKU-1",), "override_guardrails": True,
                                 "override_reason": None}[key]


@pytest.mark.parametrize(("conf", "fragment"), [
    ({"skus": ["X" * 65]}, "cannot be a SKU"),
    ({"skus": ["SKU-1\u202e"]}, "cannot be a SKU"),
    ({"skus": [5]}, "skus must be a list of SKU strings"),
    # not "no SKUs": a value of another type never quietly means the whole catalog
    ({"skus": False}, "skus must be a list of SKU strings"),
    ({"skus": 0}, "skus must be a list of SKU strings"),
    ({"skus": {}}, "skus must be a list of SKU strings"),
    ({1: 2, "x": 3}, "unknown run parameter(s): 1, x"),
    ({"override_guardrails": True, "override_reason": "x" * 1001}, "override_reason must be at most 1000"),
    ({"override_guardrails": True, "override_reason": "ok\x00"}, "printable"),
    ({"override_reason": 12}, "override_reason must be text"),
])
def test_ops_options_are_bounded(conf: dict[str, Any], fragment: str) -> None:
    from include.stocksync.config.settings import run_options

    with pytest.raises(ConfigError) as info:
        run_options(conf)
    assert fragment in str(info.value)


def test_every_bad_key_is_named_in_one_error(tmp_path: Path) -> None:
    """Each key is checked by its own validator, so a config with several mistakes names them all
    at once instead of one per deployment attempt."""
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path, freeze_mode="partial", page_size=0, max_quantity=-5,
                                   sku_pattern="[A-Z"), environ={})
    message = str(info.value)
    for fragment in ("freeze_mode must be one of full, apply, none; got 'partial'", "page_size must be 1..10000",
                     "max_quantity must be > 0", "sku_pattern is not a valid regular expression"):
        assert fragment in message


def test_the_config_package_imports_no_sync_code_and_no_cycle() -> None:
    """The settings' sections are declared in config/ (the guardrails' names and defaults too): no
    config module imports sync/ (even for type checking), and only config/settings.py imports it."""
    import ast

    config_dir = CONFIG_PATH.parents[1] / "stocksync" / "config"
    imported: dict[str, set[str]] = {}
    for module in sorted(config_dir.glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        imported[module.name] = names
    assert {name: sorted(n for n in names if n.startswith("include.stocksync.sync"))
            for name, names in imported.items()} == {name: [] for name in imported}
    assert [name for name, names in imported.items() if "include.stocksync.config.settings" in names] == []


def test_the_process_settings_are_parsed_once_and_read_again_only_when_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One parse per process, shared by every caller; a new parse when asked, when the STOCKSYNC_*
    environment differs, or (for the plugin's pages) when the config file changed."""
    from include.stocksync.config import settings as config

    path = tmp_path / "stocksync.yaml"
    path.write_text(CONFIG_PATH.read_text())
    monkeypatch.setattr(config, "CONFIG_PATH", path)
    monkeypatch.delenv("STOCKSYNC_PAGE_SIZE", raising=False)
    first = config.process_settings(reload=True)
    assert config.process_settings() is first
    assert config.settings_reloaded_on_change() is first  # the file has not changed: no parse

    again = config.process_settings(reload=True)
    assert again is not first and again == first

    monkeypatch.setenv("STOCKSYNC_PAGE_SIZE", "77")
    assert config.process_settings().page_size == 77
    monkeypatch.delenv("STOCKSYNC_PAGE_SIZE")
    assert config.process_settings() == first  # the environment they were first read with: same values

    raw = yaml.safe_load(path.read_text())
    shipped = raw["schedule"]
    raw["schedule"] = "45 3 * * *" if shipped != "45 3 * * *" else "15 1 * * *"
    path.write_text(yaml.safe_dump(raw))
    assert config.process_settings().schedule == shipped  # edited on disk, not asked: as parsed
    assert config.settings_reloaded_on_change().schedule == raw["schedule"]
    monkeypatch.undo()
    config.process_settings(reload=True)  # later tests in this process see the shipped file again


def test_only_the_process_loader_parses_the_config_in_the_product() -> None:
    """Tasks, helpers, DAG files and the plugin's request paths use the process's settings (or the
    run's spec), never a parse of their own: `load_settings(` is called from config/settings.py only."""
    import ast

    root = CONFIG_PATH.parents[2]
    callers = []
    for folder in ("include", "plugins", "dags"):
        for module in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(module.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) \
                        == "load_settings":
                    callers.append(f"{module.relative_to(root)}:{node.lineno}")
    assert [c for c in callers if not c.startswith("include/stocksync/config/settings.py:")] == []
    assert len(callers) == 1  # process_settings


@pytest.mark.parametrize(("content", "named"), [
    (b"page_size: [1, 2\n", "cannot be read as UTF-8 YAML"),                 # a syntax error
    ("schedule: 'caf\u00e9'\n".encode("latin-1"), "cannot be read as UTF-8 YAML"),  # not UTF-8
    (b"- a: 1\n- b: 2\n", "must hold a mapping"),                             # a list at the top
    (b"42\n", "must hold a mapping"),
    (b"freeze_mode: full\nfreeze_mode: none\n", "given twice"),              # the last one won, silently
    (b"schedule: [" + b", ".join(b"&a%d [x]" % n for n in range(101)) + b", "   # more aliases than a config
     + b", ".join(b"*a%d" % n for n in range(101)) + b"]\n", "aliases"),       # needs (it needs none)
], ids=["syntax", "latin-1", "list", "number", "duplicate-key", "many-aliases"])
def test_a_config_file_that_is_not_a_sound_mapping_is_refused_naming_why(tmp_path: Path, content: bytes,
                                                                        named: str) -> None:
    path = tmp_path / "stocksync.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as refused:
        load_settings(path, environ={})
    assert named in str(refused.value)


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("STOCKSYNC_RETRY_DELAY_SECONDS", "-5", "retry_delay_seconds must be >= 0"),
    ("STOCKSYNC_MAX_RETRY_DELAY_SECONDS", "-1000", "max_retry_delay_seconds must be >= 0"),
    ("STOCKSYNC_HTTP_BACKOFF_SECONDS", "nan", "http_backoff_seconds: Input should be a finite number"),
    ("STOCKSYNC_RETRY_EXPONENTIAL_BACKOFF", "inf", "retry_exponential_backoff: Input should be a finite number"),
    ("STOCKSYNC_LOCK_TIMEOUT_SECONDS", "inf", "lock_timeout_seconds: Input should be a finite number"),
    ("STOCKSYNC_OPERATIONS__BUDGET_RESERVE_SECONDS", "nan", "budget_reserve_seconds: Input should be a finite"),
    ("STOCKSYNC_OPERATIONS__HEARTBEAT_TIMEOUT_SECONDS", "inf", "heartbeat_timeout_seconds: Input should be a finite"),
])
def test_no_setting_is_negative_where_a_duration_or_a_nan_or_an_infinity(tmp_path: Path, variable: str, value: str,
                                                                        named: str) -> None:
    """NaN passes every comparison a range check makes, infinity makes a timeout endless; a negative
    retry delay broke the DAG files (Airflow's default_args) and the freeze TTL computed from it."""
    with pytest.raises(ConfigError) as refused:
        load_settings(write_config(tmp_path), environ={variable: value})
    assert named in str(refused.value)


def test_a_billion_laughs_in_a_value_is_refused_at_once(tmp_path: Path) -> None:
    """Nine levels of ten aliases as one setting's value (about 400 bytes; a billion strings once
    expanded): under the alias bound, it is refused for what it is without building its expansion
    (the error's repr of the value was built whole before being cut: 43 s and 810 MiB at 7 levels)."""
    levels = "[&l0 [x, x, x, x, x, x, x, x, x, x], " + ", ".join(
        f"&l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 9)) + "]"
    raw = yaml.safe_load(write_config(tmp_path).read_text())
    text = yaml.safe_dump({k: v for k, v in raw.items() if k != "schedule"}) + f"schedule: {levels}\n"
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    assert len(text) < 4096
    with pytest.raises(ConfigError) as refused:
        load_settings(path, environ={})
    assert "schedule" in str(refused.value) and len(str(refused.value)) < 1000


def test_an_override_of_a_section_the_file_leaves_out_is_applied(tmp_path: Path) -> None:
    """`loop` is optional in the file: STOCKSYNC_LOOP__ORDER_BATCH_SIZE applies over its defaults
    (it was dropped without a word, and a 0 was never checked)."""
    path = write_config(tmp_path, loop=...)
    assert "loop" not in yaml.safe_load(path.read_text())
    assert load_settings(path, environ={"STOCKSYNC_LOOP__ORDER_BATCH_SIZE": "7"}).loop.order_batch_size == 7
    with pytest.raises(ConfigError, match="order_batch_size"):
        load_settings(path, environ={"STOCKSYNC_LOOP__ORDER_BATCH_SIZE": "0"})
