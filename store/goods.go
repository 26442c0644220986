package store

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"storefront/money"
)

// goodsCacheTTL bounds how stale the cached goods list can be after a change made by
// another process that could not tell this one (see Store.changed).
const goodsCacheTTL = time.Second

// Goods is something the shop sells.
type Goods struct {
	ID          int64     `db:"id"`
	Name        string    `db:"name"`
	Description string    `db:"description"`
	Price       money.Fen `db:"price_fen"`
	Image       string    `db:"image"`
	Stock       *int64    `db:"stock"` // nil = unlimited
	Active      bool      `db:"active"`
	Category    string    `db:"category"`
	Virtual     bool      `db:"virtual"` // needs no delivery address
	CreatedAt   Time      `db:"created_at"`
}

// LowStock is the stock at or below which the shop says 仅剩 N 件.
const LowStock = 10

// InStock reports whether at least qty can be sold.
func (g Goods) InStock(qty int64) bool { return g.Stock == nil || *g.Stock >= qty }

// Low reports whether the remaining stock is worth telling the shopper about.
func (g Goods) Low() bool { return g.Stock != nil && *g.Stock > 0 && *g.Stock <= LowStock }

const goodsColumns = `id, name, description, price_fen, image, stock, active, category, virtual, created_at`

// goodsSnapshot is the catalogue on sale as read at one moment, with what listing and
// searching it need, computed once per snapshot.
type goodsSnapshot struct {
	goods []Goods
	gen   uint64
	id    uint64       // unique in the process: names the snapshot in page keys
	at    atomic.Int64 // when last read from the database, UnixNano
	// lower-cased name and description per goods, for case-insensitive search.
	text       []string
	categories []string // in order of first appearance
	mu         sync.Mutex
	orders     map[catalogueKey][]int // indexes into goods, per category and sort
	found      map[searchKey][]int    // the same, of the goods matching a search
}

type catalogueKey struct{ category, sort string }

type searchKey struct {
	catalogueKey
	q string
}

// maxSearches bounds the searches remembered per snapshot: past it, a search is
// answered by scanning again, so invented queries can't grow memory.
const maxSearches = 256

// ListGoods returns the goods on sale, by id. The slice is shared between callers:
// read it, never modify it.
func (s *Store) ListGoods(ctx context.Context) ([]Goods, error) {
	snap, err := s.goodsSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	return snap.goods, nil
}

// goodsSnapshot returns the catalogue as last read. A write of goods (here, or announced
// by another instance) makes the next caller read it again and the others wait for that
// read; a snapshot that is merely old (goodsTTL: the bound for writes nobody announced)
// is re-read by one caller while the rest keep using it, and if nothing changed the same
// snapshot stays — with its sort orders, search results and rendered grids.
func (s *Store) goodsSnapshot(ctx context.Context) (*goodsSnapshot, error) {
	gen := s.goodsGen.Load()
	snap := s.goodsSnap.Load()
	if snap != nil && snap.gen == gen {
		if time.Since(snap.readAt()) < s.goodsTTL {
			return snap, nil
		}
		if !s.goodsMu.TryLock() {
			return snap, nil // another caller is re-reading it
		}
	} else {
		s.goodsMu.Lock()
	}
	defer s.goodsMu.Unlock()
	gen = s.goodsGen.Load()
	if cur := s.goodsSnap.Load(); cur != nil && cur.gen == gen && time.Since(cur.readAt()) < s.goodsTTL {
		return cur, nil // read by the caller this one waited for
	}
	var gs []Goods
	err := s.db.SelectContext(ctx, &gs, `SELECT `+goodsColumns+` FROM goods WHERE active ORDER BY id`)
	if err != nil {
		return nil, err
	}
	if cur := s.goodsSnap.Load(); cur != nil && cur.gen == gen && slices.EqualFunc(cur.goods, gs, sameGoods) {
		cur.at.Store(time.Now().UnixNano())
		return cur, nil
	}
	snap = &goodsSnapshot{goods: gs, gen: gen, id: s.snapSeq.Add(1), text: make([]string, len(gs)),
		orders: map[catalogueKey][]int{}, found: map[searchKey][]int{}}
	snap.at.Store(time.Now().UnixNano())
	seen := map[string]bool{}
	for i, g := range gs {
		snap.text[i] = strings.ToLower(g.Name + "\n" + g.Description)
		if g.Category != "" && !seen[g.Category] {
			seen[g.Category] = true
			snap.categories = append(snap.categories, g.Category)
		}
	}
	s.goodsSnap.Store(snap)
	return snap, nil
}

