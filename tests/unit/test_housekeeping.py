"""Staging tables of finished runs are dropped after the retention; recent ones stay."""

from __future__ import annotations

from include.stocksync.config.settings import load_settings
from include.stocksync.store.db import connect
from include.stocksync.sync.extract import create_raw_table, raw_table
from include.stocksync.sync.merge import plan_table
from include.stocksync.sync.pipeline import drop_expired_staging, open_run


def _tables(dsn: str) -> set[str]:
    with connect(dsn) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'stocksync'")}


def test_expired_staging_is_dropped_and_recent_staging_kept(clean_shop: str) -> None:
    settings = load_settings()
    for run_id, age_days in (("old-run", 3), ("recent-run", 1), ("running-run", None)):
        open_run(clean_shop, run_id=run_id, dag_id="t", settings=settings)
        with connect(clean_shop) as conn:
            create_raw_table(conn, raw_table(run_id))
            conn.execute(f'DROP TABLE IF EXISTS stocksync."{plan_table(run_id)}"')
            conn.execute(f'CREATE TABLE stocksync."{plan_table(run_id)}" (sku text)')
            conn.execute("UPDATE stocksync.sync_runs SET staging_table = %s, "
                         "finished_at = now() - make_interval(days => %s) WHERE run_id = %s",
                         (raw_table(run_id), age_days, run_id))
            conn.commit()

    with connect(clean_shop) as conn:
        assert drop_expired_staging(conn, retention_days=2) == 1
        assert drop_expired_staging(conn, retention_days=2) == 0  # idempotent

    tables = _tables(clean_shop)
    assert raw_table("old-run") not in tables and plan_table("old-run") not in tables
    for run_id in ("recent-run", "running-run"):
        assert {raw_table(run_id), plan_table(run_id)} <= tables
    with connect(clean_shop) as conn:
        row = conn.execute("SELECT staging_table FROM stocksync.sync_runs WHERE run_id = 'old-run'").fetchone()
    assert row == (None,)
