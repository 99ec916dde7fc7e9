"""Alerts safe for chat: SKUs the WMS sends reach the webhook as text, never as Slack-style links
(`<url|label>`), Markdown links, bare links or @channel mentions, and the alert links the run's
page on the Airflow server, never a path on its disk. Through the real nightly DAG (`dag.test()`),
the WMS simulator's fault injection (a row's SKU replaced by a hostile string) and the real
webhook receiver.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from devstack.demo_seed import seed_demo
from include.stocksync.sync import pipeline
from tests.integration.test_nightly_sync import alerts_for, run_nightly

pytestmark = pytest.mark.slow

HOSTILE = {
    "SKU-0000003": "<https://evil.example/x|click here>",
    "SKU-0000005": "[click](https://evil.example/y)",
    "SKU-0000007": "@channel <!here> <b>x</b> & more",
}
# what a chat client would turn into markup or a ping: Slack's <...> syntax, a Markdown link, a bare
# URL scheme, a mention
MARKUP = re.compile(r"<[^>]*>|\]\(|https?://evil|@channel|@here")


@pytest.fixture
def seeded(clean_shop: str, wms: Any) -> str:
    seed_demo(clean_shop, wms.admin, skus=40, seed=3, orders=5)
    return clean_shop


BASE_URL = "https://airflow.shop.test"  # Airflow's public URL ([api] base_url)


def test_hostile_skus_reach_the_webhook_as_text_with_the_run_page_linked(
        dagbag: Any, seeded: str, stocksync_dsn: str, wms: Any, webhook: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    wms.admin.faults(corrupt=[{"sku": sku, "field": "sku", "value": value} for sku, value in HOSTILE.items()])
    dag_run = run_nightly(dagbag)

    alerts = [a for a in alerts_for(webhook, dag_run.run_id) if a.get("kind", "task_failed") == "task_failed"]
    assert alerts, "the run stopped by the hostile rows sent no alert"
    page = f"{BASE_URL}/stocksync/runs/inventory_nightly_sync/{quote(dag_run.run_id, safe='')}"
    for alert in alerts:
        text = alert["text"]
        assert "Stopped at validation" in text, text
        assert text.endswith(" " + page), text           # linked on the Airflow server
        body = text[: -len(page)]
        assert not MARKUP.search(body), f"markup from data in {body!r}"
        assert "&lt;https[:]//evil.example/x|click here&gt;" in body, body  # the SKU is still readable
        assert "report" not in alert and alert["report_url"] == page  # no path on the server's disk
        for key, value in alert.items():
            if isinstance(value, str) and key != "report_url":
                assert not MARKUP.search(value), f"{key}: {value!r}"
                assert "/reports/" not in value, f"{key} names a local path: {value!r}"

    # the run's report lists the unknown SKUs themselves under unknown_sku (HTML-escaped), not [false, ...]
    run = pipeline.get_run(stocksync_dsn, dag_run.run_id)
    page = Path(run["report_path"]).read_text()
    row = page.split("unknown_sku[sku]", 1)[1].split("</tr>", 1)[0]
    assert "false" not in row, row
    for value in HOSTILE.values():
        assert html.escape(json.dumps(value, ensure_ascii=False)[1:-1], quote=False) in row, (value, row)
