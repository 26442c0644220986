package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
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
	// answers about refunds
	SourceRefund      = "refund"
	SourceRefundQuery = "refund_query"
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
	// For a payment: its amount. For a flagged one: the refund made for it, or how an
	// operator resolved it.
	AmountFen  sql.NullInt64 `db:"amount_fen"`
	RefundID   sql.NullInt64 `db:"refund_id"`
	ResolvedBy sql.NullInt64 `db:"resolved_by"`
	ResolvedAt Time          `db:"resolved_at"`
	Resolution string        `db:"resolution"`
	// ack: a flagged payment the shop has recorded and is acting on (an automatic
	// refund, the operator's queue), so Alipay need not resend it.
	ack bool
}

const eventColumns = `id, order_id, out_trade_no, source, notify_id, trade_status, trade_no, verdict, reason, raw, request_id,
	created_at, amount_fen, refund_id, resolved_by, resolved_at, resolution`

// Acknowledged reports whether Alipay should be told the message was received: when it
// is applied, was already applied, needs nothing, or is a payment the shop has recorded
// and acts on (refunded automatically, or queued for the operator). A message that
// failed a check (a wrong amount among them) is not.
func (e Event) Acknowledged() bool {
	return e.Verdict == VerdictApplied || e.Verdict == VerdictDuplicate || e.Verdict == VerdictIgnored || e.ack
}

