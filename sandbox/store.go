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

// Trade statuses, spelled as Alipay spells them, plus NOT_CREATED for a cashier that is
// open but whose trade does not exist yet (shown only by the automation API and console).
const (
	statusWait       = "WAIT_BUYER_PAY"
	statusSuccess    = "TRADE_SUCCESS"
	statusFinished   = "TRADE_FINISHED"
	statusClosed     = "TRADE_CLOSED"
	statusNotCreated = "NOT_CREATED"
)

// Notification delivery states.
const (
	deliveryPending   = "pending"
	deliveryDelivered = "delivered"
	deliveryGaveUp    = "gave_up"
)

// Cashier kinds: PC page pay and phone (WAP) pay.
const (
	methodPage = "page"
	methodWap  = "wap"
)

// Refund sources, as the console shows them.
const (
	refundByAPI     = "api"
	refundByConsole = "console"
)

// Times are stored as Unix milliseconds so the injected clock round-trips exactly.
//
// cashiers holds what a page-pay or WAP-pay request asked for, from the moment its
// cashier page is shown; trades holds the trade Alipay has once the buyer acts (scans,
// logs in or pays). trades.next_fault is a leftover of the one-fault-per-trade era:
// faults now live in their own table (several may be pending at once).
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
CREATE TABLE IF NOT EXISTS cashiers (
	out_trade_no    TEXT PRIMARY KEY,
	method          TEXT NOT NULL,
	app_id          TEXT NOT NULL,
	subject         TEXT NOT NULL,
	body            TEXT NOT NULL DEFAULT '',
	total_fen       INTEGER NOT NULL,
	notify_url      TEXT NOT NULL DEFAULT '',
	return_url      TEXT NOT NULL DEFAULT '',
	quit_url        TEXT NOT NULL DEFAULT '',
	passback_params TEXT NOT NULL DEFAULT '',
	time_expire     TEXT NOT NULL DEFAULT '',
	timeout_express TEXT NOT NULL DEFAULT '',
	expires_at      INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	opened_at       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS faults (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	out_trade_no TEXT NOT NULL,
	fault        TEXT NOT NULL,
	created_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS faults_trade ON faults(out_trade_no, id);
CREATE TABLE IF NOT EXISTS trade_flags (
	out_trade_no  TEXT PRIMARY KEY,
	refund_notify INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bill_links (
	token      TEXT PRIMARY KEY,
	bill_date  TEXT NOT NULL,
	expires_at INTEGER NOT NULL
);
`

// columnAdds bring a database made by an older emulator up to date; each runs only
// when its column is missing.
var columnAdds = []struct{ table, column, ddl string }{
	{"trades", "method", `ALTER TABLE trades ADD COLUMN method TEXT NOT NULL DEFAULT 'page'`},
	{"trades", "quit_url", `ALTER TABLE trades ADD COLUMN quit_url TEXT NOT NULL DEFAULT ''`},
	{"trades", "discount_fen", `ALTER TABLE trades ADD COLUMN discount_fen INTEGER NOT NULL DEFAULT 0`},
	{"trades", "buyer_open_id", `ALTER TABLE trades ADD COLUMN buyer_open_id TEXT NOT NULL DEFAULT ''`},
	{"trades", "return_v2", `ALTER TABLE trades ADD COLUMN return_v2 INTEGER NOT NULL DEFAULT 0`},
	{"trades", "finish_at", `ALTER TABLE trades ADD COLUMN finish_at INTEGER`},
	{"trades", "finished_at", `ALTER TABLE trades ADD COLUMN finished_at INTEGER`},
	{"refunds", "source", `ALTER TABLE refunds ADD COLUMN source TEXT NOT NULL DEFAULT 'api'`},
	{"refunds", "reason", `ALTER TABLE refunds ADD COLUMN reason TEXT NOT NULL DEFAULT ''`},
}

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
	NextFault      string        `db:"next_fault"` // legacy, always empty after openDB
	Method         string        `db:"method"`
	QuitURL        string        `db:"quit_url"`
	DiscountFen    int64         `db:"discount_fen"`  // a coupon taken at payment (fault "discount")
	BuyerOpenID    string        `db:"buyer_open_id"` // set: the buyer is known by open id (fault "open_id")
	ReturnV2       bool          `db:"return_v2"`     // the return URL is signed by the V2 rule (fault "v2_sign")
	FinishAt       sql.NullInt64 `db:"finish_at"`     // when the refund window ends (paid trades)
	FinishedAt     sql.NullInt64 `db:"finished_at"`
}

// paid reports whether money was taken (whatever happened after).
func (t *tradeRow) paid() bool { return t.PaidAt.Valid }

// receiptFen is what the merchant received: the total less a coupon.
func (t *tradeRow) receiptFen() int64 { return t.TotalFen - t.DiscountFen }

type cashierRow struct {
	OutTradeNo     string `db:"out_trade_no"`
	Method         string `db:"method"`
	AppID          string `db:"app_id"`
	Subject        string `db:"subject"`
	Body           string `db:"body"`
	TotalFen       int64  `db:"total_fen"`
	NotifyURL      string `db:"notify_url"`
	ReturnURL      string `db:"return_url"`
	QuitURL        string `db:"quit_url"`
	PassbackParams string `db:"passback_params"`
	TimeExpire     string `db:"time_expire"`
	TimeoutExpress string `db:"timeout_express"`
	ExpiresAt      int64  `db:"expires_at"`
	CreatedAt      int64  `db:"created_at"`
	OpenedAt       int64  `db:"opened_at"`
}

type refundRow struct {
	OutTradeNo   string `db:"out_trade_no"`
	OutRequestNo string `db:"out_request_no"`
	AmountFen    int64  `db:"amount_fen"`
	RefundedAt   int64  `db:"refunded_at"`
	Source       string `db:"source"`
	Reason       string `db:"reason"`
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

type faultRow struct {
	ID         int64  `db:"id"`
	OutTradeNo string `db:"out_trade_no"`
	Fault      string `db:"fault"`
	CreatedAt  int64  `db:"created_at"`
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
	// One connection: the emulator's transactions queue here in turn instead of
	// racing for SQLite's write lock, where under load (a test storm on a busy
	// machine) one could wait out busy_timeout and answer SYSTEM_ERROR.
	db.SetMaxOpenConns(1)
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sandbox: schema: %w", err)
	}
	return db, nil
}

func migrate(db *sqlx.DB) error {
	if _, err := db.Exec(schema); err != nil {
		return err
	}
	for _, c := range columnAdds {
		var n int
		if err := db.Get(&n, `SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, c.table, c.column); err != nil {
			return err
		}
		if n == 0 {
			if _, err := db.Exec(c.ddl); err != nil {
				return err
			}
		}
	}
	if _, err := db.Exec(`CREATE INDEX IF NOT EXISTS trades_finish ON trades(status, finish_at)`); err != nil {
		return err
	}
	// A fault pending in the old single slot moves to the faults table.
	if _, err := db.Exec(`INSERT INTO faults (out_trade_no, fault, created_at)
		SELECT out_trade_no, next_fault, created_at FROM trades WHERE next_fault != ''`); err != nil {
		return err
	}
	_, err := db.Exec(`UPDATE trades SET next_fault = '' WHERE next_fault != ''`)
	return err
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

func getCashier(ctx context.Context, q queryer, outTradeNo string) (*cashierRow, error) {
	var c cashierRow
	err := q.GetContext(ctx, &c, `SELECT * FROM cashiers WHERE out_trade_no = ?`, outTradeNo)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	return &c, err
}

func attemptsForTrade(ctx context.Context, q queryer, outTradeNo string) ([]attemptRow, error) {
	var as []attemptRow
	err := q.SelectContext(ctx, &as, `SELECT * FROM attempts WHERE out_trade_no = ? ORDER BY at, id`, outTradeNo)
	return as, err
}

func refundsForTrade(ctx context.Context, q queryer, outTradeNo string) ([]refundRow, error) {
	var rs []refundRow
	err := q.SelectContext(ctx, &rs, `SELECT * FROM refunds WHERE out_trade_no = ? ORDER BY refunded_at, out_request_no`, outTradeNo)
	return rs, err
}

// refundNotifyOn reports the trade's console switch for refund notifies (off by default:
// page pay usually sends none).
func refundNotifyOn(ctx context.Context, q queryer, outTradeNo string) (bool, error) {
	var on bool
	err := q.GetContext(ctx, &on, `SELECT refund_notify FROM trade_flags WHERE out_trade_no = ?`, outTradeNo)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return on, err
}

// insertNotification queues a notification for immediate delivery.
func insertNotification(ctx context.Context, q queryer, outTradeNo, notifyURL string, params url.Values, now int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO notifications
		(out_trade_no, notify_id, notify_url, params, attempts, status, next_at, created_at)
		VALUES (?, ?, ?, ?, 0, ?, ?, ?)`,
		outTradeNo, newNotifyID(), notifyURL, params.Encode(), deliveryPending, now, now)
	return err
}
