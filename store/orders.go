package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"storefront/money"
)

// Order states (docs/payments.md, "Order states").
const (
	StatusUnpaid    = "unpaid"
	StatusPaid      = "paid"
	StatusClosed    = "closed"
	StatusCancelled = "cancelled"
	StatusRefunded  = "refunded"
)

// Fulfilment states, beside the payment status of a paid order.
const (
	Unshipped = "unshipped" // 待发货
	Shipped   = "shipped"   // 已发货
	Received  = "received"  // 已收货
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
	// Fulfilment, and the address snapshot (empty for an order of virtual goods only).
	NeedsShipping bool   `db:"needs_shipping"`
	ShipName      string `db:"ship_name"`
	ShipPhone     string `db:"ship_phone"`
	ShipRegion    string `db:"ship_region"`
	ShipDetail    string `db:"ship_detail"`
	Fulfilment    string `db:"fulfilment"`
	Carrier       string `db:"carrier"`
	TrackingNo    string `db:"tracking_no"`
	ShippedAt     Time   `db:"shipped_at"`
	ReceivedAt    Time   `db:"received_at"`
	Restocked     bool   `db:"restocked"`   // a refund gave its quantities back to stock
	FinishedAt    Time   `db:"finished_at"` // Alipay finished the trade: no more refunds
	// Beyond total_amount, as Alipay reported the payment.
	BuyerOpenID string        `db:"buyer_open_id"`
	BuyerPaid   sql.NullInt64 `db:"buyer_paid_fen"` // what the buyer paid (less with a coupon)
	Receipt     sql.NullInt64 `db:"receipt_fen"`    // what the shop received
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
	// AddressID is the shopper's address to ship to; 0 = their default. Orders of
	// virtual goods only need none.
	AddressID int64
	// Expect is the total the shopper saw when confirming (0 = not given): if prices
	// moved since, nothing is created and the answer is ErrPriceChanged.
	Expect money.Fen
}

// GoodsError names the goods a line failed on (out of stock, withdrawn).
type GoodsError struct {
	Err  error
	Name string
}

func (e *GoodsError) Error() string { return fmt.Sprintf("%s: %v", e.Name, e.Err) }
func (e *GoodsError) Unwrap() error { return e.Err }

const orderColumns = `id, out_trade_no, user_id, subject, total_fen, status, trade_no, buyer_id, buyer_logon_id,
	refunded_fen, created_at, expires_at, paid_at, closed_at, cashier_at, reconcile_at, reconcile_tries,
	needs_shipping, ship_name, ship_phone, ship_region, ship_detail, fulfilment, carrier, tracking_no, shipped_at, received_at,
	restocked, finished_at, buyer_open_id, buyer_paid_fen, receipt_fen`

// CreateOrder stores an order with its items, reserving stock, in one transaction.
func (s *Store) CreateOrder(ctx context.Context, n NewOrder) (Order, []OrderItem, error) {
	if s.dl.writableWith && s.unlimitedInCatalogue(ctx, n.Lines) {
		// PostgreSQL: goods whose stock is unlimited need no transaction. The order and
		// its lines are one statement (insertOrder), and reading the goods and the
		// address before it decides what reading them inside a transaction would
		// (READ COMMITTED: each statement sees what is committed when it runs), so
		// BEGIN and COMMIT were two of a purchase's five round trips for nothing. Stock
		// to reserve needs its UPDATE and the insert to commit together: a transaction.
		// The cached catalogue picks the way, so goods with stock aren't read twice; if
		// it is stale, createOrderIn still finds the stock and answers errNeedsTx.
		o, items, _, err := s.createOrderIn(ctx, s.wdb, n, true)
		if err != errNeedsTx {
			return o, items, err
		}
	}
	var o Order
	var items []OrderItem
	var reserved bool
	err := s.inTx(ctx, func(tx txn) (err error) {
		o, items, reserved, err = s.createOrderIn(ctx, tx, n, false)
		return err
	})
	if err == nil && reserved {
		s.goodsChanged(ctx) // the goods page shows stock
	}
	return o, items, err
}

