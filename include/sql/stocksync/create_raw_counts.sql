-- Raw WMS rows exactly as received (text), so a malformed value reaches validation
-- instead of breaking the load. UNLOGGED: it is rebuilt from the WMS on a re-run.
DROP TABLE IF EXISTS {raw};
CREATE UNLOGGED TABLE {raw} (
    row_no       bigint GENERATED ALWAYS AS IDENTITY,
    quarantined  boolean NOT NULL DEFAULT false,
    page         integer NOT NULL,
    sku          text,
    on_hand      text,
    non_usable   text,
    allocated    text,
    available    text,
    seq          text,
    missing_keys text,
    extra_keys   text
)
