"""What a run record means to the person on call: one sentence, the step and the first cause, what
checkout did, which checks agree with what stopped the run, and what to do next.

The run report, the runs page, the refused-run page and the alerts all say it the same way, from
the same record: a run stopped by a guardrail never reads as "data quality passed", a dry run
never reads as having frozen checkout, and the advice names only parameters the DAG it points at
really has (the nightly sync takes no override: `settings.run_options`).

Pure functions of rows (no database): the unit tests call them directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from include.stocksync.config.display import base_url
from include.stocksync.runs.wording import Label, duration, fmt_int, fmt_signed, run_status, shorten

NIGHTLY_DAG = "inventory_nightly_sync"
PUSH_DAG = "inventory_full_push"
INTRADAY_DAG = "inventory_intraday_sync"
SYNC_DAGS = (NIGHTLY_DAG, PUSH_DAG, INTRADAY_DAG)
# tasks that run before a sync run opens its record: a failure alert of one of these with no record
# of its run is a run refused (the setup) or failed before it could start (file_tasks.WAIT_TASK_ID)
EARLY_TASKS = ("freeze_checkout", "wait_for_wms_file")
DAG_LABELS = {NIGHTLY_DAG: "Nightly sync", PUSH_DAG: "Ops push", INTRADAY_DAG: "Intraday sync"}

# stage (lifecycle.step name, the prefix of a recorded error) -> (what people call it, the Airflow task)
STEPS: dict[str, tuple[str, str]] = {
    "freeze": ("freeze checkout", "freeze_checkout"),
    "extract": ("extract (reading the WMS counts)", "extract_wms_counts"),
    "validate": ("validation", "validate_counts"),
    "merge": ("planning (merge and guardrails)", "merge_in_window_orders"),
    "load": ("load (the apply)", "load_stock"),
    "dry_run": ("finishing the dry run", "load_stock"),
}
TASK_STEPS = {task: stage for stage, (_, task) in STEPS.items() if stage != "dry_run"}
STAGE_LABELS = {"freeze": "Freeze checkout", "extract": "Extract", "validate": "Validate", "merge": "Plan",
                "load": "Load", "dry_run": "Finish dry run"}
ERROR_PREFIX = re.compile(r"^(?P<stage>[a-z_]+): ")
# what a guardrail failure's own message adds (the advice below replaces it)
GUARDRAIL_ADVICE = re.compile(r"\. If the feed is right, .*$", re.DOTALL)

CHECKS_PASSED = Label("passed", "ok", "every data-quality check and guardrail passed")
CHECKS_NOT_RUN = Label("not run", "none", "the run stopped before validation")


@dataclass(frozen=True)
class Movement:
    """What a run changed (applied) or would change (a plan): SKUs and units."""

    skus_changed: int = 0
    units_up: int = 0
    units_down: int = 0
    zeroed: int = 0
    planned: bool = False  # figures of a plan (nothing was written), not of an apply

    @classmethod
    def of(cls, row: Mapping[str, Any] | None, planned: bool) -> Movement | None:
        if not row:
            return None
        return cls(int(row.get("skus_changed") or 0), int(row.get("units_up") or 0),
                   int(row.get("units_down") or 0), int(row.get("zeroed") or 0), planned)

    def units(self) -> str:
        """+1,234 / −56 units; one side only when the other is 0."""
        parts = [fmt_signed(self.units_up)] if self.units_up else []
        parts += [fmt_signed(-self.units_down)] if self.units_down else []
        return f"{' / '.join(parts)} units" if parts else "no units"

    def phrase(self) -> str:
        return f"{fmt_int(self.skus_changed)} SKU{'s' if self.skus_changed != 1 else ''} ({self.units()})"


@dataclass(frozen=True)
class Step:
    """Something to do next: a sentence, links (label, href) and configuration to paste."""

    text: str
    links: tuple[tuple[str, str], ...] = ()
    code: str | None = None


@dataclass(frozen=True)
class Story:
    """What happened, for the headline."""

    kind: str                 # css kind: ok, plan, bad, warn, run, none
    title: str                # "Applied", "Dry run", "Stopped by a guardrail", "Failed at extract", ...
    sentence: str             # one sentence, plain text
    cause: str | None = None  # the first cause, cleaned and cut
    step: str | None = None   # the stage it stopped at
    task_id: str | None = None  # the Airflow task whose log says more
    stopped_by: str | None = None  # guardrail | check | error | refused | None
    tripped: tuple[dict[str, Any], ...] = ()  # guardrails that stopped it (or would stop a real run)
    failed_checks: tuple[str, ...] = ()
    steps: tuple[Step, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------------------------------- parts

def dag_label(dag_id: str | None) -> str:
    return DAG_LABELS.get(dag_id or "", dag_id or "")


def stage_of(error: str | None) -> str | None:
    """The stage a recorded error names (`runs.record_failure` writes `<stage>: <error>`)."""
    match = ERROR_PREFIX.match(error or "")
    return match.group("stage") if match and match.group("stage") in STEPS else None


def short_cause(error: str | None, limit: int = 220) -> str | None:
    """The error without its stage prefix and the guardrail's stock advice, first line, cut at a
    word boundary to `limit` characters (the report keeps the whole)."""
    if not error:
        return None
    text = ERROR_PREFIX.sub("", str(error).strip(), count=1)
    text = GUARDRAIL_ADVICE.sub("", text)
    text = text.splitlines()[0].strip() if text.strip() else text
    if len(text) > limit:
        cut = text[:limit].rsplit(" ", 1)[0]
        text = (cut if len(cut) > limit * 0.6 else text[:limit]).rstrip(",;: ") + " …"
    return text


def guardrails_of(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = run.get("guardrails")
    if isinstance(raw, str):
        raw = json.loads(raw)
    return [dict(g) for g in raw or []]


def tripped_guardrails(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Guardrails that failed and were not overridden: they stop a real run (the merge step's rule)."""
    if run.get("override_reason"):
        return []
    return [g for g in guardrails_of(run) if not g.get("success")]


