package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"storefront/money"
)

// GoodsFieldError names the field of the goods form that breaks its rule.
type GoodsFieldError struct{ Field, Msg string }

func (e *GoodsFieldError) Error() string { return e.Field + ": " + e.Msg }

// maxStock bounds stock so a typo can't make it absurd.
const maxStock = 1_000_000

// ValidateGoods normalises an operator's goods and checks its rules: name 1–60
// characters, description at most 2,000, price 0.01 … Alipay's limit, stock unlimited or
// 0 … 1,000,000, category at most 20 characters.
func ValidateGoods(g *Goods) error {
	g.Name, g.Category = clean(g.Name), clean(g.Category)
	g.Description = strings.TrimSpace(g.Description)
	fields := []struct {
		name, v, msg string
		min, max     int
	}{
		{"name", g.Name, "商品名称需为 1–60 个字。", 1, 60},
		{"description", g.Description, "商品描述最多 2000 个字。", 0, 2000},
		{"category", g.Category, "分类最多 20 个字。", 0, 20},
	}
	for _, f := range fields {
		n := utf8.RuneCountInString(f.v)
		bad := strings.IndexFunc(f.v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }) >= 0
		if n < f.min || n > f.max || !utf8.ValidString(f.v) || bad {
			return &GoodsFieldError{Field: f.name, Msg: f.msg}
		}
	}
	if g.Price <= 0 || g.Price > money.MaxAlipay {
		return &GoodsFieldError{Field: "price", Msg: "价格需为 0.01 到 " + money.MaxAlipay.Yuan() + " 之间、最多两位小数的金额。"}
	}
	if g.Stock != nil && (*g.Stock < 0 || *g.Stock > maxStock) {
		return &GoodsFieldError{Field: "stock", Msg: "库存需为 0 到 1000000 的整数，留空表示不限。"}
	}
	return nil
}

// AllGoods lists goods for the back office, on sale or not, newest first: before is the
// id to continue after (0 = the newest).
func (s *Store) AllGoods(ctx context.Context, before int64, limit int) ([]Goods, bool, error) {
	q := `SELECT ` + goodsColumns + ` FROM goods`
	args := []any{}
	if before > 0 {
		q += ` WHERE id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	var gs []Goods
	err := s.db.SelectContext(ctx, &gs, q, append(args, limit+1)...)
	if len(gs) > limit {
		return gs[:limit], true, err
	}
	return gs, false, err
}

// AnyGoods reads goods on sale or not; ErrNotFound if none.
func (s *Store) AnyGoods(ctx context.Context, id int64) (Goods, error) {
	var g Goods
	err := s.db.GetContext(ctx, &g, `SELECT `+goodsColumns+` FROM goods WHERE id = ?`, id)
	return g, notFound(err)
}

// StockSeen is the stock an edit form showed when it was drawn. Orders move stock while
// the form is open: an edit that leaves the stock as shown keeps what it is now, and
// one that changes it is refused (ErrStockMoved) if it moved meanwhile, so a price
// change can never put back units already sold.
type StockSeen struct {
	Known bool   // false: set the stock outright (a new goods, a script)
	Stock *int64 // as shown; nil = unlimited
}

// ErrStockMoved: the stock changed since the form was drawn, and the form changes it.
var ErrStockMoved = errors.New("stock changed since the form was drawn")

func sameStock(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// SaveGoods creates (g.ID 0) or updates goods from the operator's form, logging what
// changed in the same transaction. Orders keep their own price: changing one here never
// touches them. The shop's goods cache follows at once.
func (s *Store) SaveGoods(ctx context.Context, by Actor, g Goods, seen StockSeen) (Goods, error) {
	if err := ValidateGoods(&g); err != nil {
		return Goods{}, err
	}
	err := s.inTx(ctx, func(tx txn) error {
		if g.ID == 0 {
			g.CreatedAt = At(s.now())
			if err := tx.GetContext(ctx, &g.ID,
				`INSERT INTO goods (name, description, price_fen, image, stock, active, category, virtual, created_at)
				 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
				g.Name, g.Description, g.Price, g.Image, g.Stock, g.Active, g.Category, g.Virtual, g.CreatedAt); err != nil {
				return err
			}
			return s.logAction(ctx, tx, by, Action{Action: ActGoodsCreate, Target: "goods " + strconv.FormatInt(g.ID, 10),
				After: describeGoods(g)})
		}
		var old Goods
		if err := tx.GetContext(ctx, &old, `SELECT `+goodsColumns+` FROM goods WHERE id = ?`, g.ID); err != nil {
			return notFound(err)
		}
		if g.Image == "" {
			g.Image = old.Image // no new picture uploaded: keep the one it has
		}
		if seen.Known {
			switch {
			case sameStock(g.Stock, seen.Stock):
				g.Stock = old.Stock // left as shown: whatever orders made of it since
			case !sameStock(old.Stock, seen.Stock):
				return ErrStockMoved
			}
		}
		g.CreatedAt = old.CreatedAt
		if _, err := tx.ExecContext(ctx, `UPDATE goods SET name = ?, description = ?, price_fen = ?, image = ?, stock = ?,
			active = ?, category = ?, virtual = ? WHERE id = ?`,
			g.Name, g.Description, g.Price, g.Image, g.Stock, g.Active, g.Category, g.Virtual, g.ID); err != nil {
			return err
		}
		return s.logAction(ctx, tx, by, Action{Action: ActGoodsUpdate, Target: "goods " + strconv.FormatInt(g.ID, 10),
			Before: describeGoods(old), After: describeGoods(g)})
	})
	if err == nil {
		s.goodsChanged(ctx)
	}
	return g, err
}

// describeGoods is goods as the log shows it.
func describeGoods(g Goods) string {
	stock := "不限"
	if g.Stock != nil {
		stock = strconv.FormatInt(*g.Stock, 10)
	}
	state := "上架"
	if !g.Active {
		state = "下架"
	}
	kind := "实物"
	if g.Virtual {
		kind = "虚拟"
	}
	return changes("名称", g.Name, "价格", g.Price.Yuan(), "库存", stock, "分类", orNone(g.Category), "类型", kind, "状态", state, "图片", orNone(g.Image))
}

func orNone(s string) string {
	if s == "" {
		return "无"
	}
	return s
}
