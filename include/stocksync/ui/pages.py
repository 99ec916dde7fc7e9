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
from datetime import date, datetime, timezone
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from include.stocksync.config.display import ZONE, current_zone, display_zone
from include.stocksync.domain.text import INVISIBLE
from include.stocksync.runs.wording import (
    RUN_STATUSES,
    Label,
    duration,
    fmt_int,
    fmt_signed,
    local_time,
    run_status,
)

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


def check_result(success: bool, policy: str | None) -> Label:
    if success:
        return CHECK_RESULTS["passed"]
    return CHECK_RESULTS[{"overridden": "overridden", "quarantine": "quarantined"}.get(policy or "", "failed")]


def dq_result(success: bool | None) -> Label:
    return DQ_RESULTS[success]


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
def when(value: datetime | None, seconds: bool = False, zone: bool = False) -> Markup:
    """A `<time>` element in the display zone, with the UTC time in its title (a hover)."""
    if value is None:
        return Markup('<span class="none">–</span>')
    return Markup('<time datetime="{}" title="{} UTC">{}</time>').format(
        value.astimezone(timezone.utc).isoformat(), utc(value), local_time(value, seconds=seconds, zone=zone))


def zone_name() -> str:
    return current_zone()[1]


def zone_abbreviation(at: datetime | None = None) -> str:
    """CET, CEST, UTC... at `at` (now when None)."""
    tz, name = current_zone()
    return (at or datetime.now(timezone.utc)).astimezone(tz).tzname() or name


def day(value: date | None) -> str:
    return value.strftime("%a %d %b") if value else ""


def number(value: Any) -> str:
    return fmt_int(value)


def signed(value: Any) -> str:
    return fmt_signed(value)


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
    token = ZONE.set(display_zone(zone))
    try:
        return environment().get_template(template).render(**context)
    finally:
        ZONE.reset(token)
