package store

import (
	"context"
	"fmt"
	"testing"
)

// Invented categories and searches leave no trace in the catalogue snapshot beyond its
// bounds: a visitor can ask for any number of them.
func TestInventedQueriesDoNotGrowTheSnapshot(t *testing.T) {
	st := openSQLite(t)
	ctx := context.Background()
	for i := range 30 {
		if _, err := st.AddGoods(ctx, Goods{Name: fmt.Sprintf("商品%d", i), Price: 100, Category: []string{"数码", "家居"}[i%2]}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2000 {
		p, err := st.Catalogue(ctx, CatalogueQuery{Category: fmt.Sprintf("编造%d", i), Page: 1, PerPage: 20})
		if err != nil || p.Total != 0 {
			t.Fatalf("invented category: %d goods, %v", p.Total, err)
		}
		if _, err := st.Catalogue(ctx, CatalogueQuery{Q: fmt.Sprintf("编造%d", i), Page: 1, PerPage: 20}); err != nil {
			t.Fatal(err)
		}
	}
	// Pages that show nothing but invented input are not keyed (renderings are kept
	// under keys): a category not on sale, a page past the last. A junk sort is the
	// default sort, under the default's key.
	if p, _ := st.Catalogue(ctx, CatalogueQuery{Category: "编造", Page: 1, PerPage: 20}); p.Key != nil {
		t.Fatal("an invented category's page has a key")
	}
	if p, _ := st.Catalogue(ctx, CatalogueQuery{Page: 99, PerPage: 20}); p.Key != nil {
		t.Fatal("a page past the last has a key")
	}
	junk, _ := st.Catalogue(ctx, CatalogueQuery{Sort: "编造", Page: 1, PerPage: 20})
	plain, _ := st.Catalogue(ctx, CatalogueQuery{Page: 1, PerPage: 20})
	if junk.Key == nil || junk.Key != plain.Key {
		t.Fatal("a junk sort is keyed apart from the default sort")
	}
	p, err := st.Catalogue(ctx, CatalogueQuery{Category: "家居", Page: 1, PerPage: 20})
	if err != nil || p.Total != 15 {
		t.Fatalf("家居: %d goods, %v", p.Total, err)
	}
	snap := st.goodsSnap.Load()
	snap.mu.Lock()
	defer snap.mu.Unlock()
	if len(snap.orders) > 3 || len(snap.found) > maxSearches {
		t.Fatalf("snapshot remembers %d orderings and %d searches", len(snap.orders), len(snap.found))
	}
}
