package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	"storefront/money"
	"storefront/shanghai"
)

// Refund states and sources (docs/payments.md, "Refunds").
const (
	RefundPending   = "pending"
	RefundSucceeded = "succeeded"
	RefundFailed    = "failed"

	RefundByOperator = "operator"
	RefundByShopper  = "shopper" // an approved 申请退款
	RefundAuto       = "auto"    // a payment for an order already cancelled or closed
	RefundByAlipay   = "alipay"  // made in Alipay's own console, found by the shop
)

// Errors of refunds and refund requests.
var (
	ErrRefundTooMuch    = errors.New("refund exceeds what is left to refund")
	ErrNotRefundable    = errors.New("no payment to refund on this order")
	ErrRequestWaiting   = errors.New("a refund request is already waiting")
	ErrRequestDecided   = errors.New("refund request already decided")
	ErrReasonRequired   = errors.New("a reason is required")
	ErrRefundWindowOver = errors.New("the trade is finished: Alipay takes no more refunds")
	// ErrRefundExists: the out_request_no given was used already. The refund that has it
	// comes back with this error when it is of the same order: a form sent twice.
	ErrRefundExists = errors.New("a refund with this out_request_no exists")
)

// Refund is money going back for one Alipay trade of an order.
type Refund struct {
	ID           int64         `db:"id"`
	OrderID      int64         `db:"order_id"`
	OutTradeNo   string        `db:"out_trade_no"`
	TradeNo      string        `db:"trade_no"`
	OutRequestNo string        `db:"out_request_no"`
	Amount       money.Fen     `db:"amount_fen"`
	Reason       string        `db:"reason"`
	Source       string        `db:"source"`
	Status       string        `db:"status"`
	Restock      bool          `db:"restock"`
	OperatorID   sql.NullInt64 `db:"operator_id"`
	RequestID    sql.NullInt64 `db:"request_id"`
	FailReason   string        `db:"fail_reason"`
	Attempts     int           `db:"attempts"`
	NextTryAt    Time          `db:"next_try_at"`
	CreatedAt    Time          `db:"created_at"`
	SettledAt    Time          `db:"settled_at"`
}

const refundColumns = `r.id, r.order_id, o.out_trade_no, r.trade_no, r.out_request_no, r.amount_fen, r.reason, r.source,
	r.status, r.restock, r.operator_id, r.request_id, r.fail_reason, r.attempts, r.next_try_at, r.created_at, r.settled_at`

// NewRefund asks for money back on an order.
type NewRefund struct {
	OrderNo string
	TradeNo string // the Alipay trade to refund; "" = the order's own payment
	Amount  money.Fen
	Reason  string
	Source  string
	Restock bool  // give the order's quantities back to stock once the refund succeeds
	Request int64 // the 申请退款 it answers, if any
	By      Actor
	// OutRequestNo is fixed by the caller when the refund must happen at most once for
	// a cause (an automatic refund: "AUTO" + trade_no); "" = a new one.
	OutRequestNo string
	// ForEvent is the flagged payment event this refund answers (the queue's 立即退款).
	ForEvent int64
}

// firstRefundTry is how long a pending refund waits for the worker after it was made:
// the request that made it calls Alipay at once, the worker is for when that fails.
const firstRefundTry = 30 * time.Second

// NewOutRequestNo is a fresh out_request_no: "RF" + yyyyMMddHHmmss (Beijing) + 10 random
// digits, within Alipay's 64 characters.
func NewOutRequestNo(now time.Time) string {
	n, err := rand.Int(rand.Reader, big.NewInt(10_000_000_000))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return "RF" + now.In(shanghai.Location()).Format("20060102150405") + fmt.Sprintf("%010d", n.Int64())
}

// CreateRefund records a pending refund and commits it before anyone calls Alipay, so a
// crash at any later point leaves a row the worker finishes. The insert itself is
// guarded in SQL: the pending and succeeded refunds of the trade never exceed what was
// paid, however many operators click at once (ErrRefundTooMuch).
func (s *Store) CreateRefund(ctx context.Context, n NewRefund) (Refund, error) {
	var r Refund
	err := s.inTx(ctx, func(tx txn) error {
		var err error
		r, err = s.createRefundTx(ctx, tx, n)
		return err
	})
	return r, err
}

