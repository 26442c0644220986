package store

import (
	"context"
	"database/sql"
	"time"

	"storefront/money"
)

// Event verdicts: what the shop made of an Alipay message.
const (
	VerdictApplied   = "applied"   // changed the order
	VerdictDuplicate = "duplicate" // already applied earlier; nothing to do
	VerdictIgnored   = "ignored"   // valid, but nothing to change (WAIT_BUYER_PAY, close of a paid order)
	VerdictRejected  = "rejected"  // failed a check (signature, app_id, seller_id, unknown order)
	VerdictFlagged   = "flagged"   // verified but contradicts the order: for the operator, never applied
	VerdictVerified  = "verified"  // a return whose signature checked out (display only)
)

// Event sources.
const (
	SourceNotify = "notify"
	SourceReturn = "return"
	SourceQuery  = "query"
	SourceClose  = "close"
)

// Event is one Alipay message, as received, and the shop's verdict on it.
type Event struct {
	ID          int64         `db:"id"`
	OrderID     sql.NullInt64 `db:"order_id"`
	OutTradeNo  string        `db:"out_trade_no"`
	Source      string        `db:"source"`
	NotifyID    string        `db:"notify_id"`
	TradeStatus string        `db:"trade_status"`
	TradeNo     string        `db:"trade_no"` // Alipay's, when the message names one
	Verdict     string        `db:"verdict"`
	Reason      string        `db:"reason"`
	Raw         string        `db:"raw"`
	RequestID   string        `db:"request_id"`
	CreatedAt   Time          `db:"created_at"`
}

const eventColumns = `id, order_id, out_trade_no, source, notify_id, trade_status, trade_no, verdict, reason, raw, request_id, created_at`

// Acknowledged reports whether Alipay should be told the message was received: only
// when it is applied, was already applied, or needs nothing.
func (e Event) Acknowledged() bool {
	return e.Verdict == VerdictApplied || e.Verdict == VerdictDuplicate || e.Verdict == VerdictIgnored
}

// Payment is a confirmed payment as Alipay reports it.
type Payment struct {
	TradeNo      string
	BuyerID      string
	BuyerLogonID string
	Amount       money.Fen
	PaidAt       time.Time
}

// RecordEvent stores an event that changes no order (rejected, verified, ignored).
func (s *Store) RecordEvent(ctx context.Context, ev Event) (Event, error) {
	err := s.inTx(ctx, func(tx txn) error {
		if ev.OrderID.Valid || ev.OutTradeNo == "" {
			return s.insertEvent(ctx, tx, &ev)
		}
		var id int64
		if err := tx.GetContext(ctx, &id, `SELECT id FROM orders WHERE out_trade_no = ?`, ev.OutTradeNo); err == nil {
			ev.OrderID = sql.NullInt64{Int64: id, Valid: true}
		}
		return s.insertEvent(ctx, tx, &ev)
	})
	return ev, err
}

