"""Configuration for stocksync: typed settings and run options (pydantic models).

One YAML file (`include/config/stocksync.yaml`) holds every tunable. An environment
variable `STOCKSYNC_<KEY>` overrides a top-level key (`STOCKSYNC_<KEY>__<NAME>` one entry
of `dq_policies`, `guardrails` or `run_override_bounds`), and a DAG run's parameters override
the run-level keys (freeze mode, adjustment mode, cutoffs...). Every value is checked here
(unknown keys refused), so a typo fails fast with a message naming the key. A run resolves its
settings and options once, when it opens, and stores them on its run record (`runs.py`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError, field_validator, model_validator

from include.stocksync.config.files import FileSourceSettings, check_file_source  # issue 14
from include.stocksync.config.operations import OperationsSettings, check_operations
from include.stocksync.domain.contract import SKU_MAX_LENGTH
from include.stocksync.domain.errors import PermanentError
from include.stocksync.shop.freeze import MAX_FREEZE_TTL_SECONDS
from include.stocksync.wms.sources.base import PAGE_TIMES

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CONFIG_PATH = PROJECT_ROOT / "include" / "config" / "stocksync.yaml"

FREEZE_MODES = ("full", "apply", "none")
DQ_POLICIES = ("fail", "quarantine")
DQ_CHECKS = ("sku_not_null", "sku_unique", "sku_length", "sku_format", "quantity_not_null", "quantity_integer",
             "quantity_non_negative", "quantity_max", "available_consistent", "unknown_sku")
ADJUSTMENT_MODES = ("none", "unsent_orders", "unsent_orders_and_carts")
WATERMARK_SOURCES = ("wms", "request_time")

# Keys a single run may override (through dag_run.conf / Params); those not on the trigger form
# only within `run_override_bounds`.
# The one-slot Airflow pool both sync DAGs' load tasks run in: one shop writer at a time.
WRITER_POOL = "stocksync_shop_writer"

RUN_KEYS = (
    "freeze_mode",
    "adjustment_mode",
    "unsent_statuses",
    "unsent_order_cutoff_hours",
    "active_cart_cutoff_hours",
    "watermark_source",
    "freeze_ttl_seconds",
    "page_size",
)
BOUNDED_RUN_KEYS = ("page_size", "unsent_order_cutoff_hours", "active_cart_cutoff_hours", "freeze_ttl_seconds")


class ConfigError(PermanentError, ValueError):
    """A configuration value is missing or invalid."""


# --- issue 13: order push, intraday sync, drift (docs/order-push-and-intraday.md) -------------
class LoopSettings(BaseModel):
    """The other half of the loop: `orders_to_wms`, `inventory_intraday_sync` and the nightly drift
    alert. One nested section (`loop:`) with defaults, so a config written before it still loads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    orders_schedule: str = "*/5 * * * *"
    order_key_prefix: str = "shop-order-"        # Idempotency-Key = prefix + shop order id
    order_batch_size: int = 100                  # orders sent per batch (acks recorded per batch)
    order_max_per_run: int = 20000
    order_deadline_seconds: float = 240.0        # a run stops starting batches after this
    order_timeout_seconds: float = 10.0          # one POST
    order_attempts: int = 3                      # per order, for timeouts and 5xx (a 429 waits instead)
    cancelled_statuses: tuple[str, ...] = ("cancelled",)
    intraday_schedule: str = "*/15 * * * *"
    feed_page_size: int = 5000
    feed_max_events: int = 1_000_000             # more than this behind: leave it to the full sync
    feed_deadline_seconds: float = 300.0
    gap_triggers_full_sync: bool = False          # trigger inventory_nightly_sync on a gap
    full_sync_dag_ids: tuple[str, ...] = ("inventory_nightly_sync", "inventory_full_push")
    full_sync_stale_seconds: float = 21600.0     # an open full-sync record older than this is dead
    drift_alert_factor: float = 3.0              # a night's SKUs off above factor x the trend alerts
    drift_alert_min_skus: int = 50               # ... and above this many SKUs
    drift_trend_nights: int = 30
    drift_trend_min_nights: int = 3              # fewer nights before: no trend, no alert

    @field_validator("cancelled_statuses", "full_sync_dag_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _bounds(self) -> LoopSettings:
        problems = [name for name, ok in (
            ("order_batch_size must be 1..10000", 1 <= self.order_batch_size <= 10000),
            ("order_max_per_run must be >= 1", self.order_max_per_run >= 1),
            ("order_deadline_seconds must be > 0", self.order_deadline_seconds > 0),
            ("order_timeout_seconds must be > 0", self.order_timeout_seconds > 0),
            ("order_attempts must be >= 1", self.order_attempts >= 1),
            ("order_key_prefix must be printable, at most 64 characters",
             len(self.order_key_prefix) <= 64 and self.order_key_prefix.isprintable()),
            ("feed_page_size must be 1..10000", 1 <= self.feed_page_size <= 10000),
            ("feed_max_events must be >= 1", self.feed_max_events >= 1),
            ("feed_deadline_seconds must be > 0", self.feed_deadline_seconds > 0),
            ("full_sync_stale_seconds must be > 0", self.full_sync_stale_seconds > 0),
            ("drift_alert_factor must be >= 1", self.drift_alert_factor >= 1),
            ("drift_alert_min_skus must be >= 0", self.drift_alert_min_skus >= 0),
            ("drift_trend_nights must be 1..366", 1 <= self.drift_trend_nights <= 366),
            ("drift_trend_min_nights must be 1..drift_trend_nights",
             1 <= self.drift_trend_min_nights <= self.drift_trend_nights),
        ) if not ok]
        if problems:
            raise ValueError("loop: " + "; ".join(problems))
        return self
# --- end issue 13 ------------------------------------------------------------------------------


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: str
    # the zone `schedule` is read in: the shop's quiet hour is local and moves with daylight saving
    shop_timezone: str = "UTC"
    shop_conn_id: str
    # stocksync's own database (runs, staging, audit, alerts); None: the shop's database (shop_conn_id)
    stocksync_conn_id: str | None = None
    shop_platform: str = "postgres"  # the shop port's adapter (include/stocksync/shop/registry.py)
    wms_conn_id: str
    alerts_conn_id: str
    alerts_endpoint: str
    task_retries: int
    retry_delay_seconds: float
    retry_exponential_backoff: float
    max_retry_delay_seconds: float
    page_size: int
    http_timeout_seconds: float
    http_attempts: int
    http_backoff_seconds: float
    retry_after_max_seconds: float
    extract_deadline_seconds: float
    walk_page_margin: float
    walk_extra_pages: int
    max_page_bytes: int
    clock_skew_seconds: float
    max_snapshot_age_seconds: float
    snapshot_page_times: str = "earliest"  # pages of one snapshot stamped apart: earliest | refuse
    freeze_mode: str
    freeze_ttl_seconds: int
    freeze_shopper_message: str
    lock_timeout_seconds: float
    adjustment_mode: str
    unsent_statuses: tuple[str, ...]
    unsent_order_cutoff_hours: float
    active_cart_cutoff_hours: float
    watermark_source: str
    max_quantity: int
    sku_pattern: str
    reports_dir: str
    staging_retention_days: int
    row_count_band: float
    unknown_sku_max_share: float
    quarantine_max_share: float
    dq_policies: dict[str, str]
    guardrails: dict[str, float]
    push_guardrails_min_skus: int
    run_override_bounds: dict[str, tuple[float, float]]
    loop: LoopSettings = LoopSettings()  # issue 13: optional section, defaults above
    # --- issue 14: which WMS source this deployment reads (docs/file-drop-source.md) ----------------
    wms_source: str = "http"  # http | file
    file_source: FileSourceSettings = FileSourceSettings()  # optional section (file_settings.py)

    @model_validator(mode="after")
    def _wms_source(self) -> Settings:
        check_file_source(self.wms_source, self.file_source)
        return self
    # --- end issue 14 --------------------------------------------------------------------------------
    operations: OperationsSettings = OperationsSettings()  # issue 12: optional section (ops_settings.py)

    @property
    def reports_path(self) -> Path:
        path = Path(self.reports_dir)
        return path if path.is_absolute() else PROJECT_ROOT / path

    @field_validator("unsent_statuses", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: "placed, paid"
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("guardrails", mode="before")
    @classmethod
    def _guardrail_defaults(cls, value: Any) -> Any:
        """Guardrails with a default limit (guardrails.LIMITS) may be left out of the config."""
        from include.stocksync.sync.guardrails import LIMITS

        defaults = {name: limit for name, limit in LIMITS.items() if limit is not None}
        return {**defaults, **value} if isinstance(value, dict) else value

    @field_validator("run_override_bounds", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (v.split(",") if isinstance(v, str) else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        _check(self)
        return self

    def for_run(self, conf: dict[str, Any] | None) -> Settings:
        """Return these settings with a run's overrides applied (other keys and None values ignored).

        A run's values come from outside (the trigger form, REST conf): their JSON types must be
        the setting's own (no "100" for 100), and the limits that are not on the form stay within
        `run_override_bounds`."""
        overrides = {k: v for k, v in (conf or {}).items() if k in RUN_KEYS and v is not None}
        for key, value in overrides.items():
            _check_run_value(key, value, self.run_override_bounds.get(key))
        return _parse({**self.model_dump(), **overrides})


_TYPES = {name: getattr(info.annotation, "__name__", str(info.annotation))
          for name, info in Settings.model_fields.items()}
STATUS_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _check_run_value(key: str, value: Any, bounds: tuple[float, float] | None) -> None:
    kind = _TYPES[key]
    if kind == "int":
        ok = type(value) is int or (type(value) is float and value.is_integer())
        if not ok:
            raise ConfigError(f"run parameter {key} must be a whole number; got {value!r} "
                              f"({type(value).__name__})")
    elif kind == "float":
        if type(value) not in (int, float) or value != value:  # bool and NaN are not numbers here
            raise ConfigError(f"run parameter {key} must be a number; got {value!r} ({type(value).__name__})")
    elif kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"run parameter {key} must be text; got {value!r} ({type(value).__name__})")
    elif kind.startswith("tuple"):
        if not isinstance(value, list) or not 1 <= len(value) <= 20 \
                or not all(isinstance(v, str) and STATUS_PATTERN.match(v) for v in value):
            raise ConfigError(f"run parameter {key} must be a list of 1..20 order statuses "
                              f"(lowercase names); got {value!r}")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise ConfigError(f"run parameter {key}={value!r} is outside the bounds a run may set: "
                          f"{bounds[0]:g}..{bounds[1]:g} (config run_override_bounds.{key})")


def _parse(raw: dict[str, Any]) -> Settings:
    """A Settings from plain values, every problem as one ConfigError naming the key."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            where = ".".join(str(part) for part in error["loc"])
            problems.append(message if not where else f"{where}: {message} (got {error.get('input')!r:.80})")
        raise ConfigError("; ".join(problems)) from None


def _is_zone(name: str) -> bool:
    """An IANA zone name the time zone database knows (not a bare offset, not a file path)."""
    from zoneinfo import ZoneInfo

    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True


def _check(settings: Settings) -> None:
    def check(ok: bool, message: str) -> None:
        if not ok:
            raise ValueError(message)

    check(_is_zone(settings.shop_timezone),
          f"shop_timezone must be an IANA time zone name like Europe/Berlin or UTC; got {settings.shop_timezone!r}")
    check(settings.freeze_mode in FREEZE_MODES,
          f"freeze_mode must be one of {', '.join(FREEZE_MODES)}; got {settings.freeze_mode!r}")
    check(settings.adjustment_mode in ADJUSTMENT_MODES,
          f"adjustment_mode must be one of {', '.join(ADJUSTMENT_MODES)}; got {settings.adjustment_mode!r}")
    check(settings.watermark_source in WATERMARK_SOURCES,
          f"watermark_source must be one of {', '.join(WATERMARK_SOURCES)}; got {settings.watermark_source!r}")
    check(1 <= settings.page_size <= 10000, f"page_size must be 1..10000; got {settings.page_size}")
    check(settings.task_retries >= 0, "task_retries must be >= 0")
    check(settings.http_attempts >= 1, "http_attempts must be >= 1")
    check(0 < settings.freeze_ttl_seconds <= MAX_FREEZE_TTL_SECONDS,
          f"freeze_ttl_seconds must be 1..{MAX_FREEZE_TTL_SECONDS} (a crashed run must not close checkout for "
          f"longer); got {settings.freeze_ttl_seconds}")
    check(settings.retry_after_max_seconds >= 0, "retry_after_max_seconds must be >= 0")
    check(settings.extract_deadline_seconds > 0,
          f"extract_deadline_seconds must be > 0; got {settings.extract_deadline_seconds}")
    check(settings.walk_page_margin >= 0, f"walk_page_margin must be >= 0; got {settings.walk_page_margin}")
    check(settings.walk_extra_pages >= 1, f"walk_extra_pages must be >= 1; got {settings.walk_extra_pages}")
    check(settings.max_page_bytes >= 1024, f"max_page_bytes must be >= 1024; got {settings.max_page_bytes}")
    check(settings.clock_skew_seconds >= 0, f"clock_skew_seconds must be >= 0; got {settings.clock_skew_seconds}")
    check(settings.max_snapshot_age_seconds > 0,
          f"max_snapshot_age_seconds must be > 0; got {settings.max_snapshot_age_seconds}")
    check(settings.snapshot_page_times in PAGE_TIMES,
          f"snapshot_page_times must be one of {', '.join(PAGE_TIMES)}; got {settings.snapshot_page_times!r}")
    check(set(settings.run_override_bounds) == set(BOUNDED_RUN_KEYS),
          f"run_override_bounds must set exactly: {', '.join(BOUNDED_RUN_KEYS)}; "
          f"got {', '.join(settings.run_override_bounds)}")
    for name, (low, high) in settings.run_override_bounds.items():
        check(0 < low <= high, f"run_override_bounds.{name} must be [low, high] with 0 < low <= high")
    low, high = settings.run_override_bounds.get("freeze_ttl_seconds", (1, MAX_FREEZE_TTL_SECONDS))
    check(high <= MAX_FREEZE_TTL_SECONDS,
          f"run_override_bounds.freeze_ttl_seconds may not exceed {MAX_FREEZE_TTL_SECONDS}; got {high}")
    check(settings.unsent_order_cutoff_hours > 0, "unsent_order_cutoff_hours must be > 0")
    check(settings.active_cart_cutoff_hours > 0, "active_cart_cutoff_hours must be > 0")
    check(settings.max_quantity > 0, "max_quantity must be > 0")
    check(settings.staging_retention_days >= 1,
          f"staging_retention_days must be at least 1 (a failed run's tasks may be re-run); "
          f"got {settings.staging_retention_days}")
    check(settings.lock_timeout_seconds >= 0.001,
          "lock_timeout_seconds must be at least 0.001 (0 would mean wait forever); "
          f"got {settings.lock_timeout_seconds}")
    check(settings.http_timeout_seconds > 0, f"http_timeout_seconds must be > 0; got {settings.http_timeout_seconds}")
    check(0 <= settings.row_count_band <= 1, f"row_count_band must be 0..1; got {settings.row_count_band}")
    check(0 <= settings.quarantine_max_share <= 1,
          f"quarantine_max_share must be 0..1; got {settings.quarantine_max_share}")
    check(0 <= settings.unknown_sku_max_share <= 1,
          f"unknown_sku_max_share must be 0..1; got {settings.unknown_sku_max_share}")
    check(set(settings.dq_policies) == set(DQ_CHECKS),
          f"dq_policies must name exactly these checks: {', '.join(DQ_CHECKS)}; got {', '.join(settings.dq_policies)}")
    for name, policy in settings.dq_policies.items():
        check(policy in DQ_POLICIES, f"dq_policies.{name} must be one of {', '.join(DQ_POLICIES)}; got {policy!r}")
    from include.stocksync.sync.guardrails import LIMITS  # the guardrails are declared once, there

    check(set(settings.guardrails) == set(LIMITS),
          f"guardrails must set exactly: {', '.join(LIMITS)}; got {', '.join(settings.guardrails)}")
    for name, value in settings.guardrails.items():
        check(0 <= value <= 1, f"guardrails.{name} must be a share between 0 and 1; got {value}")
    check_operations(settings)  # issue 12: task timeouts against the deadlines they must cover
    check(settings.push_guardrails_min_skus >= 1,
          f"push_guardrails_min_skus must be at least 1; got {settings.push_guardrails_min_skus}")
    try:
        re.compile(settings.sku_pattern)
    except re.error as exc:
        raise ValueError(f"sku_pattern is not a valid regular expression: {exc}") from exc
    try:
        settings.freeze_shopper_message.format(expected_end="06:00 UTC")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError("freeze_shopper_message may only use the placeholder {expected_end}; "
                         f"got {settings.freeze_shopper_message!r}") from exc
    check(bool(settings.unsent_statuses) or settings.adjustment_mode == "none",
          "unsent_statuses must name at least one order status")


def load_settings(path: Path = CONFIG_PATH, environ: dict[str, str] | None = None) -> Settings:
    """Read the YAML config, apply `STOCKSYNC_*` environment overrides and validate."""
    environ = os.environ if environ is None else environ
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    fields = Settings.model_fields
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config keys in {path}: {', '.join(unknown)}")
    missing = sorted(k for k in set(fields) - set(raw) if fields[k].is_required())  # `loop` is optional
    if missing:
        raise ConfigError(f"missing config keys in {path}: {', '.join(missing)}")
    for key in fields:
        env_value = environ.get(f"STOCKSYNC_{key.upper()}")
        if env_value is not None:
            raw[key] = env_value
        if isinstance(raw.get(key), dict):
            prefix = f"STOCKSYNC_{key.upper()}__"  # e.g. STOCKSYNC_GUARDRAILS__MAX_CHANGED_SHARE=0.5
            for name, value in environ.items():
                if name.startswith(prefix):
                    raw[key] = {**raw[key], name[len(prefix):].lower(): value}
    return _parse(raw)


MAX_PUSH_SKUS = 10000
MAX_REASON_LENGTH = 1000


class RunOptions(BaseModel):
    """What one triggered run asks for beyond the settings: an ops push's knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dry_run: StrictBool = False
    skus: tuple[str, ...] = ()
    override_guardrails: StrictBool = False
    override_reason: str | None = None


OPTION_KEYS = ("dry_run", "skus", "override_guardrails", "override_reason")


def run_options(conf: dict[str, Any] | None, *, ops: bool = True) -> RunOptions:
    """Parse and check a run's conf/params; a misuse fails fast with a message saying what to do.

    The ops-only options (`OPTION_KEYS`) exist only on the ops push (`ops=True`): the nightly
    sync refuses them, so nobody turns the scheduled run into a partial or unguarded one."""
    conf = conf or {}
    known = {*RUN_KEYS, *OPTION_KEYS} if ops else set(RUN_KEYS)
    unknown = sorted(set(conf) - known)
    if unknown:
        ops_only = sorted(set(unknown) & set(OPTION_KEYS))
        if ops_only:
            raise ConfigError(f"run parameter(s) {', '.join(ops_only)} belong to the ops push (inventory_full_push), "
                              "not to the nightly sync: trigger inventory_full_push for a dry run, a SKU subset "
                              "or a guardrail override")
        named = ", ".join(k if re.fullmatch(r"\w{1,64}", k) else _shown(k) for k in unknown[:10])
        raise ConfigError(f"unknown run parameter(s): {named}{' …' if len(unknown) > 10 else ''}; "
                          f"known: {', '.join(sorted(known))}")
    dry_run = conf.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ConfigError(f"dry_run must be true or false; got {dry_run!r}")
    raw_skus = conf.get("skus") or []
    if isinstance(raw_skus, str):
        raw_skus = [part for part in re.split(r"[\s,]+", raw_skus) if part]
    if not isinstance(raw_skus, list) or not all(isinstance(s, str) and s.strip() for s in raw_skus):
        raise ConfigError(f"skus must be a list of SKU strings; got {_shown(raw_skus)}")
    if len(raw_skus) > MAX_PUSH_SKUS:
        raise ConfigError(f"skus lists {len(raw_skus)} SKUs; at most {MAX_PUSH_SKUS} (push the whole catalog instead)")
    bad = [s for s in raw_skus if len(s.strip()) > SKU_MAX_LENGTH or not s.strip().isprintable()]
    if bad:
        raise ConfigError(f"skus holds {len(bad)} value(s) that cannot be a SKU (at most {SKU_MAX_LENGTH} printable "
                          f"characters), e.g. {_shown(bad[0])}")
    skus = tuple(dict.fromkeys(s.strip() for s in raw_skus))
    override = conf.get("override_guardrails", False)
    if not isinstance(override, bool):
        raise ConfigError(f"override_guardrails must be true or false; got {override!r}")
    reason = conf.get("override_reason")
    if reason is not None and not isinstance(reason, str):
        raise ConfigError(f"override_reason must be text; got {_shown(reason)}")
    reason = reason.strip() if reason else None
    if reason and (len(reason) > MAX_REASON_LENGTH
                   or any(not ch.isprintable() and ch not in "\n\t" for ch in reason)):
        raise ConfigError(f"override_reason must be at most {MAX_REASON_LENGTH} printable characters "
                          f"(line breaks allowed); got {len(reason)} characters")
    if override and not reason:
        raise ConfigError("override_guardrails is true but override_reason is empty: say why this run may "
                          "skip the guardrails (it is recorded on the run and in its report)")
    return RunOptions(dry_run=dry_run, skus=skus, override_guardrails=override,
                      override_reason=reason if override else None)


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"
