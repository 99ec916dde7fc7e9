-- One worker's counters over one period (deltas); see stocksync.availability_stats.
INSERT INTO stocksync.availability_stats (instance, period_start, period_end, requests, answers, unknown_causes,
                                          rejected, live, latency_bounds_ms, latency_buckets, latency_sum_ms,
                                          latency_max_ms)
VALUES (%(instance)s, %(period_start)s, %(period_end)s, %(requests)s, %(answers)s, %(unknown_causes)s,
        %(rejected)s, %(live)s, %(latency_bounds_ms)s, %(latency_buckets)s, %(latency_sum_ms)s, %(latency_max_ms)s)
