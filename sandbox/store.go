package sandbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3" // the emulator keeps its own SQLite file
)

// Trade statuses, spelled as Alipay spells them.
const (
	statusWait    = "WAIT_BUYER_PAY"
	statusSuccess = "TRADE_SUCCESS"
	statusClosed  = "TRADE_CLOSED"
)

// Notification delivery states.
const (
	deliveryPending   = "pending"
	deliveryDelivered = "delivered"
	deliveryGaveUp    = "gave_up"
)

// Times are stored as Unix milliseconds so the injected clock round-trips exactly.
const schema = `
CREATE TABLE IF NOT EXISTS trades (
	out_trade_no    TEXT PRIMARY KEY,
	trade_no        TEXT NOT NULL UNIQUE,
	app_id          TEXT NOT NULL,
	subject         TEXT NOT NULL,
	body            TEXT NOT NULL DEFAULT '',
	total_fen       INTEGER NOT NULL,
	refunded_fen    INTEGER NOT NULL DEFAULT 0,
	status          TEXT NOT NULL,
	notify_url      TEXT NOT NULL DEFAULT '',
	return_url      TEXT NOT NULL DEFAULT '',
	passback_params TEXT NOT NULL DEFAULT '',
	time_expire     TEXT NOT NULL DEFAULT '',
	timeout_express TEXT NOT NULL DEFAULT '',
	expires_at      INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	paid_at         INTEGER,
	closed_at       INTEGER,
	next_fault      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS trades_wait ON trades(status, expires_at);
CREATE TABLE IF NOT EXISTS refunds (
	out_trade_no   TEXT NOT NULL REFERENCES trades(out_trade_no),
	out_request_no TEXT NOT NULL,
	amount_fen     INTEGER NOT NULL,
	refunded_at    INTEGER NOT NULL,
	PRIMARY KEY (out_trade_no, out_request_no)
);
CREATE TABLE IF NOT EXISTS notifications (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	out_trade_no TEXT NOT NULL REFERENCES trades(out_trade_no),
	notify_id    TEXT NOT NULL UNIQUE,
	notify_url   TEXT NOT NULL,
	params       TEXT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	status       TEXT NOT NULL,
	next_at      INTEGER NOT NULL,
	created_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications(status, next_at);
CREATE TABLE IF NOT EXISTS attempts (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	notification_id INTEGER NOT NULL REFERENCES notifications(id),
	out_trade_no    TEXT NOT NULL,
	at              INTEGER NOT NULL,
	http_status     INTEGER NOT NULL DEFAULT 0,
	body            TEXT NOT NULL DEFAULT '',
	error           TEXT NOT NULL DEFAULT '',
	fault           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS attempts_trade ON attempts(out_trade_no, at);
`

type tradeRow struct {
	OutTradeNo     string        `db:"out_trade_no"`
	TradeNo        string        `db:"trade_no"`
	AppID          string        `db:"app_id"`
	Subject        string        `db:"subject"`
	Body           string        `db:"body"`
	TotalFen       int64         `db:"total_fen"`
	RefundedFen    int64         `db:"refunded_fen"`
	Status         string        `db:"status"`
	NotifyURL      string        `db:"notify_url"`
	ReturnURL      string        `db:"return_url"`
	PassbackParams string        `db:"passback_params"`
	TimeExpire     string        `db:"time_expire"`
	TimeoutExpress string        `db:"timeout_express"`
	ExpiresAt      int64         `db:"expires_at"`
	CreatedAt      int64         `db:"created_at"`
	PaidAt         sql.NullInt64 `db:"paid_at"`
	ClosedAt       sql.NullInt64 `db:"closed_at"`
	NextFault      string        `db:"next_fault"`
}

type refundRow struct {
	OutTradeNo   string `db:"out_trade_no"`
	OutRequestNo string `db:"out_request_no"`
	AmountFen    int64  `db:"amount_fen"`
	RefundedAt   int64  `db:"refunded_at"`
}

type notificationRow struct {
	ID         int64  `db:"id"`
	OutTradeNo string `db:"out_trade_no"`
	NotifyID   string `db:"notify_id"`
	NotifyURL  string `db:"notify_url"`
	Params     string `db:"params"`
	Attempts   int    `db:"attempts"`
	Status     string `db:"status"`
	NextAt     int64  `db:"next_at"`
	CreatedAt  int64  `db:"created_at"`
}

type attemptRow struct {
	ID             int64  `db:"id"`
	NotificationID int64  `db:"notification_id"`
	OutTradeNo     string `db:"out_trade_no"`
	At             int64  `db:"at"`
	HTTPStatus     int    `db:"http_status"`
	Body           string `db:"body"`
	Error          string `db:"error"`
	Fault          string `db:"fault"`
}

var errNotFound = errors.New("not found")

func openDB(path string) (*sqlx.DB, error) {
	if path == "" {
		return nil, errors.New("sandbox: DBPath is required")
	}
	dsn := "file:" + path + "?_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on&_txlock=immediate"
	db, err := sqlx.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("sandbox: schema: %w", err)
	}
	return db, nil
}

// queryer lets the helpers below run on the DB or inside a transaction.
type queryer interface {
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func getTrade(ctx context.Context, q queryer, outTradeNo string) (*tradeRow, error) {
	var t tradeRow
	err := q.GetContext(ctx, &t, `SELECT * FROM trades WHERE out_trade_no = ?`, outTradeNo)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	return &t, err
}

func getTradeByTradeNo(ctx context.Context, q queryer, tradeNo string) (*tradeRow, error) {
	var t tradeRow
	err := q.GetContext(ctx, &t, `SELECT * FROM trades WHERE trade_no = ?`, tradeNo)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	return &t, err
}

func attemptsForTrade(ctx context.Context, q queryer, outTradeNo string) ([]attemptRow, error) {
	var as []attemptRow
	err := q.SelectContext(ctx, &as, `SELECT * FROM attempts WHERE out_trade_no = ? ORDER BY at, id`, outTradeNo)
	return as, err
}

// insertNotification queues a notification for immediate delivery.
func insertNotification(ctx context.Context, q queryer, outTradeNo, notifyURL string, params url.Values, now int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO notifications
		(out_trade_no, notify_id, notify_url, params, attempts, status, next_at, created_at)
		VALUES (?, ?, ?, ?, 0, ?, ?, ?)`,
		outTradeNo, newNotifyID(), notifyURL, params.Encode(), deliveryPending, now, now)
	return err
}
