package store

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"storefront/money"
)

// Order states (DESIGN "Money, orders, states").
const (
	StatusUnpaid    = "unpaid"
	StatusPaid      = "paid"
	StatusClosed    = "closed"
	StatusCancelled = "cancelled"
	StatusRefunded  = "refunded"
)

// Order is one purchase: its own amount and, in OrderItem, its own item snapshot.
type Order struct {
	ID             int64     `db:"id"`
	OutTradeNo     string    `db:"out_trade_no"`
	UserID         int64     `db:"user_id"`
	Subject        string    `db:"subject"`
	Total          money.Fen `db:"total_fen"`
	Status         string    `db:"status"`
	TradeNo        string    `db:"trade_no"`
	BuyerID        string    `db:"buyer_id"`
	BuyerLogonID   string    `db:"buyer_logon_id"`
	Refunded       money.Fen `db:"refunded_fen"`
	CreatedAt      Time      `db:"created_at"`
	ExpiresAt      Time      `db:"expires_at"`
	PaidAt         Time      `db:"paid_at"`
	ClosedAt       Time      `db:"closed_at"`
	CashierAt      Time      `db:"cashier_at"`
	ReconcileAt    Time      `db:"reconcile_at"`
	ReconcileTries int       `db:"reconcile_tries"`
}

// Payable reports whether the shopper may (still) pay the order at now.
func (o Order) Payable(now time.Time) bool {
	return o.Status == StatusUnpaid && now.Before(o.ExpiresAt.Time)
}

// OrderItem is the snapshot of one line: later price changes don't touch it.
type OrderItem struct {
	ID       int64     `db:"id"`
	OrderID  int64     `db:"order_id"`
	GoodsID  int64     `db:"goods_id"`
	Name     string    `db:"name"`
	UnitFen  money.Fen `db:"unit_fen"`
	Qty      int64     `db:"qty"`
	Subtotal money.Fen `db:"-"`
}

// Line asks for qty of one goods.
type Line struct {
	GoodsID int64
	Qty     int64
}

// NewOrder is what CreateOrder needs; prices come from the database, never the client.
type NewOrder struct {
	OutTradeNo string
	UserID     int64
	Lines      []Line
	TTL        time.Duration
	// ReconcileAt schedules the first alipay.trade.query in case no notify comes: the
	// order goes to the cashier right after it is created, so it is set in the same write.
	ReconcileAt time.Time
}

// GoodsError names the goods a line failed on (out of stock, withdrawn).
type GoodsError struct {
	Err  error
	Name string
}

func (e *GoodsError) Error() string { return fmt.Sprintf("%s: %v", e.Name, e.Err) }
func (e *GoodsError) Unwrap() error { return e.Err }

const orderColumns = `id, out_trade_no, user_id, subject, total_fen, status, trade_no, buyer_id, buyer_logon_id,
	refunded_fen, created_at, expires_at, paid_at, closed_at, cashier_at, reconcile_at, reconcile_tries`

// CreateOrder stores an order with its items, reserving stock, in one transaction.
func (s *Store) CreateOrder(ctx context.Context, n NewOrder) (Order, []OrderItem, error) {
	var o Order
	var items []OrderItem
	var reserved bool
	err := s.inTx(ctx, func(tx txn) (err error) {
		o, items, reserved, err = s.createOrderTx(ctx, tx, n)
		return err
	})
	if err == nil && reserved {
		s.goodsChanged() // the goods page shows stock
	}
	return o, items, err
}

