package handlers

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"storefront/store"
	"storefront/views"
	"storefront/web"
)

// goodsPerPage is the goods list's page size: a page never grows with the catalogue.
const goodsPerPage = 20

// gridCache keeps rendered goods grids, keyed by the catalogue page they show (the
// store's key names its goods snapshot, so a change of goods never serves a stale
// grid). The grids carry no per-shopper data: their buy buttons are links.
type gridCache struct {
	mu sync.Mutex
	m  map[any][]byte
}

// maxGrids bounds the cache; when full it starts again (entries of old snapshots go too).
const maxGrids = 512

func (g *gridCache) get(k any) ([]byte, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.m[k]
	return b, ok
}

func (g *gridCache) put(k any, b []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil || len(g.m) >= maxGrids {
		g.m = map[any][]byte{}
	}
	g.m[k] = b
}

func (h *Handler) goodsList(c echo.Context) error {
	q := store.CatalogueQuery{Category: c.QueryParam("category"), Q: c.QueryParam("q"),
		Sort: c.QueryParam("sort"), Page: web.PageParam(c), PerPage: goodsPerPage}
	page, err := h.st.Catalogue(c.Request().Context(), q)
	if err != nil {
		return err
	}
	grid, err := h.goodsGrid(c, page)
	if err != nil {
		return err
	}
	title := "全部商品"
	if q.Category != "" {
		title = q.Category
	}
	if q.Q != "" {
		title = "搜索：" + q.Q
	}
	l := h.layout(c, title)
	l.Search = q.Q
	// The grid goes straight into the page buffer: no per-request copy of it.
	fill := templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		_, err := w.Write(grid)
		return err
	})
	return web.Render(c, http.StatusOK, views.GoodsList(views.GoodsListPage{Layout: l, Grid: fill,
		Query: q, Total: page.Total, Categories: page.Categories,
		Pager: views.Pager{Page: q.Page, More: q.Page*goodsPerPage < page.Total, Path: "/",
			Query: views.CatalogueParams(q), Pages: (page.Total + goodsPerPage - 1) / goodsPerPage}}))
}

// goodsGrid renders page's cards, or reuses the rendering of the same page of the same
// goods snapshot: the home page is the busiest page and its grid is the same for all.
func (h *Handler) goodsGrid(c echo.Context, page store.CataloguePage) ([]byte, error) {
	if page.Key != nil {
		if b, ok := h.grids.get(page.Key); ok {
			return b, nil
		}
	}
	var buf bytes.Buffer
	if err := views.GoodsGrid(page.Goods).Render(c.Request().Context(), &buf); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if page.Key != nil {
		h.grids.put(page.Key, b)
	}
	return b, nil
}

func (h *Handler) goodsDetail(c echo.Context) error {
	id, err := web.IDParam(c, "id")
	if err != nil {
		return err
	}
	g, err := h.st.GoodsByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return web.Render(c, http.StatusOK, views.GoodsDetail(views.GoodsDetailPage{Layout: h.layout(c, g.Name), Goods: g}))
}
