-- Orders held in the dead-letter table (not re-queued), oldest refusal first.
SELECT order_id, http_status, reason, refused_at, run_id
  FROM stocksync.order_dead_letters
 WHERE requeued_at IS NULL
 ORDER BY refused_at, order_id
 LIMIT %(limit)s
