"""
# stocksync Airflow plugin

Adds a **Stock sync** page to the Airflow 3 UI: the 50 most recent runs of the stock sync
(`stocksync.sync_runs` in the shop database) with their status, freeze window and data-quality
result, each linked to its self-contained HTML run report.

| Route (API server)                                   | What it serves                                        |
|------------------------------------------------------|-------------------------------------------------------|
| `GET /stocksync/`                                    | the runs page (HTML, no external CSS/JS)              |
| `GET /stocksync/reports/<run key>/<file>`            | files under `<reports_dir>/<run key>/` (`report.html`) |
| `GET /stocksync/runs/<dag id>/<run id>`              | redirects to that run's report (404 page if it has none) |

The page also appears in Airflow's navigation as an external view ("Stock sync"), embedded
in the Airflow UI at `/plugin/stocksync`, and every DAG run's page gets a "Sync report" tab
(external view with destination `dag_run`) that shows the run's report, which for a dry run
links its plan (`plan.html`, `plan.csv`).

## Authentication

Both routes depend on Airflow's own authentication dependency,
`airflow.api_fastapi.core_api.security.get_user` (`GetUserDep`): a JWT in the
`Authorization: Bearer` header (REST clients, token from `POST /auth/token`) or the `_token`
cookie the Airflow UI sets at login. Without a valid token the answer is 401 (403 for an invalid
token); a browser (`Accept: text/html`) is redirected to Airflow's login page instead, and comes
back after logging in. The runs page lists only runs of DAGs the user may read
(`is_authorized_dag`, DAG runs, GET); a report needs read access to DAG runs.

## Notes

- Nothing touches the database or the network at import time: every Airflow process (also each
  task process) imports plugins, so the FastAPI app and Airflow's API-server modules are built
  on the first request to `/stocksync` only.
- The shop database is the Airflow connection `stocksync_shop` (config key `shop_conn_id`),
  read at request time; the SQL is `include/sql/stocksync/select_recent_sync_runs.sql`.
- A report path is `<run key>/<file>` with the run key `include.stocksync.db.run_key(run_id)`
  (16 hex characters); anything else, or a path leaving the run's folder, is a 404.
"""

import html
import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

