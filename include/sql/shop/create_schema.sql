-- Reference shop schema (docs/architecture.md): the demo stack's and the tests' shop, created under
-- the configured shop schema (STOCKSYNC_SHOP_SCHEMA) by pipeline.apply_schema. A real shop keeps
-- its own tables: its copy of this folder (docs/shop-adapter.md) maps them in the other statements
-- and replaces this file with a harmless SELECT 1, as stocksync must never create tables or
-- functions in a real shop. stocksync never touches the shop outside this folder's statements.
CREATE SCHEMA IF NOT EXISTS {shop};

CREATE TABLE IF NOT EXISTS {shop}.products (
    sku     text PRIMARY KEY,
    name    text NOT NULL,
    enabled boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS {shop}.stock (
    sku        text PRIMARY KEY REFERENCES {shop}.products (sku),
    qty        integer NOT NULL CHECK (qty >= 0),
    wms_seq    bigint NOT NULL DEFAULT 0,          -- last applied WMS sequence for this SKU
    updated_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 90);  -- room on each page: a sync's in-place writes are HOT (docs/shop-adapter.md)

CREATE TABLE IF NOT EXISTS {shop}.orders (
    order_id            bigserial PRIMARY KEY,
    status              text NOT NULL DEFAULT 'placed',
    created_at          timestamptz NOT NULL DEFAULT now(),
    wms_acknowledged_at timestamptz,               -- when the WMS confirmed it received the order
    customer_ref        text
);
-- The in-window order query scans only the last cutoff's orders.
CREATE INDEX IF NOT EXISTS orders_created_at_idx ON {shop}.orders (created_at);

CREATE TABLE IF NOT EXISTS {shop}.order_lines (
    order_id bigint NOT NULL REFERENCES {shop}.orders (order_id) ON DELETE CASCADE,
    sku      text NOT NULL REFERENCES {shop}.products (sku),
    qty      integer NOT NULL CHECK (qty > 0),
    PRIMARY KEY (order_id, sku)
);

CREATE TABLE IF NOT EXISTS {shop}.carts (
    cart_id    bigserial PRIMARY KEY,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS carts_updated_at_idx ON {shop}.carts (updated_at);

CREATE TABLE IF NOT EXISTS {shop}.cart_lines (
    cart_id bigint NOT NULL REFERENCES {shop}.carts (cart_id) ON DELETE CASCADE,
    sku     text NOT NULL REFERENCES {shop}.products (sku),
    qty     integer NOT NULL CHECK (qty > 0),
    PRIMARY KEY (cart_id, sku)
);

-- Checkout freezes: one row per freeze. Checkout is closed while any row is unreleased
-- and unexpired. A sync run releases only the rows it set (set_by = its run id), so a
-- manual maintenance freeze stays; an expired row is ignored (dead man's switch).
CREATE TABLE IF NOT EXISTS {shop}.checkout_freezes (
    freeze_id       bigserial PRIMARY KEY,
    reason          text NOT NULL,
    shopper_message text NOT NULL,
    set_by          text NOT NULL,
    set_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at      timestamptz NOT NULL,
    released_at     timestamptz,
    CHECK (expires_at > set_at)
);
CREATE INDEX IF NOT EXISTS checkout_freezes_active_idx
    ON {shop}.checkout_freezes (expires_at) WHERE released_at IS NULL;

-- The shop's checkout. Atomic; locks the stock rows it touches in SKU order; refuses
-- while checkout is frozen (SQLSTATE SF001), refuses to oversell (SF002), refuses
-- unknown SKUs or bad quantities (SF003).
CREATE OR REPLACE FUNCTION {shop}.place_order(p_skus text[], p_qtys integer[], p_customer_ref text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    v_freeze   {shop}.checkout_freezes%ROWTYPE;
    v_short    record;
    v_order_id bigint;
BEGIN
    IF p_skus IS NULL OR p_qtys IS NULL OR cardinality(p_skus) = 0
       OR cardinality(p_skus) <> cardinality(p_qtys) THEN
        RAISE EXCEPTION 'invalid order: need one quantity per SKU and at least one line'
            USING ERRCODE = 'SF003';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_skus, p_qtys) AS l(sku, qty) WHERE l.sku IS NULL OR l.qty IS NULL OR l.qty <= 0) THEN
        RAISE EXCEPTION 'invalid order: every line needs a SKU and a quantity above 0'
            USING ERRCODE = 'SF003';
    END IF;

    SELECT * INTO v_freeze FROM {shop}.checkout_freezes
     WHERE released_at IS NULL AND expires_at > clock_timestamp()
     ORDER BY set_at LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'checkout is frozen: %', v_freeze.shopper_message
            USING ERRCODE = 'SF001',
                  DETAIL = format('reason: %s; set by %s; expires at %s', v_freeze.reason, v_freeze.set_by, v_freeze.expires_at);
    END IF;

    -- Lock the rows in SKU order (the same order the sync uses), so no deadlock.
    PERFORM 1 FROM {shop}.stock WHERE sku = ANY (p_skus) ORDER BY sku FOR UPDATE;

    SELECT l.sku, l.qty, s.qty AS in_stock INTO v_short
      FROM (SELECT u.sku, sum(u.qty)::integer AS qty FROM unnest(p_skus, p_qtys) AS u(sku, qty) GROUP BY u.sku) l
      LEFT JOIN {shop}.stock s ON s.sku = l.sku
     WHERE s.sku IS NULL OR s.qty < l.qty
     ORDER BY l.sku LIMIT 1;
    IF FOUND THEN
        IF v_short.in_stock IS NULL THEN
            RAISE EXCEPTION 'unknown SKU %', v_short.sku USING ERRCODE = 'SF003';
        END IF;
        RAISE EXCEPTION 'insufficient stock for %: requested %, available %', v_short.sku, v_short.qty, v_short.in_stock
            USING ERRCODE = 'SF002';
    END IF;

    INSERT INTO {shop}.orders (status, customer_ref) VALUES ('placed', p_customer_ref)
    RETURNING order_id INTO v_order_id;
    INSERT INTO {shop}.order_lines (order_id, sku, qty)
    SELECT v_order_id, u.sku, sum(u.qty) FROM unnest(p_skus, p_qtys) AS u(sku, qty) GROUP BY u.sku;
    UPDATE {shop}.stock s SET qty = s.qty - l.qty, updated_at = now()
      FROM (SELECT u.sku, sum(u.qty) AS qty FROM unnest(p_skus, p_qtys) AS u(sku, qty) GROUP BY u.sku) l
     WHERE s.sku = l.sku;
    RETURN v_order_id;
END
$fn$;
