-- One failure alert the notifier sent (or failed to send).
INSERT INTO stocksync.alerts (run_id, dag_id, task_id, try_number, target, delivered, delivery_error, error)
VALUES (%(run_id)s, %(dag_id)s, %(task_id)s, %(try_number)s, %(target)s, %(delivered)s, %(delivery_error)s,
        %(error)s)
