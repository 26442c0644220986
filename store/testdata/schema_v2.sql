-- Storefront schema. Applied at every start; every statement is idempotent.
-- PRAGMA user_version records the schema version so later releases can migrate
-- (store.Open refuses a database newer than it knows).
-- Money is integer fen; times are UTC text "2006-01-02T15:04:05.000Z" (sortable).

CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    TEXT    NOT NULL
);

CREATE TABLE IF NOT EXISTS goods (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    price_fen   INTEGER NOT NULL CHECK (price_fen > 0),
    image       TEXT    NOT NULL DEFAULT '',
    -- NULL = unlimited; reserved when an order is created, released when it closes.
    stock       INTEGER CHECK (stock IS NULL OR stock >= 0),
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT    NOT NULL
);

CREATE TABLE IF NOT EXISTS orders (
    id              INTEGER PRIMARY KEY,
    out_trade_no    TEXT    NOT NULL UNIQUE,
    user_id         INTEGER NOT NULL REFERENCES users (id),
    subject         TEXT    NOT NULL,
    total_fen       INTEGER NOT NULL CHECK (total_fen > 0),
    status          TEXT    NOT NULL DEFAULT 'unpaid'
                    CHECK (status IN ('unpaid', 'paid', 'closed', 'cancelled', 'refunded')),
    trade_no        TEXT    NOT NULL DEFAULT '',
    buyer_id        TEXT    NOT NULL DEFAULT '',
    buyer_logon_id  TEXT    NOT NULL DEFAULT '',
    refunded_fen    INTEGER NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0),
    created_at      TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    paid_at         TEXT,
    closed_at       TEXT,
    -- last time the shopper was sent to the cashier; reconciliation counts from here.
    cashier_at      TEXT,
    reconcile_at    TEXT,
    reconcile_tries INTEGER NOT NULL DEFAULT 0
);
-- "this shopper's orders, newest first" and the two workers' scans.
CREATE INDEX IF NOT EXISTS orders_user_id ON orders (user_id, id);
CREATE INDEX IF NOT EXISTS orders_unpaid_expiry ON orders (expires_at) WHERE status = 'unpaid';
CREATE INDEX IF NOT EXISTS orders_unpaid_reconcile ON orders (reconcile_at) WHERE status = 'unpaid';

CREATE TABLE IF NOT EXISTS order_items (
    id        INTEGER PRIMARY KEY,
    order_id  INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    goods_id  INTEGER NOT NULL REFERENCES goods (id),
    name      TEXT    NOT NULL,
    unit_fen  INTEGER NOT NULL CHECK (unit_fen > 0),
    qty       INTEGER NOT NULL CHECK (qty BETWEEN 1 AND 99)
);
CREATE INDEX IF NOT EXISTS order_items_order_id ON order_items (order_id);

-- Every Alipay message (notify, return, query answer, close answer) with its raw
-- params, what the shop decided and why: the operator's audit trail.
CREATE TABLE IF NOT EXISTS payment_events (
    id           INTEGER PRIMARY KEY,
    order_id     INTEGER REFERENCES orders (id),
    out_trade_no TEXT    NOT NULL DEFAULT '',
    source       TEXT    NOT NULL,
    notify_id    TEXT    NOT NULL DEFAULT '',
    trade_status TEXT    NOT NULL DEFAULT '',
    verdict      TEXT    NOT NULL
                 CHECK (verdict IN ('applied', 'duplicate', 'ignored', 'rejected', 'flagged', 'verified')),
    reason       TEXT    NOT NULL DEFAULT '',
    raw          TEXT    NOT NULL,
    request_id   TEXT    NOT NULL DEFAULT '',
    created_at   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS payment_events_order_id ON payment_events (order_id);

CREATE TABLE IF NOT EXISTS cart_items (
    user_id  INTEGER NOT NULL REFERENCES users (id),
    goods_id INTEGER NOT NULL REFERENCES goods (id),
    qty      INTEGER NOT NULL CHECK (qty BETWEEN 1 AND 99),
    -- the price the shopper saw when adding, so a re-price is shown before checkout.
    seen_fen INTEGER NOT NULL,
    added_at TEXT    NOT NULL,
    PRIMARY KEY (user_id, goods_id)
);

-- One row, made when the database file is: sessions carry its token, so a cookie from
-- an earlier shop.db (deleted and recreated, same session key) is not taken for the user
-- who now has the same id. Added in version 2; version 1 files get it at the next start.
CREATE TABLE IF NOT EXISTS installation (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT    NOT NULL
);
INSERT OR IGNORE INTO installation (id, token) VALUES (1, lower(hex(randomblob(16))));

PRAGMA user_version = 2;
