"""A run's spec is resolved once, when it opens, and read back from its record by every later step:
editing the config (or the environment) while a run is going changes nothing for that run."""

from __future__ import annotations

import random
from typing import Any

import pytest
import requests

from devstack.demo_seed import load_catalog
from include.stocksync.config.settings import RunOptions, load_settings
from include.stocksync.runs import record as runs
from include.stocksync.store.db import connect
from include.stocksync.sync import pipeline
from tests.conftest import TEST_TOKEN


def session() -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    return s


def test_later_steps_read_the_spec_the_run_opened_with(clean_shop: str, wms: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    wms.admin.reset(60, 41)
    with connect(clean_shop) as conn:
        load_catalog(conn, wms.admin.items(), random.Random(41), drift_share=0.1)
        conn.commit()
    opened = load_settings().for_run({"page_size": 10, "freeze_mode": "none"})
    pipeline.freeze_checkout(clean_shop, run_id="spec-run", dag_id="t", settings=opened,
                             options=RunOptions(override_guardrails=True, override_reason="spec test"))

    # the deployment's config changes while the run is going
    monkeypatch.setenv("STOCKSYNC_PAGE_SIZE", "1000")
    monkeypatch.setenv("STOCKSYNC_FREEZE_MODE", "full")

    extracted = pipeline.extract(clean_shop, run_id="spec-run", session=session(), base_url=wms.url)
    assert extracted.pages == 6  # 60 SKUs in pages of 10: the run's page size, not the new 1000
    spec = runs.spec_of(pipeline.get_run(clean_shop, "spec-run"))
    assert spec.settings.page_size == 10 and spec.settings.freeze_mode == "none"
    assert spec.options.override_reason == "spec test"
    # a retried setup keeps the spec it opened with
    pipeline.freeze_checkout(clean_shop, run_id="spec-run", dag_id="t", settings=load_settings())
    assert runs.spec_of(pipeline.get_run(clean_shop, "spec-run")).settings.page_size == 10
    pipeline.validate(clean_shop, run_id="spec-run")
    pipeline.merge(clean_shop, run_id="spec-run")
    pipeline.load(clean_shop, run_id="spec-run", plan_table=f"plan_{extracted.staging_table[4:]}")
    released = pipeline.release_freeze(clean_shop, run_id="spec-run", dag_id="t")
    assert released["status"] == "applied" and released["freeze_seconds"] == 0.0  # never froze: mode none
