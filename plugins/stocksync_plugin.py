"""
# stocksync Airflow plugin

Adds a **Stock sync** page to the Airflow 3 UI, the place ops look first: trends of the
last 30 nights (SKUs changed, units moved, checkout closed, run duration, failed checks, drift) with
the nights that stand out in red, the availability service's last 24 hours, and one row per stock
sync run, newest first, refused and failed-early runs included (`stocksync.sync_runs` in the shop
database, and the failure alerts of runs that never opened a record), each with what happened in
one sentence, checks that agree with what stopped it, and links to its report, its Airflow run and
its task log. Filters by DAG, status and date are query parameters, applied server-side.

| Route (API server)                          | What it serves                                                    |
|---------------------------------------------|-------------------------------------------------------------------|
| `GET /stocksync/?dag=&status=&since=&until=&page=` | the runs page (HTML, no script, nothing external)          |
| `GET /stocksync/reports/<run key>/<file>`   | `report.html`, `plan.html` or `plan.csv` of a run's folder         |
| `GET /stocksync/runs/<dag id>/<run id>`     | redirects to that run's report, or an HTML page saying why it has none |
| `GET /stocksync/runs/<dag id>/<run id>/plan?outcome=&sku=&zeroed=&page=` | a run's plan, 100 SKUs a page |
| `GET /stocksync/runs/<dag id>/<run id>/compare` | a run's figures beside the last applied run of its DAG |
| `GET /stocksync/incidents`                  | failures of the last 30 days grouped by cause (ops/incidents.py)  |
| `POST /stocksync/incidents/<fingerprint>/acknowledge` | acknowledge an incident with a note (ops role, same origin) |

The plan page filters by outcome, by a part of the SKU or by "drops from in stock to 0", reading the
run's plan table while it exists and its `plan.csv` once the table is dropped after the retention.

The page also appears in Airflow's navigation as an external view ("Stock sync"), embedded
in the Airflow UI at `/plugin/stocksync`, and every DAG run's page gets a "Sync report" tab
(external view with destination `dag_run`) that shows the run's report, which for a dry run
links its plan (`plan.html`, `plan.csv`). Failure alerts link the same run URL.

## Which run a page shows

`stocksync.sync_runs` is keyed by run id, which Airflow keeps unique per DAG only: a second
DAG's run with an id already recorded is refused at its first task and never gets a record.
So `/runs/<dag id>/<run id>` shows the report only when the record's `dag_id` is `<dag id>`.
Otherwise it answers an HTML page: for a run refused at its first task (no record of its own, or
an alert recorded for it), the page says so and lists the errors recorded in `stocksync.alerts`
for that `(dag id, run id)`; for a run without any trace, a page saying it has no report (404).
A report file is served only to a user who may read the DAG whose record has that folder's
`report.html` as its `report_path`; the folder's other files (`plan.html`, `plan.csv`) go with it,
and nothing else in it is served (older runs may hold a Great Expectations Data Docs copy, which
shows WMS text raw and loads scripts from CDNs).

## Authentication

Every route depends on Airflow's own authentication dependency,
`airflow.api_fastapi.core_api.security.get_user` (`GetUserDep`): a JWT in the
`Authorization: Bearer` header (REST clients, token from `POST /auth/token`) or the `_token`
cookie the Airflow UI sets at login. Without a valid token the answer is 401 (403 for an invalid
token); a browser (`Accept: text/html`) is redirected to Airflow's login page instead, and comes
back after logging in. The runs page lists only runs of DAGs the user may read
(`is_authorized_dag`, DAG runs, GET); a run's page and its report files need that access to the
run's DAG. Errors are HTML pages for a browser, JSON for API clients.

## Text from the WMS and from run parameters is data

SKUs, raw values, errors, override reasons, user names and run ids can hold anything (a WMS
feed, a REST trigger). Every page is rendered from the Jinja2 templates of
`include/stocksync/ui/templates/` (`include/stocksync/ui/pages.py`) with autoescape on, and invisible or
text-reordering characters (controls, zero-width, bidi overrides and isolates) are shown as
`⟨U+202E⟩`-style markers.

Every response of the plugin (pages, report files, redirects, errors) carries
`pages.SECURITY_HEADERS`: `Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline';
img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'self'; sandbox
allow-same-origin allow-forms` (the runs and plan pages filter with GET forms),
`X-Content-Type-Options: nosniff`, `X-Frame-Options: SAMEORIGIN` (framing by the Airflow UI's own
origin only), `Referrer-Policy: same-origin` and `Cache-Control: no-store`.

Airflow's own responses (its UI, REST API, login pages) get `X-Content-Type-Options`,
`X-Frame-Options`, `Referrer-Policy` and a Content-Security-Policy its UI works with, from the root
middleware this plugin adds (`include/stocksync/ui/security_headers.py`); a header our pages set
themselves is kept.

### The iframe Airflow puts our pages in

Airflow 3.3's UI (checked in the 3.3.2 bundle, `airflow/ui/dist`, and its source
`airflow-core/src/airflow/ui/src`) renders every plugin external view with one component,
`Iframe`, on the route `plugin/:page/*`: the nav entry at `/plugin/stocksync` and the run page's
"Sync report" tab (`/dags/<dag>/runs/<run>/plugin/stocksync_report`) alike. The page that renders it
passes `sandbox="allow-scripts allow-same-origin allow-forms allow-downloads"`, on the grounds that
plugins are part of the deployment and trusted. With `allow-scripts` and `allow-same-origin`
together, a script in a page served from Airflow's own origin could reach the Airflow UI around
it and call the REST API as the user, so that iframe protects nothing. Our responses therefore
carry the CSP `sandbox` directive *without* `allow-scripts` (and `default-src 'none'`): the browser
runs no script in them whatever the iframe grants. `allow-same-origin` is kept on purpose: in an
opaque origin Chromium drops the SameSite=Lax `_token` cookie on a link followed inside the frame
(report -> plan.html), which would show Airflow's login page inside the tab; without script, the
origin gives a page nothing to act with.

## Notes

- Nothing touches the database or the network at import time: every Airflow process (also each
  task process) imports plugins, so the FastAPI app and Airflow's API-server modules are built
  on the first request to `/stocksync` only.
- The pages read stocksync's own database, the Airflow connection of `stocksync_conn_id` (e.g.
  `stocksync_db`; unset: the shop's, `shop_conn_id`), at request time; the SQL is under
  `include/sql/stocksync/`.
- A report path is `<run key>/<file>` with the run key `include.stocksync.store.db.run_key(run_id)`
  (16 hex characters) and `<file>` one of `REPORT_FILES`; anything else is a 404.
"""

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from include.stocksync.ui.security_headers import SecurityHeadersMiddleware

