"""Operations under faults: the `operations:` section of the config, and the time
bounds derived from it.

Everything here bounds time: how often a running step proves it is alive (heartbeat), when a
silent run counts as dead, each task's `execution_timeout`, the alert channels' timeouts, the
watchdog and the nightly deadline. One nested section with defaults (like `loop:`), so a config
written before it still loads; `STOCKSYNC_OPERATIONS__<NAME>` overrides one entry.

The formulas (README, "Operations under faults"):

- full-mode freeze TTL = min(freeze_ttl_seconds, W), where W, the longest the tasks the freeze
  covers can legitimately take, is
  W = (1 + r) x (T_extract + T_validate + T_merge + T_load) + 4 r x D_max + S
  with r the Airflow retries of a task, T_x its execution_timeout, D_max = max_retry_delay_seconds
  and S = SCHEDULING_ALLOWANCE_SECONDS; the TTL is also the run's time budget: a full-mode run
  must be done by its freeze's expiry, and one that cannot be fails permanently (which releases);
- a run is dead when its heartbeat is older than
  max(heartbeat_timeout_seconds, max_retry_delay_seconds + 3 x heartbeat_interval_seconds):
  between two tries of a task nothing beats, so the bound never drops below the longest retry delay.

A lost worker (docs/operations.md, "A lost worker"), with H = Airflow's
`[scheduler] task_instance_heartbeat_timeout` and I its detection interval (the deployment sets
both; `airflow_task_heartbeat_timeout_seconds` / `airflow_heartbeat_check_seconds` say what it
sets, and the shipped-bounds test checks docker-compose.yaml and the native stack agree):

- recovery R = H + I + max_retry_delay_seconds + TASK_START_SECONDS: from the kill to the retry's
  first heartbeat on another worker;
- the full-mode budget keeps `budget_reserve_seconds` after the extract, >= R + APPLY_ALLOWANCE_SECONDS,
  so one lost worker during validate, merge or load still ends in an applied night; checkout then
  stays closed at most the normal window + R + one apply (`worker_loss_bound`);
- the heartbeat bound > heartbeat_interval_seconds + R: the watchdog (and a new run) never takes a
  run for dead while Airflow has yet to retry its lost task;
- a new run waits for another run's freeze at most `holder_wait_seconds` (> the heartbeat bound +
  one beat, so a crashed holder is proven dead within the wait), inside the setup's
  execution_timeout.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

# Time Airflow needs to start the next task of a run (scheduler loop, executor, worker start-up),
# counted once per covered task in W above (4 tasks, a few seconds each, rounded up).
SCHEDULING_ALLOWANCE_SECONDS = 60.0
# A step needs at least this much of the run budget to be worth starting.
MIN_STEP_SECONDS = 5.0
# No run may close checkout for longer than this, whatever the config or a run's parameters say
# (checked by the settings and again by the freeze itself).
MAX_FREEZE_TTL_SECONDS = 4 * 3600
# From a task's retry becoming due to its first heartbeat on a worker (scheduler loop, broker,
# worker start-up of the task process): SCHEDULING_ALLOWANCE_SECONDS over the 4 covered tasks.
TASK_START_SECONDS = 15.0
# What validate, merge and one apply take at the sizes the README's benchmarks cover (1M SKUs:
# 1.4 + 1.2 s; 10M: about 20 s together), kept in the reserve next to one lost worker's recovery.
APPLY_ALLOWANCE_SECONDS = 30.0
# The tasks the full-mode freeze covers (set at the end of the setup, released by the teardown).
COVERED_TASKS = ("extract_wms_counts", "validate_counts", "merge_in_window_orders", "load_stock")


class Settings(Protocol):
    """What the bounds below read from the whole settings (config/settings.py `Settings`, which
    declares this section and checks its timeouts against the deadlines they cover): named here
    so this module never imports the settings module that imports it."""

    @property
    def operations(self) -> OperationsSettings: ...
    @property
    def task_retries(self) -> int: ...
    @property
    def max_retry_delay_seconds(self) -> float: ...
    @property
    def extract_deadline_seconds(self) -> float: ...
    @property
    def freeze_ttl_seconds(self) -> int: ...


def comma_separated(value: Any) -> Any:
    """A list setting given as one string (an environment override: `a, b,c`) as a tuple of its
    non-empty parts; any other value as it is, for the field's own type check."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# A list field that also takes one comma-separated string (`comma_separated`) before its type check.
CommaSeparated = BeforeValidator(comma_separated)


