package store

import (
	"context"
	"time"

	"storefront/money"
)

// goodsCacheTTL bounds how stale the cached goods list can be after a change made by
// another process (an operator tool on the same database file).
const goodsCacheTTL = time.Second

type goodsSnapshot struct {
	goods []Goods
	gen   uint64
	at    time.Time
}

// Goods is something the shop sells.
type Goods struct {
	ID          int64     `db:"id"`
	Name        string    `db:"name"`
	Description string    `db:"description"`
	Price       money.Fen `db:"price_fen"`
	Image       string    `db:"image"`
	Stock       *int64    `db:"stock"` // nil = unlimited
	Active      bool      `db:"active"`
	CreatedAt   Time      `db:"created_at"`
}

// InStock reports whether at least qty can be sold.
func (g Goods) InStock(qty int64) bool { return g.Stock == nil || *g.Stock >= qty }

const goodsColumns = `id, name, description, price_fen, image, stock, active, created_at`

// ListGoods returns the goods on sale, by id. The slice is shared between callers:
// read it, never modify it.
func (s *Store) ListGoods(ctx context.Context) ([]Goods, error) {
	gen := s.goodsGen.Load()
	if snap := s.goodsSnap.Load(); snap != nil && snap.gen == gen && time.Since(snap.at) < goodsCacheTTL {
		return snap.goods, nil
	}
	var gs []Goods
	err := s.db.SelectContext(ctx, &gs, `SELECT `+goodsColumns+` FROM goods WHERE active = 1 ORDER BY id`)
	if err != nil {
		return nil, err
	}
	s.goodsSnap.Store(&goodsSnapshot{goods: gs, gen: gen, at: time.Now()})
	return gs, nil
}

// GoodsByID returns one goods on sale; ErrNotFound if unknown or withdrawn.
func (s *Store) GoodsByID(ctx context.Context, id int64) (Goods, error) {
	var g Goods
	err := s.db.GetContext(ctx, &g, `SELECT `+goodsColumns+` FROM goods WHERE id = ? AND active = 1`, id)
	return g, notFound(err)
}

// AddGoods inserts goods (used for seeding and by tests) and returns it with its id.
func (s *Store) AddGoods(ctx context.Context, g Goods) (Goods, error) {
	g.CreatedAt = At(s.now())
	g.Active = true
	err := s.wdb.GetContext(ctx, &g.ID,
		`INSERT INTO goods (name, description, price_fen, image, stock, active, created_at) VALUES (?, ?, ?, ?, ?, 1, ?) RETURNING id`,
		g.Name, g.Description, g.Price, g.Image, g.Stock, g.CreatedAt)
	if err != nil {
		return Goods{}, err
	}
	s.goodsChanged()
	return g, nil
}

// UpdateGoods changes price, stock or availability (operator actions and tests).
func (s *Store) UpdateGoods(ctx context.Context, id int64, price money.Fen, stock *int64, active bool) error {
	res, err := s.wdb.ExecContext(ctx, `UPDATE goods SET price_fen = ?, stock = ?, active = ? WHERE id = ?`,
		price, stock, active, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	s.goodsChanged()
	return nil
}

// SeedGoods inserts gs when the goods table is empty, so ids start at 1 on a fresh
// database and a restarted shop never duplicates its catalogue.
func (s *Store) SeedGoods(ctx context.Context, gs []Goods) (int, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM goods`); err != nil || n > 0 {
		return 0, err
	}
	for _, g := range gs {
		if _, err := s.AddGoods(ctx, g); err != nil {
			return 0, err
		}
	}
	return len(gs), nil
}
