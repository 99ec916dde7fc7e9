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
import reprlib
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from include.stocksync.config.files import WMS_SOURCES, FileSourceSettings
from include.stocksync.config.guardrails import GuardrailLimits
from include.stocksync.config.operations import (
    MAX_FREEZE_TTL_SECONDS,
    MIN_STEP_SECONDS,
    CommaSeparated,
    OperationsSettings,
)
from include.stocksync.config.platforms import SHOP_PLATFORMS, PlatformOptions
from include.stocksync.domain.contract import PAGE_TIMES, SKU_MAX_LENGTH
from include.stocksync.domain.errors import PermanentError

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


# Keys that name one of a few choices.
CHOICES: dict[str, Collection[str]] = {
    "freeze_mode": FREEZE_MODES,
    "adjustment_mode": ADJUSTMENT_MODES,
    "watermark_source": WATERMARK_SOURCES,
    "snapshot_page_times": PAGE_TIMES,
    "wms_source": WMS_SOURCES,
    "shop_platform": SHOP_PLATFORMS.keys(),  # the declared adapters (config/platforms.py)
}
# Numeric keys and their bounds: (the value is sound, the rule as the message states it).
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "page_size": (lambda v: 1 <= v <= 10000, "must be 1..10000"),
    "task_retries": (lambda v: v >= 0, "must be >= 0"),
    "http_attempts": (lambda v: v >= 1, "must be >= 1"),
    "freeze_ttl_seconds": (lambda v: 0 < v <= MAX_FREEZE_TTL_SECONDS,
                           f"must be 1..{MAX_FREEZE_TTL_SECONDS} (a crashed run must not close checkout for longer)"),
    "retry_after_max_seconds": (lambda v: v >= 0, "must be >= 0"),
    "extract_deadline_seconds": (lambda v: v > 0, "must be > 0"),
    "walk_page_margin": (lambda v: v >= 0, "must be >= 0"),
    "walk_extra_pages": (lambda v: v >= 1, "must be >= 1"),
    "max_page_bytes": (lambda v: v >= 1024, "must be >= 1024"),
    "clock_skew_seconds": (lambda v: v >= 0, "must be >= 0"),
    "max_snapshot_age_seconds": (lambda v: v > 0, "must be > 0"),
    "unsent_order_cutoff_hours": (lambda v: v > 0, "must be > 0"),
    "active_cart_cutoff_hours": (lambda v: v > 0, "must be > 0"),
    "max_quantity": (lambda v: v > 0, "must be > 0"),
    "staging_retention_days": (lambda v: v >= 1, "must be at least 1 (a failed run's tasks may be re-run)"),
    "lock_timeout_seconds": (lambda v: v >= 0.001, "must be at least 0.001 (0 would mean wait forever)"),
    "http_timeout_seconds": (lambda v: v > 0, "must be > 0"),
    "row_count_band": (lambda v: 0 <= v <= 1, "must be 0..1"),
    "quarantine_max_share": (lambda v: 0 <= v <= 1, "must be 0..1"),
    "unknown_sku_max_share": (lambda v: 0 <= v <= 1, "must be 0..1"),
    "push_guardrails_min_skus": (lambda v: v >= 1, "must be at least 1"),
    "retry_delay_seconds": (lambda v: v >= 0, "must be >= 0"),
    "max_retry_delay_seconds": (lambda v: v >= 0, "must be >= 0"),
    "retry_exponential_backoff": (lambda v: v >= 0, "must be >= 0 (0: no exponential backoff)"),
    "http_backoff_seconds": (lambda v: v >= 0, "must be >= 0"),
}


class ConfigError(PermanentError, ValueError):
    """A configuration value is missing or invalid."""