func sameGoods(a, b Goods) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Description == b.Description && a.Price == b.Price && a.Image == b.Image &&
		(a.Stock == nil) == (b.Stock == nil) && (a.Stock == nil || *a.Stock == *b.Stock) && a.Active == b.Active &&
		a.Category == b.Category && a.Virtual == b.Virtual && a.CreatedAt.Equal(b.CreatedAt.Time)
}

func (snap *goodsSnapshot) readAt() time.Time { return time.Unix(0, snap.at.Load()) }

// Catalogue sorts.
const (
	SortDefault   = ""           // as the shop lists them (by id)
	SortPrice     = "price"      // cheapest first
	SortPriceDesc = "price_desc" // dearest first
	SortNew       = "new"        // newest first
)

// CatalogueQuery asks for one page of the goods on sale.
type CatalogueQuery struct {
	Category string // "" = every category
	Q        string // search in name and description; "" = no search
	Sort     string
	Page     int // from 1
	PerPage  int
}

// CataloguePage is one page of goods and what the page around it needs.
type CataloguePage struct {
	Goods      []Goods
	Total      int      // goods matching, on every page
	Categories []string // every category on sale
	// Key identifies the snapshot and query the page was cut from: equal keys, equal
	// pages (so a rendered page can be reused).
	Key any
}

// maxSearch bounds a search string (runes).
const maxSearch = 50

// Catalogue returns one page of goods on sale. Search is a case-insensitive substring
// match over name and description of the in-memory catalogue: it finds two-character
// Chinese words such as 耳机 (which a trigram index cannot), costs tens of microseconds
// at thousands of goods, and needs no engine-specific SQL.
func (s *Store) Catalogue(ctx context.Context, q CatalogueQuery) (CataloguePage, error) {
	snap, err := s.goodsSnapshot(ctx)
	if err != nil {
		return CataloguePage{}, err
	}
	if q.PerPage <= 0 {
		q.PerPage = 20
	}
	if q.Page < 1 {
		q.Page = 1
	}
	if r := []rune(strings.TrimSpace(q.Q)); len(r) > maxSearch {
		q.Q = string(r[:maxSearch])
	}
	q.Q = strings.ToLower(strings.TrimSpace(q.Q))
	switch q.Sort {
	case SortPrice, SortPriceDesc, SortNew:
	default:
		q.Sort = SortDefault
	}
	if q.Category != "" && !slices.Contains(snap.categories, q.Category) {
		// No such category on sale: an empty page, neither keyed nor searched, so
		// invented categories leave nothing behind.
		return CataloguePage{Categories: snap.categories}, nil
	}
	idx := snap.ordered(q.Category, q.Sort)
	remembered := true
	if q.Q != "" {
		idx, remembered = snap.search(idx, catalogueKey{q.Category, q.Sort}, q.Q)
	}
	p := CataloguePage{Total: len(idx), Categories: snap.categories}
	from, to := (q.Page-1)*q.PerPage, min(q.Page*q.PerPage, len(idx))
	if from < to {
		p.Goods = make([]Goods, 0, to-from)
		for _, i := range idx[from:to] {
			p.Goods = append(p.Goods, snap.goods[i])
		}
	}
	// A search's page gets a key only while the snapshot remembers the search, so the
	// renderings kept under these keys are as bounded as the searches are; a page past
	// the last gets none (but the first page of nothing does: "nothing found").
	if remembered && (from < len(idx) || q.Page == 1) {
		p.Key = pageKey{snap: snap.id, category: q.Category, sort: q.Sort, q: q.Q, page: q.Page, per: q.PerPage}
	}
	return p, nil
}

// pageKey names the snapshot by its id, not a pointer: a rendering kept under an old
// snapshot's key never keeps the old catalogue in memory.
type pageKey struct {
	snap              uint64
	category, sort, q string
	page, per         int
}