if TYPE_CHECKING:  # imported where used: the plugin loads in every Airflow process
    from include.stocksync.config.settings import Settings

log = logging.getLogger(__name__)

URL_PREFIX = "/stocksync"
RECENT_RUNS = 50
PLAN_PAGE_SIZE = 100
RUN_KEY_PATTERN = re.compile(r"[0-9a-f]{16}")
REPORT_FILES = frozenset({"report.html", "plan.html", "plan.csv"})
SQL_RECENT_RUNS = "stocksync/select_runs_page"
SQL_TRENDS = "stocksync/select_run_trends"
SQL_DRIFT = "loop/select_drift_nights"
SQL_AVAILABILITY = "availability/select_recent_stats"
SQL_RUN = "stocksync/select_sync_run"
SQL_RUN_ALERTS = "stocksync/select_alerts"
SQL_RUNS_BY_REPORT = "stocksync/select_sync_run_by_report"
SQL_PLAN_PAGE = "stocksync/select_plan_page"
SQL_PLAN_OUTCOMES = "stocksync/select_plan_outcomes"
SQL_INCIDENT_ALERTS = "stocksync/select_incident_alerts"
SQL_INCIDENT_ACKS = "stocksync/select_incident_acks"
SQL_INSERT_ACK = "stocksync/insert_incident_ack"
SQL_RUN_FIGURES = "stocksync/select_run_figures"
SQL_PREVIOUS_APPLIED = "stocksync/select_previous_applied_run"
INCIDENT_DAYS = 30          # the incidents page groups the failures of these last days
INCIDENT_OCCURRENCES = 5000  # at most this many of them, newest first
FORM_MAX_BYTES = 16 * 1024   # an acknowledgement's form body: a note of 1000 characters fits with room
ERROR_TITLES = {400: "Bad request", 401: "Login required", 403: "Not allowed", 404: "Not found",
                405: "Method not allowed", 500: "Internal error", 503: "Shop database unreachable"}
PLAN_OUTCOMES = ("changed", "clamped", "unchanged", "stale", "unknown")


def render_runs_page(runs: list[dict[str, Any]], reports: Path, *, trends: list[dict[str, Any]] | None = None,
                     availability: dict[str, Any] | None = None, filters: Any = None,
                     dag_ids: list[str] | None = None, more: bool = False, base: str | None = None,
                     zone: str | None = None, schedule: Any = None,
                     in_airflow: set[tuple[str, str]] | None = None) -> str:
    """The runs page: trends, the availability panel, filters, and one row per run, newest first,
    linked to its report when it exists (else to the page saying why it has none)."""
    from include.stocksync.runs import runview
    from include.stocksync.store.db import run_key
    from include.stocksync.ui import opsview
    from include.stocksync.ui.pages import render

    base = runview.airflow_base() if base is None else base
    filters = filters or opsview.Filters()
    rows = []
    for run in runs:
        key = run_key(run["run_id"])
        href = f"reports/{key}/report.html" if (reports / key / "report.html").is_file() \
            and run.get("recorded", True) else None
        known = in_airflow is None or (str(run["dag_id"]), str(run["run_id"])) in in_airflow
        rows.append(opsview.run_row(run, report_href=href, base=base, in_airflow=known))
    page = filters.page
    return render("runs.html", zone=zone, runs=rows, limit=RECENT_RUNS, trends=trends, availability=availability,
                  filters=filters, dag_ids=sorted(set(dag_ids or runview.SYNC_DAGS)),
                  statuses=opsview.status_options(), nights=opsview.TREND_NIGHTS,
                  older=f"?{filters.query(page=page + 1)}" if more else None,
                  newer=f"?{filters.query(page=page - 1 if page > 2 else None)}" if page > 1 else None,
                  nightly=runview.dag_label(runview.NIGHTLY_DAG), schedule=schedule)


