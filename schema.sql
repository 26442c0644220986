-- Storefront schema, as the ordered steps that build it. store.Open applies every
-- "-- migrate N" section the database has not had yet, each in one transaction, and
-- records N (SQLite: PRAGMA user_version; PostgreSQL: table schema_version). A fresh
-- database and an upgraded one run the same statements, so they end identical.
-- A released section is never edited: a change is a new section.
-- Money is integer fen; times are UTC text "2006-01-02T15:04:05.000Z" (sortable).

-- migrate 1: the first release.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    TEXT    NOT NULL
);

CREATE TABLE goods (
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

CREATE TABLE orders (
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
CREATE INDEX orders_user_id ON orders (user_id, id);
CREATE INDEX orders_unpaid_expiry ON orders (expires_at) WHERE status = 'unpaid';
CREATE INDEX orders_unpaid_reconcile ON orders (reconcile_at) WHERE status = 'unpaid';

CREATE TABLE order_items (
    id        INTEGER PRIMARY KEY,
    order_id  INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    goods_id  INTEGER NOT NULL REFERENCES goods (id),
    name      TEXT    NOT NULL,
    unit_fen  INTEGER NOT NULL CHECK (unit_fen > 0),
    qty       INTEGER NOT NULL CHECK (qty BETWEEN 1 AND 99)
);
CREATE INDEX order_items_order_id ON order_items (order_id);

-- Every Alipay message (notify, return, query answer, close answer) with its raw
-- params, what the shop decided and why: the operator's audit trail.
CREATE TABLE payment_events (
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
CREATE INDEX payment_events_order_id ON payment_events (order_id);

CREATE TABLE cart_items (
    user_id  INTEGER NOT NULL REFERENCES users (id),
    goods_id INTEGER NOT NULL REFERENCES goods (id),
    qty      INTEGER NOT NULL CHECK (qty BETWEEN 1 AND 99),
    -- the price the shopper saw when adding, so a re-price is shown before checkout.
    seen_fen INTEGER NOT NULL,
    added_at TEXT    NOT NULL,
    PRIMARY KEY (user_id, goods_id)
);

-- migrate 2: one row, made with the database: sessions carry its token, so a cookie from
-- an earlier shop.db (deleted and recreated, same session key) is not taken for the user
-- who now has the same id.
CREATE TABLE installation (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT    NOT NULL
);
INSERT INTO installation (id, token) VALUES (1, {{random_token}});

-- migrate 3: this release. Sessions live on the server, so logging out ends one;
-- anonymous junk keeps counts and a bounded sample instead of a row per message;
-- payment events name Alipay's trade number in a column of their own.
CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY, -- random, carried by the session cookie
    user_id    INTEGER NOT NULL REFERENCES users (id),
    created_at TEXT    NOT NULL,
    expires_at TEXT    NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Messages that failed their signature (or could not be read): how many per reason,
-- and the latest few, truncated, in a fixed ring of slots.
CREATE TABLE junk_counts (
    source   TEXT    NOT NULL,
    reason   TEXT    NOT NULL,
    count    INTEGER NOT NULL,
    first_at TEXT    NOT NULL,
    last_at  TEXT    NOT NULL,
    PRIMARY KEY (source, reason)
);
CREATE TABLE junk_samples (
    slot       INTEGER PRIMARY KEY,
    source     TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    raw        TEXT    NOT NULL,
    request_id TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);

ALTER TABLE payment_events ADD COLUMN trade_no TEXT NOT NULL DEFAULT '';
CREATE INDEX payment_events_flagged ON payment_events (created_at) WHERE verdict = 'flagged';

-- Goods have a category (the catalogue's filter) and may be virtual (a course, a gift
-- card): an order of virtual goods only needs no address and counts as received once paid.
ALTER TABLE goods ADD COLUMN category TEXT NOT NULL DEFAULT '';
ALTER TABLE goods ADD COLUMN virtual BOOLEAN NOT NULL DEFAULT FALSE;

-- The shopper's address book; at most one default each.
CREATE TABLE addresses (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    name       TEXT    NOT NULL,
    phone      TEXT    NOT NULL,
    region     TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT    NOT NULL
);
CREATE INDEX addresses_user_id ON addresses (user_id, id);
CREATE UNIQUE INDEX addresses_one_default ON addresses (user_id) WHERE is_default;

-- An order keeps a snapshot of the address chosen at checkout (empty for virtual goods),
-- and its fulfilment beside its payment status: unshipped → shipped → received.
ALTER TABLE orders ADD COLUMN needs_shipping BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE orders ADD COLUMN ship_name      TEXT    NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN ship_phone     TEXT    NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN ship_region    TEXT    NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN ship_detail    TEXT    NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN fulfilment     TEXT    NOT NULL DEFAULT 'unshipped'
    CHECK (fulfilment IN ('unshipped', 'shipped', 'received'));
ALTER TABLE orders ADD COLUMN carrier        TEXT    NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN tracking_no    TEXT    NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN shipped_at     TEXT;
ALTER TABLE orders ADD COLUMN received_at    TEXT;
-- The shopper's order tabs (待付款, 待发货, …) list one state at a time.
CREATE INDEX orders_user_state ON orders (user_id, status, fulfilment, id);

-- Operators (店铺运营) are not shoppers: their own table, sessions and log.
CREATE TABLE operators (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    TEXT    NOT NULL
);
CREATE TABLE operator_sessions (
    id          TEXT    PRIMARY KEY, -- the hash of the id the cookie carries
    operator_id INTEGER NOT NULL REFERENCES operators (id),
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL
);
CREATE INDEX operator_sessions_operator_id ON operator_sessions (operator_id);

-- Every operator action (and the shop's own on their behalf: operator_id NULL), written
-- in the transaction of the action itself: who, what, when, before and after.
CREATE TABLE operator_actions (
    id          INTEGER PRIMARY KEY,
    operator_id INTEGER REFERENCES operators (id),
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    order_id    INTEGER REFERENCES orders (id),
    before      TEXT    NOT NULL DEFAULT '',
    after       TEXT    NOT NULL DEFAULT '',
    note        TEXT    NOT NULL DEFAULT '',
    created_at  TEXT    NOT NULL
);
CREATE INDEX operator_actions_order_id ON operator_actions (order_id, id);
CREATE INDEX operator_actions_created_at ON operator_actions (created_at);

-- A shopper's 申请退款, waiting for an operator (at most one waiting per order).
CREATE TABLE refund_requests (
    id          INTEGER PRIMARY KEY,
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    user_id     INTEGER NOT NULL REFERENCES users (id),
    amount_fen  INTEGER NOT NULL CHECK (amount_fen > 0),
    reason      TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'approved', 'refused')),
    note        TEXT    NOT NULL DEFAULT '',
    operator_id INTEGER REFERENCES operators (id),
    created_at  TEXT    NOT NULL,
    decided_at  TEXT
);
CREATE INDEX refund_requests_order_id ON refund_requests (order_id);
CREATE INDEX refund_requests_waiting ON refund_requests (created_at) WHERE status = 'waiting';
CREATE UNIQUE INDEX refund_requests_one_waiting ON refund_requests (order_id) WHERE status = 'waiting';

-- Money going back. A refund is a row, committed with its out_request_no before Alipay is
-- called and kept for every retry; it ends succeeded or failed. trade_no is the Alipay
-- trade refunded: the order's own, or a payment flagged on it (paid after cancel).
CREATE TABLE refunds (
    id             INTEGER PRIMARY KEY,
    order_id       INTEGER NOT NULL REFERENCES orders (id),
    trade_no       TEXT    NOT NULL,
    out_request_no TEXT    NOT NULL UNIQUE,
    amount_fen     INTEGER NOT NULL CHECK (amount_fen > 0),
    reason         TEXT    NOT NULL DEFAULT '',
    source         TEXT    NOT NULL CHECK (source IN ('operator', 'shopper', 'auto', 'alipay')),
    status         TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    restock        BOOLEAN NOT NULL DEFAULT FALSE,
    operator_id    INTEGER REFERENCES operators (id),
    request_id     INTEGER REFERENCES refund_requests (id),
    fail_reason    TEXT    NOT NULL DEFAULT '',
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_try_at    TEXT,
    created_at     TEXT    NOT NULL,
    settled_at     TEXT
);
CREATE INDEX refunds_order_id ON refunds (order_id);
CREATE INDEX refunds_trade_no ON refunds (trade_no);
CREATE INDEX refunds_due ON refunds (next_try_at) WHERE status = 'pending';
CREATE INDEX refunds_created_at ON refunds (created_at);

-- Restock happens once per order, whatever the number of refunds.
ALTER TABLE orders ADD COLUMN restocked BOOLEAN NOT NULL DEFAULT FALSE;

-- A payment event's amount (for a payment), and for a flagged one what was done about
-- it: a refund, or an operator's resolution with a note.
ALTER TABLE payment_events ADD COLUMN amount_fen  INTEGER;
ALTER TABLE payment_events ADD COLUMN refund_id   INTEGER REFERENCES refunds (id);
ALTER TABLE payment_events ADD COLUMN resolved_by INTEGER REFERENCES operators (id);
ALTER TABLE payment_events ADD COLUMN resolved_at TEXT;
ALTER TABLE payment_events ADD COLUMN resolution  TEXT NOT NULL DEFAULT '';

-- The back office's order list and search, fast at a million orders.
CREATE INDEX orders_created_at ON orders (created_at);
CREATE INDEX orders_status ON orders (status, id);
CREATE INDEX orders_state ON orders (status, fulfilment, id);
CREATE INDEX orders_to_ship ON orders (id) WHERE status = 'paid' AND fulfilment = 'unshipped';
-- AUTO_RECEIVE's scan: shipped orders by shipping time.
CREATE INDEX orders_shipped ON orders (shipped_at) WHERE status = 'paid' AND fulfilment = 'shipped';
CREATE INDEX orders_trade_no ON orders (trade_no) WHERE trade_no <> '';
CREATE INDEX orders_ship_phone ON orders (ship_phone) WHERE ship_phone <> '';
-- The dashboard's sales by day: paid time and amount, read from the index alone.
CREATE INDEX orders_paid_at ON orders (paid_at, total_fen) WHERE paid_at IS NOT NULL;
-- When Alipay finished the trade (TRADE_FINISHED: past its refund window), refunds end.
ALTER TABLE orders ADD COLUMN finished_at TEXT;

-- What Alipay says about a payment beyond its total: the buyer's open id (apps made since
-- 2023 get buyer_open_id, not buyer_id), what the buyer actually paid and what the shop
-- received (a coupon can make both less than total_amount).
ALTER TABLE orders ADD COLUMN buyer_open_id TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN buyer_paid_fen INTEGER;
ALTER TABLE orders ADD COLUMN receipt_fen INTEGER;

-- The daily reconciliation against Alipay's trade bill: one row per Beijing day, and
-- every difference found.
CREATE TABLE reconciliations (
    bill_date   TEXT    PRIMARY KEY, -- yyyy-mm-dd, Beijing
    status      TEXT    NOT NULL CHECK (status IN ('clean', 'differences', 'failed')),
    payments    INTEGER NOT NULL DEFAULT 0, -- rows of the bill
    refunds     INTEGER NOT NULL DEFAULT 0,
    differences INTEGER NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try_at TEXT,
    checked_at  TEXT    NOT NULL
);
CREATE TABLE reconciliation_diffs (
    id             INTEGER PRIMARY KEY,
    bill_date      TEXT    NOT NULL REFERENCES reconciliations (bill_date),
    kind           TEXT    NOT NULL CHECK (kind IN ('missing_in_shop', 'missing_at_alipay', 'amount_differs')),
    what           TEXT    NOT NULL CHECK (what IN ('payment', 'refund')),
    out_trade_no   TEXT    NOT NULL DEFAULT '',
    trade_no       TEXT    NOT NULL DEFAULT '',
    out_request_no TEXT    NOT NULL DEFAULT '',
    shop_fen       INTEGER,
    alipay_fen     INTEGER,
    note           TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX reconciliation_diffs_date ON reconciliation_diffs (bill_date, id);
CREATE INDEX payment_events_trade_no ON payment_events (trade_no) WHERE trade_no <> '';
CREATE INDEX refunds_settled_at ON refunds (settled_at) WHERE status = 'succeeded';

-- Due work is leased: a worker claims a batch of orders or refunds for LeaseTTL, so
-- instances sharing one database never work the same item at once, and the items of an
-- instance that died are taken over once its lease has run out.
ALTER TABLE orders ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN lease_until TEXT;
ALTER TABLE refunds ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE refunds ADD COLUMN lease_until TEXT;
-- Jobs one instance at a time does for all (the daily reconciliation, the janitors):
-- one row per job, naming who holds it and until when.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    held_until TEXT NOT NULL
);
-- Uploaded goods images live in the database, so every instance (and every backup) has
-- them; MEDIA_DIR only caches them as files.
CREATE TABLE media (
    name       TEXT PRIMARY KEY, -- content hash and type: 32 hex digits, .png or .jpg
    data       BLOB NOT NULL,
    created_at TEXT NOT NULL
);

-- migrate 4: an account's login attempts are counted with the account, so that every
-- instance sharing the database spends from the same allowance: login_full_at is when
-- the account's allowance is whole again (NULL: it is). See store/logins.go.
ALTER TABLE users ADD COLUMN login_full_at TEXT;
ALTER TABLE operators ADD COLUMN login_full_at TEXT;
