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
	"storefront/web"
)

// buyNow reads 立即购买's goods_id and qty (goods_id "" = checking out the cart).
func buyNow(c echo.Context, goodsID, qty string) (id, n int64, err error) {
	if goodsID == "" {
		return 0, 0, nil
	}
	id, err = strconv.ParseInt(goodsID, 10, 64)
	if err != nil || id <= 0 {
		return 0, 0, web.ErrNotFound
	}
	n, err = qtyValue(qty, 1)
	return id, n, err
}

// optionalID reads an optional positive id from a form field ("" = 0).
func optionalID(v, msg string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, web.BadRequest(msg)
	}
	return id, nil
}

// checkoutPage is 确认订单: the cart's lines (or one goods for 立即购买), where to send
// them, the total and 提交订单.
func (h *Handler) checkoutPage(c echo.Context) error {
	gid, qty, err := buyNow(c, c.QueryParam("goods_id"), c.QueryParam("qty"))
	if err != nil {
		return err
	}
	u, err := requireUser(c, c.Request().URL.RequestURI())
	if answered(c) || err != nil {
		return err
	}
	ctx := c.Request().Context()
	var lines []store.CartLine
	if gid != 0 {
		g, err := h.st.GoodsByID(ctx, gid)
		if err != nil {
			return err
		}
		lines = []store.CartLine{{GoodsID: g.ID, Name: g.Name, Image: g.Image, Qty: qty, SeenFen: g.Price,
			Price: g.Price, Active: true, Stock: g.Stock, Virtual: g.Virtual}}
	} else {
		if lines, err = h.st.Cart(ctx, u.ID); err != nil {
			return err
		}
		if len(lines) == 0 {
			h.flash(c, "购物车是空的，先挑选商品吧。")
			return c.Redirect(http.StatusSeeOther, "/cart")
		}
	}
	addrs, err := h.st.Addresses(ctx, u.ID)
	if err != nil {
		return err
	}
	p := views.CheckoutPage{Layout: h.layout(c, "确认订单"), Lines: lines, Addresses: addrs,
		GoodsID: gid, Qty: qty, Ready: true, Back: c.Request().URL.RequestURI()}
	chosen, _ := strconv.ParseInt(c.QueryParam("address_id"), 10, 64)
	for _, a := range addrs {
		if a.ID == chosen || (chosen == 0 && a.Default) {
			p.Chosen = a.ID
		}
	}
	if p.Chosen == 0 && len(addrs) > 0 {
		p.Chosen = addrs[0].ID
	}
	for _, l := range lines {
		if l.Active {
			p.Total += l.Subtotal()
		}
		p.NeedsAddress = p.NeedsAddress || !l.Virtual
		if !l.Active || !l.InStock() {
			p.Ready = false
		}
	}
	if p.Total > money.MaxAlipay {
		p.Ready, p.OverLimit = false, true
	}
	if p.NeedsAddress && len(addrs) == 0 {
		p.Ready = false
	}
	return web.Render(c, http.StatusOK, views.Checkout(p))
}

