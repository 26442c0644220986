package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

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
	return render(c, http.StatusOK, views.GoodsList(views.GoodsListPage{Layout: h.layout(c, "全部商品"), Goods: gs}))
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
