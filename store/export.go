package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"storefront/money"
)

// ExportOrder is one row of the orders export.
type ExportOrder struct {
	OutTradeNo string    `db:"out_trade_no"`
	CreatedAt  Time      `db:"created_at"`
	PaidAt     Time      `db:"paid_at"`
	Status     string    `db:"status"`
	Fulfilment string    `db:"fulfilment"`
	Email      string    `db:"email"`
	Subject    string    `db:"subject"`
	Total      money.Fen `db:"total_fen"`
	Refunded   money.Fen `db:"refunded_fen"`
	TradeNo    string    `db:"trade_no"`
	ShipName   string    `db:"ship_name"`
	ShipPhone  string    `db:"ship_phone"`
	ShipRegion string    `db:"ship_region"`
	ShipDetail string    `db:"ship_detail"`
	Carrier    string    `db:"carrier"`
	TrackingNo string    `db:"tracking_no"`
}

// ExportOrders calls fn with each order created in [from, to), oldest first, reading
// row by row: an export of any size holds one row in memory at a time.
func (s *Store) ExportOrders(ctx context.Context, from, to time.Time, fn func(*ExportOrder) error) error {
	rows, err := s.db.QueryxContext(ctx, `SELECT o.out_trade_no, o.created_at, o.paid_at, o.status, o.fulfilment, u.email,
		o.subject, o.total_fen, o.refunded_fen, o.trade_no, o.ship_name, o.ship_phone, o.ship_region, o.ship_detail,
		o.carrier, o.tracking_no
		FROM orders o JOIN users u ON u.id = o.user_id
		WHERE o.created_at >= ? AND o.created_at < ? ORDER BY o.created_at, o.id`, At(from), At(to))
	if err != nil {
		return err
	}
	return scanEach(rows, fn)
}

// ExportRefunds calls fn with each refund made in [from, to), oldest first, row by row.
func (s *Store) ExportRefunds(ctx context.Context, from, to time.Time, fn func(*Refund) error) error {
	rows, err := s.db.QueryxContext(ctx, `SELECT `+refundColumns+` FROM refunds r JOIN orders o ON o.id = r.order_id
		WHERE r.created_at >= ? AND r.created_at < ? ORDER BY r.created_at, r.id`, At(from), At(to))
	if err != nil {
		return err
	}
	return scanEach(rows, fn)
}

// scanEach hands fn each row of rows in turn, scanned into one reused T, and closes rows.
func scanEach[T any](rows *sqlx.Rows, fn func(*T) error) error {
	defer rows.Close()
	var r T
	for rows.Next() {
		var zero T
		r = zero
		if err := rows.StructScan(&r); err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}
