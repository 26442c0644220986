package store

import (
	"context"
	"fmt"
	"time"

	"storefront/money"
)

// maxCartLines bounds a cart so one shopper can't grow a row set without limit.
const maxCartLines = 50

// CartLine is one cart row with the goods' current state, so the page can say when
// goods were withdrawn or re-priced since they were added.
type CartLine struct {
	GoodsID int64     `db:"goods_id"`
	Name    string    `db:"name"`
	Image   string    `db:"image"`
	Qty     int64     `db:"qty"`
	SeenFen money.Fen `db:"seen_fen"`
	Price   money.Fen `db:"price_fen"`
	Active  bool      `db:"active"`
	Stock   *int64    `db:"stock"`
}

// Repriced reports whether the price changed since the shopper added the line.
func (l CartLine) Repriced() bool { return l.Active && l.Price != l.SeenFen }

// Subtotal is the line at today's price.
func (l CartLine) Subtotal() money.Fen { return l.Price * money.Fen(l.Qty) }

// Cart returns userID's cart lines in the order they were added.
func (s *Store) Cart(ctx context.Context, userID int64) ([]CartLine, error) {
	var ls []CartLine
	err := s.db.SelectContext(ctx, &ls,
		`SELECT c.goods_id, g.name, g.image, c.qty, c.seen_fen, g.price_fen, g.active, g.stock
		 FROM cart_items c JOIN goods g ON g.id = c.goods_id
		 WHERE c.user_id = ? ORDER BY c.added_at, c.goods_id`, userID)
	return ls, err
}

// CartLineFullError is AddToCart's answer when the line would pass 99 pieces.
type CartLineFullError struct{ Have int64 }

func (e *CartLineFullError) Error() string {
	return fmt.Sprintf("cart line has %d, adding would pass 99", e.Have)
}

// AddToCart adds qty of goodsID to userID's cart (adding to an existing line).
// qty must be 1–99 (ErrBadQuantity) and the line's sum at most 99 (*CartLineFullError).
func (s *Store) AddToCart(ctx context.Context, userID, goodsID, qty int64) error {
	if qty < 1 || qty > 99 {
		return ErrBadQuantity
	}
	return s.inTx(ctx, func(tx txn) error {
		var price money.Fen
		if err := tx.GetContext(ctx, &price, `SELECT price_fen FROM goods WHERE id = ? AND active = 1`, goodsID); err != nil {
			return notFound(err)
		}
		var lines int
		if err := tx.GetContext(ctx, &lines, `SELECT COUNT(*) FROM cart_items WHERE user_id = ?`, userID); err != nil {
			return err
		}
		var have int64
		err := tx.GetContext(ctx, &have, `SELECT qty FROM cart_items WHERE user_id = ? AND goods_id = ?`, userID, goodsID)
		switch {
		case err == nil:
			if have+qty > 99 {
				return &CartLineFullError{Have: have}
			}
			_, err = tx.ExecContext(ctx, `UPDATE cart_items SET qty = qty + ?, seen_fen = ? WHERE user_id = ? AND goods_id = ?`,
				qty, price, userID, goodsID)
			return err
		case notFound(err) == ErrNotFound:
			if lines >= maxCartLines {
				return ErrTooManyInCart
			}
			_, err = tx.ExecContext(ctx,
				`INSERT INTO cart_items (user_id, goods_id, qty, seen_fen, added_at) VALUES (?, ?, ?, ?, ?)`,
				userID, goodsID, qty, price, At(s.now()))
			return err
		default:
			return err
		}
	})
}

// RemoveFromCart deletes one line; removing a line that isn't there is not an error.
func (s *Store) RemoveFromCart(ctx context.Context, userID, goodsID int64) error {
	_, err := s.wdb.ExecContext(ctx, `DELETE FROM cart_items WHERE user_id = ? AND goods_id = ?`, userID, goodsID)
	return err
}

// Checkout turns userID's whole cart into one order and empties the cart, in one
// transaction: either the order exists and the cart is empty, or nothing changed.
// expect is the total the shopper saw on the cart page (0 = not given): if prices have
// moved since, nothing is created and the answer is ErrPriceChanged.
func (s *Store) Checkout(ctx context.Context, userID int64, outTradeNo string, ttl time.Duration, reconcileAt time.Time, expect money.Fen) (Order, []OrderItem, error) {
	var o Order
	var items []OrderItem
	var reserved bool
	err := s.inTx(ctx, func(tx txn) error {
		var lines []Line
		rows := []struct {
			GoodsID int64 `db:"goods_id"`
			Qty     int64 `db:"qty"`
		}{}
		if err := tx.SelectContext(ctx, &rows,
			`SELECT goods_id, qty FROM cart_items WHERE user_id = ? ORDER BY added_at, goods_id`, userID); err != nil {
			return err
		}
		for _, r := range rows {
			lines = append(lines, Line{GoodsID: r.GoodsID, Qty: r.Qty})
		}
		var err error
		o, items, reserved, err = s.createOrderTx(ctx, tx, NewOrder{OutTradeNo: outTradeNo, UserID: userID, Lines: lines, TTL: ttl,
			ReconcileAt: reconcileAt})
		if err != nil {
			return err
		}
		if expect > 0 && o.Total != expect {
			return ErrPriceChanged // rolls the order and its stock reservation back
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM cart_items WHERE user_id = ?`, userID)
		return err
	})
	if err == nil && reserved {
		s.goodsChanged() // the goods page shows stock
	}
	return o, items, err
}
