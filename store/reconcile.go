package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"storefront/money"
)

// Reconciliation is one day's comparison of the shop's books with Alipay's trade bill.
type Reconciliation struct {
	BillDate    string `db:"bill_date"` // yyyy-mm-dd, Beijing
	Status      string `db:"status"`    // clean, differences, failed
	Payments    int    `db:"payments"`
	Refunds     int    `db:"refunds"`
	Differences int    `db:"differences"`
	Error       string `db:"error"`
	Attempts    int    `db:"attempts"`
	NextTryAt   Time   `db:"next_try_at"`
	CheckedAt   Time   `db:"checked_at"`
}

// Difference is one thing the bill and the shop disagree about.
type Difference struct {
	ID           int64         `db:"id"`
	BillDate     string        `db:"bill_date"`
	Kind         string        `db:"kind"` // missing_in_shop, missing_at_alipay, amount_differs
	What         string        `db:"what"` // payment, refund
	OutTradeNo   string        `db:"out_trade_no"`
	TradeNo      string        `db:"trade_no"`
	OutRequestNo string        `db:"out_request_no"`
	ShopFen      sql.NullInt64 `db:"shop_fen"`
	AlipayFen    sql.NullInt64 `db:"alipay_fen"`
	Note         string        `db:"note"`
}

// Kinds of difference.
const (
	MissingInShop   = "missing_in_shop"
	MissingAtAlipay = "missing_at_alipay"
	AmountDiffers   = "amount_differs"
)

// ShopPayment is a payment as the shop's books have it.
type ShopPayment struct {
	OutTradeNo string    `db:"out_trade_no"`
	TradeNo    string    `db:"trade_no"`
	Amount     money.Fen `db:"amount"`
}

// PaymentsPaidIn lists the orders' own payments made in [from, to).
func (s *Store) PaymentsPaidIn(ctx context.Context, from, to time.Time) ([]ShopPayment, error) {
	var ps []ShopPayment
	err := s.db.SelectContext(ctx, &ps, `SELECT out_trade_no, trade_no, total_fen AS amount FROM orders
		WHERE paid_at >= ? AND paid_at < ? AND trade_no <> '' ORDER BY paid_at`, At(from), At(to))
	return ps, err
}

// PaymentByTradeNo finds what the shop knows of Alipay trade tradeNo: an order's own
// payment, or a payment flagged on an order (paid after cancel, a second payment).
func (s *Store) PaymentByTradeNo(ctx context.Context, tradeNo string) (ShopPayment, bool, error) {
	var p ShopPayment
	err := s.db.GetContext(ctx, &p, `SELECT out_trade_no, trade_no, total_fen AS amount FROM orders WHERE trade_no = ?`, tradeNo)
	if err == nil {
		return p, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return p, false, err
	}
	err = s.db.GetContext(ctx, &p, `SELECT out_trade_no, trade_no, COALESCE(amount_fen, 0) AS amount FROM payment_events
		WHERE trade_no = ? AND verdict = 'flagged' AND trade_status IN ('TRADE_SUCCESS', 'TRADE_FINISHED') ORDER BY id LIMIT 1`, tradeNo)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	return p, err == nil, err
}

// RefundsSettledIn lists the refunds that succeeded in [from, to).
func (s *Store) RefundsSettledIn(ctx context.Context, from, to time.Time) ([]Refund, error) {
	var rs []Refund
	err := s.db.SelectContext(ctx, &rs, `SELECT `+refundColumns+` FROM refunds r JOIN orders o ON o.id = r.order_id
		WHERE r.status = 'succeeded' AND r.settled_at >= ? AND r.settled_at < ? ORDER BY r.settled_at`, At(from), At(to))
	return rs, err
}

// RefundsOfTrade lists the refunds of Alipay trade tradeNo, oldest first.
func (s *Store) RefundsOfTrade(ctx context.Context, tradeNo string) ([]Refund, error) {
	var rs []Refund
	err := s.db.SelectContext(ctx, &rs, `SELECT `+refundColumns+` FROM refunds r JOIN orders o ON o.id = r.order_id
		WHERE r.trade_no = ? ORDER BY r.id`, tradeNo)
	return rs, err
}

// SaveReconciliation records a day's result and its differences, replacing any earlier
// run of the same day, in one transaction.
func (s *Store) SaveReconciliation(ctx context.Context, r Reconciliation, diffs []Difference) error {
	r.CheckedAt = At(s.now())
	r.Differences = len(diffs)
	return s.inTx(ctx, func(tx txn) error {
		// The day's row first: it locks the day, so two runs saving at once (the worker
		// and the command, on PostgreSQL) replace each other's differences, never add up.
		if _, err := tx.ExecContext(ctx, `INSERT INTO reconciliations (bill_date, status, payments, refunds, differences, error, attempts, next_try_at, checked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (bill_date) DO UPDATE SET status = excluded.status, payments = excluded.payments, refunds = excluded.refunds,
				differences = excluded.differences, error = excluded.error, attempts = excluded.attempts,
				next_try_at = excluded.next_try_at, checked_at = excluded.checked_at`,
			r.BillDate, r.Status, r.Payments, r.Refunds, r.Differences, truncateUTF8(r.Error, 500), r.Attempts, r.NextTryAt, r.CheckedAt); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM reconciliation_diffs WHERE bill_date = ?`, r.BillDate); err != nil {
			return err
		}
		for _, d := range diffs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO reconciliation_diffs (bill_date, kind, what, out_trade_no, trade_no, out_request_no,
				shop_fen, alipay_fen, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				r.BillDate, d.Kind, d.What, d.OutTradeNo, d.TradeNo, d.OutRequestNo, d.ShopFen, d.AlipayFen, d.Note); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReconciliationOf reads one day's result; ErrNotFound if the day was never checked.
func (s *Store) ReconciliationOf(ctx context.Context, day string) (Reconciliation, error) {
	var r Reconciliation
	err := s.db.GetContext(ctx, &r, `SELECT bill_date, status, payments, refunds, differences, error, attempts, next_try_at, checked_at
		FROM reconciliations WHERE bill_date = ?`, day)
	return r, notFound(err)
}

// Reconciliations lists the latest days checked, newest first.
func (s *Store) Reconciliations(ctx context.Context, limit int) ([]Reconciliation, error) {
	var rs []Reconciliation
	err := s.db.SelectContext(ctx, &rs, `SELECT bill_date, status, payments, refunds, differences, error, attempts, next_try_at, checked_at
		FROM reconciliations ORDER BY bill_date DESC LIMIT ?`, limit)
	return rs, err
}

// DifferencesOf lists a day's differences.
func (s *Store) DifferencesOf(ctx context.Context, day string) ([]Difference, error) {
	var ds []Difference
	err := s.db.SelectContext(ctx, &ds, `SELECT id, bill_date, kind, what, out_trade_no, trade_no, out_request_no, shop_fen, alipay_fen, note
		FROM reconciliation_diffs WHERE bill_date = ? ORDER BY id`, day)
	return ds, err
}

// OpenDifferences lists the differences of the latest days (for the back office).
func (s *Store) OpenDifferences(ctx context.Context, limit int) ([]Difference, error) {
	var ds []Difference
	err := s.db.SelectContext(ctx, &ds, `SELECT id, bill_date, kind, what, out_trade_no, trade_no, out_request_no, shop_fen, alipay_fen, note
		FROM reconciliation_diffs ORDER BY bill_date DESC, id LIMIT ?`, limit)
	return ds, err
}
