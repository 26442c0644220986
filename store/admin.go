package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"storefront/money"
)

// AdminOrder is one row of the back office's order list.
type AdminOrder struct {
	Order
	Email string `db:"email"`
}

// OrderFilter is the back office's order list: every field optional.
type OrderFilter struct {
	Status     string    // a payment status
	Fulfilment string    // a fulfilment state (of paid orders)
	Q          string    // an order number, an Alipay trade number, a shopper's e-mail or a phone
	From, To   time.Time // created in [From, To)
	Before     int64     // the page after the order with this id (0 = the newest)
	Limit      int
}

// AdminOrders returns one page of orders matching f, newest first, and whether more
// follow. Paging is by id (keyset), never OFFSET, so page 1,000 costs what page 1 does;
// the date range becomes an id range through the created_at index (ids grow with time);
// the search is exact on four indexed columns. A million orders take no longer than a
// thousand.
func (s *Store) AdminOrders(ctx context.Context, f OrderFilter) ([]AdminOrder, bool, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var where []string
	var args []any
	if f.Status != "" {
		where, args = append(where, "o.status = ?"), append(args, f.Status)
	}
	if f.Fulfilment != "" {
		where, args = append(where, "o.status = 'paid' AND o.fulfilment = ?"), append(args, f.Fulfilment)
	}
	if q := strings.TrimSpace(f.Q); q != "" {
		// The "<> ''" repeats the partial indexes' own condition, which is what lets the
		// engine use them for "= ?" (SQLite does not infer it): each branch an index
		// lookup, 0.1 ms at a million orders instead of a 270 ms scan. The e-mail is
		// unique, so its user is one value ("= (SELECT …)"): PostgreSQL then ORs the four
		// index lookups, where "IN (SELECT …)" made it walk every order (46 ms at 100,000).
		where = append(where, `(o.out_trade_no = ? OR (o.trade_no = ? AND o.trade_no <> '') OR (o.ship_phone = ? AND o.ship_phone <> '')
			OR o.user_id = (SELECT id FROM users WHERE email = ?))`)
		args = append(args, q, q, q, NormalizeEmail(q))
	}
	// Dates become an id range, found first, as plain numbers the list query can seek
	// on. ORDER BY created_at LIMIT 1 walks the created_at index; MIN(id) … WHERE
	// created_at >= ? walked the table (170–290 ms at a million orders).
	if !f.From.IsZero() {
		from, ok, err := s.firstOrderFrom(ctx, f.From)
		if err != nil || !ok {
			return nil, false, err // none created since From
		}
		where, args = append(where, "o.id >= ?"), append(args, from)
	}
	if !f.To.IsZero() {
		to, ok, err := s.firstOrderFrom(ctx, f.To)
		if err != nil {
			return nil, false, err
		}
		if ok {
			where, args = append(where, "o.id < ?"), append(args, to)
		}
	}
	if f.Before > 0 {
		where, args = append(where, "o.id < ?"), append(args, f.Before)
	}
	q := `SELECT o.id, o.out_trade_no, o.user_id, u.email, o.subject, o.total_fen, o.status, o.fulfilment, o.refunded_fen,
	             o.needs_shipping, o.created_at, o.paid_at, o.ship_name, o.ship_phone, o.trade_no
	      FROM orders o JOIN users u ON u.id = o.user_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY o.id DESC LIMIT ?"
	var os []AdminOrder
	err := s.db.SelectContext(ctx, &os, q, append(args, f.Limit+1)...)
	if len(os) > f.Limit {
		return os[:f.Limit], true, err
	}
	return os, false, err
}

// firstOrderFrom is the id of the first order created at or after t (ok false if none).
func (s *Store) firstOrderFrom(ctx context.Context, t time.Time) (int64, bool, error) {
	var id int64
	err := s.db.GetContext(ctx, &id, `SELECT id FROM orders WHERE created_at >= ? ORDER BY created_at LIMIT 1`, At(t))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// AdminOrder reads one order with its shopper's e-mail; ErrNotFound if none.
func (s *Store) AdminOrder(ctx context.Context, no string) (AdminOrder, error) {
	var o AdminOrder
	err := s.db.GetContext(ctx, &o, `SELECT `+prefixed("o", orderColumns)+`, u.email
		FROM orders o JOIN users u ON u.id = o.user_id WHERE o.out_trade_no = ?`, no)
	return o, notFound(err)
}

// prefixed qualifies a column list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// ShipBy records that an operator shipped order no with carrier under trackingNo, and
// logs it in the same transaction: only a paid order with goods to ship that has not
// shipped yet (ErrNotShippable).
func (s *Store) ShipBy(ctx context.Context, by Actor, no, carrier, trackingNo string) error {
	carrier, trackingNo = clean(carrier), strings.TrimSpace(trackingNo)
	return s.inTx(ctx, func(tx txn) error {
		o, err := s.lockOrder(ctx, tx, no)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE orders SET fulfilment = 'shipped', carrier = ?, tracking_no = ?, shipped_at = ?
			 WHERE id = ? AND status = 'paid' AND fulfilment = 'unshipped' AND needs_shipping`,
			carrier, trackingNo, At(s.now()), o.ID)
		if err != nil {
			return err
		}
		if affected(res) == 0 {
			return ErrNotShippable
		}
		ref, target := orderRef(o)
		return s.logAction(ctx, tx, by, Action{Action: ActShip, Target: target, OrderID: ref,
			Before: "待发货", After: "已发货 " + carrier + " " + trackingNo})
	})
}