// ordered returns the indexes of the goods in category (all if ""), in sort order, and
// remembers them. Catalogue has checked both: category is on sale (remembering every
// one a visitor invents would grow without bound) and by is one of the sorts.
func (snap *goodsSnapshot) ordered(category, by string) []int {
	k := catalogueKey{category, by}
	snap.mu.Lock()
	defer snap.mu.Unlock()
	if idx, ok := snap.orders[k]; ok {
		return idx
	}
	idx := make([]int, 0, len(snap.goods))
	for i, g := range snap.goods {
		if category == "" || g.Category == category {
			idx = append(idx, i)
		}
	}
	gs := snap.goods
	switch by {
	case SortPrice:
		sort.SliceStable(idx, func(a, b int) bool { return gs[idx[a]].Price < gs[idx[b]].Price })
	case SortPriceDesc:
		sort.SliceStable(idx, func(a, b int) bool { return gs[idx[a]].Price > gs[idx[b]].Price })
	case SortNew:
		sort.SliceStable(idx, func(a, b int) bool { return gs[idx[a]].ID > gs[idx[b]].ID })
	}
	snap.orders[k] = idx
	return idx
}

// search returns those of idx (the order of k) whose text contains q, and whether the
// snapshot remembers the answer (up to maxSearches of them).
func (snap *goodsSnapshot) search(idx []int, k catalogueKey, q string) ([]int, bool) {
	sk := searchKey{k, q}
	snap.mu.Lock()
	found, ok := snap.found[sk]
	snap.mu.Unlock()
	if ok {
		return found, true
	}
	found = make([]int, 0, 64)
	for _, i := range idx {
		if strings.Contains(snap.text[i], q) {
			found = append(found, i)
		}
	}
	snap.mu.Lock()
	defer snap.mu.Unlock()
	if len(snap.found) < maxSearches {
		snap.found[sk] = found
		return found, true
	}
	return found, false
}

// GoodsByID returns one goods on sale; ErrNotFound if unknown or withdrawn.
func (s *Store) GoodsByID(ctx context.Context, id int64) (Goods, error) {
	var g Goods
	err := s.db.GetContext(ctx, &g, `SELECT `+goodsColumns+` FROM goods WHERE id = ? AND active`, id)
	return g, notFound(err)
}

// AddGoods inserts goods on sale (used for seeding and by tests) and returns it with its id.
func (s *Store) AddGoods(ctx context.Context, g Goods) (Goods, error) {
	g.CreatedAt = At(s.now())
	g.Active = true
	err := s.wdb.GetContext(ctx, &g.ID,
		`INSERT INTO goods (name, description, price_fen, image, stock, active, category, virtual, created_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		g.Name, g.Description, g.Price, g.Image, g.Stock, true, g.Category, g.Virtual, g.CreatedAt)
	if err != nil {
		return Goods{}, err
	}
	s.goodsChanged(ctx)
	return g, nil
}

// UpdateGoods changes price, stock or availability (tests; operators use SaveGoods).
func (s *Store) UpdateGoods(ctx context.Context, id int64, price money.Fen, stock *int64, active bool) error {
	res, err := s.wdb.ExecContext(ctx, `UPDATE goods SET price_fen = ?, stock = ?, active = ? WHERE id = ?`,
		price, stock, active, id)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		return ErrNotFound
	}
	s.goodsChanged(ctx)
	return nil
}

// SeedGoods inserts gs when the goods table is empty, so ids start at 1 on a fresh
// database and a restarted shop never duplicates its catalogue. The installation row is
// locked first, so instances starting together seed once between them.
func (s *Store) SeedGoods(ctx context.Context, gs []Goods) (int, error) {
	seeded := 0
	err := s.inTx(ctx, func(tx txn) error {
		var token string
		if err := tx.GetContext(ctx, &token, `SELECT token FROM installation WHERE id = 1`+s.dl.forUpdate); err != nil {
			return err
		}
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM goods`); err != nil || n > 0 {
			return err
		}
		now := At(s.now())
		for _, g := range gs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO goods (name, description, price_fen, image, stock, active, category, virtual, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, g.Name, g.Description, g.Price, g.Image, g.Stock, true, g.Category, g.Virtual, now); err != nil {
				return err
			}
		}
		seeded = len(gs)
		return nil
	})
	if seeded > 0 {
		s.goodsChanged(ctx)
	}
	return seeded, err
}

// GoodsOnSale returns those of ids that are on sale, by id, from the cached catalogue
// (a visitor's cart, kept in the session, is read this way without a query).
func (s *Store) GoodsOnSale(ctx context.Context, ids []int64) (map[int64]Goods, error) {
	snap, err := s.goodsSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]Goods, len(ids))
	for _, id := range ids {
		// The snapshot is in id order.
		i := sort.Search(len(snap.goods), func(i int) bool { return snap.goods[i].ID >= id })
		if i < len(snap.goods) && snap.goods[i].ID == id {
			out[id] = snap.goods[i]
		}
	}
	return out, nil
}