func (s *Store) createRefundTx(ctx context.Context, tx txn, n NewRefund) (Refund, error) {
	if n.Amount <= 0 {
		return Refund{}, ErrRefundTooMuch
	}
	n.Reason = truncateUTF8(strings.TrimSpace(n.Reason), 256)
	o, err := s.lockOrder(ctx, tx, n.OrderNo)
	if err != nil {
		return Refund{}, err
	}
	limit, err := refundLimit(ctx, tx, o, &n.TradeNo)
	if err != nil {
		return Refund{}, err
	}
	now := s.now()
	if n.OutRequestNo == "" {
		n.OutRequestNo = NewOutRequestNo(now)
	} else {
		// A number the caller fixed (the operator's form carries one from when its page
		// was drawn) makes at most one refund: sent again, it finds the first. The
		// order's row is locked, so two sends of one form can't both miss it.
		had, err := refundByRequestNo(ctx, tx, n.OutRequestNo)
		switch {
		case err == nil && had.OrderID == o.ID:
			return had, ErrRefundExists
		case err == nil:
			return Refund{}, ErrRefundExists
		case err != ErrNotFound:
			return Refund{}, err
		}
	}
	r := Refund{OrderID: o.ID, OutTradeNo: o.OutTradeNo, TradeNo: n.TradeNo, OutRequestNo: n.OutRequestNo, Amount: n.Amount,
		Reason: n.Reason, Source: n.Source, Status: RefundPending, Restock: n.Restock, OperatorID: n.By.id(),
		RequestID: sql.NullInt64{Int64: n.Request, Valid: n.Request != 0}, NextTryAt: At(now.Add(firstRefundTry)), CreatedAt: At(now)}
	if n.Source == RefundAuto {
		r.NextTryAt = At(now) // nobody is waiting to send it: the worker does, at once
	}
	err = tx.GetContext(ctx, &r.ID,
		`INSERT INTO refunds (order_id, trade_no, out_request_no, amount_fen, reason, source, status, restock,
		                      operator_id, request_id, next_try_at, created_at)
		 SELECT ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?
		 WHERE (SELECT COALESCE(SUM(amount_fen), 0) FROM refunds
		        WHERE trade_no = ? AND status IN ('pending', 'succeeded')) + ? <= ?
		 RETURNING id`,
		r.OrderID, r.TradeNo, r.OutRequestNo, r.Amount, r.Reason, r.Source, r.Restock, r.OperatorID, r.RequestID,
		r.NextTryAt, r.CreatedAt, r.TradeNo, r.Amount, limit)
	if errors.Is(err, sql.ErrNoRows) {
		return Refund{}, ErrRefundTooMuch
	}
	if err != nil {
		return Refund{}, err
	}
	if n.ForEvent != 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE payment_events SET refund_id = ? WHERE id = ? AND order_id = ? AND verdict = 'flagged'`,
			r.ID, n.ForEvent, o.ID); err != nil {
			return Refund{}, err
		}
	}
	ref, target := orderRef(o)
	return r, s.logAction(ctx, tx, n.By, Action{Action: ActRefund, Target: target, OrderID: ref,
		After: changes("退款", r.Amount.Yuan(), "请求号", r.OutRequestNo, "来源", r.Source, "退回库存", yesNo(r.Restock)),
		Note:  r.Reason})
}

// refundLimit is what may be refunded in all on trade *tradeNo of o: the order's own
// payment ("" means that one, and is filled in), or a payment flagged on the order.
func refundLimit(ctx context.Context, tx txn, o Order, tradeNo *string) (money.Fen, error) {
	if *tradeNo == "" || *tradeNo == o.TradeNo {
		if o.TradeNo == "" || (o.Status != StatusPaid && o.Status != StatusRefunded) {
			return 0, ErrNotRefundable
		}
		if !o.FinishedAt.IsZero() {
			return 0, ErrRefundWindowOver
		}
		*tradeNo = o.TradeNo
		return o.Total, nil
	}
	var amount sql.NullInt64
	err := tx.GetContext(ctx, &amount, `SELECT MAX(amount_fen) FROM payment_events
		WHERE order_id = ? AND trade_no = ? AND verdict = 'flagged' AND trade_status IN ('TRADE_SUCCESS', 'TRADE_FINISHED')`,
		o.ID, *tradeNo)
	if err != nil {
		return 0, err
	}
	if !amount.Valid {
		return 0, ErrNotRefundable
	}
	return money.Fen(amount.Int64), nil
}

func yesNo(b bool) string {
	if b {
		return "是"
	}
	return "否"
}

// Refundable is what is left to refund on o's own payment.
func (s *Store) Refundable(ctx context.Context, o Order) (money.Fen, error) {
	if o.TradeNo == "" || (o.Status != StatusPaid && o.Status != StatusRefunded) {
		return 0, nil
	}
	var used money.Fen
	err := s.db.GetContext(ctx, &used, `SELECT COALESCE(SUM(amount_fen), 0) FROM refunds
		WHERE trade_no = ? AND status IN ('pending', 'succeeded')`, o.TradeNo)
	return max(o.Total-used, 0), err
}

// SettleRefund records Alipay's word that refund id succeeded, in one guarded
// transaction: the refund turns succeeded once (a failed one may turn out to have
// succeeded after all); the order's own payment adds it to refunded_fen and moves the
// order to refunded when all is back; restock happens once. changed is false when the
// refund had already succeeded.
func (s *Store) SettleRefund(ctx context.Context, id int64, at time.Time) (changed bool, err error) {
	err = s.inTx(ctx, func(tx txn) error {
		changed, err = s.settleRefundTx(ctx, tx, id, at)
		return err
	})
	if err == nil && changed {
		s.goodsChanged(ctx) // a restock may have moved stock
	}
	return changed, err
}

func (s *Store) settleRefundTx(ctx context.Context, tx txn, id int64, at time.Time) (bool, error) {
	var r Refund
	if err := tx.GetContext(ctx, &r, `SELECT `+refundColumns+` FROM refunds r JOIN orders o ON o.id = r.order_id WHERE r.id = ?`, id); err != nil {
		return false, notFound(err)
	}
	o, err := s.lockOrder(ctx, tx, r.OutTradeNo)
	if err != nil {
		return false, err
	}
	if at.IsZero() {
		at = s.now()
	}
	res, err := tx.ExecContext(ctx, `UPDATE refunds SET status = 'succeeded', settled_at = ?, fail_reason = ''
		WHERE id = ? AND status IN ('pending', 'failed')`, At(at), id)
	if err != nil {
		return false, err
	}
	if affected(res) == 0 {
		return false, nil // already succeeded
	}
	after := "退款成功 " + r.Amount.Yuan()
	if r.TradeNo == o.TradeNo {
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET refunded_fen = refunded_fen + ?,
			status = CASE WHEN status = 'paid' AND refunded_fen + ? >= total_fen THEN 'refunded' ELSE status END
			WHERE id = ?`, r.Amount, r.Amount, o.ID); err != nil {
			return false, err
		}
		if o.Refunded+r.Amount >= o.Total && o.Status == StatusPaid {
			after += "，订单已全额退款"
		}
		if r.Restock && !o.Restocked {
			if err := restock(ctx, tx, o.ID); err != nil {
				return false, err
			}
			after += "，库存已退回"
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE payment_events SET resolution = 'refunded' WHERE refund_id = ?`, id); err != nil {
		return false, err
	}
	ref, target := orderRef(o)
	return true, s.logAction(ctx, tx, System, Action{Action: ActRefundSettled, Target: target, OrderID: ref,
		Before: "退款中 " + r.OutRequestNo, After: after})
}

// restock gives an order's quantities back to stock, once.
func restock(ctx context.Context, tx txn, orderID int64) error {
	res, err := tx.ExecContext(ctx, `UPDATE orders SET restocked = ? WHERE id = ? AND NOT restocked`, true, orderID)
	if err != nil || affected(res) == 0 {
		return err
	}
	_, err = tx.ExecContext(ctx,
		`UPDATE goods SET stock = stock + (SELECT COALESCE(SUM(qty), 0) FROM order_items
		                                   WHERE order_id = ? AND goods_id = goods.id)
		 WHERE stock IS NOT NULL AND id IN (SELECT goods_id FROM order_items WHERE order_id = ?)`, orderID, orderID)
	return err
}

// FailRefund records Alipay's business refusal of a pending refund, with its reason
// for the operator.
func (s *Store) FailRefund(ctx context.Context, id int64, reason string) error {
	return s.inTx(ctx, func(tx txn) error {
		var r Refund
		if err := tx.GetContext(ctx, &r, `SELECT `+refundColumns+` FROM refunds r JOIN orders o ON o.id = r.order_id WHERE r.id = ?`, id); err != nil {
			return notFound(err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE refunds SET status = 'failed', fail_reason = ?, settled_at = ?
			WHERE id = ? AND status = 'pending'`, truncateUTF8(reason, 500), At(s.now()), id)
		if err != nil || affected(res) == 0 {
			return err
		}
		return s.logAction(ctx, tx, System, Action{Action: ActRefundSettled, Target: "order " + r.OutTradeNo,
			OrderID: sql.NullInt64{Int64: r.OrderID, Valid: true}, Before: "退款中 " + r.OutRequestNo,
			After: "退款失败 " + r.Amount.Yuan(), Note: reason})
	})
}

