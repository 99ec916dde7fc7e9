"""
# inventory_full_push

Airflow DAG for ops: an ad-hoc push of the warehouse's (WMS) stock into the shop, after a
stock take or an incident. Same tasks as `inventory_nightly_sync`, triggered by hand:

- **dry_run** (default on): compute the full plan and write `plan.csv` / `plan.html`
  (SKU, current, WMS available, adjustment, new, delta, outcome) without touching shop
  stock or the checkout freeze; the `load_stock` task's return value and the run report
  say where the plan is, and the "Stock sync" page links it;
- **skus**: push only these SKUs (a single-SKU push is one SKU);
- **freeze_mode**, **adjustment_mode**, **watermark_source**: as in the nightly sync;
- **override_guardrails** with **override_reason**: let a plan through that trips a
  guardrail; the reason is required and recorded on the run and in its report.

Its load task shares the one-slot `stocksync_shop_writer` pool with the nightly sync, so
the two never write at the same time. Trigger from the UI (Trigger DAG form) or REST:
see the README.
"""

from include.stocksync.airflow.dag_factory import build_sync_dag

build_sync_dag(
    dag_id="inventory_full_push",
    schedule=None,
    doc_md=__doc__,
    tags=["stocksync", "inventory", "ops"],
    ops=True,
)
