package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

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
	Virtual bool      `db:"virtual"`
}

// InStock reports whether the line's quantity can be sold now.
func (l CartLine) InStock() bool { return l.Stock == nil || *l.Stock >= l.Qty }

// Repriced reports whether the price changed since the shopper added the line.
func (l CartLine) Repriced() bool { return l.Active && l.Price != l.SeenFen }

// Subtotal is the line at today's price.
func (l CartLine) Subtotal() money.Fen { return l.Price * money.Fen(l.Qty) }

// Cart returns userID's cart lines in the order they were added.
func (s *Store) Cart(ctx context.Context, userID int64) ([]CartLine, error) {
	var ls []CartLine
	err := s.db.SelectContext(ctx, &ls,
		`SELECT c.goods_id, g.name, g.image, c.qty, c.seen_fen, g.price_fen, g.active, g.stock, g.virtual
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
		if err := tx.GetContext(ctx, &price, `SELECT price_fen FROM goods WHERE id = ? AND active`, goodsID); err != nil {
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

// SetCartQty sets the quantity (1–99) of userID's cart line for goodsID; ErrNotFound if
// the cart has no such line.
func (s *Store) SetCartQty(ctx context.Context, userID, goodsID, qty int64) error {
	if qty < 1 || qty > 99 {
		return ErrBadQuantity
	}
	res, err := s.wdb.ExecContext(ctx, `UPDATE cart_items SET qty = ? WHERE user_id = ? AND goods_id = ?`, qty, userID, goodsID)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		return ErrNotFound
	}
	return nil
}

// CartCount is the number of pieces in userID's cart (the badge in the nav).
func (s *Store) CartCount(ctx context.Context, userID int64) (int64, error) {
	var n int64
	err := s.db.GetContext(ctx, &n, `SELECT COALESCE(SUM(qty), 0) FROM cart_items WHERE user_id = ?`, userID)
	return n, err
}

// MergeCart adds a visitor's cart (kept in the session before logging in) to userID's,
// in one transaction: quantities add up to at most 99 a line, lines beyond the cart's
// limit and goods no longer on sale are left out. It returns how many lines it merged.
func (s *Store) MergeCart(ctx context.Context, userID int64, lines []Line) (int, error) {
	merged := 0
	err := s.inTx(ctx, func(tx txn) error {
		merged = 0
		for _, l := range lines {
			if l.Qty < 1 {
				continue
			}
			var price money.Fen
			if err := tx.GetContext(ctx, &price, `SELECT price_fen FROM goods WHERE id = ? AND active`, l.GoodsID); err != nil {
				if notFound(err) == ErrNotFound {
					continue
				}
				return err
			}
			var lines int
			if err := tx.GetContext(ctx, &lines, `SELECT COUNT(*) FROM cart_items WHERE user_id = ? AND goods_id <> ?`, userID, l.GoodsID); err != nil {
				return err
			}
			if lines >= maxCartLines {
				continue
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO cart_items (user_id, goods_id, qty, seen_fen, added_at) VALUES (?, ?, ?, ?, ?)
				 ON CONFLICT (user_id, goods_id) DO UPDATE SET qty = CASE WHEN cart_items.qty + excluded.qty > 99 THEN 99 ELSE cart_items.qty + excluded.qty END, seen_fen = excluded.seen_fen`,
				userID, l.GoodsID, min(l.Qty, 99), price, At(s.now())); err != nil {
				return err
			}
			merged++
		}
		return nil
	})
	return merged, err
}

// Checkout turns userID's whole cart into one order and empties the cart, in one
// transaction: either the order exists and the cart is empty, or nothing changed.
// n gives everything but the lines, which come from the cart.
func (s *Store) Checkout(ctx context.Context, n NewOrder) (Order, []OrderItem, error) {
	var o Order
	var items []OrderItem
	var reserved bool
	err := s.inTx(ctx, func(tx txn) error {
		rows := []struct {
			GoodsID int64 `db:"goods_id"`
			Qty     int64 `db:"qty"`
		}{}
		// The lines are locked as they are read (PostgreSQL), so the same cart checked out
		// twice at once — a double click reaching two instances — makes one order: the
		// second checkout finds the lines gone and the cart empty.
		if err := tx.SelectContext(ctx, &rows,
			`SELECT goods_id, qty FROM cart_items WHERE user_id = ? ORDER BY added_at, goods_id`+s.dl.forDelete, n.UserID); err != nil {
			return err
		}
		n.Lines = n.Lines[:0]
		for _, r := range rows {
			n.Lines = append(n.Lines, Line{GoodsID: r.GoodsID, Qty: r.Qty})
		}
		var err error
		o, items, reserved, err = s.createOrderIn(ctx, tx, n, false)
		if err != nil {
			return err
		}
		// Only the lines ordered: one added meanwhile in another tab stays in the cart.
		ids := make([]int64, len(rows))
		for i, r := range rows {
			ids[i] = r.GoodsID
		}
		q, args, err := sqlx.In(`DELETE FROM cart_items WHERE user_id = ? AND goods_id IN (?)`, n.UserID, ids)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, q, args...)
		return err
	})
	if err == nil && reserved {
		s.goodsChanged(ctx) // the goods page shows stock
	}
	return o, items, err
}