// RetryRefund schedules the next attempt at a pending refund and gives back this
// instance's lease on it.
func (s *Store) RetryRefund(ctx context.Context, id int64, next time.Time, why string) error {
	_, err := s.wdb.ExecContext(ctx, `UPDATE refunds SET attempts = attempts + 1, next_try_at = ?, fail_reason = ?,
		        lease_owner = CASE WHEN lease_owner = ? THEN '' ELSE lease_owner END,
		        lease_until = CASE WHEN lease_owner = ? THEN NULL ELSE lease_until END
		WHERE id = ? AND status = 'pending'`, At(next), truncateUTF8(why, 500), s.instance, s.instance, id)
	return err
}

// RefundByID reads one refund; ErrNotFound if none.
func (s *Store) RefundByID(ctx context.Context, id int64) (Refund, error) {
	var r Refund
	err := s.db.GetContext(ctx, &r, `SELECT `+refundColumns+` FROM refunds r JOIN orders o ON o.id = r.order_id WHERE r.id = ?`, id)
	return r, notFound(err)
}

// RefundByRequestNo reads the refund with out_request_no; ErrNotFound if none.
func (s *Store) RefundByRequestNo(ctx context.Context, no string) (Refund, error) {
	return refundByRequestNo(ctx, s.db, no)
}

