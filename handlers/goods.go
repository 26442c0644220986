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

// renderCache keeps rendered HTML under keys that name everything it depends on (the
// store's catalogue keys name its goods snapshot, so a change of goods never serves a
// stale rendering). It is bounded by bytes as well as entries; when full it starts
// again, so renderings of old snapshots go too.
type renderCache struct {
	mu    sync.Mutex
	m     map[any]*rendered
	bytes int
	zip   web.Gzipper
}

// rendered is one kept rendering, and its gzip once a client that accepts gzip has
// asked for it again (a page asked for once is never compressed). Both count against
// the cache's bytes.
type rendered struct {
	html, gz []byte
}

// Bounds of one renderCache: a few hundred pages, a few MiB of heap (which the
// collector's headroom multiplies in the shop's resident memory).
const (
	maxRenders     = 512
	maxRenderBytes = 2 << 20
)

func (g *renderCache) get(k any) (*rendered, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.m[k]
	return r, ok
}

func (g *renderCache) put(k any, b []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.m[k]; ok { // rendered by several requests at once
		g.bytes -= len(old.html) + len(old.gz)
	}
	if g.m == nil || len(g.m) >= maxRenders || g.bytes+len(b) > maxRenderBytes {
		g.m, g.bytes = map[any]*rendered{}, 0
	}
	g.m[k] = &rendered{html: b}
	g.bytes += len(b)
}

// gzipped is the gzip of r (kept under k), compressed now if it has none yet, or nil
// if another page is being compressed at this moment (r is then sent as it is). The
// gzip is kept with r while r is still k's rendering; past the cache's bytes, the next
// put starts the cache again, as it does for renderings.
func (g *renderCache) gzipped(k any, r *rendered) []byte {
	g.mu.Lock()
	gz := r.gz
	g.mu.Unlock()
	if gz != nil {
		return gz
	}
	if gz = g.zip.TryGzip(r.html); gz == nil { // outside the lock: other pages are served meanwhile
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.gz == nil && g.m[k] == r {
		r.gz = gz
		g.bytes += len(gz)
	}
	return gz
}

// maxPlainQuery bounds the query (bytes) of a plain page kept: its key holds the query
// as asked, and a cache's bound counts the pages, not their keys.
const maxPlainQuery = 256

// plainPageKey names a goods list page as a plain visitor sees it: the catalogue page
// and the query as asked (the title and the search box show it as typed).
type plainPageKey struct {
	catalogue any
	q         store.CatalogueQuery
}

func (h *Handler) goodsList(c echo.Context) error {
	q := store.CatalogueQuery{Category: c.QueryParam("category"), Q: c.QueryParam("q"),
		Sort: c.QueryParam("sort"), Page: web.PageParam(c), PerPage: goodsPerPage}
	ctx := c.Request().Context()
	page, err := h.st.Catalogue(ctx, q)
	if err != nil {
		return err
	}
	pages := (page.Total + goodsPerPage - 1) / goodsPerPage
	if q.Page > 1 && q.Page > pages {
		// Past the last page (an old link, a typed number): to the last, not to an
		// empty grid whose 上一页 leads to another.
		pager := views.Pager{Path: "/", Query: views.CatalogueParams(q)}
		return c.Redirect(http.StatusSeeOther, pager.URL(max(pages, 1)))
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
	// A visitor not logged in, with an empty cart and no notice, sees what every such
	// visitor sees (that frame shows no CSRF token): the whole page is rendered once per
	// query and goods snapshot. Most of the busiest page's cost was rendering it.
	var plain any
	if page.Key != nil && l.Email == "" && l.CartCount == 0 && l.Flash == "" && len(q.Q)+len(q.Category)+len(q.Sort) <= maxPlainQuery {
		plain = plainPageKey{page.Key, q}
		// The page most visitors land on goes compressed where the client takes gzip
		// (from its second asking): an 8 KB page is 2 KB on a phone's network, and its
		// answer fits in one write instead of two.
		c.Response().Header().Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
		if r, ok := h.pages.get(plain); ok {
			if web.AcceptsGzip(c.Request()) {
				if gz := h.pages.gzipped(plain, r); gz != nil {
					return web.GzipHTML(c, http.StatusOK, gz)
				}
			}
			return web.HTML(c, http.StatusOK, r.html)
		}
	}
	grid, err := h.goodsGrid(ctx, page)
	if err != nil {
		return err
	}
	// The grid goes straight into the page buffer: no per-request copy of it.
	fill := templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		_, err := w.Write(grid)
		return err
	})
	view := views.GoodsList(views.GoodsListPage{Layout: l, Grid: fill,
		Query: q, Total: page.Total, Categories: page.Categories,
		Pager: views.Pager{Page: q.Page, More: q.Page*goodsPerPage < page.Total, Path: "/",
			Query: views.CatalogueParams(q), Pages: pages}})
	if plain == nil {
		return web.Render(c, http.StatusOK, view)
	}
	b, err := renderBytes(ctx, view)
	if err != nil {
		return err
	}
	h.pages.put(plain, b)
	return web.HTML(c, http.StatusOK, b)
}

// goodsGrid renders page's cards, or reuses the rendering of the same page of the same
// goods snapshot: the grid is the same for everyone (its buy buttons are links).
func (h *Handler) goodsGrid(ctx context.Context, page store.CataloguePage) ([]byte, error) {
	if page.Key != nil {
		if r, ok := h.grids.get(page.Key); ok {
			return r.html, nil
		}
	}
	b, err := renderBytes(ctx, views.GoodsGrid(page.Goods))
	if err != nil {
		return nil, err
	}
	if page.Key != nil {
		h.grids.put(page.Key, b)
	}
	return b, nil
}

// renderBytes renders comp into bytes of its own, to be kept: exactly as many as it
// wrote (a buffer's growth would keep up to twice that).
func renderBytes(ctx context.Context, comp templ.Component) ([]byte, error) {
	var buf bytes.Buffer
	if err := comp.Render(ctx, &buf); err != nil {
		return nil, err
	}
	return bytes.Clone(buf.Bytes()), nil
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