// Payment is a confirmed payment as Alipay reports it.
type Payment struct {
	TradeNo      string
	BuyerID      string
	BuyerLogonID string
	Amount       money.Fen
	PaidAt       time.Time
	Finished     bool // TRADE_FINISHED: paid, and past Alipay's refund window
	BuyerOpenID  string
	BuyerPaid    sql.NullInt64 // buyer_pay_amount, when Alipay said
	Receipt      sql.NullInt64 // receipt_amount, when Alipay said
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
		`INSERT INTO payment_events (order_id, out_trade_no, source, notify_id, trade_status, trade_no, verdict, reason, raw,
		                             request_id, created_at, amount_fen, refund_id, resolution)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		ev.OrderID, ev.OutTradeNo, ev.Source, ev.NotifyID, ev.TradeStatus, ev.TradeNo, ev.Verdict, ev.Reason, ev.Raw,
		ev.RequestID, ev.CreatedAt, ev.AmountFen, ev.RefundID, ev.Resolution)
}

// lockOrder reads the order inside the write transaction, locking its row where the
// engine has row locks, so the decision and the guarded UPDATE that follows see the same
// row and two transactions about one order run one after the other.
func (s *Store) lockOrder(ctx context.Context, tx txn, no string) (Order, error) {
	var o Order
	err := tx.GetContext(ctx, &o, `SELECT `+orderColumns+` FROM orders WHERE out_trade_no = ?`+s.dl.forUpdate, no)
	return o, notFound(err)
}

// payUnpaid makes an unpaid order of the amount paid (args: see ApplyPaid) and returns
// its id; no row if the order is not unpaid or not of that amount. An order of virtual
// goods only needs no delivery: paid is received.
const payUnpaid = `UPDATE orders SET status = 'paid', trade_no = ?, buyer_id = ?, buyer_logon_id = ?, paid_at = ?,
	        buyer_open_id = ?, buyer_paid_fen = ?, receipt_fen = ?, reconcile_at = NULL, finished_at = ?,
	        fulfilment = CASE WHEN needs_shipping THEN 'unshipped' ELSE 'received' END,
	        received_at = CASE WHEN needs_shipping THEN NULL ELSE ? END
	 WHERE out_trade_no = ? AND status = 'unpaid' AND total_fen = ? RETURNING id`

// lockOrderIfFree is lockOrder without the wait: ErrNotFound if another transaction
// holds the order (PostgreSQL) as well as if there is none.
func (s *Store) lockOrderIfFree(ctx context.Context, tx txn, no string) (Order, error) {
	lock := s.dl.forUpdate
	if lock != "" {
		lock += " SKIP LOCKED"
	}
	var o Order
	err := tx.GetContext(ctx, &o, `SELECT `+orderColumns+` FROM orders WHERE out_trade_no = ?`+lock, no)
	return o, notFound(err)
}

// ApplyPaid applies a verified "paid" message (notify or query answer) to order
// ev.OutTradeNo and records ev with the verdict, in one transaction. The unpaid→paid
// transition is one guarded UPDATE, so concurrent duplicates change the order once.
func (s *Store) ApplyPaid(ctx context.Context, ev Event, p Payment) (Event, error) {
	if ev.TradeNo == "" {
		ev.TradeNo = p.TradeNo
	}
	ev.AmountFen = sql.NullInt64{Int64: int64(p.Amount), Valid: true}
	// The usual case first: the first report of an unpaid order's payment, for its
	// amount. One guarded UPDATE finds, checks and changes the order, so concurrent
	// duplicates change it once; the other cases are decided on the locked order.
	var finished Time
	if p.Finished {
		finished = At(s.now())
	}
	payArgs := []any{p.TradeNo, p.BuyerID, p.BuyerLogonID, At(p.PaidAt), p.BuyerOpenID, p.BuyerPaid, p.Receipt, finished,
		At(p.PaidAt), ev.OutTradeNo, p.Amount}
	if s.dl.writableWith {
		// PostgreSQL: the UPDATE and its event in one statement, no transaction around
		// them (four round trips become one: a third of a notify's cost there).
		applied := ev
		applied.Verdict, applied.Reason, applied.CreatedAt = VerdictApplied, "unpaid → paid", At(s.now())
		var row struct {
			ID      int64 `db:"id"`
			OrderID int64 `db:"order_id"`
		}
		err := s.wdb.GetContext(ctx, &row, `WITH paid AS (`+payUnpaid+`)
			INSERT INTO payment_events (order_id, out_trade_no, source, notify_id, trade_status, trade_no, verdict, reason,
			                            raw, request_id, created_at, amount_fen)
			SELECT paid.id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS BIGINT) FROM paid RETURNING id, order_id`,
			append(payArgs, applied.OutTradeNo, applied.Source, applied.NotifyID, applied.TradeStatus, applied.TradeNo,
				applied.Verdict, applied.Reason, applied.Raw, applied.RequestID, applied.CreatedAt, applied.AmountFen)...)
		if err == nil {
			applied.ID, applied.OrderID = row.ID, sql.NullInt64{Int64: row.OrderID, Valid: true}
			return applied, nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return ev, err
		}
	}
	var autoRefund int64
	err := s.inTx(ctx, func(tx txn) error {
		autoRefund = 0
		if !s.dl.writableWith { // else tried just above
			var id int64
			err := tx.GetContext(ctx, &id, payUnpaid, payArgs...)
			if err == nil {
				ev.OrderID = sql.NullInt64{Int64: id, Valid: true}
				ev.Verdict, ev.Reason = VerdictApplied, "unpaid → paid"
				return s.insertEvent(ctx, tx, &ev)
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		// Not an unpaid order of that amount: its state is read under its lock, and
		// nothing below makes it paid (unpaid is only ever the first state).
		o, err := s.lockOrderIfFree(ctx, tx, ev.OutTradeNo)
		if err == ErrNotFound && s.dl.forUpdate != "" {
			// Locked by another transaction (or no such order). A report of a payment
			// already applied is recorded without waiting for the lock: nothing can undo
			// "paid with this trade_no" (paid only becomes refunded, the trade_no stays),
			// so replays of one notify don't queue on one row (PostgreSQL served them at
			// 40% of SQLite's rate). Anything else waits its turn.
			err = tx.GetContext(ctx, &o, `SELECT `+orderColumns+` FROM orders WHERE out_trade_no = ?`, ev.OutTradeNo)
			if err == nil && settledBy(o, p) {
				ev.OrderID = sql.NullInt64{Int64: o.ID, Valid: true}
				ev.Verdict, ev.Reason = VerdictDuplicate, "already "+o.Status
				return s.insertEvent(ctx, tx, &ev)
			}
			o, err = s.lockOrder(ctx, tx, ev.OutTradeNo)
		}
		if err == ErrNotFound {
			ev.Verdict, ev.Reason, ev.AmountFen = VerdictRejected, "unknown out_trade_no", sql.NullInt64{}
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
		if (o.Status == StatusPaid || o.Status == StatusRefunded) && o.TradeNo == p.TradeNo {
			ev.Verdict, ev.Reason = VerdictDuplicate, "already "+o.Status
			if p.Finished && o.FinishedAt.IsZero() {
				// TRADE_FINISHED: the refund window passed; nothing changes but refunds end.
				ev.Reason += "; trade finished, no more refunds"
				if _, err := tx.ExecContext(ctx, `UPDATE orders SET finished_at = ? WHERE id = ? AND finished_at IS NULL`,
					At(s.now()), o.ID); err != nil {
					return err
				}
			}
			return s.insertEvent(ctx, tx, &ev)
		}
		// A payment the order can't take: a second trade for a paid order, or money for
		// an order already cancelled or closed (its cashier tab was still open). It is
		// flagged once per trade; the later reports of the same payment are duplicates.
		var known []struct {
			ID       int64         `db:"id"`
			RefundID sql.NullInt64 `db:"refund_id"`
		}
		if err := tx.SelectContext(ctx, &known, `SELECT id, refund_id FROM payment_events
			WHERE order_id = ? AND trade_no = ? AND verdict = 'flagged' AND trade_status IN ('TRADE_SUCCESS', 'TRADE_FINISHED')`,
			o.ID, p.TradeNo); err != nil {
			return err
		}
		if len(known) > 0 {
			ev.Verdict, ev.Reason = VerdictDuplicate, "payment already flagged (event "+strconv.FormatInt(known[0].ID, 10)+")"
			return s.insertEvent(ctx, tx, &ev)
		}
		ev.Verdict, ev.ack = VerdictFlagged, true
		if o.Status == StatusPaid || o.Status == StatusRefunded {
			ev.Reason = "already paid with trade_no " + o.TradeNo
			return s.insertEvent(ctx, tx, &ev)
		}
		// Paid after cancel or close: refunded in full automatically, exactly once (the
		// out_request_no is the trade's, so no report of it can make a second).
		ev.Reason, ev.Resolution = "paid after the order was "+o.Status+": refunded automatically", "auto_refund"
		if err := s.insertEvent(ctx, tx, &ev); err != nil {
			return err
		}
		r, err := s.createRefundTx(ctx, tx, NewRefund{OrderNo: o.OutTradeNo, TradeNo: p.TradeNo, Amount: p.Amount,
			Reason: "订单" + statusWord(o.Status) + "后收到的付款，自动全额退回", Source: RefundAuto, By: System,
			OutRequestNo: "AUTO" + p.TradeNo})
		if err != nil {
			return err
		}
		ev.RefundID = sql.NullInt64{Int64: r.ID, Valid: true}
		autoRefund = r.ID
		_, err = tx.ExecContext(ctx, `UPDATE payment_events SET refund_id = ? WHERE id = ?`, r.ID, ev.ID)
		return err
	})
	if err == nil && autoRefund != 0 && s.refundDue != nil {
		s.refundDue(autoRefund)
	}
	return ev, err
}

// settledBy reports whether payment p is the one order o already took, so a report of
// it changes nothing: a duplicate (TRADE_FINISHED news still to record is not).
func settledBy(o Order, p Payment) bool {
	return (o.Status == StatusPaid || o.Status == StatusRefunded) && o.TradeNo == p.TradeNo && p.Amount == o.Total &&
		!(p.Finished && o.FinishedAt.IsZero())
}

// statusWord is a closed order's status in the words of a refund reason.
func statusWord(status string) string {
	if status == StatusCancelled {
		return "取消"
	}
	return "关闭"
}

// ApplyClosed moves an unpaid order to status (closed or cancelled), releases its
// reserved stock and records ev, in one transaction. An order no longer unpaid is left
// alone (verdict ignored, or duplicate if it already has that status).
func (s *Store) ApplyClosed(ctx context.Context, ev Event, status string) (Event, error) {
	return s.ApplyClosedBy(ctx, ev, status, System)
}

// ApplyClosedBy is ApplyClosed on someone's behalf: an operator's cancel is written to
// the operator-actions log in the same transaction.
func (s *Store) ApplyClosedBy(ctx context.Context, ev Event, status string, by Actor) (Event, error) {
	err := s.inTx(ctx, func(tx txn) error {
		o, err := s.lockOrder(ctx, tx, ev.OutTradeNo)
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
		if by.OperatorID != 0 {
			ref, target := orderRef(o)
			if err := s.logAction(ctx, tx, by, Action{Action: ActCancel, Target: target, OrderID: ref,
				Before: "待付款", After: "已取消"}); err != nil {
				return err
			}
		}
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
	TradeNo   string // Alipay's trade number, for the shopper to quote
	Refunding bool   // the refund is made or under way, not yet confirmed
	Refunded  bool   // the money went back (the refund succeeded, or Alipay closed the trade)
}

// UnappliedPayment finds the payment Alipay reported for orderID that the shop flagged
// instead of applying, and how far its refund has got: a succeeded refund of that trade,
// or a TRADE_CLOSED from Alipay for it (a full refund closes a trade, and a closed trade
// never reopens, so a late resend of the payment notify doesn't undo it). ok is false
// when there is none.
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
	if !ok {
		return u, false, nil
	}
	var statuses []string
	if err := s.db.SelectContext(ctx, &statuses, `SELECT status FROM refunds WHERE order_id = ? AND trade_no = ?`, orderID, u.TradeNo); err != nil {
		return u, ok, err
	}
	for _, st := range statuses {
		u.Refunded = u.Refunded || st == RefundSucceeded
		u.Refunding = u.Refunding || st == RefundPending
	}
	u.Refunded = u.Refunded || closed[u.TradeNo]
	return u, true, nil
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