func refundByRequestNo(ctx context.Context, q querier, no string) (Refund, error) {
	var r Refund
	err := q.GetContext(ctx, &r, `SELECT `+refundColumns+` FROM refunds r JOIN orders o ON o.id = r.order_id WHERE r.out_request_no = ?`, no)
	return r, notFound(err)
}

// RefundsForOrder lists an order's refunds, oldest first.
func (s *Store) RefundsForOrder(ctx context.Context, orderID int64) ([]Refund, error) {
	var rs []Refund
	err := s.db.SelectContext(ctx, &rs, `SELECT `+refundColumns+` FROM refunds r JOIN orders o ON o.id = r.order_id
		WHERE r.order_id = ? ORDER BY r.id`, orderID)
	return rs, err
}

// RecordAlipayRefund records a refund Alipay reports that the shop did not make (done in
// Alipay's own console), already succeeded, so the order follows the money. Keyed by its
// out_request_no, it is counted once however often it is reported; recorded says
// whether this call added it.
func (s *Store) RecordAlipayRefund(ctx context.Context, orderNo, tradeNo, outRequestNo string, amount money.Fen, at time.Time) (recorded bool, err error) {
	err = s.inTx(ctx, func(tx txn) error {
		o, err := s.lockOrder(ctx, tx, orderNo)
		if err != nil {
			return err
		}
		if tradeNo == "" {
			tradeNo = o.TradeNo
		}
		var id int64
		err = tx.GetContext(ctx, &id, `INSERT INTO refunds (order_id, trade_no, out_request_no, amount_fen, reason, source,
			status, next_try_at, created_at) VALUES (?, ?, ?, ?, ?, 'alipay', 'pending', NULL, ?)
			ON CONFLICT (out_request_no) DO NOTHING RETURNING id`,
			o.ID, tradeNo, outRequestNo, amount, "在支付宝后台退款", At(s.now()))
		if errors.Is(err, sql.ErrNoRows) {
			return nil // known already
		}
		if err != nil {
			return err
		}
		recorded = true
		ref, target := orderRef(o)
		if err := s.logAction(ctx, tx, System, Action{Action: ActRefund, Target: target, OrderID: ref,
			After: changes("退款", amount.Yuan(), "请求号", outRequestNo, "来源", RefundByAlipay),
			Note:  "支付宝后台的退款，由本店记录"}); err != nil {
			return err
		}
		_, err = s.settleRefundTx(ctx, tx, id, at)
		return err
	})
	return recorded, err
}

