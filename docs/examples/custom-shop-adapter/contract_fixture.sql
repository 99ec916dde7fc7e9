-- Test only (tests/unit/test_shop_adapter_contract.py runs it right after seeding the reference
-- shop; a sync never does): a stand-in of this shop, its tables filled from the seeded reference
-- tables, and a stand-in of its checkout with the behaviour the contract relies on: it locks the
-- inventory rows it takes from and refuses while a hold is active. In a real deployment these
-- tables and the checkout are the shop's own; only stocksync_seq is the adapter's.
CREATE TABLE IF NOT EXISTS {shop}.item (
    code   text PRIMARY KEY,
    title  text NOT NULL,
    active boolean NOT NULL
);
CREATE TABLE IF NOT EXISTS {shop}.inventory (
    code    text PRIMARY KEY REFERENCES {shop}.item (code),
    on_hand numeric(12, 4) NOT NULL CHECK (on_hand >= 0)
);
CREATE TABLE IF NOT EXISTS {shop}.purchase (
    id          bigserial PRIMARY KEY,
    state       text NOT NULL,
    placed_at   timestamptz NOT NULL DEFAULT now(),
    exported_at timestamptz
);
CREATE TABLE IF NOT EXISTS {shop}.purchase_line (
    purchase_id bigint NOT NULL REFERENCES {shop}.purchase (id),
    code        text NOT NULL REFERENCES {shop}.item (code),
    units       numeric(12, 4) NOT NULL
);
CREATE TABLE IF NOT EXISTS {shop}.basket (
    id         bigserial PRIMARY KEY,
    touched_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {shop}.basket_line (
    basket_id bigint NOT NULL REFERENCES {shop}.basket (id),
    code      text NOT NULL REFERENCES {shop}.item (code),
    units     numeric(12, 4) NOT NULL
);
CREATE TABLE IF NOT EXISTS {shop}.checkout_hold (
    id        bigserial PRIMARY KEY,
    why       text NOT NULL,
    notice    text NOT NULL,
    held_by   text NOT NULL,
    held_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    until     timestamptz NOT NULL,
    lifted_at timestamptz
);
-- The adapter's side table: this shop stores no WMS sequence.
CREATE TABLE IF NOT EXISTS {shop}.stocksync_seq (
    code    text PRIMARY KEY,
    wms_seq bigint NOT NULL
);

TRUNCATE {shop}.basket_line, {shop}.basket, {shop}.purchase_line, {shop}.purchase, {shop}.checkout_hold,
         {shop}.stocksync_seq, {shop}.inventory, {shop}.item RESTART IDENTITY;
INSERT INTO {shop}.item (code, title, active) SELECT sku, name, enabled FROM {shop}.products;
INSERT INTO {shop}.inventory (code, on_hand) SELECT sku, qty FROM {shop}.stock;
INSERT INTO {shop}.stocksync_seq (code, wms_seq) SELECT sku, wms_seq FROM {shop}.stock;
INSERT INTO {shop}.purchase (id, state, placed_at, exported_at)
SELECT order_id, status, created_at, wms_acknowledged_at FROM {shop}.orders;
INSERT INTO {shop}.purchase_line (purchase_id, code, units) SELECT order_id, sku, qty FROM {shop}.order_lines;
INSERT INTO {shop}.basket (id, touched_at) SELECT cart_id, updated_at FROM {shop}.carts;
INSERT INTO {shop}.basket_line (basket_id, code, units) SELECT cart_id, sku, qty FROM {shop}.cart_lines;
-- the copied ids came with the rows: move the id sequence past them
SELECT setval(pg_get_serial_sequence(tableoid::regclass::text, 'id'), max(id)) FROM {shop}.purchase GROUP BY tableoid;

-- The checkout the contract test places orders through (its name and arguments are the test's).
CREATE OR REPLACE FUNCTION {shop}.place_order(p_skus text[], p_qtys integer[], p_customer_ref text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    v_notice text;
    v_id     bigint;
BEGIN
    SELECT notice INTO v_notice FROM {shop}.checkout_hold
     WHERE lifted_at IS NULL AND until > clock_timestamp() ORDER BY held_at LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'checkout is frozen: %', v_notice USING ERRCODE = 'SF001';
    END IF;
    PERFORM 1 FROM {shop}.inventory WHERE code = ANY (p_skus) ORDER BY code FOR UPDATE;
    IF EXISTS (SELECT 1 FROM unnest(p_skus, p_qtys) AS l(code, units)
                 LEFT JOIN {shop}.inventory i ON i.code = l.code
                WHERE i.code IS NULL OR i.on_hand < l.units) THEN
        RAISE EXCEPTION 'insufficient stock' USING ERRCODE = 'SF002';
    END IF;
    INSERT INTO {shop}.purchase (state) VALUES ('placed') RETURNING id INTO v_id;
    INSERT INTO {shop}.purchase_line (purchase_id, code, units)
    SELECT v_id, l.code, l.units FROM unnest(p_skus, p_qtys) AS l(code, units);
    UPDATE {shop}.inventory i SET on_hand = i.on_hand - l.units
      FROM unnest(p_skus, p_qtys) AS l(code, units)
     WHERE i.code = l.code;
    RETURN v_id;
END
$fn$;