def render_plan_browser(dag_id: str, run_id: str, rows: list[dict[str, Any]], total: int, *,
                        outcomes: list[tuple[str, int]], outcome: str | None, sku: str | None, zeroed: bool,
                        page: int, source: str, report_href: str | None) -> str:
    """A page of a run's plan with its filters."""
    from urllib.parse import urlencode

    from include.stocksync.runs import runview
    from include.stocksync.ui.pages import render
    from include.stocksync.ui.report import OUTCOME_LABELS, PLAN_LABELS

    def href(**changes: Any) -> str:
        values = {"outcome": outcome, "sku": sku, "zeroed": 1 if zeroed else None, "page": page, **changes}
        return "?" + urlencode({k: v for k, v in values.items() if v not in (None, "", 1) or k == "zeroed" and v})

    pages = max(1, -(-total // PLAN_PAGE_SIZE))
    return render("plan_browser.html", dag_id=dag_id, run_id=run_id, rows=rows, total=total, headers=PLAN_LABELS,
                  outcomes=[(o, n, OUTCOME_LABELS.get(o, o)) for o, n in outcomes], outcome=outcome, sku=sku,
                  zeroed=zeroed, page=page, pages=pages, size=PLAN_PAGE_SIZE, source=source,
                  first=(page - 1) * PLAN_PAGE_SIZE + 1, report_href=report_href,
                  older=href(page=page + 1) if page < pages else None,
                  newer=href(page=page - 1 if page > 2 else None) if page > 1 else None,
                  outcome_href={o: href(outcome=o, page=None) for o in (*PLAN_OUTCOMES, None)},
                  all_outcomes=PLAN_OUTCOMES, dag_label=runview.dag_label(dag_id))


def render_no_report_page(dag_id: str, run_id: str, record_status: str | None = None) -> str:
    """What the "Sync report" tab shows for a run without a report: one still going (its record
    has `record_status`), or one nothing is known of."""
    from include.stocksync.ui.pages import render

    return render("no_report.html", dag_id=dag_id, run_id=run_id, record_status=record_status)


def render_refused_page(dag_id: str, run_id: str, alerts: list[dict[str, Any]], *, taken: bool = False,
                        owner: str | None = None, base: str | None = None) -> str:
    """A run refused at its first task: what refused it (its first alert), what to do, and the
    errors its alerts reported. `taken`: its run id is the record of another DAG's run (`owner`,
    when the user may read that DAG)."""
    from include.stocksync.runs import runview
    from include.stocksync.ui.pages import render

    base = runview.airflow_base() if base is None else base
    first = alerts[0] if alerts else {}
    story = runview.story({"dag_id": dag_id, "run_id": run_id, "recorded": False}, base=base,
                          failed_task=first.get("task_id") or "freeze_checkout", error=first.get("error"))
    return render("refused.html", dag_id=dag_id, run_id=run_id, alerts=alerts, taken=taken, owner=owner,
                  story=story, dag_label=runview.dag_label(dag_id), airflow_run=runview.run_href(dag_id, run_id, base))


def render_incidents_page(incidents: list[Any], *, occurrences: int, may_acknowledge: bool,
                          error: str | None = None) -> str:
    """The incidents: failures grouped by cause, open ones first, each with its acknowledgement form."""
    from include.stocksync.ops.incidents import NOTE_MAX, RUNS_SHOWN
    from include.stocksync.runs import runview
    from include.stocksync.ui.pages import render

    return render("incidents.html", incidents=incidents, occurrences=occurrences, may_acknowledge=may_acknowledge,
                  open_count=sum(1 for i in incidents if not i.acknowledged), days=INCIDENT_DAYS,
                  runs_shown=RUNS_SHOWN, note_max=NOTE_MAX, error=error,
                  run_href=lambda dag_id, run_id: f"runs/{runview.q(dag_id)}/{runview.q(run_id)}")


def render_compare_page(this: dict[str, Any], previous: dict[str, Any] | None) -> str:
    """A run's figures beside the last applied run of its DAG before it."""
    from include.stocksync.runs import runview
    from include.stocksync.ui import compare
    from include.stocksync.ui.pages import render

    return render("compare.html", this=this, previous=previous, rows=compare.rows(this, previous),
                  dag_label=runview.dag_label(str(this["dag_id"])), this_href=f"../{runview.q(this['run_id'])}",
                  previous_href=f"../{runview.q(previous['run_id'])}" if previous else None)


def render_error_page(status_code: int, message: str) -> str:
    from include.stocksync.ui.pages import render

    return render("error.html", status_code=status_code, title=ERROR_TITLES.get(status_code, "Error"),
                  message=message)


@contextmanager
def _stocksync_cursor(settings: "Settings") -> Iterator[Any]:
    """A dict-row cursor on stocksync's own database (runs, alerts, plans: `stocksync_conn_id`, else
    the shop's connection in the single-database layout), read at request time."""
    from psycopg.rows import dict_row

    from include.stocksync.airflow.connections import stocksync_dsn
    from include.stocksync.store.db import connect

    dsn = stocksync_dsn(settings)
    with connect(dsn, connect_timeout=5) as conn, conn.cursor(row_factory=dict_row) as cur:
        yield cur


def fetch_recent_runs(settings: "Settings", limit: int = RECENT_RUNS, filters: Any = None,
                      zone: Any = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]],
                                                 list[dict[str, Any]], list[str]]:
    """The runs page's rows (one more than `limit`, to know whether there are older ones), the
    nightly's last nights (runs and drift), the availability service's last 24 hours, and the
    DAGs with runs (for the filter)."""
    from datetime import datetime, timedelta, timezone

    from include.stocksync.runs import runview
    from include.stocksync.store.db import query
    from include.stocksync.ui import opsview
    from include.stocksync.ui.pages import display_zone

    filters = filters or opsview.Filters()
    tz, name = zone or display_zone()
    since, until = filters.bounds(tz)
    today = datetime.now(timezone.utc).astimezone(tz).date()
    first_night = datetime.combine(today - timedelta(days=opsview.TREND_NIGHTS - 1), datetime.min.time(), tz)
    with _stocksync_cursor(settings) as cur:
        movement = query("stocksync/select_run_movement")
        runs = cur.execute(query(SQL_RECENT_RUNS, movement=movement), {
            "sync_dags": list(runview.SYNC_DAGS), "early_tasks": list(runview.EARLY_TASKS),
            "dag_id": filters.dag_id, "status": filters.status,
            "since": since, "until": until, "limit": limit + 1, "offset": (filters.page - 1) * limit}).fetchall()
        tz_sql = getattr(tz, "key", "UTC")  # an IANA name PostgreSQL knows; a fixed zone counts nights in UTC
        trend_runs = cur.execute(query(SQL_TRENDS, movement=movement),
                                 {"dag_id": runview.NIGHTLY_DAG, "since": first_night, "tz": tz_sql}).fetchall()
        drift = cur.execute(query(SQL_DRIFT), {"dag_id": runview.NIGHTLY_DAG,
                                               "nights": opsview.TREND_NIGHTS}).fetchall()
        hours = cur.execute(query(SQL_AVAILABILITY), {"hours": 24}).fetchall()
        dag_ids = [r["dag_id"] for r in cur.execute("SELECT DISTINCT dag_id FROM stocksync.sync_runs").fetchall()]
    return runs, trend_runs, drift, hours, dag_ids