class OperationsSettings(BaseModel):
    """Liveness, timeouts, alert delivery, watchdog and deadline."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no NaN or infinity in a setting

    heartbeat_interval_seconds: float = 10.0     # a running step beats this often (own connection)
    heartbeat_timeout_seconds: float = 120.0     # silent this long: the run is dead (see heartbeat_bound)
    # Silent for this many beats with Airflow saying none of its tasks runs or is about to: dead.
    dead_after_beats: int = 3
    # A run finding another live run's freeze waits this long for it to end (or be proven dead),
    # then refuses to start.
    holder_wait_seconds: float = 150.0
    # What the deployment sets in Airflow ([scheduler] task_instance_heartbeat_timeout and
    # task_instance_heartbeat_timeout_detection_interval): a task whose worker died is failed
    # (and retried) at most H + I after its last beat.
    airflow_task_heartbeat_timeout_seconds: float = 30.0
    airflow_heartbeat_check_seconds: float = 5.0
    # Runs of these DAGs beat and are closed by their teardown: only they are ever declared dead.
    watched_dag_ids: Annotated[tuple[str, ...], CommaSeparated] = ("inventory_nightly_sync", "inventory_full_push")
    budget_reserve_seconds: float = 120.0        # of a full-mode budget, kept for validate/merge/load
    # execution_timeout of each task (Airflow kills a task past it; it counts as a failed try)
    freeze_checkout_timeout_seconds: float = 210.0
    extract_timeout_seconds: float = 360.0
    validate_timeout_seconds: float = 120.0
    merge_timeout_seconds: float = 120.0
    load_timeout_seconds: float = 120.0
    release_timeout_seconds: float = 120.0
    watchdog_timeout_seconds: float = 120.0
    default_task_timeout_seconds: float = 1800.0  # any other task of a DAG built with default_args
    # alert delivery (webhook and email): per attempt, and per teardown in total
    alert_connect_timeout_seconds: float = 3.0
    alert_read_timeout_seconds: float = 5.0
    alert_delivery_budget_seconds: float = 30.0  # a teardown stops delivering after this (watchdog retries)
    alert_smtp_conn_id: str = "stocksync_alerts_smtp"  # optional: email alerts when this connection exists
    alert_retry_after_seconds: float = 60.0      # the watchdog retries an undelivered alert after this
    alert_retry_max_attempts: int = 12
    # the watchdog DAG (stocksync_watchdog)
    watchdog_schedule: str = "*/5 * * * *"
    freeze_alert_after_seconds: float = 900.0    # any freeze (also a manual one) open longer: alert once
    # Airflow DeadlineAlert: the nightly has not finished this long after its logical date
    nightly_deadline_seconds: float = 3600.0

    @model_validator(mode="after")
    def _bounds(self) -> OperationsSettings:
        positive = ("heartbeat_interval_seconds", "heartbeat_timeout_seconds", "freeze_checkout_timeout_seconds",
                    "holder_wait_seconds", "airflow_task_heartbeat_timeout_seconds", "airflow_heartbeat_check_seconds",
                    "extract_timeout_seconds", "validate_timeout_seconds", "merge_timeout_seconds",
                    "load_timeout_seconds", "release_timeout_seconds", "watchdog_timeout_seconds",
                    "default_task_timeout_seconds",
                    "alert_connect_timeout_seconds", "alert_read_timeout_seconds", "alert_delivery_budget_seconds",
                    "alert_retry_after_seconds", "freeze_alert_after_seconds", "nightly_deadline_seconds")
        problems = [f"{name} must be > 0" for name in positive if not getattr(self, name) > 0]
        if self.dead_after_beats < 2:
            problems.append("dead_after_beats must be >= 2 (one missed beat is not a dead run)")
        if self.budget_reserve_seconds < 0:
            problems.append("budget_reserve_seconds must be >= 0")
        if self.heartbeat_interval_seconds * 2 > self.heartbeat_timeout_seconds:
            problems.append("heartbeat_timeout_seconds must be at least twice heartbeat_interval_seconds")
        if self.alert_connect_timeout_seconds > 30 or self.alert_read_timeout_seconds > 30:
            problems.append("alert_connect_timeout_seconds and alert_read_timeout_seconds may not exceed 30 "
                            "(an alert must never hold a task)")
        if self.alert_retry_max_attempts < 1:
            problems.append("alert_retry_max_attempts must be >= 1")
        if not self.watched_dag_ids:
            problems.append("watched_dag_ids must name at least one DAG")
        if problems:
            raise ValueError("operations: " + "; ".join(problems))
        return self

    def task_timeout(self, task_id: str) -> float:
        """The execution_timeout of a task, in seconds: the sync DAGs' and the watchdog's own, else
        the default every task built with task_support.default_args gets."""
        return {
            "freeze_checkout": self.freeze_checkout_timeout_seconds,
            "extract_wms_counts": self.extract_timeout_seconds,
            "validate_counts": self.validate_timeout_seconds,
            "merge_in_window_orders": self.merge_timeout_seconds,
            "load_stock": self.load_timeout_seconds,
            "release_freeze": self.release_timeout_seconds,
            "reap_dead_runs": self.watchdog_timeout_seconds,
            "check_freezes": self.watchdog_timeout_seconds,
            "retry_alerts": self.watchdog_timeout_seconds,
        }.get(task_id, self.default_task_timeout_seconds)


def check_worker_loss(settings: Settings) -> list[str]:
    """How the shipped bounds must fit together so one lost worker costs the night nothing (and a
    crashed run's freeze is released by the next run before its TTL): one line per broken rule,
    naming the keys. Not enforced when a config loads (tests and single runs may shorten one
    bound on purpose); tests/unit/test_operations_bounds.py holds the shipped files to it."""
    ops, problems = settings.operations, []
    ttl, recovery, bound = freeze_ttl(settings), worker_recovery(settings), heartbeat_bound(settings)
    if ops.budget_reserve_seconds < recovery + APPLY_ALLOWANCE_SECONDS:
        problems.append(f"operations.budget_reserve_seconds ({ops.budget_reserve_seconds:g}) must hold one lost "
                        f"worker's recovery ({recovery:g} s: Airflow heartbeat timeout + detection interval + "
                        f"max_retry_delay_seconds + {TASK_START_SECONDS:g}) and {APPLY_ALLOWANCE_SECONDS:g} s for "
                        "validate, merge and the apply")
    if settings.extract_deadline_seconds + ops.budget_reserve_seconds + TASK_START_SECONDS + MIN_STEP_SECONDS > ttl:
        problems.append(f"extract_deadline_seconds ({settings.extract_deadline_seconds:g}) + "
                        f"operations.budget_reserve_seconds ({ops.budget_reserve_seconds:g}) + "
                        f"{TASK_START_SECONDS + MIN_STEP_SECONDS:g} s must fit the full-mode freeze ({ttl:g} s)")
    if bound <= ops.heartbeat_interval_seconds + recovery:
        problems.append(f"the heartbeat bound ({bound:g} s, operations.heartbeat_timeout_seconds) must exceed one "
                        f"beat + a lost worker's recovery ({ops.heartbeat_interval_seconds + recovery:g} s), or a run "
                        "Airflow is about to retry is taken for dead")
    if bound + ops.heartbeat_interval_seconds >= ttl:
        problems.append(f"the heartbeat bound ({bound:g} s) + one beat must stay below the freeze TTL ({ttl:g} s): "
                        "a crashed run's freeze is released by the next run, not left to expire")
    if ops.holder_wait_seconds <= bound + ops.heartbeat_interval_seconds:
        problems.append(f"operations.holder_wait_seconds ({ops.holder_wait_seconds:g}) must exceed the heartbeat "
                        f"bound + one beat ({bound + ops.heartbeat_interval_seconds:g} s)")
    if ops.freeze_checkout_timeout_seconds <= ops.holder_wait_seconds + 2 * TASK_START_SECONDS:
        problems.append(f"operations.freeze_checkout_timeout_seconds ({ops.freeze_checkout_timeout_seconds:g}) must "
                        f"exceed holder_wait_seconds ({ops.holder_wait_seconds:g}) by more than "
                        f"{2 * TASK_START_SECONDS:g} s")
    if ops.dead_after_beats * ops.heartbeat_interval_seconds >= bound:
        problems.append("operations.dead_after_beats x heartbeat_interval_seconds must stay below the heartbeat bound")
    return problems


def worker_recovery(settings: Settings) -> float:
    """R: from a worker's death to its task's retry beating on another worker (the lost try is
    failed by Airflow's heartbeat check, waits its retry delay, and starts)."""
    ops = settings.operations
    return (ops.airflow_task_heartbeat_timeout_seconds + ops.airflow_heartbeat_check_seconds
            + settings.max_retry_delay_seconds + TASK_START_SECONDS)


def worker_loss_bound(settings: Settings, apply_seconds: float) -> float:
    """The most checkout stays closed after a worker running the apply dies: the recovery, the
    retried apply (`apply_seconds`) and the teardown's start."""
    return worker_recovery(settings) + apply_seconds + TASK_START_SECONDS


def task_retries(settings: Settings) -> int:
    """Airflow retries of every stocksync task (task_support.default_args)."""
    return max(2, settings.task_retries)


def covered_worst_case(settings: Settings) -> float:
    """W: the longest the tasks under a full-mode freeze can take with their timeouts and retries."""
    ops, retries = settings.operations, task_retries(settings)
    timeouts = sum(ops.task_timeout(task) for task in COVERED_TASKS)
    return (1 + retries) * timeouts + len(COVERED_TASKS) * retries * settings.max_retry_delay_seconds \
        + SCHEDULING_ALLOWANCE_SECONDS


def freeze_ttl(settings: Settings) -> float:
    """The full-mode freeze's TTL, which is also the run's time budget: the configured maximum
    (`freeze_ttl_seconds`), or W when the covered tasks' timeouts add up to less."""
    return min(float(settings.freeze_ttl_seconds), covered_worst_case(settings))


def heartbeat_bound(settings: Settings) -> float:
    """Seconds without a heartbeat after which a run is dead."""
    ops = settings.operations
    return max(ops.heartbeat_timeout_seconds, settings.max_retry_delay_seconds + 3 * ops.heartbeat_interval_seconds)
