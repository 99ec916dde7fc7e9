"""HTML pages from the Jinja2 templates in `include/stocksync/ui/templates/`.

Every page stocksync writes (run report, dry-run plan) or serves (the Airflow plugin's runs page,
no-report and refused-run pages, error pages) shows text that came from outside: SKUs and raw
values from the WMS, run parameters (SKU lists, override reasons), user names, run ids chosen over
REST, error messages quoting all of these. So they all come from one Jinja environment:

- autoescape is on for every template, and `finalize` passes every interpolated string through
  `visible`, so a template that forgets the filter still cannot emit markup or a raw bidi
  override; the templates still say `|visible` where the text is data, so a reader sees it;
- `visible` escapes and shows control, zero-width, bidi and other invisible characters as
  `⟨U+202E⟩`: a SKU that differs from another only by an invisible character, or that reverses
  the text after it, must look different on the page;
- one base template holds the stylesheet and the `<meta>` Content-Security-Policy (a report
  opened from disk has no response headers); the plugin sends `SECURITY_HEADERS` with every
  response;
- run statuses and check results have one vocabulary (`RUN_STATUSES`, `CHECK_RESULTS`,
  `DQ_RESULTS`) used by the report and the plugin alike, in plain words (a dry run is "dry run",
  shown as a plan, never green);
- numbers are formatted (`1,234`, `+56` / `−7`, `12.3 s`) and times are shown in the Airflow
  UI's time zone setting (`display_zone`), with UTC in their `title` for a hover. The
  zone is a deployment setting read on the server: the pages run no script, so they cannot read
  the zone a user picked in Airflow's own clock (kept in the browser).

The stylesheet follows Airflow 3's UI (its gray and brand blue palette, cards, state badges), so a
page embedded in Airflow's iframe reads as part of it. GET forms are allowed (`form-action 'self'`,
`sandbox allow-forms`): the runs page and the plan page filter with query parameters, server-side.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timezone, tzinfo
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).resolve().parent / "templates"

# No script, no external anything. `sandbox allow-same-origin` (no `allow-scripts`) makes the browser
# refuse script in our pages even inside an iframe that grants `allow-scripts allow-same-origin`
# (Airflow's external views do, see plugins/stocksync_plugin.py); `allow-same-origin` keeps the
# document's real origin so a link inside the Airflow iframe (report -> plan.html) still sends the
# SameSite=Lax login cookie (a sandboxed opaque origin would not).
# GET forms filter the runs and plan pages: `form-action 'self'` and `allow-forms` let a
# form submit to our own origin (a form needs no script; nothing else is allowed).
CSP_DIRECTIVES = ("default-src 'none'", "style-src 'unsafe-inline'", "img-src 'self' data:", "base-uri 'none'",
                  "form-action 'self'")
CONTENT_SECURITY_POLICY = "; ".join((*CSP_DIRECTIVES, "frame-ancestors 'self'",
                                     "sandbox allow-same-origin allow-forms"))
# `frame-ancestors` and `sandbox` are ignored in a <meta> policy: the meta tag carries the rest
META_CONTENT_SECURITY_POLICY = "; ".join(CSP_DIRECTIVES)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # reports hold shop and WMS data: not for a shared browser cache
}


@dataclass(frozen=True)
class Label:
    """How a status shows: its text, its CSS class (ok, bad, warn, run, plan, none) and what it means."""

    text: str
    kind: str
    meaning: str


RUN_STATUSES: dict[str, Label] = {
    "running": Label("running", "run", "the run is going (or stopped without closing its record)"),
    "applied": Label("applied", "ok", "the WMS snapshot was written to the shop"),
    "duplicate": Label("duplicate", "ok", "this WMS snapshot had already been applied: nothing written"),
    "dry_run": Label("dry run", "plan", "a dry run: the plan was written, the shop was not"),
    "failed": Label("failed", "bad", "the run stopped at an error; see the error and the alerts"),
    "refused": Label("refused", "bad", "refused at its first task: no run record and no report"),
    "abandoned": Label("abandoned", "bad", "the run died without its teardown; a later run released its "
                                           "freeze and closed its record"),
    # the intraday sync's runs that end on purpose without writing
    "skipped": Label("skipped", "none", "nothing read or written: a full sync was running, or there was "
                                        "no position to continue from (see the reason)"),
    "gap": Label("gap", "warn", "the WMS change feed could not continue from our last sequence: nothing "
                                "written, the next full sync repairs it (see the reason)"),
    "stalled": Label("stalled", "warn", "the WMS change feed gave nothing new though the WMS's newest sequence "
                                        "is further on: nothing written, one alert per stall (see the reason)"),
}
CHECK_RESULTS: dict[str, Label] = {
    "passed": Label("passed", "ok", "no offending row"),
    "failed": Label("FAILED", "bad", "the check failed"),
    "overridden": Label("FAILED (overridden)", "warn", "the check failed; the run overrode it with a reason"),
    "quarantined": Label("FAILED: rows quarantined", "warn",
                         "the offending rows were kept out of the load; the rest went on"),
}
DQ_RESULTS: dict[bool | None, Label] = {
    True: Label("passed", "ok", "every data-quality check passed"),
    False: Label("failed", "bad", "a data-quality check failed"),
    None: Label("not run", "none", "the run stopped before validation"),
}
OK_STATUSES = frozenset(name for name, label in RUN_STATUSES.items() if label.kind == "ok")


def run_status(status: str | None) -> Label:
    """The label of a run status; an unknown one shows as itself, marked bad."""
    if status is None:
        return Label("unknown", "none", "no status recorded")
    return RUN_STATUSES.get(status) or Label(status, "bad", "unknown status")


def check_result(success: bool, policy: str | None) -> Label:
    if success:
        return CHECK_RESULTS["passed"]
    return CHECK_RESULTS[{"overridden": "overridden", "quarantine": "quarantined"}.get(policy or "", "failed")]


def dq_result(success: bool | None) -> Label:
    return DQ_RESULTS[success]


# Characters a reader cannot see or that change how the text around them reads: C0 and C1
# controls (tab and line breaks included), DEL, soft hyphen, combining grapheme joiner, Arabic
# letter mark, Hangul fillers, Khmer/Mongolian invisible vowels and selectors, zero-width
# space/joiners and LRM/RLM (U+200B-U+200F), line/paragraph separators, bidi embeddings and
# overrides (U+202A-U+202E) and isolates (U+2066-U+2069) with the other format characters of
# U+2060-U+206F, BOM/ZWNBSP, interlinear annotations, musical format controls, tag characters, and
# lone surrogates (a str can hold them; UTF-8 cannot).
INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\ud800-\udfff\U0001d173-\U0001d17a\U000e0000-\U000e007f]")
INVISIBLE_KEEPING_NEWLINES = re.compile(INVISIBLE.pattern.replace("\x00-\x1f", "\x00-\x09\x0b-\x1f"))


def marker(char: str) -> str:
    """`⟨U+202E⟩` for one character."""
    return f"⟨U+{ord(char):04X}⟩"


def visible(value: Any, newlines: bool = False) -> Markup:
    """`value` as escaped HTML with every invisible or text-reordering character shown as a
    `⟨U+XXXX⟩` marker. `newlines=True` keeps line feeds (multi-line error messages)."""
    if value is None:
        return Markup("")
    if isinstance(value, Markup):
        return value
    pattern = INVISIBLE_KEEPING_NEWLINES if newlines else INVISIBLE
    text = str(escape(str(value)))  # escaping leaves the characters above alone
    return Markup(pattern.sub(lambda m: f'<span class="cc">{marker(m.group())}</span>', text))


def visible_text(value: Any) -> str:
    """Plain text (no markup) with the same markers: for places that are not HTML, like a title."""
    return INVISIBLE.sub(lambda m: marker(m.group()), "" if value is None else str(value))


def _finalize(value: Any) -> Any:
    """Every `{{ ... }}`: None prints nothing, strings print through `visible`."""
    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


def utc(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if value else ""


# --- the display time zone, numbers and durations -----------------------------------------
ZONE_SETTINGS = (("api", "default_ui_timezone"), ("core", "default_timezone"))
_ZONE: ContextVar[tuple[tzinfo, str] | None] = ContextVar("stocksync_display_zone", default=None)


def zone_setting() -> str:
    """The Airflow setting pages show times in: `[api] default_ui_timezone` when a deployment sets
    it, else `[core] default_timezone` (`utc` by default, `system`, or an IANA name). Airflow 3's UI
    has no server-side UI zone (its clock shows what the browser picked), so these are the ones a
    server can read."""
    try:
        from airflow.configuration import conf
    except Exception:  # rendering without Airflow (a script, a unit test): UTC
        return "utc"
    for section, key in ZONE_SETTINGS:
        try:
            value = conf.get(section, key, fallback=None)
        except Exception:
            value = None
        if value and str(value).strip():
            return str(value).strip()
    return "utc"


def display_zone(name: str | None = None) -> tuple[tzinfo, str]:
    """(zone, its name) for `name` or the setting; an unknown name falls back to UTC."""
    name = zone_setting() if name is None else name
    if name.lower() == "utc":
        return timezone.utc, "UTC"
    if name.lower() == "system":
        local = datetime.now().astimezone().tzinfo or timezone.utc
        return local, str(local.tzname(None) or "local time")
    try:
        return ZoneInfo(name), name
    except Exception:
        return timezone.utc, "UTC"


def _zone() -> tuple[tzinfo, str]:
    return _ZONE.get() or display_zone()


def local_time(value: datetime, *, seconds: bool = False, zone: bool = False) -> str:
    """`value` as text in the display zone: `2026-11-23 03:30` (+`:05`, + ` CET`)."""
    tz, _ = _zone()
    local = value.astimezone(tz)
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {local.tzname() or ''}".rstrip() if zone else text


def when(value: datetime | None, seconds: bool = False, zone: bool = False) -> Markup:
    """A `<time>` element in the display zone, with the UTC time in its title (a hover)."""
    if value is None:
        return Markup('<span class="none">–</span>')
    return Markup('<time datetime="{}" title="{} UTC">{}</time>').format(
        value.astimezone(timezone.utc).isoformat(), utc(value), local_time(value, seconds=seconds, zone=zone))


def zone_name() -> str:
    return _zone()[1]


def zone_abbreviation(at: datetime | None = None) -> str:
    """CET, CEST, UTC... at `at` (now when None)."""
    tz, name = _zone()
    return (at or datetime.now(timezone.utc)).astimezone(tz).tzname() or name


def day(value: date | None) -> str:
    return value.strftime("%a %d %b") if value else ""


def number(value: Any) -> str:
    from include.stocksync.ui.charts import fmt_int

    return fmt_int(value)


def signed(value: Any) -> str:
    from include.stocksync.ui.charts import fmt_signed

    return fmt_signed(value)


def duration(seconds: float | None) -> str:
    """0.42 s, 12.3 s, 4 min 05 s, 2 h 07 min."""
    if seconds is None:
        return "–"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"
# --- end: the display time zone, numbers and durations -------------------------------------------------


@cache
def environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(["html", "svg", "xml"], default_for_string=True, default=True),
                      finalize=_finalize, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(visible=visible, visible_text=visible_text, utc=utc, when=when, number=number,
                       signed=signed, duration=duration, percent=percent, day=day)
    env.globals.update(run_status=run_status, check_result=check_result, dq_result=dq_result,
                       meta_csp=META_CONTENT_SECURITY_POLICY, zone_name=zone_name,
                       zone_abbreviation=zone_abbreviation)
    return env


def render(template: str, *, zone: str | None = None, **context: Any) -> str:
    """Render `templates/<template>` with `context`, times in `zone` (default: the Airflow setting)."""
    token = _ZONE.set(display_zone(zone))
    try:
        return environment().get_template(template).render(**context)
    finally:
        _ZONE.reset(token)