def options_of(run: Mapping[str, Any]) -> dict[str, Any]:
    raw = run.get("options")
    if isinstance(raw, str):
        raw = json.loads(raw)
    return dict(raw or {})


OPTION_DEFAULTS: dict[str, Any] = {"dry_run": False, "skus": [], "override_guardrails": False,
                                   "override_reason": None}


def options_set(run: Mapping[str, Any]) -> dict[str, Any]:
    """The run's options that differ from the defaults (what it was triggered with)."""
    return {k: v for k, v in options_of(run).items() if v not in (OPTION_DEFAULTS.get(k), (), [])}


def is_dry_run(run: Mapping[str, Any]) -> bool:
    return run.get("status") == "dry_run" or bool(options_of(run).get("dry_run"))


def blocking_checks(checks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Data-quality checks (not guardrails) that failed with the `fail` policy: they stop a run."""
    return [c for c in checks if not c.get("success") and (c.get("policy") or "fail") == "fail"
            and not str(c.get("check_name", "")).startswith("guardrail:")]


def quarantine_note(run: Mapping[str, Any]) -> str:
    """' 3 WMS rows were quarantined (kept out of the load).' when the checks kept rows out."""
    rows = int(run.get("quarantined") or 0)
    if not rows:
        return ""
    return f" {fmt_int(rows)} WMS row{'s were' if rows != 1 else ' was'} quarantined (kept out of the load)."


def example_phrase(examples: Any, limit: int = 3) -> str:
    """", e.g. A, B, C" from a check's stored examples when they are values people can look up (SKUs,
    quantities); '' for a derived column's flags (`false`) or a guardrail's figures."""
    if isinstance(examples, str):
        try:
            examples = json.loads(examples)
        except ValueError:
            return ""
    if not isinstance(examples, list):
        return ""
    shown = [str(e) for e in examples if isinstance(e, str | int | float) and not isinstance(e, bool)]
    if not shown:
        return ""
    return ", e.g. " + ", ".join(shorten(e, 60) for e in shown[:limit]) + (" …" if len(shown) > limit else "")


def checks_verdict(run: Mapping[str, Any], failed_checks: int | None = None) -> Label:
    """One label for the data-quality checks and guardrails that agrees with what stopped the run."""
    if not run.get("recorded", True):
        return CHECKS_NOT_RUN
    tripped = tripped_guardrails(run)
    if tripped and not is_dry_run(run):
        return Label("guardrail tripped", "bad", "; ".join(str(g.get("observed")) for g in tripped))
    if run.get("dq_success") is False:
        return Label("check failed", "bad", "a data-quality check with the fail policy failed; nothing was written")
    if tripped:  # a dry run: it says what a real run would do
        return Label("guardrail would trip", "warn", "; ".join(str(g.get("observed")) for g in tripped))
    overridden = [g for g in guardrails_of(run) if not g.get("success")]
    if overridden:
        return Label("overridden", "warn", "guardrails failed and were overridden: "
                     + "; ".join(str(g.get("observed")) for g in overridden))
    if run.get("dq_success") is None:
        return CHECKS_NOT_RUN
    quarantined = int(run.get("quarantined") or 0)
    if quarantined:
        return Label(f"{fmt_int(quarantined)} quarantined", "warn",
                     "the checks passed; offending rows were kept out of the load")
    if not guardrails_of(run):
        return Label("validated", "ok", "the data-quality checks passed; the guardrails were not reached")
    return CHECKS_PASSED


def checkout_phrase(run: Mapping[str, Any], short: bool = False) -> str:
    """How long checkout was closed and in which freeze mode (`short`: for a tile or a table cell)."""
    mode = run.get("freeze_mode")
    seconds = run.get("freeze_seconds")
    if not run.get("recorded", True):
        return "never closed" if short else "never closed (the run was refused before it could freeze)"
    if is_dry_run(run):
        return "never closed (dry run)" if short else "never closed (a dry run freezes nothing)"
    if mode == "none":
        return "never closed (mode none)" if short else "never closed (freeze mode none)"
    if run.get("status") == "running" and not seconds:
        return "closed while the run goes" if mode == "full" else "closes around the apply"
    if not seconds:
        return "never closed"
    if short:
        return f"{duration(float(seconds))} ({mode})"
    where = "from before the extract to after the apply" if mode == "full" else "around the apply only"
    return f"closed {duration(float(seconds))} ({mode} mode: {where})"


# ------------------------------------------------------------------------------------------- links

def airflow_base() -> str:
    """Airflow's public URL (`[api] base_url`) without a trailing slash; '' when unset (links are
    then root-relative, which holds in the Airflow UI and its iframe)."""
    return base_url()


def q(text: str) -> str:
    """A path segment: everything quoted (`/` too); a lone surrogate (no real run id has one, a
    str can) is kept as its bytes rather than failing the page."""
    return quote(text, safe="", errors="surrogatepass")


def dag_href(dag_id: str, base: str = "") -> str:
    return f"{base}/dags/{q(dag_id)}"


def run_href(dag_id: str, run_id: str, base: str = "") -> str:
    """The run's page in the Airflow UI."""
    return f"{dag_href(dag_id, base)}/runs/{q(run_id)}"