// RefundRequest is a shopper's 申请退款.
type RefundRequest struct {
	ID         int64         `db:"id"`
	OrderID    int64         `db:"order_id"`
	OutTradeNo string        `db:"out_trade_no"`
	UserID     int64         `db:"user_id"`
	Email      string        `db:"email"`
	Amount     money.Fen     `db:"amount_fen"`
	Reason     string        `db:"reason"`
	Status     string        `db:"status"` // waiting, approved, refused
	Note       string        `db:"note"`   // the operator's, shown to the shopper
	OperatorID sql.NullInt64 `db:"operator_id"`
	CreatedAt  Time          `db:"created_at"`
	DecidedAt  Time          `db:"decided_at"`
}

const requestColumns = `q.id, q.order_id, o.out_trade_no, q.user_id, u.email, q.amount_fen, q.reason, q.status, q.note,
	q.operator_id, q.created_at, q.decided_at`

const requestFrom = ` FROM refund_requests q JOIN orders o ON o.id = q.order_id JOIN users u ON u.id = q.user_id`

// RequestRefund records userID's 申请退款 on their paid order no: amount (0 = all that is
// left), with a reason, waiting for an operator. One request waits at a time.
func (s *Store) RequestRefund(ctx context.Context, userID int64, no string, amount money.Fen, reason string) (RefundRequest, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return RefundRequest{}, ErrReasonRequired
	}
	if utf8.RuneCountInString(reason) > 200 {
		reason = string([]rune(reason)[:200])
	}
	var q RefundRequest
	err := s.inTx(ctx, func(tx txn) error {
		o, err := s.lockOrder(ctx, tx, no)
		if err != nil || o.UserID != userID {
			return ErrNotFound
		}
		if o.Status != StatusPaid {
			return ErrNotRefundable
		}
		var used money.Fen
		if err := tx.GetContext(ctx, &used, `SELECT COALESCE(SUM(amount_fen), 0) FROM refunds
			WHERE trade_no = ? AND status IN ('pending', 'succeeded')`, o.TradeNo); err != nil {
			return err
		}
		left := o.Total - used
		if amount == 0 {
			amount = left
		}
		if amount <= 0 || amount > left {
			return ErrRefundTooMuch
		}
		err = tx.GetContext(ctx, &q.ID, `INSERT INTO refund_requests (order_id, user_id, amount_fen, reason, status, created_at)
			VALUES (?, ?, ?, ?, 'waiting', ?) RETURNING id`, o.ID, userID, amount, reason, At(s.now()))
		if s.dl.isUnique(err) {
			return ErrRequestWaiting
		}
		return err
	})
	if err != nil {
		return RefundRequest{}, err
	}
	return s.RefundRequestByID(ctx, q.ID)
}