# --- order push, intraday sync, drift (docs/order-push-and-intraday.md) -------------
class LoopSettings(BaseModel):
    """The other half of the loop: `orders_to_wms`, `inventory_intraday_sync` and the nightly drift
    alert. One nested section (`loop:`) with defaults, so a config written before it still loads."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no NaN or infinity in a setting

    orders_schedule: str = "*/5 * * * *"
    order_key_prefix: str = "shop-order-"        # Idempotency-Key = prefix + shop order id
    order_batch_size: int = 100                  # orders sent per batch (acks recorded per batch)
    order_max_per_run: int = 20000
    order_deadline_seconds: float = 240.0        # a run stops starting batches after this
    order_timeout_seconds: float = 10.0          # one POST
    order_attempts: int = 3                      # per order, for timeouts and 5xx (a 429 waits instead)
    cancelled_statuses: Annotated[tuple[str, ...], CommaSeparated] = ("cancelled",)
    intraday_schedule: str = "*/15 * * * *"
    feed_page_size: int = 5000
    feed_max_events: int = 1_000_000             # more than this behind: leave it to the full sync
    feed_deadline_seconds: float = 300.0
    gap_triggers_full_sync: bool = False          # trigger inventory_nightly_sync on a gap
    full_sync_dag_ids: Annotated[tuple[str, ...], CommaSeparated] = ("inventory_nightly_sync", "inventory_full_push")
    full_sync_stale_seconds: float = 21600.0     # an open full-sync record older than this is dead
    drift_alert_factor: float = 3.0              # a night's SKUs off above factor x the trend alerts
    drift_alert_min_skus: int = 50               # ... and above this many SKUs
    drift_trend_nights: int = 30
    drift_trend_min_nights: int = 3              # fewer nights before: no trend, no alert

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
# --- end: order push, intraday sync, drift -----------------------------------------------------


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no NaN or infinity in a setting

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
    unsent_statuses: Annotated[tuple[str, ...], CommaSeparated]
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
    guardrails: GuardrailLimits  # the guardrails' names, defaults and checks: config/guardrails.py
    push_guardrails_min_skus: int
    run_override_bounds: dict[str, tuple[float, float]]
    loop: LoopSettings = LoopSettings()  # optional section, defaults above
    wms_source: str = "http"  # which WMS source this deployment reads: http | file (docs/file-drop-source.md)
    file_source: FileSourceSettings = FileSourceSettings()  # optional section (config/files.py)
    operations: OperationsSettings = OperationsSettings()  # optional section (config/operations.py)
    platform_options: PlatformOptions = PlatformOptions()  # optional section (config/platforms.py)

    @property
    def reports_path(self) -> Path:
        path = Path(self.reports_dir)
        return path if path.is_absolute() else PROJECT_ROOT / path

    @field_validator("run_override_bounds", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (v.split(",") if isinstance(v, str) else v) for k, v in value.items()}
        return value

    # --- one key at a time: each message names the key, what it must be and what it got ---------
    @field_validator(*CHOICES)
    @classmethod
    def _one_of(cls, value: str, info: ValidationInfo) -> str:
        allowed = CHOICES[str(info.field_name)]
        if value not in allowed:
            raise ValueError(f"{info.field_name} must be one of {', '.join(allowed)}; got {value!r}")
        return value

    @field_validator(*RANGES)
    @classmethod
    def _in_range(cls, value: float, info: ValidationInfo) -> float:
        sound, rule = RANGES[str(info.field_name)]
        if not sound(value):
            raise ValueError(f"{info.field_name} {rule}; got {value}")
        return value

    @field_validator("shop_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not _is_zone(value):
            raise ValueError(f"shop_timezone must be an IANA time zone name like Europe/Berlin or UTC; got {value!r}")
        return value

    @field_validator("sku_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"sku_pattern is not a valid regular expression: {exc}") from exc
        return value

    @field_validator("freeze_shopper_message")
    @classmethod
    def _placeholder(cls, value: str) -> str:
        try:
            value.format(expected_end="06:00 UTC")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError("freeze_shopper_message may only use the placeholder {expected_end}; "
                             f"got {value!r}") from exc
        return value

    @field_validator("dq_policies")
    @classmethod
    def _every_check_a_policy(cls, value: dict[str, str]) -> dict[str, str]:
        if set(value) != set(DQ_CHECKS):
            raise ValueError(f"dq_policies must name exactly these checks: {', '.join(DQ_CHECKS)}; "
                             f"got {', '.join(value)}")
        for name, policy in value.items():
            if policy not in DQ_POLICIES:
                raise ValueError(f"dq_policies.{name} must be one of {', '.join(DQ_POLICIES)}; got {policy!r}")
        return value

    @field_validator("run_override_bounds")
    @classmethod
    def _bounded_run_keys(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        if set(value) != set(BOUNDED_RUN_KEYS):
            raise ValueError(f"run_override_bounds must set exactly: {', '.join(BOUNDED_RUN_KEYS)}; "
                             f"got {', '.join(value)}")
        for name, (low, high) in value.items():
            if not 0 < low <= high:
                raise ValueError(f"run_override_bounds.{name} must be [low, high] with 0 < low <= high")
        if value["freeze_ttl_seconds"][1] > MAX_FREEZE_TTL_SECONDS:
            raise ValueError(f"run_override_bounds.freeze_ttl_seconds may not exceed {MAX_FREEZE_TTL_SECONDS}; "
                             f"got {value['freeze_ttl_seconds'][1]}")
        return value

    # --- across keys: run once every key above is sound ----------------------------------------------
    @model_validator(mode="after")
    def _statuses_when_adjusting(self) -> Settings:
        if not self.unsent_statuses and self.adjustment_mode != "none":
            raise ValueError("unsent_statuses must name at least one order status")
        return self

    @model_validator(mode="after")
    def _file_source_when_file(self) -> Settings:
        if self.wms_source == "file" and not self.file_source.location:
            raise ValueError("wms_source is file but file_source.location is empty: set the drop folder's URL "
                             "(STOCKSYNC_FILE_SOURCE__LOCATION or the config's file_source.location)")
        return self

    @model_validator(mode="after")
    def _task_timeouts_cover_their_deadlines(self) -> Settings:
        """Airflow's timeout must not kill a step before its own deadline can name the cause."""
        ops = self.operations
        if ops.extract_timeout_seconds <= self.extract_deadline_seconds + MIN_STEP_SECONDS:
            raise ValueError(f"operations.extract_timeout_seconds ({ops.extract_timeout_seconds:g}) must exceed "
                             f"extract_deadline_seconds ({self.extract_deadline_seconds:g}) by more than "
                             f"{MIN_STEP_SECONDS:g} s, or Airflow kills the walk before its own deadline names the "
                             "cause")
        if ops.load_timeout_seconds <= self.lock_timeout_seconds + MIN_STEP_SECONDS:
            raise ValueError(f"operations.load_timeout_seconds ({ops.load_timeout_seconds:g}) must exceed "
                             f"lock_timeout_seconds ({self.lock_timeout_seconds:g}) by more than "
                             f"{MIN_STEP_SECONDS:g} s")
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
            if not where or message.startswith(where):  # a validator's own message names the key and value
                problems.append(message)
            else:
                problems.append(f"{where}: {message} (got {_shown(error.get('input'))})")
        raise ConfigError("; ".join(problems)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader refusing a key given twice in one mapping (the last one silently won: a
    `freeze_mode: none` further down undid a `freeze_mode: full`) and an alias-heavy document (a
    "billion laughs" of a few hundred bytes expanded to gigabytes)."""

    max_aliases = 100

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > self.max_aliases:
                raise yaml.YAMLError(f"more than {self.max_aliases} aliases: refused (a config needs none)")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.YAMLError(f"key {str(key)[:80]!r} is given twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


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


def load_settings(path: Path = CONFIG_PATH, environ: dict[str, str] | None = None) -> Settings:
    """Read the YAML config, apply `STOCKSYNC_*` environment overrides and validate."""
    environ = os.environ if environ is None else environ
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path} cannot be read as UTF-8 YAML: {str(exc)[:500]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values, not a "
                          f"{type(raw).__name__}")
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
        prefix = f"STOCKSYNC_{key.upper()}__"  # e.g. STOCKSYNC_GUARDRAILS__MAX_CHANGED_SHARE=0.5
        overrides = {name[len(prefix):].lower(): value for name, value in environ.items() if name.startswith(prefix)}
        # a section the file leaves out (an optional one: loop, file_source) takes its overrides too,
        # over its defaults: they were dropped without a word
        if overrides and (isinstance(raw.get(key), dict) or key not in raw):
            raw[key] = {**(raw.get(key) or {}), **overrides}
    return _parse(raw)


# --- this process's settings: parsed once, shared, read again only when asked ----------------------
@dataclass(frozen=True)
class _Loaded:
    environ: tuple[tuple[str, str], ...]  # the STOCKSYNC_* variables they were read with
    stamp: tuple[int, int] | None         # the config file's (mtime_ns, size) before it was read
    settings: Settings


_loaded: _Loaded | None = None
_loading = threading.Lock()


def _stocksync_environ() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, value) for name, value in os.environ.items() if name.startswith("STOCKSYNC_")))


def _file_stamp() -> tuple[int, int] | None:
    try:
        stat = CONFIG_PATH.stat()
    except OSError:  # load_settings names the missing file
        return None
    return stat.st_mtime_ns, stat.st_size


def process_settings(*, reload: bool = False) -> Settings:
    """This deployment's settings (the config file and the `STOCKSYNC_*` environment), parsed and
    validated once per process and shared by every caller. Read again only when asked
    (`reload=True`), or when the `STOCKSYNC_*` environment is not the one they were read with (a
    test or a tool that sets a variable gets settings that say so). A run does not use them
    beyond its start: its setup resolves the run's spec once and the run's tasks read that spec
    from the run record."""
    global _loaded
    environ = _stocksync_environ()
    loaded = _loaded
    if reload or loaded is None or loaded.environ != environ:
        with _loading:
            stamp = _file_stamp()  # before the read: a write during it is seen next time
            loaded = _Loaded(environ, stamp, load_settings(CONFIG_PATH, environ=dict(environ)))
            _loaded = loaded
    return loaded.settings


def settings_reloaded_on_change() -> Settings:
    """`process_settings()` for a long-lived server (the Airflow plugin's pages): read again when
    the config file's modification time or size moved since they were read; a stat, not a parse."""
    loaded = _loaded
    return process_settings(reload=loaded is not None and loaded.stamp != _file_stamp())
# --- end: this process's settings --------------------------------------------------------------------


MAX_PUSH_SKUS = 10000
MAX_REASON_LENGTH = 1000


class RunOptions(BaseModel):
    """What one triggered run asks for beyond the settings: an ops push's knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no NaN or infinity in a setting

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
    unknown = sorted(set(conf) - known, key=str)  # a key that is not text (dag.test's conf) is named too
    if unknown:
        ops_only = sorted(set(unknown) & set(OPTION_KEYS))
        if ops_only:
            raise ConfigError(f"run parameter(s) {', '.join(ops_only)} belong to the ops push (inventory_full_push), "
                              "not to the nightly sync: trigger inventory_full_push for a dry run, a SKU subset "
                              "or a guardrail override")
        named = ", ".join(k if isinstance(k, str) and re.fullmatch(r"\w{1,64}", k) else _shown(k)
                          for k in unknown[:10])
        raise ConfigError(f"unknown run parameter(s): {named}{' …' if len(unknown) > 10 else ''}; "
                          f"known: {', '.join(sorted(known))}")
    dry_run = conf.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ConfigError(f"dry_run must be true or false; got {dry_run!r}")
    raw_skus = conf.get("skus")
    if raw_skus is None:  # absent: the whole catalog (as an empty list or text does)
        raw_skus = []
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


_SHOWN = reprlib.Repr()  # Python 3.11: its bounds are attributes
_SHOWN.maxlevel, _SHOWN.maxdict, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxset = 3, 8, 8, 8, 8
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 80, 80, 40


def _shown(value: Any, limit: int = 80) -> str:
    """`value`'s repr for an error, bounded while it is built (a YAML alias bomb's value expands to
    gigabytes: its whole repr was built before being cut)."""
    text = _SHOWN.repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"