def task_href(dag_id: str, run_id: str, task_id: str, base: str = "") -> str:
    """A task instance of the run in the Airflow UI (its log)."""
    return f"{run_href(dag_id, run_id, base)}/tasks/{q(task_id)}"


def page_href(dag_id: str, run_id: str, base: str = "") -> str:
    """The run's page served by the Stock sync plugin: its report, or why it has none."""
    return f"{base}/stocksync/runs/{q(dag_id)}/{q(run_id)}"


def plan_href(dag_id: str, run_id: str, base: str = "", **filters: Any) -> str:
    """The plugin's plan browser for a run (paginated and filterable)."""
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in filters.items() if v not in (None, "", False)})
    return f"{page_href(dag_id, run_id, base)}/plan" + (f"?{query}" if query else "")


def conf_json(values: Mapping[str, Any]) -> str:
    return json.dumps(dict(values), ensure_ascii=False)


# ------------------------------------------------------------------------------------------- story

def feed_walk_notes(run: Mapping[str, Any]) -> list[str]:
    """Sentences for an intraday run whose change-feed walk ended before the WMS's newest sequence
    (its `feed_truncated` / `feed_stalled` warnings, written by intraday.py)."""
    notes = []
    for warning in run.get("warnings") or []:
        kind = warning.get("kind") if isinstance(warning, Mapping) else None
        if kind == "feed_truncated":
            notes.append(f"Part of the change feed only (a walk bound): the next run goes on from sequence "
                         f"{warning.get('through_seq')}.")
        elif kind == "feed_stalled":
            notes.append("The WMS change feed stalled after these changes.")
    return notes