func (s *Store) insertEvent(ctx context.Context, tx txn, ev *Event) error {
	ev.CreatedAt = At(s.now())
	return tx.GetContext(ctx, &ev.ID,
		`INSERT INTO payment_events (order_id, out_trade_no, source, notify_id, trade_status, trade_no, verdict, reason, raw, request_id, created_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		ev.OrderID, ev.OutTradeNo, ev.Source, ev.NotifyID, ev.TradeStatus, ev.TradeNo, ev.Verdict, ev.Reason, ev.Raw, ev.RequestID, ev.CreatedAt)
}

// lockOrder reads the order inside the write transaction, so the decision and the
// guarded UPDATE that follows see the same row.
func lockOrder(ctx context.Context, tx txn, no string) (Order, error) {
	var o Order
	err := tx.GetContext(ctx, &o, `SELECT `+orderColumns+` FROM orders WHERE out_trade_no = ?`, no)
	return o, notFound(err)
}

// ApplyPaid applies a verified "paid" message (notify or query answer) to order
// ev.OutTradeNo and records ev with the verdict, in one transaction. The unpaid→paid
// transition is one guarded UPDATE, so concurrent duplicates change the order once.
func (s *Store) ApplyPaid(ctx context.Context, ev Event, p Payment) (Event, error) {
	err := s.inTx(ctx, func(tx txn) error {
		o, err := lockOrder(ctx, tx, ev.OutTradeNo)
		if err == ErrNotFound {
			ev.Verdict, ev.Reason = VerdictRejected, "unknown out_trade_no"
			return s.insertEvent(ctx, tx, &ev)
		} else if err != nil {
			return err
		}
		ev.OrderID = sql.NullInt64{Int64: o.ID, Valid: true}
		if p.Amount != o.Total {
			ev.Verdict = VerdictFlagged
			ev.Reason = "total_amount " + p.Amount.String() + " != order amount " + o.Total.String()
			return s.insertEvent(ctx, tx, &ev)
		}
		// An order of virtual goods only needs no delivery: paid is received.
		res, err := tx.ExecContext(ctx,
			`UPDATE orders SET status = 'paid', trade_no = ?, buyer_id = ?, buyer_logon_id = ?, paid_at = ?,
			        reconcile_at = NULL,
			        fulfilment = CASE WHEN needs_shipping THEN 'unshipped' ELSE 'received' END,
			        received_at = CASE WHEN needs_shipping THEN NULL ELSE ? END
			 WHERE id = ? AND status = 'unpaid'`,
			p.TradeNo, p.BuyerID, p.BuyerLogonID, At(p.PaidAt), At(p.PaidAt), o.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			ev.Verdict, ev.Reason = VerdictApplied, "unpaid → paid"
			return s.insertEvent(ctx, tx, &ev)
		}
		switch {
		case (o.Status == StatusPaid || o.Status == StatusRefunded) && o.TradeNo == p.TradeNo:
			ev.Verdict, ev.Reason = VerdictDuplicate, "already "+o.Status
		case o.Status == StatusPaid || o.Status == StatusRefunded:
			ev.Verdict, ev.Reason = VerdictFlagged, "already paid with trade_no "+o.TradeNo
		default:
			ev.Verdict, ev.Reason = VerdictFlagged, "paid after the order was "+o.Status+": refund needed"
		}
		return s.insertEvent(ctx, tx, &ev)
	})
	return ev, err
}

// ApplyClosed moves an unpaid order to status (closed or cancelled), releases its
// reserved stock and records ev, in one transaction. An order no longer unpaid is left
// alone (verdict ignored, or duplicate if it already has that status).
func (s *Store) ApplyClosed(ctx context.Context, ev Event, status string) (Event, error) {
	err := s.inTx(ctx, func(tx txn) error {
		o, err := lockOrder(ctx, tx, ev.OutTradeNo)
		if err == ErrNotFound {
			ev.Verdict, ev.Reason = VerdictRejected, "unknown out_trade_no"
			return s.insertEvent(ctx, tx, &ev)
		} else if err != nil {
			return err
		}
		ev.OrderID = sql.NullInt64{Int64: o.ID, Valid: true}
		res, err := tx.ExecContext(ctx,
			`UPDATE orders SET status = ?, closed_at = ?, reconcile_at = NULL WHERE id = ? AND status = 'unpaid'`,
			status, At(s.now()), o.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			ev.Verdict, ev.Reason = VerdictIgnored, "order is "+o.Status
			if o.Status == status {
				ev.Verdict = VerdictDuplicate
			}
			return s.insertEvent(ctx, tx, &ev)
		}
		// Give the reserved units back; goods with unlimited stock stay NULL.
		_, err = tx.ExecContext(ctx,
			`UPDATE goods SET stock = stock + (SELECT COALESCE(SUM(qty), 0) FROM order_items
			                                   WHERE order_id = ? AND goods_id = goods.id)
			 WHERE stock IS NOT NULL AND id IN (SELECT goods_id FROM order_items WHERE order_id = ?)`,
			o.ID, o.ID)
		if err != nil {
			return err
		}
		ev.Verdict, ev.Reason = VerdictApplied, "unpaid → "+status
		return s.insertEvent(ctx, tx, &ev)
	})
	if err == nil && ev.Verdict == VerdictApplied {
		s.goodsChanged(ctx) // stock was released
	}
	return ev, err
}

// Unapplied is a payment Alipay took for an order the shop did not mark paid (paid after
// the order was cancelled or closed): money owed back to the buyer.
type Unapplied struct {
	TradeNo  string // Alipay's trade number, for the shopper to quote
	Refunded bool   // a later TRADE_CLOSED from Alipay says the money went back
}

// UnappliedPayment finds the payment Alipay reported for orderID that the shop flagged
// instead of applying, and whether Alipay has since closed that trade (a full refund
// closes it; a closed trade never reopens, so a late resend of the payment notify
// doesn't undo it). ok is false when there is none.
func (s *Store) UnappliedPayment(ctx context.Context, orderID int64) (u Unapplied, ok bool, err error) {
	rows := []struct {
		Status  string `db:"trade_status"`
		Verdict string `db:"verdict"`
		TradeNo string `db:"trade_no"`
	}{}
	// Only Alipay's own word counts (notify, query).
	err = s.db.SelectContext(ctx, &rows, `
		SELECT trade_status, verdict, trade_no
		FROM payment_events
		WHERE order_id = ? AND source IN ('notify', 'query')
		  AND ((verdict = 'flagged' AND trade_status IN ('TRADE_SUCCESS', 'TRADE_FINISHED'))
		       OR (verdict <> 'rejected' AND trade_status = 'TRADE_CLOSED'))
		ORDER BY id`, orderID)
	if err != nil {
		return Unapplied{}, false, err
	}
	closed := map[string]bool{}
	for _, r := range rows {
		if r.Verdict == VerdictFlagged {
			u, ok = Unapplied{TradeNo: r.TradeNo}, true
		} else if r.TradeNo != "" {
			closed[r.TradeNo] = true
		}
	}
	u.Refunded = ok && closed[u.TradeNo]
	return u, ok, nil
}

// EventsForOrder lists an order's events, oldest first (operator view and tests).
func (s *Store) EventsForOrder(ctx context.Context, no string) ([]Event, error) {
	var evs []Event
	err := s.db.SelectContext(ctx, &evs,
		`SELECT `+eventColumns+` FROM payment_events WHERE out_trade_no = ? ORDER BY id`, no)
	return evs, err
}

// CountEvents counts all events by verdict (tests and the reliability suite).
func (s *Store) CountEvents(ctx context.Context) (map[string]int, error) {
	rows := []struct {
		Verdict string `db:"verdict"`
		N       int    `db:"n"`
	}{}
	if err := s.db.SelectContext(ctx, &rows, `SELECT verdict, COUNT(*) AS n FROM payment_events GROUP BY verdict`); err != nil {
		return nil, err
	}
	m := map[string]int{}
	for _, r := range rows {
		m[r.Verdict] = r.N
	}
	return m, nil
}
