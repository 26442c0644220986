package handlers

import (
	"bytes"
	"context"
	"html"
	"io"
	"net/http"
	"strconv"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"storefront/store"
	"storefront/views"
)

// idParam reads a positive integer path parameter; anything else is a 404, as an
// unknown id would be.
func idParam(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound
	}
	return id, nil
}

func (h *Handler) goodsList(c echo.Context) error {
	gs, err := h.st.ListGoods(c.Request().Context())
	if err != nil {
		return err
	}
	grid, err := h.goodsGrid(c, gs)
	if err != nil {
		return err
	}
	l := h.layout(c, "全部商品")
	token := html.EscapeString(l.CSRF)
	// The grid's pieces and the token go straight into the page buffer: no per-request
	// copy of the whole grid.
	fill := templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		for i, part := range grid {
			if i > 0 {
				if _, err := io.WriteString(w, token); err != nil {
					return err
				}
			}
			if _, err := w.Write(part); err != nil {
				return err
			}
		}
		return nil
	})
	return render(c, http.StatusOK, views.GoodsList(views.GoodsListPage{Layout: l, Grid: fill}))
}

// gridFragment is the goods grid rendered for one goods snapshot, split where each
// shopper's CSRF token goes.
type gridFragment struct {
	snapshot *store.Goods // identity of the ListGoods slice it was rendered from
	parts    [][]byte
}

// goodsGrid returns the rendered grid for gs, rendering it only when the goods snapshot
// changed: the home page is the busiest page and its cards are the same for everyone.
func (h *Handler) goodsGrid(c echo.Context, gs []store.Goods) ([][]byte, error) {
	var key *store.Goods
	if len(gs) > 0 {
		key = &gs[0]
	}
	if f := h.grid.Load(); f != nil && f.snapshot == key && key != nil {
		return f.parts, nil
	}
	var buf bytes.Buffer
	if err := views.GoodsGrid(gs, views.CSRFPlaceholder).Render(c.Request().Context(), &buf); err != nil {
		return nil, err
	}
	parts := bytes.Split(buf.Bytes(), []byte(views.CSRFPlaceholder))
	h.grid.Store(&gridFragment{snapshot: key, parts: parts})
	return parts, nil
}

func (h *Handler) goodsDetail(c echo.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	g, err := h.st.GoodsByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.GoodsDetail(views.GoodsDetailPage{Layout: h.layout(c, g.Name), Goods: g}))
}