def story(run: Mapping[str, Any] | None, *, movement: Movement | None = None,
          checks: Sequence[Mapping[str, Any]] = (), base: str | None = None,
          failed_task: str | None = None, error: str | None = None) -> Story:
    """The headline of a run: `run` is its record (None, or `recorded` false, for a run refused
    before it opened one: `failed_task` and `error` come from its alert)."""
    base = airflow_base() if base is None else base
    if run is None or not run.get("recorded", True):
        return _unrecorded(run or {}, failed_task or (run or {}).get("failed_task"),
                           error or (run or {}).get("error"), base)
    status = run.get("status")
    first = run.get("first_error") or run.get("error")
    stage = stage_of(first) or stage_of(run.get("error"))
    cause = short_cause(first)
    tripped = tuple(tripped_guardrails(run))
    label = run_status(status)
    moved = movement.phrase() if movement else None
    if status == "applied":
        if movement is None:
            sentence = "Applied: the WMS snapshot was written to the shop."
        elif movement.skus_changed:
            plural = "s" if movement.skus_changed != 1 else ""
            sentence = f"Applied: {fmt_int(movement.skus_changed)} SKU{plural} changed ({movement.units()})."
        else:
            sentence = "Applied: the shop already matched the WMS, nothing needed to change."
        if run.get("override_reason"):
            sentence = sentence[:-1] + ", with the guardrails overridden."
        sentence += quarantine_note(run)
        notes = feed_walk_notes(run)
        if notes:  # an intraday run that read part of the feed: say so where the run's line is read
            return Story("warn", "Applied", f"{sentence} {' '.join(notes)}", steps=_steps_after_success(run, base))
        return Story("ok", "Applied", sentence, steps=_steps_after_success(run, base))
    if status == "duplicate":
        return Story("ok", "Already applied", "Nothing written: this WMS snapshot had already been applied "
                     "by an earlier run.")
    if status == "dry_run" or (status == "running" and is_dry_run(run) and stage is None):
        more = (f" (and {len(tripped) - 1} more guardrail{'s' if len(tripped) > 2 else ''})"
                if len(tripped) > 1 else "")
        if movement is not None and not movement.skus_changed:
            moved = "nothing"  # the shop already matches the WMS
        if tripped and moved:
            sentence = f"Dry run, nothing written: a real run would change {moved}, but it would stop: " \
                       f"{tripped[0].get('observed')}{more}."
        elif tripped:
            sentence = f"Dry run, nothing written; a real run would stop: {tripped[0].get('observed')}{more}."
        elif moved:
            sentence = f"Dry run, nothing written: a real run would change {moved}."
        else:
            sentence = "Dry run, nothing written: its report has the plan."
        sentence += quarantine_note(run)
        kind = "warn" if tripped else "plan"
        steps = _steps_after_dry_run(run, tripped, base) if moved != "nothing" or tripped else ()
        return Story(kind, "Dry run", sentence, tripped=tripped, stopped_by="guardrail" if tripped else None,
                     steps=steps)
    if status == "running":
        done = [s for s in (run.get("stage_seconds") or {}) if s in STEPS]
        at = f" (done: {', '.join(STAGE_LABELS.get(s, s) for s in done)})" if done else ""
        return Story("run", "Running", f"Running{at}; checkout is {checkout_phrase(run)}.")
    if status in ("skipped", "gap", "stalled"):
        return Story(label.kind, label.text.capitalize(), f"{label.text.capitalize()}: {cause or label.meaning}.",
                     cause=cause)
    # failed or abandoned: what stopped it
    blocking = blocking_checks(checks)
    if status == "failed" and tripped and (stage in (None, "merge")):
        more = f" (and {len(tripped) - 1} more)" if len(tripped) > 1 else ""
        sentence = (f"Stopped by a guardrail before writing anything: {tripped[0].get('observed')}{more}. "
                    "Nothing was written to the shop.")
        return Story("bad", "Stopped by a guardrail", sentence, cause=short_cause(str(tripped[0].get("observed"))),
                     step="merge", task_id=STEPS["merge"][1], stopped_by="guardrail", tripped=tripped,
                     steps=_steps_after_guardrail(run, base))
    if status == "failed" and (run.get("dq_success") is False or blocking):
        # the checks that stopped it: those with the fail policy, else quarantine checks over their share
        stopping = blocking or [c for c in checks if not c.get("success") and c.get("policy") == "quarantine"]
        names = tuple(str(c.get("check_name")) for c in stopping)
        what = (f"check {names[0]} failed ({short_cause(str(stopping[0].get('observed')), 120)}"
                f"{example_phrase(stopping[0].get('examples'))})" if names
                else short_cause(first) or "a check failed")
        more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
        sentence = f"Stopped at validation: {what}{more}. Nothing was written to the shop."
        return Story("bad", "Stopped by a data check", sentence, cause=what, step="validate",
                     task_id=STEPS["validate"][1], stopped_by="check", failed_checks=names,
                     steps=_steps_after_check(run, base))
    step_name = STEPS[stage][0] if stage else "an unknown step"
    task_id = STEPS[stage][1] if stage else None
    if status == "abandoned":
        sentence = f"Abandoned: {cause or 'the run died without its teardown'}."
        return Story("bad", "Abandoned", sentence, cause=cause, step=stage, task_id=task_id, stopped_by="error",
                     steps=_steps_after_error(run, stage, base))
    because = f" because {cause}" if cause else ""
    sentence = f"Failed at {step_name}{because}. Nothing was written to the shop."
    if stage == "load":
        sentence = f"Failed at {step_name}{because}. The apply is one transaction: nothing was written."
    title = f"Failed at {STAGE_LABELS.get(stage, 'an unknown step').lower()}" if stage else "Failed"
    return Story("bad", title, sentence, cause=cause, step=stage, task_id=task_id, stopped_by="error",
                 steps=_steps_after_error(run, stage, base))


