"""Headless Chromium for the UI tests: Debian's `chromium` (installed by `scripts/bootstrap.sh`)
driven by Playwright, and Airflow's login form. Screenshots go to `artifacts/screenshots/`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devstack.airflow_standalone import AirflowStandalone
from include.stocksync.config.settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/bootstrap.sh` (installs Debian's chromium)")


def sign_in(page: Any, airflow: AirflowStandalone) -> None:
    """On Airflow's login page (where a browser without a login is sent), sign in as the stack's user."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        page.wait_for_url("**/auth/login**")
    except PlaywrightError as exc:  # the redirect chain to the login page can abort a hop on a busy box
        if "ERR_ABORTED" not in str(exc):
            raise
    page.locator("input[name=username]").wait_for()
    page.locator("input[name=username]").fill(airflow.username)
    page.locator("input[name=password]").fill(airflow.password)
    page.get_by_role("button", name="Sign in").click()


# One Chromium per test module, started by its first page and stopped when the module is done
# (tests/integration/conftest.py): a launch costs about as much CPU as a short test. Each page
# gets a browser context of its own, so no cookie, login or storage passes from one test to the next.
# Not longer: while Playwright's sync API is started, its event loop counts as running in this
# thread, and `asyncio.run()` refuses to start: dag.test() runs a deferring task's trigger with it
# (the file drop's sensor), so no module with pages runs one in-process after its first page.
_SHARED: dict[str, Any] = {}


def _browser() -> Any:
    browser = _SHARED.get("browser")
    if browser is not None and browser.is_connected():
        return browser
    close_browser()
    from playwright.sync_api import sync_playwright

    _SHARED["playwright"] = sync_playwright().start()
    _SHARED["browser"] = _SHARED["playwright"].chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    return _SHARED["browser"]


def close_browser() -> None:
    """Stop this process's Chromium and Playwright, if started."""
    browser, playwright = _SHARED.pop("browser", None), _SHARED.pop("playwright", None)
    try:
        if browser is not None and browser.is_connected():
            browser.close()
    finally:
        if playwright is not None:
            playwright.stop()


@contextmanager
def browser_page(height: int) -> Iterator[Any]:
    """A headless Chromium page (Debian's chromium driven by Playwright) in a fresh browser context
    of its own (no cookies, no storage), closed afterwards."""
    require_chromium()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = _browser().new_context(viewport={"width": 1500, "height": height})
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        yield page
    finally:
        context.close()


@dataclass
class Watched:
    """What a page did while watched: dialogs it opened, console messages, and the responses whose
    URL contains the watched part (with their headers)."""

    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    responses: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)

    def blocked_scripts(self) -> list[str]:
        """Console messages of a script the browser refused (CSP or sandbox): the page tried to run one."""
        return [m for m in self.console if "script" in m.lower() and ("block" in m.lower() or "refused" in m.lower())]


def watch(page: Any, url_part: str = "/stocksync/") -> Watched:
    """Record `page`'s dialogs (dismissed; any frame), console messages and our responses.

    A dialog proves a script ran at the top level; inside Airflow's iframe (no `allow-modals`) an
    `alert` is blocked even when script runs, so callers also look at the console and the DOM."""
    seen = Watched()

    def on_dialog(dialog: Any) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_response(response: Any) -> None:
        if url_part in response.url:
            seen.responses.append((response.url, response.status, response.all_headers()))

    page.on("dialog", on_dialog)
    page.on("console", lambda message: seen.console.append(f"{message.type}: {message.text}"))
    page.on("response", on_response)
    return seen