def airflow_runs(runs: list[dict[str, Any]]) -> set[tuple[str, str]] | None:
    """The (dag_id, run_id) of `runs` that this Airflow's metadata database has: only those get a
    link to Airflow's run page. None when it cannot be read (every run keeps its link)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    wanted = {(str(r["dag_id"]), str(r["run_id"])) for r in runs}
    if not wanted:
        return set()
    try:
        with create_session() as session:
            found = session.execute(select(DagRun.dag_id, DagRun.run_id).where(
                DagRun.run_id.in_(sorted({run_id for _, run_id in wanted})))).all()
    except Exception:
        log.exception("stocksync: could not read Airflow's DAG runs; the runs page links every run")
        return None
    return wanted & {(str(dag_id), str(run_id)) for dag_id, run_id in found}


def fetch_run(settings: "Settings", dag_id: str, run_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The run record with this run id (whichever DAG it belongs to) and the alerts recorded for
    this DAG's run of that id."""
    from include.stocksync.store.db import query

    with _stocksync_cursor(settings) as cur:
        record = cur.execute(query(SQL_RUN), {"run_id": run_id}).fetchone()
        alerts = cur.execute(query(SQL_RUN_ALERTS), {"run_id": run_id, "dag_id": dag_id}).fetchall()
    return record, alerts