def _unrecorded(run: Mapping[str, Any], task_id: str | None, error: str | None, base: str) -> Story:
    dag_id, run_id = str(run.get("dag_id") or ""), str(run.get("run_id") or "")
    cause = short_cause(error)
    because = f": {cause}" if cause else ""
    links = [("Task log", task_href(dag_id, run_id, task_id, base))] if task_id and dag_id else []
    if dag_id:
        links.append(("Airflow run", run_href(dag_id, run_id, base)))
    if task_id in (None, "freeze_checkout"):
        sentence = f"Refused at its first task{because}. Nothing was frozen or written."
        fix = Step(f"Trigger {dag_id or 'the DAG'} again with the parameter or run id fixed; the log of its first "
                   "task says what was refused.", (*links, *(((f"Open {dag_id}", dag_href(dag_id, base)),)
                                                             if dag_id else ())))
        return Story("bad", "Refused", sentence, cause=cause, task_id=task_id or "freeze_checkout",
                     stopped_by="refused", steps=(fix,))
    sentence = f"Failed at {task_id} before the run opened its record{because}. Nothing was frozen or written."
    return Story("bad", f"Failed at {task_id}", sentence, cause=cause, task_id=task_id, stopped_by="error",
                 steps=(Step("Read the task log; trigger the DAG again once the cause is fixed.", tuple(links)),))