// Ship records a shipment by the shop itself (tests, tools).
func (s *Store) Ship(ctx context.Context, no, carrier, trackingNo string) error {
	return s.ShipBy(ctx, System, no, carrier, trackingNo)
}

// AddNote adds an operator's note to an order (it shows in the order's timeline).
func (s *Store) AddNote(ctx context.Context, by Actor, no, note string) error {
	note = strings.TrimSpace(note)
	if note == "" {
		return ErrReasonRequired
	}
	if utf8.RuneCountInString(note) > 1000 {
		note = string([]rune(note)[:1000])
	}
	return s.inTx(ctx, func(tx txn) error {
		o, err := s.lockOrder(ctx, tx, no)
		if err != nil {
			return err
		}
		ref, target := orderRef(o)
		return s.logAction(ctx, tx, by, Action{Action: ActNote, Target: target, OrderID: ref, Note: note})
	})
}

// TimelineEntry is one moment of an order's history: a payment event or an operator action.
type TimelineEntry struct {
	At     Time
	Event  *Event
	Action *Action
}

// Timeline merges an order's payment events and operator actions, oldest first.
func (s *Store) Timeline(ctx context.Context, o Order) ([]TimelineEntry, error) {
	evs, err := s.EventsForOrder(ctx, o.OutTradeNo)
	if err != nil {
		return nil, err
	}
	as, err := s.ActionsForOrder(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	out := make([]TimelineEntry, 0, len(evs)+len(as))
	i, j := 0, 0
	for i < len(evs) || j < len(as) {
		if j >= len(as) || (i < len(evs) && !evs[i].CreatedAt.After(as[j].CreatedAt.Time)) {
			out = append(out, TimelineEntry{At: evs[i].CreatedAt, Event: &evs[i]})
			i++
		} else {
			out = append(out, TimelineEntry{At: as[j].CreatedAt, Action: &as[j]})
			j++
		}
	}
	return out, nil
}

// FlaggedPayment is one entry of the queue of payments that need a human: a verified
// payment the shop could not apply (paid after cancel, wrong amount, a second trade).
type FlaggedPayment struct {
	Event
	RefundStatus sql.NullString `db:"refund_status"`
	RefundAmount sql.NullInt64  `db:"refund_amount"`
	RefundReason sql.NullString `db:"refund_fail"`
	ResolvedByOp sql.NullString `db:"resolved_by_email"`
}

// Done reports whether something was done about it: refunded, or resolved with a note.
func (f FlaggedPayment) Done() bool {
	return f.Resolution == "resolved" || (f.RefundStatus.Valid && f.RefundStatus.String == RefundSucceeded)
}

// FlaggedPayments lists the queue, newest first: before is the id to continue after
// (0 = the newest).
func (s *Store) FlaggedPayments(ctx context.Context, before int64, limit int) ([]FlaggedPayment, bool, error) {
	q := `SELECT ` + prefixed("e", eventColumns) + `, r.status AS refund_status, r.amount_fen AS refund_amount,
	             r.fail_reason AS refund_fail, op.email AS resolved_by_email
	      FROM payment_events e LEFT JOIN refunds r ON r.id = e.refund_id LEFT JOIN operators op ON op.id = e.resolved_by
	      WHERE e.verdict = 'flagged'`
	args := []any{}
	if before > 0 {
		q += ` AND e.id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY e.id DESC LIMIT ?`
	var fs []FlaggedPayment
	err := s.db.SelectContext(ctx, &fs, q, append(args, limit+1)...)
	if len(fs) > limit {
		return fs[:limit], true, err
	}
	return fs, false, err
}

// FlaggedPayment reads one queue entry; ErrNotFound if no flagged event has that id.
func (s *Store) FlaggedPayment(ctx context.Context, id int64) (FlaggedPayment, error) {
	var f FlaggedPayment
	err := s.db.GetContext(ctx, &f, `SELECT `+prefixed("e", eventColumns)+`, r.status AS refund_status, r.amount_fen AS refund_amount,
	             r.fail_reason AS refund_fail, op.email AS resolved_by_email
	      FROM payment_events e LEFT JOIN refunds r ON r.id = e.refund_id LEFT JOIN operators op ON op.id = e.resolved_by
	      WHERE e.verdict = 'flagged' AND e.id = ?`, id)
	return f, notFound(err)
}

// ResolvePayment records an operator's decision about a flagged payment (settled
// outside the shop, a test payment…), with their note, in one transaction with its log.
func (s *Store) ResolvePayment(ctx context.Context, by Actor, eventID int64, note string) error {
	note = strings.TrimSpace(note)
	if note == "" {
		return ErrReasonRequired
	}
	return s.inTx(ctx, func(tx txn) error {
		var ev Event
		if err := tx.GetContext(ctx, &ev, `SELECT `+eventColumns+` FROM payment_events WHERE id = ? AND verdict = 'flagged'`, eventID); err != nil {
			return notFound(err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE payment_events SET resolution = 'resolved', resolved_by = ?, resolved_at = ?
			WHERE id = ?`, by.id(), At(s.now()), eventID); err != nil {
			return err
		}
		return s.logAction(ctx, tx, by, Action{Action: ActResolve, Target: "order " + ev.OutTradeNo, OrderID: ev.OrderID,
			Before: "待处理：" + ev.Reason, After: "已处理", Note: truncateUTF8(note, 1000)})
	})
}

// Dashboard is the back office's front page.
type Dashboard struct {
	TodayOrders   int       `db:"orders"`
	TodaySales    money.Fen `db:"sales"`
	ToShip        int
	Requests      int // 申请退款 waiting
	PendingRefund int // refunds sent, Alipay's answer not known yet
	Flagged       int // flagged payments nothing was done about yet
	Days          []DaySales
}

// DaySales is one Beijing day of the chart.
type DaySales struct {
	Day    time.Time // midnight, Beijing
	Orders int
	Sales  money.Fen
}

// DayStats counts the orders paid in [from, to) and their sum.
func (s *Store) DayStats(ctx context.Context, from, to time.Time) (DaySales, error) {
	d := DaySales{Day: from}
	row := struct {
		Orders int       `db:"orders"`
		Sales  money.Fen `db:"sales"`
	}{}
	err := s.db.GetContext(ctx, &row, `SELECT COUNT(*) AS orders, COALESCE(SUM(total_fen), 0) AS sales
		FROM orders WHERE paid_at >= ? AND paid_at < ?`, At(from), At(to))
	d.Orders, d.Sales = row.Orders, row.Sales
	return d, err
}

// Counts reads the dashboard's queues: to ship, refund requests waiting, refunds
// pending, flagged payments not dealt with. Each is a count over a partial index.
func (s *Store) Counts(ctx context.Context) (toShip, requests, pending, flagged int, err error) {
	row := struct {
		ToShip   int `db:"to_ship"`
		Requests int `db:"requests"`
		Pending  int `db:"pending"`
		Flagged  int `db:"flagged"`
	}{}
	err = s.db.GetContext(ctx, &row, `SELECT
		(SELECT COUNT(*) FROM orders WHERE status = 'paid' AND fulfilment = 'unshipped') AS to_ship,
		(SELECT COUNT(*) FROM refund_requests WHERE status = 'waiting') AS requests,
		(SELECT COUNT(*) FROM refunds WHERE status = 'pending') AS pending,
		(SELECT COUNT(*) FROM payment_events e WHERE verdict = 'flagged' AND resolution = ''
		   AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.id = e.refund_id AND r.status = 'succeeded')) AS flagged`)
	return row.ToShip, row.Requests, row.Pending, row.Flagged, err
}