// unlimitedInCatalogue says whether every line's goods is on sale with unlimited stock
// in the cached catalogue.
func (s *Store) unlimitedInCatalogue(ctx context.Context, lines []Line) bool {
	ids := make([]int64, len(lines))
	for i, l := range lines {
		ids[i] = l.GoodsID
	}
	gs, err := s.GoodsOnSale(ctx, ids)
	if err != nil {
		return false
	}
	for _, id := range ids {
		if g, ok := gs[id]; !ok || g.Stock != nil {
			return false
		}
	}
	return true
}

// errNeedsTx: the order reserves stock, so it can't be written outside a transaction.
var errNeedsTx = errors.New("store: the order reserves stock")

// createOrderIn does CreateOrder's work with tx: a transaction, or (unlimitedOnly,
// where insertOrder is one statement) the pool, answering errNeedsTx before writing
// anything if a line's goods has a stock count. reserved says whether any goods' stock
// moved (goods with unlimited stock don't change, so their cached page stays).
func (s *Store) createOrderIn(ctx context.Context, tx querier, n NewOrder, unlimitedOnly bool) (Order, []OrderItem, bool, error) {
	if len(n.Lines) == 0 {
		return Order{}, nil, false, ErrEmptyOrder
	}
	now := s.now()
	items := make([]OrderItem, 0, len(n.Lines))
	var total money.Fen
	var reserved, needsShipping bool
	limited := map[int64]bool{} // goods id → has a stock count
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
		items = append(items, OrderItem{GoodsID: g.ID, Name: g.Name, UnitFen: g.Price, Qty: l.Qty,
			Subtotal: g.Price * money.Fen(l.Qty)})
		total += g.Price * money.Fen(l.Qty)
		needsShipping = needsShipping || !g.Virtual
		limited[g.ID] = g.Stock != nil
	}
	if unlimitedOnly {
		for _, l := range limited {
			if l {
				return Order{}, nil, false, errNeedsTx
			}
		}
	}
	if total > money.MaxAlipay {
		return Order{}, nil, false, ErrAmountTooBig
	}
	if n.Expect > 0 && total != n.Expect {
		return Order{}, nil, false, ErrPriceChanged // nothing written yet
	}
	o := Order{
		OutTradeNo: n.OutTradeNo, UserID: n.UserID, Subject: subject(items),
		Total: total, Status: StatusUnpaid, CreatedAt: At(now), ExpiresAt: At(now.Add(n.TTL)),
		CashierAt: At(now), ReconcileAt: At(n.ReconcileAt), NeedsShipping: needsShipping, Fulfilment: Unshipped,
	}
	if needsShipping {
		a, err := addressFor(ctx, tx, n.UserID, n.AddressID)
		if err == ErrNotFound {
			return Order{}, nil, false, ErrNoSuchAddress
		} else if err != nil {
			return Order{}, nil, false, err
		}
		o.ShipName, o.ShipPhone, o.ShipRegion, o.ShipDetail = a.Name, a.Phone, a.Region, a.Detail
	}
	if err := s.insertOrder(ctx, tx, &o, items); err != nil {
		return Order{}, nil, false, err
	}
	// One guarded UPDATE per goods reserves its stock: two checkouts can't both see the
	// last unit. It comes last, just before the commit: on PostgreSQL the goods row stays
	// locked from it to the commit, and every buyer of a best seller waits on that lock.
	// They go in goods id order, so two checkouts of the same goods lock them in the same
	// order and never deadlock.
	byID := slices.Clone(items)
	slices.SortFunc(byID, func(a, b OrderItem) int { return cmp.Compare(a.GoodsID, b.GoodsID) })
	for _, it := range byID {
		if !limited[it.GoodsID] {
			continue
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE goods SET stock = stock - ? WHERE id = ? AND stock IS NOT NULL AND stock >= ?`,
			it.Qty, it.GoodsID, it.Qty)
		if err != nil {
			return Order{}, nil, false, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Order{}, nil, false, &GoodsError{Err: ErrOutOfStock, Name: it.Name}
		}
		reserved = true
	}
	return o, items, reserved, nil
}

// insertOrder inserts o and its lines, setting their ids. On PostgreSQL that is one
// statement (the order's INSERT in a WITH clause, the lines selected from it), one round
// trip instead of one per row: a purchase there paid for each.
func (s *Store) insertOrder(ctx context.Context, tx querier, o *Order, items []OrderItem) error {
	orderArgs := []any{o.OutTradeNo, o.UserID, o.Subject, o.Total, o.CreatedAt, o.ExpiresAt, o.CashierAt, o.ReconcileAt,
		o.NeedsShipping, o.ShipName, o.ShipPhone, o.ShipRegion, o.ShipDetail}
	const insertOrder = `INSERT INTO orders (out_trade_no, user_id, subject, total_fen, status, created_at, expires_at,
		                     cashier_at, reconcile_at, needs_shipping, ship_name, ship_phone, ship_region, ship_detail)
		 VALUES (?, ?, ?, ?, 'unpaid', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	if !s.dl.writableWith {
		if err := tx.GetContext(ctx, &o.ID, insertOrder, orderArgs...); err != nil {
			return err
		}
		for i := range items {
			items[i].OrderID = o.ID
			err := tx.GetContext(ctx, &items[i].ID,
				`INSERT INTO order_items (order_id, goods_id, name, unit_fen, qty) VALUES (?, ?, ?, ?, ?) RETURNING id`,
				o.ID, items[i].GoodsID, items[i].Name, items[i].UnitFen, items[i].Qty)
			if err != nil {
				return err
			}
		}
		return nil
	}
	lines := make([]string, len(items))
	args := orderArgs
	for i, it := range items {
		lines[i] = `(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT))`
		args = append(args, it.GoodsID, it.Name, it.UnitFen, it.Qty)
	}
	var rows []struct {
		OrderID int64 `db:"order_id"`
		ID      int64 `db:"id"`
		GoodsID int64 `db:"goods_id"`
		Qty     int64 `db:"qty"`
	}
	err := tx.SelectContext(ctx, &rows, `WITH o AS (`+insertOrder+`)
		INSERT INTO order_items (order_id, goods_id, name, unit_fen, qty)
		SELECT o.id, v.goods_id, v.name, v.unit_fen, v.qty
		FROM o CROSS JOIN (VALUES `+strings.Join(lines, ", ")+`) AS v(goods_id, name, unit_fen, qty)
		RETURNING order_id, id, goods_id, qty`, args...)
	if err != nil {
		return err
	}
	if len(rows) != len(items) {
		return fmt.Errorf("store: %d order lines inserted, %d asked", len(rows), len(items))
	}
	// RETURNING promises no order: each id goes to a line of its goods and quantity not
	// yet given one (two such lines are the same row but for the id).
	for _, r := range rows {
		o.ID = r.OrderID
		for i := range items {
			if items[i].ID == 0 && items[i].GoodsID == r.GoodsID && items[i].Qty == r.Qty {
				items[i].OrderID, items[i].ID = r.OrderID, r.ID
				break
			}
		}
	}
	return nil
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

// Order tabs of the shopper's 我的订单.
const (
	TabAll     = ""        // 全部
	TabUnpaid  = "unpaid"  // 待付款
	TabToShip  = "toship"  // 待发货: paid, not shipped yet
	TabShipped = "shipped" // 已发货: paid and shipped (or received)
	TabRefund  = "refund"  // 退款: refunded, wholly or in part
	TabClosed  = "closed"  // 已关闭: expired or cancelled
)

// tabWhere is each tab's condition on orders.
var tabWhere = map[string]string{
	TabAll:     ``,
	TabUnpaid:  ` AND status = 'unpaid'`,
	TabToShip:  ` AND status = 'paid' AND fulfilment = 'unshipped'`,
	TabShipped: ` AND status = 'paid' AND fulfilment IN ('shipped', 'received')`,
	TabRefund:  ` AND (status = 'refunded' OR refunded_fen > 0)`,
	TabClosed:  ` AND status IN ('closed', 'cancelled')`,
}

// ValidTab reports whether tab names one of the order tabs.
func ValidTab(tab string) bool {
	_, ok := tabWhere[tab]
	return ok
}

// ListOrders returns one page of userID's orders in tab, newest first, and whether more
// follow; the orders carry the listed fields only (number, subject, amounts, states,
// times). It reads one row past the page instead of counting: a COUNT(*) over a
// shopper's 10,000 orders cost more than the page itself.
func (s *Store) ListOrders(ctx context.Context, userID int64, tab string, limit, offset int) ([]Order, bool, error) {
	where, ok := tabWhere[tab]
	if !ok {
		return nil, false, ErrNotFound
	}
	// Only what the list shows, scanned by hand into a slice sized for the page:
	// scanning every column of 21 rows was most of its cost, and sqlx's reflection
	// and the slice's growth most of the rest.
	rows, err := s.db.QueryxContext(ctx,
		`SELECT id, out_trade_no, user_id, subject, total_fen, status, refunded_fen, created_at, expires_at,
		        needs_shipping, fulfilment
		 FROM orders WHERE user_id = ?`+where+` ORDER BY id DESC LIMIT ? OFFSET ?`,
		userID, limit+1, offset)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	os := make([]Order, 0, limit+1)
	for rows.Next() {
		os = append(os, Order{})
		o := &os[len(os)-1]
		if err := rows.Scan(&o.ID, &o.OutTradeNo, &o.UserID, &o.Subject, &o.Total, &o.Status, &o.Refunded,
			&o.CreatedAt, &o.ExpiresAt, &o.NeedsShipping, &o.Fulfilment); err != nil {
			return nil, false, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if len(os) > limit {
		return os[:limit], true, nil
	}
	return os, false, nil
}

// LatestToPay returns the unpaid order userID last sent to the cashier: where a shopper
// who left the cashier without paying is taken back to. ErrNotFound if none.
func (s *Store) LatestToPay(ctx context.Context, userID int64) (string, error) {
	var no string
	err := s.db.GetContext(ctx, &no,
		`SELECT out_trade_no FROM orders WHERE user_id = ? AND status = 'unpaid' ORDER BY cashier_at DESC, id DESC LIMIT 1`, userID)
	return no, notFound(err)
}

// ErrNotShippable is Ship's answer for an order that is not paid and waiting to ship.
var ErrNotShippable = errors.New("order is not paid and unshipped")

// ErrNotShipped is ConfirmReceived's answer for an order that isn't on its way.
var ErrNotShipped = errors.New("order is not shipped")

// ConfirmReceived records that userID received their shipped order no (确认收货).
func (s *Store) ConfirmReceived(ctx context.Context, userID int64, no string) error {
	res, err := s.wdb.ExecContext(ctx,
		`UPDATE orders SET fulfilment = 'received', received_at = ?
		 WHERE out_trade_no = ? AND user_id = ? AND status = 'paid' AND fulfilment = 'shipped'`,
		At(s.now()), no, userID)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		return ErrNotShipped
	}
	return nil
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

// ScheduleReconcile sets the next query time (nil time stops querying) and gives back
// this instance's lease on the order.
func (s *Store) ScheduleReconcile(ctx context.Context, orderID int64, next time.Time, tries int) error {
	_, err := s.wdb.ExecContext(ctx,
		`UPDATE orders SET reconcile_at = ?, reconcile_tries = ?,
		        lease_owner = CASE WHEN lease_owner = ? THEN '' ELSE lease_owner END,
		        lease_until = CASE WHEN lease_owner = ? THEN NULL ELSE lease_until END
		 WHERE id = ? AND status = 'unpaid'`,
		At(next), tries, s.instance, s.instance, orderID)
	return err
}

// AutoReceive marks as received the shipped orders shipped before cutoff that their
// shoppers never confirmed (AUTO_RECEIVE), and returns how many. One guarded UPDATE:
// two processes running it at once change each order once.
func (s *Store) AutoReceive(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.wdb.ExecContext(ctx, `UPDATE orders SET fulfilment = 'received', received_at = ?
		WHERE status = 'paid' AND fulfilment = 'shipped' AND shipped_at <= ?`, At(s.now()), At(cutoff))
	if err != nil {
		return 0, err
	}
	return affected(res), nil
}