// createOrderTx does CreateOrder's work inside tx; reserved says whether any goods'
// stock moved (goods with unlimited stock don't change, so their cached page stays).
func (s *Store) createOrderTx(ctx context.Context, tx txn, n NewOrder) (Order, []OrderItem, bool, error) {
	if len(n.Lines) == 0 {
		return Order{}, nil, false, ErrEmptyOrder
	}
	now := s.now()
	items := make([]OrderItem, 0, len(n.Lines))
	var total money.Fen
	var reserved bool
	for _, l := range n.Lines {
		if l.Qty < 1 || l.Qty > 99 {
			return Order{}, nil, false, ErrBadQuantity
		}
		var g Goods
		err := tx.GetContext(ctx, &g, `SELECT `+goodsColumns+` FROM goods WHERE id = ?`, l.GoodsID)
		if err != nil {
			return Order{}, nil, false, notFound(err) // no such goods: ErrNotFound, a 404
		}
		if !g.Active {
			return Order{}, nil, false, &GoodsError{Err: ErrGoodsGone, Name: g.Name}
		}
		// One guarded UPDATE reserves the stock: two checkouts can't both see the last unit.
		res, err := tx.ExecContext(ctx,
			`UPDATE goods SET stock = stock - ? WHERE id = ? AND stock IS NOT NULL AND stock >= ?`,
			l.Qty, l.GoodsID, l.Qty)
		if err != nil {
			return Order{}, nil, false, err
		}
		if g.Stock != nil {
			if n, _ := res.RowsAffected(); n == 0 {
				return Order{}, nil, false, &GoodsError{Err: ErrOutOfStock, Name: g.Name}
			}
			reserved = true
		}
		items = append(items, OrderItem{GoodsID: g.ID, Name: g.Name, UnitFen: g.Price, Qty: l.Qty,
			Subtotal: g.Price * money.Fen(l.Qty)})
		total += g.Price * money.Fen(l.Qty)
	}
	if total > money.MaxAlipay {
		return Order{}, nil, false, ErrAmountTooBig
	}
	o := Order{
		OutTradeNo: n.OutTradeNo, UserID: n.UserID, Subject: subject(items),
		Total: total, Status: StatusUnpaid, CreatedAt: At(now), ExpiresAt: At(now.Add(n.TTL)),
		CashierAt: At(now), ReconcileAt: At(n.ReconcileAt),
	}
	err := tx.GetContext(ctx, &o.ID,
		`INSERT INTO orders (out_trade_no, user_id, subject, total_fen, status, created_at, expires_at, cashier_at, reconcile_at)
		 VALUES (?, ?, ?, ?, 'unpaid', ?, ?, ?, ?) RETURNING id`,
		o.OutTradeNo, o.UserID, o.Subject, o.Total, o.CreatedAt, o.ExpiresAt, o.CashierAt, o.ReconcileAt)
	if err != nil {
		return Order{}, nil, false, err
	}
	for i := range items {
		items[i].OrderID = o.ID
		err := tx.GetContext(ctx, &items[i].ID,
			`INSERT INTO order_items (order_id, goods_id, name, unit_fen, qty) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			o.ID, items[i].GoodsID, items[i].Name, items[i].UnitFen, items[i].Qty)
		if err != nil {
			return Order{}, nil, false, err
		}
	}
	return o, items, reserved, nil
}

// subject is Alipay's order title: the goods' name, "×3" for several pieces of one
// goods, "等5件" for several goods (5 pieces in all); the name is cut so that the whole
// stays within Alipay's 256 characters and the count survives.
func subject(items []OrderItem) string {
	var pieces int64
	for _, it := range items {
		pieces += it.Qty
	}
	suffix := ""
	switch {
	case len(items) > 1:
		suffix = fmt.Sprintf(" 等%d件", pieces)
	case pieces > 1:
		suffix = fmt.Sprintf(" ×%d", pieces)
	}
	name := []rune(items[0].Name)
	if room := 256 - utf8.RuneCountInString(suffix); len(name) > room {
		name = name[:room]
	}
	return string(name) + suffix
}

// OrderByNo finds an order by its out_trade_no; ErrNotFound if none.
func (s *Store) OrderByNo(ctx context.Context, no string) (Order, error) {
	var o Order
	err := s.db.GetContext(ctx, &o, `SELECT `+orderColumns+` FROM orders WHERE out_trade_no = ?`, no)
	return o, notFound(err)
}

// OrderForUser finds userID's order; another user's order is ErrNotFound, not a
// "forbidden", so order numbers can't be probed.
func (s *Store) OrderForUser(ctx context.Context, userID int64, no string) (Order, error) {
	var o Order
	err := s.db.GetContext(ctx, &o,
		`SELECT `+orderColumns+` FROM orders WHERE out_trade_no = ? AND user_id = ?`, no, userID)
	return o, notFound(err)
}

// OrderItems returns an order's lines.
func (s *Store) OrderItems(ctx context.Context, orderID int64) ([]OrderItem, error) {
	var items []OrderItem
	err := s.db.SelectContext(ctx, &items,
		`SELECT id, order_id, goods_id, name, unit_fen, qty FROM order_items WHERE order_id = ? ORDER BY id`, orderID)
	for i := range items {
		items[i].Subtotal = items[i].UnitFen * money.Fen(items[i].Qty)
	}
	return items, err
}

// ListOrders returns one page of userID's orders, newest first, and whether more follow;
// the orders carry the listed fields only (number, subject, amount, status, times).
// It reads one row past the page instead of counting: a COUNT(*) over a shopper's
// 10,000 orders cost more than the page itself.
func (s *Store) ListOrders(ctx context.Context, userID int64, limit, offset int) ([]Order, bool, error) {
	var os []Order
	// Only what the list shows: scanning every column of 21 rows was most of its cost.
	err := s.db.SelectContext(ctx, &os,
		`SELECT id, out_trade_no, user_id, subject, total_fen, status, created_at, expires_at
		 FROM orders WHERE user_id = ? ORDER BY id DESC LIMIT ? OFFSET ?`,
		userID, limit+1, offset)
	if len(os) > limit {
		return os[:limit], true, err
	}
	return os, false, err
}

// Purchase is one paid line, for 已购商品.
type Purchase struct {
	OutTradeNo string    `db:"out_trade_no"`
	TradeNo    string    `db:"trade_no"`
	PaidAt     Time      `db:"paid_at"`
	GoodsID    int64     `db:"goods_id"`
	Name       string    `db:"name"`
	UnitFen    money.Fen `db:"unit_fen"`
	Qty        int64     `db:"qty"`
}

// ListPurchases returns what userID has paid for, most recent payment first, and
// whether more follow.
func (s *Store) ListPurchases(ctx context.Context, userID int64, limit, offset int) ([]Purchase, bool, error) {
	var ps []Purchase
	err := s.db.SelectContext(ctx, &ps,
		`SELECT o.out_trade_no, o.trade_no, o.paid_at, oi.goods_id, oi.name, oi.unit_fen, oi.qty
		 FROM order_items oi JOIN orders o ON o.id = oi.order_id
		 WHERE o.user_id = ? AND o.status = 'paid'
		 ORDER BY o.paid_at DESC, oi.id LIMIT ? OFFSET ?`, userID, limit+1, offset)
	if len(ps) > limit {
		return ps[:limit], true, err
	}
	return ps, false, err
}

// MarkSentToCashier records a trip to the cashier and schedules the first
// reconciliation query for reconcileAt, in case no notify comes.
func (s *Store) MarkSentToCashier(ctx context.Context, orderID int64, at, reconcileAt time.Time) error {
	_, err := s.wdb.ExecContext(ctx,
		`UPDATE orders SET cashier_at = ?, reconcile_at = ?, reconcile_tries = 0 WHERE id = ? AND status = 'unpaid'`,
		At(at), At(reconcileAt), orderID)
	return err
}

// DueForReconcile lists unpaid orders whose reconciliation query is due at now.
func (s *Store) DueForReconcile(ctx context.Context, now time.Time, limit int) ([]Order, error) {
	var os []Order
	err := s.db.SelectContext(ctx, &os,
		`SELECT `+orderColumns+` FROM orders WHERE status = 'unpaid' AND reconcile_at <= ? ORDER BY reconcile_at LIMIT ?`,
		At(now), limit)
	return os, err
}

// ScheduleReconcile sets the next query time (nil time stops querying).
func (s *Store) ScheduleReconcile(ctx context.Context, orderID int64, next time.Time, tries int) error {
	_, err := s.wdb.ExecContext(ctx,
		`UPDATE orders SET reconcile_at = ?, reconcile_tries = ? WHERE id = ? AND status = 'unpaid'`,
		At(next), tries, orderID)
	return err
}

// DueForExpiry lists unpaid orders past their expiry at now.
func (s *Store) DueForExpiry(ctx context.Context, now time.Time, limit int) ([]Order, error) {
	var os []Order
	err := s.db.SelectContext(ctx, &os,
		`SELECT `+orderColumns+` FROM orders WHERE status = 'unpaid' AND expires_at <= ? ORDER BY expires_at LIMIT ?`,
		At(now), limit)
	return os, err
}
