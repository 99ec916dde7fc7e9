"""The Airflow settings stocksync's pages and alerts are shown with: the display time zone
(`[api] default_ui_timezone`, else `[core] default_timezone`) and Airflow's public URL
(`[api] base_url`, the base of every link to a run's page).

They are Airflow's settings, and only include/stocksync/airflow imports Airflow (`.importlinter`):
that package hands its reader down here when it is imported (`read_airflow_settings_with`; every
DAG file, task, the plugin and the command line import it). A process that never imported it (a
script, a unit test without Airflow) reads nothing: times show in UTC and links are root-relative,
as they did when Airflow could not be imported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

# (section, key) -> the setting's value, None when unset
AirflowSettingReader = Callable[[str, str], "str | None"]

ZONE_SETTINGS = (("api", "default_ui_timezone"), ("core", "default_timezone"))
_reader: AirflowSettingReader | None = None
# the zone of the page being rendered (ui/pages.render sets it for the time of one render)
ZONE: ContextVar[tuple[tzinfo, str] | None] = ContextVar("stocksync_display_zone", default=None)


def read_airflow_settings_with(reader: AirflowSettingReader) -> None:
    """Read Airflow's settings through `reader` from now on (include/stocksync/airflow installs it)."""
    global _reader
    _reader = reader


def airflow_setting(section: str, key: str) -> str | None:
    """Airflow's `[section] key`, None when unset, unreadable or when no reader was installed."""
    if _reader is None:
        return None
    try:
        value = _reader(section, key)
    except Exception:  # an unreadable setting shows as unset: pages and alerts still go out
        log.debug("Airflow setting [%s] %s unreadable", section, key, exc_info=True)
        return None
    return None if value is None else str(value)


def zone_setting() -> str:
    """The Airflow setting pages show times in: `[api] default_ui_timezone` when a deployment sets
    it, else `[core] default_timezone` (`utc` by default, `system`, or an IANA name). Airflow 3's UI
    has no server-side UI zone (its clock shows what the browser picked), so these are the ones a
    server can read."""
    for section, key in ZONE_SETTINGS:
        value = airflow_setting(section, key)
        if value and value.strip():
            return value.strip()
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


def current_zone() -> tuple[tzinfo, str]:
    """The zone of the page being rendered, else the setting's."""
    return ZONE.get() or display_zone()


def base_url() -> str:
    """Airflow's public URL (`[api] base_url`) without a trailing slash; '' when unset (links are
    then root-relative, which holds in the Airflow UI and its iframe)."""
    return (airflow_setting("api", "base_url") or "").rstrip("/")