# ----------------------------------------------------------------------------------- what to do next

def _log_step(run: Mapping[str, Any], task_id: str | None, base: str) -> Step:
    dag_id, run_id = str(run.get("dag_id")), str(run.get("run_id"))
    links = [("Airflow run", run_href(dag_id, run_id, base))]
    if task_id:
        links.insert(0, (f"Log of {task_id}", task_href(dag_id, run_id, task_id, base)))
    return Step("The task log in Airflow has the whole error and every attempt.", tuple(links))


def _push_conf(run: Mapping[str, Any], **values: Any) -> str:
    """inventory_full_push's configuration for a follow-up of this run: its settings, its SKU list."""
    options = options_of(run)
    conf: dict[str, Any] = dict(values)
    if options.get("skus"):
        conf["skus"] = list(options["skus"])
    return conf_json(conf)


def _trigger_push(run: Mapping[str, Any], text: str, base: str, **values: Any) -> Step:
    """Airflow 3.3's trigger form cannot be opened prefilled from a link (its UI has no such
    route; later Airflow versions add one), so the step links the DAG's page, whose Trigger
    button opens the form with these fields, and gives the configuration to paste under
    "Advanced options → Configuration JSON"."""
    return Step(text, ((f"Trigger {PUSH_DAG}", dag_href(PUSH_DAG, base)),), _push_conf(run, **values))


def _steps_after_guardrail(run: Mapping[str, Any], base: str) -> tuple[Step, ...]:
    steps = [
        Step("Look at the SKUs that tripped it below: a broken or partial WMS feed looks like this. If the WMS "
             "figures are wrong, fix them there; the next run tries again and nothing was changed meanwhile."),
        _trigger_push(run, f"If the figures are right (a stock take, a written-off aisle), preview them with a dry "
                           f"run of {PUSH_DAG} (the nightly sync takes no override). Its form starts as a dry run.",
                      base, dry_run=True),
        _trigger_push(run, f"Then apply them with {PUSH_DAG}: untick Dry run, tick Override guardrails and say why "
                           "in Override reason (it is recorded on the run and in its report).", base,
                      dry_run=False, override_guardrails=True, override_reason="<why these figures are right>"),
    ]
    return (*steps, _log_step(run, STEPS["merge"][1], base))


def _steps_after_check(run: Mapping[str, Any], base: str) -> tuple[Step, ...]:
    return (
        Step("The failed check's examples are below: the WMS sent rows that cannot be right. Fix the feed at the "
             "WMS; checkout is open and nothing was written, the next run tries again."),
        _trigger_push(run, f"Once the WMS is fixed, preview the sync with a dry run of {PUSH_DAG}.", base,
                      dry_run=True),
        _log_step(run, STEPS["validate"][1], base),
    )


def _steps_after_error(run: Mapping[str, Any], stage: str | None, base: str) -> tuple[Step, ...]:
    dag_id = str(run.get("dag_id"))
    again = Step(f"Nothing was written and checkout is open again. Once the cause is fixed, trigger {dag_id} "
                 "again, or let the next scheduled run do it.", ((f"Open {dag_id}", dag_href(dag_id, base)),))
    return (again, _log_step(run, STEPS[stage][1] if stage else None, base))


def _steps_after_dry_run(run: Mapping[str, Any], tripped: Sequence[Mapping[str, Any]], base: str) -> tuple[Step, ...]:
    if tripped:
        return (_trigger_push(run, "A real run with these parameters would stop at the guardrails. If this plan is "
                                   f"right, apply it with {PUSH_DAG}: untick Dry run, tick Override guardrails and "
                                   "give an Override reason.", base, dry_run=False, override_guardrails=True,
                              override_reason="<why this plan is right>"),)
    return (_trigger_push(run, f"If the plan looks right, apply it with {PUSH_DAG} with Dry run unticked.", base,
                          dry_run=False),)


def _steps_after_success(run: Mapping[str, Any], base: str) -> tuple[Step, ...]:
    return ()