URL_PREFIX = "/stocksync"
RECENT_RUNS = 50
RUN_KEY_PATTERN = re.compile(r"[0-9a-f]{16}")
SQL_RECENT_RUNS = "stocksync/select_recent_sync_runs"
OK_STATUSES = {"applied", "duplicate", "dry_run"}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#1d2733;background:#fff}
h1{font-size:1.4rem;margin:0 0 .3rem} p.sub{color:#5b6875;margin:0 0 1rem}
table{border-collapse:collapse;font-size:.9rem} td,th{border:1px solid #ccd3db;padding:.3rem .55rem;text-align:left}
th{background:#eef2f6;position:sticky;top:0} tr:nth-child(even) td{background:#fafbfc}
.num{text-align:right;font-variant-numeric:tabular-nums} code{font-size:.85rem} .nw{white-space:nowrap}
.badge{display:inline-block;border-radius:.7rem;padding:.05rem .55rem;font-weight:600;font-size:.8rem}
.ok{background:#dff3e4;color:#17702f} .bad{background:#fbe3e1;color:#b3261e}
.run{background:#e3eefb;color:#1c4f8c} .none{background:#eceff2;color:#5b6875}
.err{max-width:28rem;color:#b3261e;font-size:.8rem;overflow-wrap:anywhere}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _badge(text: str, kind: str) -> str:
    return f'<span class="badge {kind}">{_e(text)}</span>'


def _time(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _status_badge(run_status: str) -> str:
    kind = "ok" if run_status in OK_STATUSES else "run" if run_status == "running" else "bad"
    return _badge(run_status, kind)


def _dq_badge(success: bool | None) -> str:
    if success is None:
        return _badge("not run", "none")
    return _badge("passed", "ok") if success else _badge("failed", "bad")


def _freeze(mode: str | None, seconds: float | None) -> str:
    window = f"{seconds:.3f} s" if seconds is not None else "n/a"
    return f"{_e(mode)} &middot; {window}"


def render_runs_page(runs: list[dict[str, Any]], reports: Path) -> str:
    """The runs page: one row per run, newest first, linked to its report when it exists."""
    from include.stocksync.db import run_key

    rows = []
    for run in runs:
        key = run_key(run["run_id"])
        run_id = f"<code>{_e(run['run_id'])}</code>"
        if (reports / key / "report.html").is_file():
            run_id = f'<a href="reports/{key}/report.html">{run_id}</a>'
        error = run["error"] or ""
        rows.append(
            "<tr>"
            f"<td>{run_id}</td><td>{_e(run['dag_id'])}</td><td>{_status_badge(run['status'])}</td>"
            f"<td class='nw'>{_time(run['started_at'])}</td><td class='nw'>{_time(run['finished_at'])}</td>"
            f"<td class='nw'>{_freeze(run['freeze_mode'], run['freeze_seconds'])}</td>"
            + "".join(f"<td class='num'>{_e(run[k])}</td>" for k in ("changed", "clamped", "stale", "duplicate"))
            + f"<td>{_dq_badge(run['dq_success'])}</td><td class='num'>{_e(run['alerts'])}</td>"
            f"<td>{_e(run['triggered_by'])}</td>"
            f"<td>{_e(run['override_reason'])}</td>"
            f"<td class='err' title='{_e(error)}'>{_e(error[:300])}</td>"
            "</tr>")
    headers = ["Run", "DAG", "Status", "Started (UTC)", "Finished (UTC)", "Freeze", "Changed",
               "Clamped", "Stale", "Duplicate", "Data quality", "Alerts sent", "Triggered by", "Override reason",
               "Error"]
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(rows) or f"<tr><td colspan='{len(headers)}'>No sync runs yet.</td></tr>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Stock sync</title><style>{STYLE}</style></head>
<body>
<h1>Stock sync</h1>
<p class="sub">The {RECENT_RUNS} most recent stock sync runs, newest first. Open a run for its report
(summary, data-quality checks, biggest stock changes).</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
</body></html>
"""


def fetch_recent_runs(limit: int = RECENT_RUNS) -> list[dict[str, Any]]:
    """The most recent `stocksync.sync_runs` rows, read through the `stocksync_shop` connection."""
    from psycopg.rows import dict_row

    from include.stocksync.connections import postgres_dsn
    from include.stocksync.db import connect, query
    from include.stocksync.settings import load_settings

    dsn = postgres_dsn(load_settings().shop_conn_id)
    with connect(dsn, connect_timeout=5) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query(SQL_RECENT_RUNS), {"limit": limit}).fetchall()


def report_file(run_key: str, file_path: str) -> Path:
    """The file `<reports_dir>/<run_key>/<file_path>`, or 404 for a bad key, traversal or missing file."""
    from include.stocksync.settings import load_settings

    not_found = HTTPException(status.HTTP_404_NOT_FOUND, "Report not found")
    if not RUN_KEY_PATTERN.fullmatch(run_key) or not file_path or "\x00" in file_path:
        raise not_found
    base = (load_settings().reports_path / run_key).resolve()
    target = (base / file_path).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        raise not_found
    return target


def render_no_report_page(dag_id: str, run_id: str) -> str:
    """What the "Sync report" tab shows for a run without a report."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sync report</title><style>{STYLE}</style></head>
<body>
<h1>No sync report for this run</h1>
<p class="sub">Run <code>{_e(run_id)}</code> of <code>{_e(dag_id)}</code> has no stock sync report (yet).</p>
<p>A report is written when the run ends (its release_freeze step) and when a task of it fails. A run that is
still going has none yet; a run refused before it opened its record (an invalid parameter, a run id the other
stock sync DAG already used) never has one: its task logs and the failure alert say why. Runs of DAGs other
than the stock sync never have one.</p>
</body></html>
"""


def create_app() -> FastAPI:
    """Build the plugin's FastAPI app (imports Airflow's API-server auth, so only in the API server)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import get_user

    app = FastAPI(title="stocksync", description="Stock sync runs and reports", docs_url=None, redoc_url=None,
                  openapi_url=None)
    UserDep = Annotated[BaseUser, Depends(get_user)]  # Airflow's GetUserDep: bearer header or `_token` cookie

    def can_read_runs(user: BaseUser, dag_id: str | None) -> bool:
        return get_auth_manager().is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.RUN,
            details=DagDetails(id=dag_id) if dag_id else None, user=user)

    @app.exception_handler(StarletteHTTPException)
    async def login_redirect(request: Request, exc: StarletteHTTPException) -> Response:
        """Send a browser without a login to Airflow's login page; API clients get the plain 401."""
        wants_html = "text/html" in request.headers.get("accept", "")
        if exc.status_code == status.HTTP_401_UNAUTHORIZED and wants_html and request.method == "GET":
            next_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(get_auth_manager().get_url_login(next_url=next_url),
                                    status_code=status.HTTP_303_SEE_OTHER)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/", response_class=HTMLResponse)
    def runs_page(user: UserDep) -> HTMLResponse:
        from include.stocksync.settings import load_settings

        try:
            runs = fetch_recent_runs()
        except Exception:  # the page must say the shop DB is unreachable, not crash with a trace
            log.exception("stocksync: could not read stocksync.sync_runs")
            return HTMLResponse("<!doctype html><title>Stock sync</title><h1>Stock sync</h1>"
                                "<p>The shop database (connection <code>stocksync_shop</code>) is unreachable; "
                                "see the API server log.</p>", status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
        allowed: dict[str, bool] = {}
        visible = [run for run in runs
                   if allowed.setdefault(run["dag_id"], can_read_runs(user, run["dag_id"]))]
        return HTMLResponse(render_runs_page(visible, load_settings().reports_path))

    @app.get("/reports/{run_key}/{file_path:path}")
    def report(run_key: str, file_path: str, user: UserDep) -> FileResponse:
        if not can_read_runs(user, None):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Not allowed to read DAG runs")
        return FileResponse(report_file(run_key, file_path))

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run_report(dag_id: str, run_id: str, user: UserDep) -> Response:
        """The DAG run page's "Sync report" tab: the run's report, or a page saying why there is none."""
        from include.stocksync.db import run_key
        from include.stocksync.settings import load_settings

        if not can_read_runs(user, dag_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Not allowed to read runs of this DAG")
        key = run_key(run_id)
        if not (load_settings().reports_path / key / "report.html").is_file():
            return HTMLResponse(render_no_report_page(dag_id, run_id), status_code=status.HTTP_404_NOT_FOUND)
        # relative, so it holds under any base URL: /stocksync/runs/<dag>/<run> -> /stocksync/reports/...
        return RedirectResponse(f"../../reports/{key}/report.html", status_code=status.HTTP_303_SEE_OTHER)

    return app


class LazyApp:
    """An ASGI app that builds `create_app()` on its first request.

    Plugins are imported by every Airflow process, task processes included; building the app
    lazily keeps that import free of the API server's modules and of any I/O.
    """

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)


class StocksyncPlugin(AirflowPlugin):
    """The "Stock sync" runs page and run reports."""

    name = "stocksync"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "Stock sync"}]
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
