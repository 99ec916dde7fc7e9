-- Demo bookkeeping: which WMS process the demo shop was seeded against.
CREATE TABLE IF NOT EXISTS stocksync.demo_state (
    id           integer PRIMARY KEY CHECK (id = 1),
    wms_instance text NOT NULL,
    skus         integer NOT NULL,
    seed         integer NOT NULL,
    seeded_at    timestamptz NOT NULL DEFAULT now()
)
