-- An order the WMS refused, with its answer; an order already held keeps its first refusal.
INSERT INTO stocksync.order_dead_letters (order_id, http_status, reason, body, run_id)
VALUES (%(order_id)s, %(http_status)s, %(reason)s, %(body)s::jsonb, %(run_id)s)
ON CONFLICT (order_id) WHERE requeued_at IS NULL DO NOTHING
RETURNING dead_letter_id