// checkout is 提交订单: one order for the whole cart (which then empties) or for the
// goods of 立即购买, to the address chosen, then the cashier.
func (h *Handler) checkout(c echo.Context) error {
	gid, qty, err := buyNow(c, c.FormValue("goods_id"), c.FormValue("qty"))
	if err != nil {
		return err
	}
	back := "/checkout"
	if gid != 0 {
		back = checkoutURL(gid, qty)
	}
	u, err := requireUser(c, back)
	if answered(c) || err != nil {
		return err
	}
	addressID, err := optionalID(c.FormValue("address_id"), "请选择收货地址。")
	if err != nil {
		return err
	}
	// The confirm page sends the total it showed, and the order is refused if the total
	// has changed since (a price moved, or the cart changed in another tab). Without the
	// field (a script, an old page) the server's total stands; Alipay's cashier shows
	// the amount again before anyone pays.
	var expect money.Fen
	if v := c.FormValue("expect_fen"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return web.BadRequest("订单合计无效，请刷新页面后再提交。")
		}
		expect = money.Fen(n)
	}
	now := h.now()
	n := store.NewOrder{OutTradeNo: payment.NewOutTradeNo(now), UserID: u.ID, TTL: h.cfg.OrderTTL,
		ReconcileAt: h.pay.ReconcileAt(now), AddressID: addressID, Expect: expect}
	var o store.Order
	if gid != 0 {
		n.Lines = []store.Line{{GoodsID: gid, Qty: qty}}
		o, _, err = h.st.CreateOrder(c.Request().Context(), n)
	} else {
		o, _, err = h.st.Checkout(c.Request().Context(), n)
	}
	switch {
	case errors.Is(err, store.ErrPriceChanged):
		h.flash(c, "购物车内容或价格有变动，未生成订单。请核对后再提交。")
		if gid == 0 {
			return c.Redirect(http.StatusSeeOther, "/cart")
		}
		return c.Redirect(http.StatusSeeOther, back)
	case errors.Is(err, store.ErrNeedAddress):
		h.flash(c, "请先填写收货地址。")
		return c.Redirect(http.StatusSeeOther, back)
	case errors.Is(err, store.ErrNoSuchAddress):
		return err // not about the goods: worded in web/errors.go
	case errors.Is(err, store.ErrEmptyOrder) && gid == 0:
		// Sent twice (a double tap, back and submit again): the first made the order
		// and emptied the cart. To that order, not to a "cart is empty" error.
		if no, err := h.st.LatestToPay(c.Request().Context(), u.ID); err == nil {
			h.flash(c, "这张订单已经提交过，可在此继续支付。")
			return c.Redirect(http.StatusSeeOther, "/orders/"+no)
		}
		h.flash(c, "购物车是空的，先挑选商品吧。")
		return c.Redirect(http.StatusSeeOther, "/cart")
	case err != nil && gid != 0:
		return web.AboutGoods(err, gid)
	case err != nil:
		return err
	}
	url, err := h.pay.PayURL(o, product(c))
	return h.toCashier(c, o, url, err)
}

// purchase creates an order for one goods and sends the shopper to Alipay's cashier,
// shipping to the address given or their default. Physical goods for a shopper with no
// address at all go to 确认订单 instead, and nothing is created.
func (h *Handler) purchase(c echo.Context) error {
	id, err := web.IDParam(c, "id")
	if err != nil {
		return err
	}
	u, err := requireUser(c, "/goods/"+strconv.FormatInt(id, 10))
	if answered(c) || err != nil {
		return err
	}
	qty, err := qtyValue(c.FormValue("qty"), 1)
	if err != nil {
		return web.AboutGoods(err, id)
	}
	addressID, err := optionalID(c.FormValue("address_id"), "收货地址无效，请重新选择。")
	if err != nil {
		return err
	}
	now := h.now()
	o, _, err := h.st.CreateOrder(c.Request().Context(), store.NewOrder{
		OutTradeNo: payment.NewOutTradeNo(now), UserID: u.ID, AddressID: addressID,
		Lines: []store.Line{{GoodsID: id, Qty: qty}}, TTL: h.cfg.OrderTTL, ReconcileAt: h.pay.ReconcileAt(now),
	})
	switch {
	case errors.Is(err, store.ErrNeedAddress):
		return c.Redirect(http.StatusSeeOther, checkoutURL(id, qty))
	case errors.Is(err, store.ErrNoSuchAddress):
		return err // not about the goods: worded in web/errors.go
	case errors.Is(err, store.ErrNotFound):
		return err
	case err != nil:
		return web.AboutGoods(err, id)
	}
	url, err := h.pay.PayURL(o, product(c))
	return h.toCashier(c, o, url, err)
}

// toCashier answers 303 to the signed gateway URL u for o.
func (h *Handler) toCashier(c echo.Context, o store.Order, u string, err error) error {
	if err != nil {
		return err
	}
	h.log.InfoContext(c.Request().Context(), "sent to cashier", "out_trade_no", o.OutTradeNo, "amount", o.Total.String())
	return c.Redirect(http.StatusSeeOther, u)
}
