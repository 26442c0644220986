package handlers

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"storefront/money"
	"storefront/payment"
	"storefront/store"
	"storefront/views"
)

func (h *Handler) cart(c echo.Context) error {
	u, err := requireUser(c, "/cart")
	if answered(c) || err != nil {
		return err
	}
	lines, err := h.st.Cart(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	// The layout is built first: it takes the flash, which the cart page may be showing
	// after a checkout refused for a price change.
	p := views.CartPage{Layout: h.layout(c, "购物车"), Lines: lines, Ready: len(lines) > 0}
	for _, l := range lines {
		if l.Active {
			p.Total += l.Subtotal()
		}
		if !l.Active || (l.Stock != nil && *l.Stock < l.Qty) {
			p.Ready = false
		}
	}
	if p.Total > money.MaxAlipay {
		p.Ready, p.OverLimit = false, true
	}
	return render(c, http.StatusOK, views.Cart(p))
}

func (h *Handler) addToCart(c echo.Context) error {
	u, err := requireUser(c, "/cart")
	if answered(c) || err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.FormValue("goods_id"), 10, 64)
	if err != nil || id <= 0 {
		return badRequest("请选择要加入购物车的商品。")
	}
	qty, err := qtyValue(c.FormValue("qty"), 1)
	if err != nil {
		return err
	}
	if err := h.st.AddToCart(c.Request().Context(), u.ID, id, qty); err != nil {
		return err
	}
	h.flash(c, "已加入购物车。")
	return c.Redirect(http.StatusSeeOther, "/cart")
}

func (h *Handler) removeFromCart(c echo.Context) error {
	id, err := idParam(c, "goods_id")
	if err != nil {
		return err
	}
	u, err := requireUser(c, "/cart")
	if answered(c) || err != nil {
		return err
	}
	if err := h.st.RemoveFromCart(c.Request().Context(), u.ID, id); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/cart")
}

// checkout turns the whole cart into one order and sends the shopper to the cashier.
func (h *Handler) checkout(c echo.Context) error {
	u, err := requireUser(c, "/cart")
	if answered(c) || err != nil {
		return err
	}
	// The cart page sends the total it showed, and checkout refuses if the cart's total
	// has changed since (a price moved, or the cart was changed in another tab). Without
	// the field (a script, an old page) the server's total stands; Alipay's cashier shows
	// the amount again before anyone pays.
	var expect money.Fen
	if v := c.FormValue("expect_fen"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return badRequest("购物车合计无效，请刷新购物车后再结算。")
		}
		expect = money.Fen(n)
	}
	now := h.now()
	o, _, err := h.st.Checkout(c.Request().Context(), u.ID, payment.NewOutTradeNo(now), h.cfg.OrderTTL, h.pay.ReconcileAt(now), expect)
	if errors.Is(err, store.ErrPriceChanged) {
		h.flash(c, "购物车内容或价格有变动，未生成订单。请核对购物车后再结算。")
		return c.Redirect(http.StatusSeeOther, "/cart")
	}
	if err != nil {
		return err
	}
	url, err := h.pay.PayURL(o)
	return h.toCashier(c, o, url, err)
}
