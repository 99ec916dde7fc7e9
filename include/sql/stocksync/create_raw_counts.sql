-- Raw WMS rows exactly as received (text), so a malformed value reaches validation
-- instead of breaking the load. UNLOGGED: it is rebuilt from the WMS on a re-run.
-- fields: one text column per field of the WMS contract (include/stocksync/domain/contract.py).
DROP TABLE IF EXISTS {raw};
CREATE UNLOGGED TABLE {raw} (
    row_no       bigint GENERATED ALWAYS AS IDENTITY,
    quarantined  boolean NOT NULL DEFAULT false,
    page         integer NOT NULL,
    {fields}
)
