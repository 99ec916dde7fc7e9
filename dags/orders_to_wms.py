"""
# orders_to_wms

Airflow DAG, every few minutes (`loop.orders_schedule`): send the shop's accepted orders to the
warehouse (WMS) and record its acknowledgement, so the stock syncs know which orders the WMS has
counted (docs/order-push-and-intraday.md).

1. **send_orders**: re-queue the orders the run's parameters name, then every unacknowledged order in
   the sent statuses, oldest first, in batches: `POST /v1/orders` with the order's
   `Idempotency-Key`; the WMS's receipt time is written on the order. A repeat (crash, timeout,
   re-run) gets the original receipt: never counted twice. Refused orders (unknown SKU, too little
   stock, invalid) are held in `stocksync.order_dead_letters` with the WMS's reason, one alert per batch.
2. **send_cancellations**: cancel in the WMS the acknowledged orders the shop has cancelled, once.

Re-queue held orders: trigger with `{"requeue_order_ids": [1234, 1235]}` or `{"requeue_all": true}`,
or `python -m include.stocksync.sync.order_push requeue 1234 1235`.
"""

from include.stocksync.airflow.loop_dags import build_orders_dag

build_orders_dag(__doc__)
