"""
# inventory_nightly_sync

Airflow DAG. Every night, load the warehouse's (WMS) stock counts into the shop:

1. **freeze_checkout** (setup): open the run record; in `full` mode close checkout (the site stays browsable).
2. **extract_wms_counts**: every page of one WMS snapshot, retried with exponential backoff, COPY into staging.
3. **validate_counts**: Great Expectations suite; any failed check stops the run with nothing written.
4. **merge_in_window_orders**: `new = max(0, available - unsent orders [- active carts])` per SKU.
5. **load_stock**: one transaction, seq-guarded, duplicates recognised, audit row per SKU.
6. **release_freeze** (teardown): always runs; releases only this run's freeze and writes the run report.

Schedule, freeze and adjustment modes come from `include/config/stocksync.yaml`; a manual
trigger may override the modes. Failures post an alert to the `stocksync_alerts` webhook.
"""

from include.stocksync.airflow.dag_factory import build_sync_dag
from include.stocksync.config.settings import process_settings

build_sync_dag(
    dag_id="inventory_nightly_sync",
    schedule=process_settings().schedule,
    doc_md=__doc__,
    tags=["stocksync", "inventory", "nightly"],
)
