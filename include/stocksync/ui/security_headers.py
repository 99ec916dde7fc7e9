"""Security headers for every response of Airflow's API server (its UI, REST API and login pages),
added by the stocksync plugin as a root middleware (`fastapi_root_middlewares`).

- `X-Content-Type-Options: nosniff`, `X-Frame-Options: SAMEORIGIN` and `Referrer-Policy:
  same-origin` on everything;
- a Content-Security-Policy that lets Airflow's single-page UI (scripts, workers and fonts from its
  own origin only, inline styles, which its component library injects) work and nothing else: no
  script from elsewhere, no inline script, no plugin objects, no framing by other sites
  (`frame-ancestors 'self'`), no form posting elsewhere, no `<base>` to another origin;
- under `/auth/` (the FAB auth manager's Flask login and user pages, which carry inline scripts) a
  policy without the script restriction; the framing, object, base and form rules stay.

A header a response already has is kept: the Stock sync pages send their own, stricter policy
(`include/stocksync/pages.SECURITY_HEADERS`: no script at all, sandboxed).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_COMMON_POLICY = "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
UI_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
             "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-src 'self'; "
             + _COMMON_POLICY)
LOGIN_PAGES_POLICY = _COMMON_POLICY  # FAB's pages: inline scripts; everything else as the UI
LOGIN_PAGES_PREFIX = "/auth/"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
}


def headers_for(path: str) -> dict[str, str]:
    policy = LOGIN_PAGES_POLICY if path.startswith(LOGIN_PAGES_PREFIX) else UI_POLICY
    return {**HEADERS, "Content-Security-Policy": policy}


class SecurityHeadersMiddleware:
    """ASGI middleware: adds `headers_for(path)` (by default Airflow's, above) to each HTTP
    response that lacks them. The availability service uses it with `nosniff` alone."""

    def __init__(self, app: ASGIApp, headers_for: Callable[[str], dict[str, str]] = headers_for) -> None:
        self.app = app
        self.headers_for = headers_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = self.headers_for(str(scope.get("path", "")))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in wanted.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