// RefundRequestByID reads one request; ErrNotFound if none.
func (s *Store) RefundRequestByID(ctx context.Context, id int64) (RefundRequest, error) {
	var q RefundRequest
	err := s.db.GetContext(ctx, &q, `SELECT `+requestColumns+requestFrom+` WHERE q.id = ?`, id)
	return q, notFound(err)
}

// RefundRequestsForOrder lists an order's requests, oldest first.
func (s *Store) RefundRequestsForOrder(ctx context.Context, orderID int64) ([]RefundRequest, error) {
	var qs []RefundRequest
	err := s.db.SelectContext(ctx, &qs, `SELECT `+requestColumns+requestFrom+` WHERE q.order_id = ? ORDER BY q.id`, orderID)
	return qs, err
}

// WaitingRefundRequests lists the requests waiting for an operator, oldest first.
func (s *Store) WaitingRefundRequests(ctx context.Context, limit int) ([]RefundRequest, error) {
	var qs []RefundRequest
	err := s.db.SelectContext(ctx, &qs, `SELECT `+requestColumns+requestFrom+` WHERE q.status = 'waiting' ORDER BY q.created_at LIMIT ?`, limit)
	return qs, err
}

// ApproveRefundRequest accepts a waiting request: the request is approved and its refund
// row created (pending, to be sent to Alipay), with the log entry, in one transaction.
func (s *Store) ApproveRefundRequest(ctx context.Context, by Actor, id int64, restock bool) (Refund, error) {
	var r Refund
	err := s.inTx(ctx, func(tx txn) error {
		q, err := decide(ctx, tx, id, "approved", "", by, s.now())
		if err != nil {
			return err
		}
		r, err = s.createRefundTx(ctx, tx, NewRefund{OrderNo: q.OutTradeNo, Amount: q.Amount, Reason: "申请退款：" + q.Reason,
			Source: RefundByShopper, Restock: restock, Request: q.ID, By: by})
		if err != nil {
			return err
		}
		return s.logAction(ctx, tx, by, Action{Action: ActApprove, Target: "order " + q.OutTradeNo,
			OrderID: sql.NullInt64{Int64: q.OrderID, Valid: true}, Before: "申请退款 " + q.Amount.Yuan(), After: "已同意"})
	})
	return r, err
}

// RefuseRefundRequest declines a waiting request; the note (required) is shown to the shopper.
func (s *Store) RefuseRefundRequest(ctx context.Context, by Actor, id int64, note string) error {
	note = strings.TrimSpace(note)
	if note == "" {
		return ErrReasonRequired
	}
	return s.inTx(ctx, func(tx txn) error {
		q, err := decide(ctx, tx, id, "refused", truncateUTF8(note, 500), by, s.now())
		if err != nil {
			return err
		}
		return s.logAction(ctx, tx, by, Action{Action: ActRefuse, Target: "order " + q.OutTradeNo,
			OrderID: sql.NullInt64{Int64: q.OrderID, Valid: true}, Before: "申请退款 " + q.Amount.Yuan(), After: "已拒绝", Note: note})
	})
}

func decide(ctx context.Context, tx txn, id int64, status, note string, by Actor, now time.Time) (RefundRequest, error) {
	var q RefundRequest
	if err := tx.GetContext(ctx, &q, `SELECT `+requestColumns+requestFrom+` WHERE q.id = ?`, id); err != nil {
		return q, notFound(err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE refund_requests SET status = ?, note = ?, operator_id = ?, decided_at = ?
		WHERE id = ? AND status = 'waiting'`, status, note, by.id(), At(now), id)
	if err != nil {
		return q, err
	}
	if affected(res) == 0 {
		return q, ErrRequestDecided
	}
	return q, nil
}
