-- An alert for one channel, recorded before it is sent (delivered = false until a delivery
-- succeeds): the teardown of `queued_by` sends it after its freeze is released, the watchdog
-- retries it if that never happens or fails. `delivery_error` says why it is not delivered yet.
INSERT INTO stocksync.alerts (run_id, dag_id, task_id, try_number, target, delivered, delivery_error, error,
                              kind, channel, payload, subject, queued_by)
VALUES (%(run_id)s, %(dag_id)s, %(task_id)s, %(try_number)s, %(target)s, false, %(delivery_error)s, %(error)s,
        %(kind)s, %(channel)s, %(payload)s::jsonb, %(subject)s, %(queued_by)s)
RETURNING alert_id