def fetch_report_dags(settings: "Settings", run_key: str) -> set[str]:
    """The DAGs whose run records have `<reports_dir>/<run_key>/report.html` as their report."""
    from include.stocksync.store.db import query

    recorded = settings.reports_path / run_key / "report.html"  # as report.report_path builds it
    paths = sorted({str(recorded), str(recorded.resolve())})
    with _stocksync_cursor(settings) as cur:
        return {row["dag_id"] for row in cur.execute(query(SQL_RUNS_BY_REPORT), {"paths": paths})}


def report_file(reports: Path, run_key: str, file_path: str) -> Path:
    """The file `<reports>/<run_key>/<file_path>` when it is one of `REPORT_FILES`; else 404."""
    if not RUN_KEY_PATTERN.fullmatch(run_key) or file_path not in REPORT_FILES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Report not found")
    target = reports / run_key / file_path
    if not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Report not found")
    return target


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _unreachable() -> HTMLResponse:
    log.exception("stocksync: could not read the shop database")
    return HTMLResponse(render_error_page(503, "The shop database (connection stocksync_shop) is unreachable; "
                                               "see the API server log."),
                        status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


def create_app() -> FastAPI:
    """Build the plugin's FastAPI app (imports Airflow's API-server auth, so only in the API server)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import get_user

    import include.stocksync.airflow  # noqa: F401  (hands the time zone and base URL down to the pages: wiring.py)
    from include.stocksync.config.settings import Settings, settings_reloaded_on_change
    from include.stocksync.store.db import run_key as key_of

    def refuse_nul(request: Request) -> None:
        """A NUL in the address (a path segment, a query value) is a bad request: PostgreSQL text cannot
        hold it, and its error was answered as "the shop database is unreachable" (503)."""
        if "\x00" in request.url.path or any("\x00" in value for value in request.query_params.values()):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "The address holds a NUL character")

    app = FastAPI(title="stocksync", description="Stock sync runs and reports", docs_url=None, redoc_url=None,
                  openapi_url=None, dependencies=[Depends(refuse_nul)])
    UserDep = Annotated[BaseUser, Depends(get_user)]  # Airflow's GetUserDep: bearer header or `_token` cookie
    # once per request, parsed once per process: read again only when the config file changed
    SettingsDep = Annotated[Settings, Depends(settings_reloaded_on_change)]

    def can_read_runs(user: BaseUser, dag_id: str) -> bool:
        return get_auth_manager().is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """A browser without a login goes to Airflow's login page; other errors are an HTML page for a
        browser and the usual JSON for API clients."""
        if exc.status_code == status.HTTP_401_UNAUTHORIZED and _wants_html(request) and request.method == "GET":
            next_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(get_auth_manager().get_url_login(next_url=next_url),
                                    status_code=status.HTTP_303_SEE_OTHER)
        if _wants_html(request):
            return HTMLResponse(render_error_page(exc.status_code, str(exc.detail)), status_code=exc.status_code,
                                headers=exc.headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        """Starlette's last resort (it logs the exception after this answers)."""
        if _wants_html(request):
            return HTMLResponse(render_error_page(500, "The page could not be made; see the API server log."),
                                status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)
        return JSONResponse({"detail": "Internal error"}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)

    @app.get("/", response_class=HTMLResponse)
    def runs_page(request: Request, user: UserDep, settings: SettingsDep) -> HTMLResponse:
        from datetime import datetime, timezone

        from include.stocksync.airflow.task_support import next_run_after
        from include.stocksync.runs import runview
        from include.stocksync.ui import opsview
        from include.stocksync.ui.pages import display_zone

        filters = opsview.Filters.parse(dict(request.query_params), runview.SYNC_DAGS)
        zone = display_zone()
        try:
            runs, trend_runs, drift, hours, dag_ids = fetch_recent_runs(settings, RECENT_RUNS, filters, zone)
        except Exception:  # the page must say the shop DB is unreachable, not crash with a trace
            return _unreachable()
        allowed: dict[str, bool] = {}

        def may(dag_id: str) -> bool:
            return allowed.setdefault(dag_id, can_read_runs(user, dag_id))

        visible = [run for run in runs[:RECENT_RUNS] if may(run["dag_id"])]
        now = datetime.now(timezone.utc)
        trends = opsview.trends(trend_runs, drift, today=now.astimezone(zone[0]).date()) \
            if may(runview.NIGHTLY_DAG) else None
        return HTMLResponse(render_runs_page(
            visible, settings.reports_path, trends=trends,
            schedule=opsview.schedule(settings.schedule, settings.shop_timezone, zone,
                                      next_run_after(settings.schedule, settings.shop_timezone, now)),
            in_airflow=airflow_runs(visible),
            availability=opsview.availability(hours, now=now), filters=filters,
            dag_ids=[d for d in {*runview.SYNC_DAGS, *dag_ids} if may(d)], more=len(runs) > RECENT_RUNS))

    @app.get("/reports/{run_key}/{file_path:path}")
    def report(run_key: str, file_path: str, user: UserDep, settings: SettingsDep) -> Response:
        target = report_file(settings.reports_path, run_key, file_path)
        try:
            dags = fetch_report_dags(settings, run_key)
        except Exception:
            return _unreachable()
        if not dags:  # a folder no run record claims: nobody's permission covers it
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Report not found")
        if not all(can_read_runs(user, dag_id) for dag_id in dags):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Not allowed to read runs of this report's DAG")
        return FileResponse(target)

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run_report(dag_id: str, run_id: str, user: UserDep, settings: SettingsDep) -> Response:
        """The DAG run page's "Sync report" tab and the alerts' link: the run's report, or a page
        saying why there is none."""
        if not can_read_runs(user, dag_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Not allowed to read runs of this DAG")
        try:
            record, alerts = fetch_run(settings, dag_id, run_id)
        except Exception:
            return _unreachable()
        key = key_of(run_id)
        if record is not None and record["dag_id"] == dag_id:
            if (settings.reports_path / key / "report.html").is_file():
                # relative, so it holds under any base URL: /stocksync/runs/<dag>/<run> -> /stocksync/reports/...
                return RedirectResponse(f"../../reports/{key}/report.html", status_code=status.HTTP_303_SEE_OTHER)
            return HTMLResponse(render_no_report_page(dag_id, run_id, record["status"]),
                                status_code=status.HTTP_404_NOT_FOUND)
        if record is not None or alerts:  # refused at its first task: no record of its own
            owner = record["dag_id"] if record is not None else None
            shown = owner if owner is not None and can_read_runs(user, owner) else None
            return HTMLResponse(render_refused_page(dag_id, run_id, alerts, taken=record is not None, owner=shown))
        return HTMLResponse(render_no_report_page(dag_id, run_id), status_code=status.HTTP_404_NOT_FOUND)

    @app.get("/runs/{dag_id}/{run_id}/plan", response_class=HTMLResponse)
    def run_plan(request: Request, dag_id: str, run_id: str, user: UserDep, settings: SettingsDep) -> Response:
        """A run's whole plan, a page at a time, filtered by outcome, SKU or "drops to 0"."""
        if not can_read_runs(user, dag_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Not allowed to read runs of this DAG")
        params = request.query_params
        outcome = params.get("outcome") or None
        if outcome is not None and outcome not in PLAN_OUTCOMES:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"outcome must be one of {', '.join(PLAN_OUTCOMES)}")
        sku = (params.get("sku") or "").strip()[:200] or None
        zeroed = params.get("zeroed") in ("1", "true", "on")
        try:
            page = max(1, min(int(params.get("page") or 1), 100_000))
        except ValueError:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "page must be a number") from None
        try:
            found = fetch_plan(settings, dag_id, run_id, outcome=outcome, sku=sku, zeroed=zeroed, page=page)
        except LookupError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except Exception:
            return _unreachable()
        rows, total, outcomes, source = found
        key = key_of(run_id)
        report = f"../../../reports/{key}/report.html" \
            if (settings.reports_path / key / "report.html").is_file() else None
        return HTMLResponse(render_plan_browser(dag_id, run_id, rows, total, outcomes=outcomes, outcome=outcome,
                                                sku=sku, zeroed=zeroed, page=page, source=source,
                                                report_href=report))

    def may_acknowledge(user: BaseUser) -> bool:
        """The ops role: who may trigger the ops push (a viewer only reads)."""
        from include.stocksync.airflow.roles import PUSH_DAGS

        return all(get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                                        details=DagDetails(id=dag_id), user=user)
                   for dag_id in PUSH_DAGS)

    def visible_incidents(settings: Settings, user: BaseUser) -> tuple[list[Any], int]:
        found, occurrences = fetch_incidents(settings)
        allowed: dict[str, bool] = {}
        shown = [i for i in found if allowed.setdefault(i.dag_id, can_read_runs(user, i.dag_id))]
        return shown, occurrences

    @app.get("/incidents", response_class=HTMLResponse)
    def incidents_page(user: UserDep, settings: SettingsDep) -> Response:
        try:
            found, occurrences = visible_incidents(settings, user)
        except Exception:
            return _unreachable()
        return HTMLResponse(render_incidents_page(found, occurrences=occurrences,
                                                  may_acknowledge=may_acknowledge(user)))

    @app.post("/incidents/{fingerprint}/acknowledge")
    async def acknowledge(request: Request, fingerprint: str, user: UserDep, settings: SettingsDep) -> Response:
        """Record who (the logged-in user, never a form field) acknowledged an incident, when, and their note."""
        from datetime import datetime

        from include.stocksync.ops.incidents import FINGERPRINT, check_note

        if not same_origin(request):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Acknowledge from the Stock sync page of this server "
                                                           "(the request came from another site)")
        if not may_acknowledge(user):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Only the ops role may acknowledge incidents")
        if not FINGERPRINT.fullmatch(fingerprint):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such incident")
        form = await read_form(request)
        try:
            note = check_note(form.get("note"))
        except ValueError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        try:
            found, _ = visible_incidents(settings, user)
        except Exception:
            return _unreachable()
        incident = next((i for i in found if i.fingerprint == fingerprint), None)
        if incident is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No incident of the last {INCIDENT_DAYS} days has this "
                                                           "fingerprint, or you may not read its DAG")
        try:  # what the person was shown; a later occurrence than that keeps (or makes) the incident open
            seen = datetime.fromisoformat(form.get("seen_until") or "")
        except ValueError:
            seen = incident.last_seen
        # within what the incident spans: a time outside it (year 1, 9999) stored made the page unreadable
        seen_until = max(incident.first_seen, min(seen, incident.last_seen)) if seen.tzinfo else incident.last_seen
        record_acknowledgement(settings, fingerprint, str(user.get_name())[:256], note, seen_until)
        return RedirectResponse(f"../../incidents#incident-{fingerprint}", status_code=status.HTTP_303_SEE_OTHER)

    @app.get("/runs/{dag_id}/{run_id}/compare", response_class=HTMLResponse)
    def run_compare(dag_id: str, run_id: str, user: UserDep, settings: SettingsDep) -> Response:
        """A run's figures beside the last applied run of the same DAG before it."""
        if not can_read_runs(user, dag_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Not allowed to read runs of this DAG")
        try:
            this, previous = fetch_comparison(settings, dag_id, run_id)
        except LookupError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except Exception:
            return _unreachable()
        return HTMLResponse(render_compare_page(this, previous))

    return app


def fetch_incidents(settings: "Settings") -> tuple[list[Any], int]:
    """The incidents of the last INCIDENT_DAYS days with their latest acknowledgement, and how many
    occurrences they group."""
    from datetime import datetime, timedelta, timezone

    from include.stocksync.ops import incidents
    from include.stocksync.store.db import query

    since = datetime.now(timezone.utc) - timedelta(days=INCIDENT_DAYS)
    with _stocksync_cursor(settings) as cur:
        rows = cur.execute(query(SQL_INCIDENT_ALERTS), {"since": since, "limit": INCIDENT_OCCURRENCES}).fetchall()
        grouped = incidents.group(rows)
        acks = cur.execute(query(SQL_INCIDENT_ACKS),
                           {"fingerprints": [i.fingerprint for i in grouped]}).fetchall() if grouped else []
    return incidents.with_acks(grouped, acks), len(rows)


def record_acknowledgement(settings: "Settings", fingerprint: str, who: str, note: str, seen_until: Any) -> None:
    from include.stocksync.store.db import query

    with _stocksync_cursor(settings) as cur:
        cur.execute(query(SQL_INSERT_ACK), {"fingerprint": fingerprint, "acknowledged_by": who,
                                             "seen_until": seen_until, "note": note})
        cur.connection.commit()


def fetch_comparison(settings: "Settings", dag_id: str, run_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A run's figures and those of the last applied run of its DAG before it (None: there is none).
    LookupError when the run is not this DAG's."""
    from include.stocksync.store.db import query

    figures = query(SQL_RUN_FIGURES, movement=query("stocksync/select_run_movement"))
    with _stocksync_cursor(settings) as cur:
        this = cur.execute(figures, {"run_id": run_id}).fetchone()
        if this is None or this["dag_id"] != dag_id:
            raise LookupError("No stock sync run of this DAG with this run id")
        found = cur.execute(query(SQL_PREVIOUS_APPLIED), {"run_id": run_id}).fetchone()
        previous = cur.execute(figures, {"run_id": found["run_id"]}).fetchone() if found else None
    return this, previous


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body, read at most FORM_MAX_BYTES (413 beyond), each field once."""
    from urllib.parse import parse_qs

    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "Send the form as application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_MAX_BYTES:
            raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                                f"The form is larger than {FORM_MAX_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "The form is not UTF-8 url-encoded fields") from None
    return {name: values[0] for name, values in fields.items() if len(values) == 1}


def same_origin(request: Request) -> bool:
    """A state-changing request from our own pages, not another site riding the login cookie: a
    browser's `Sec-Fetch-Site` says same-origin, or its `Origin` is this server's; a client that
    sends neither must authenticate with a bearer token (which no other site can make a browser send)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == f"{request.url.scheme}://{request.url.netloc}"
    return request.headers.get("authorization", "").lower().startswith("bearer ")


def fetch_plan(settings: "Settings", dag_id: str, run_id: str, *, outcome: str | None, sku: str | None, zeroed: bool,
               page: int) -> tuple[list[dict[str, Any]], int, list[tuple[str, int]], str]:
    """A page of the run's plan: from its plan table while it exists, else from its plan.csv (a
    dry run's; staging tables are dropped after the retention). (rows, matching rows, SKUs per
    outcome, source). LookupError when the run is not this DAG's or has no plan left."""
    from include.stocksync.store.db import STAGING_SCHEMA, query
    from include.stocksync.store.db import run_key as key_of
    from include.stocksync.sync.merge import plan_table

    with _stocksync_cursor(settings) as cur:
        record = cur.execute(query(SQL_RUN), {"run_id": run_id}).fetchone()
        if record is None or record["dag_id"] != dag_id:
            raise LookupError("No stock sync run of this DAG with this run id")
        table = plan_table(run_id)
        exists = cur.execute(query("stocksync/select_table_exists"),
                             {"name": f"{STAGING_SCHEMA}.{table}"}).fetchone()
        if exists and exists["present"]:
            rows = cur.execute(query(SQL_PLAN_PAGE, plan=table), {
                "outcome": outcome, "sku": sku, "zeroed": zeroed, "limit": PLAN_PAGE_SIZE,
                "offset": (page - 1) * PLAN_PAGE_SIZE}).fetchall()
            total = int(rows[0]["total"]) if rows else 0
            if not rows and page > 1:  # past the end: count what matches
                first = cur.execute(query(SQL_PLAN_PAGE, plan=table), {
                    "outcome": outcome, "sku": sku, "zeroed": zeroed, "limit": 1, "offset": 0}).fetchone()
                total = int(first["total"]) if first else 0
            outcomes = [(r["outcome"], int(r["skus"])) for r in cur.execute(query(SQL_PLAN_OUTCOMES, plan=table))]
            return rows, total, outcomes, "the plan table"
    path = settings.reports_path / key_of(run_id) / "plan.csv"
    if not path.is_file():
        raise LookupError("This run's plan is gone: its plan table was dropped after the retention and it "
                          "wrote no plan.csv (only dry runs do)")
    return _plan_from_csv(path, outcome=outcome, sku=sku, zeroed=zeroed, page=page) + ("plan.csv",)


def _plan_from_csv(path: Path, *, outcome: str | None, sku: str | None, zeroed: bool,
                   page: int) -> tuple[list[dict[str, Any]], int, list[tuple[str, int]]]:
    """The same page from a plan.csv (already ordered biggest change first), read in one pass."""
    import csv
    from collections import Counter

    from include.stocksync.domain.csv_cells import cell_text  # plan.csv marks formula-looking SKUs as text

    def number(value: str) -> int | None:
        return int(value) if value not in ("", None) else None

    wanted = sku.lower() if sku else None
    start, stop = (page - 1) * PLAN_PAGE_SIZE, page * PLAN_PAGE_SIZE
    rows: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    total = 0
    with path.open(newline="", encoding="utf-8") as fh:
        for record in csv.DictReader(fh):
            counts[record["outcome"]] += 1
            current, new = number(record["current"]), number(record["new"])
            if outcome and record["outcome"] != outcome:
                continue
            if wanted and wanted not in cell_text(record["sku"]).lower():
                continue
            if zeroed and not (record["outcome"] not in ("unknown", "stale") and (current or 0) > 0 and new == 0):
                continue
            if start <= total < stop:
                rows.append({"sku": cell_text(record["sku"]), "current_qty": current, "new_qty": new,
                             "wms_available": number(record["wms_available"]),
                             "adjustment": number(record["adjustment"]), "delta": number(record["delta"]),
                             "outcome": record["outcome"]})
            total += 1
    return rows, total, counts.most_common()


class LazyApp:
    """An ASGI app that builds `create_app()` on its first request and puts the security headers
    on every response it sends.

    Plugins are imported by every Airflow process, task processes included; building the app
    lazily keeps that import free of the API server's modules and of any I/O. The headers are
    added here, outside the FastAPI app, so even Starlette's last-resort 500 carries them.
    """

    def __init__(self) -> None:
        self._app: FastAPI | None = None
        self._headers: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            from include.stocksync.ui.pages import SECURITY_HEADERS

            self._headers = dict(SECURITY_HEADERS)
            self._app = create_app()
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self._headers.items():
                    headers[name] = value
            await send(message)

        await self._app(scope, receive, send_with_headers)


class StocksyncPlugin(AirflowPlugin):
    """The "Stock sync" runs page and run reports."""

    name = "stocksync"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "Stock sync"}]
    # CSP, X-Frame-Options, nosniff on Airflow's own pages and API too (include/stocksync/ui/security_headers.py)
    fastapi_root_middlewares = [{"middleware": SecurityHeadersMiddleware, "name": "stocksync security headers"}]
    external_views = [{
        "name": "Stock sync",
        "href": f"{URL_PREFIX}/",
        "destination": "nav",
        "url_route": "stocksync",
    }, {
        "name": "Sync report",
        "href": f"{URL_PREFIX}/runs/{{DAG_ID}}/{{RUN_ID}}",  # the UI fills in the run's DAG and run id
        "destination": "dag_run",
        "url_route": "stocksync_report",
    }]
