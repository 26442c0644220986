package handlers

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"storefront/payment"
	"storefront/store"
	"storefront/views"
)

// perPage is the length of the orders and purchases lists.
const perPage = 20

// qtyValue reads a 1–99 quantity; empty means def.
func qtyValue(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	q, err := strconv.ParseInt(s, 10, 64)
	if err != nil || q < 1 || q > 99 {
		return 0, badRequest("数量必须是 1 到 99 之间的整数。")
	}
	return q, nil
}

// pageParam reads ?page=N leniently: a bad or missing value is page 1.
func pageParam(c echo.Context) int {
	p, err := strconv.Atoi(c.QueryParam("page"))
	if err != nil || p < 1 {
		return 1
	}
	return p
}

// purchase creates an order for one goods and sends the shopper to Alipay's cashier.
func (h *Handler) purchase(c echo.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	u, err := requireUser(c, "/goods/"+strconv.FormatInt(id, 10))
	if answered(c) || err != nil {
		return err
	}
	qty, err := qtyValue(c.FormValue("qty"), 1)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	now := h.now()
	o, _, err := h.st.CreateOrder(ctx, store.NewOrder{
		OutTradeNo: payment.NewOutTradeNo(now), UserID: u.ID,
		Lines: []store.Line{{GoodsID: id, Qty: qty}}, TTL: h.cfg.OrderTTL, ReconcileAt: h.pay.ReconcileAt(now),
	})
	if err != nil {
		return err
	}
	url, err := h.pay.PayURL(o)
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

func (h *Handler) orders(c echo.Context) error {
	u, err := requireUser(c, "/orders")
	if answered(c) || err != nil {
		return err
	}
	page := pageParam(c)
	os, more, err := h.st.ListOrders(c.Request().Context(), u.ID, perPage, (page-1)*perPage)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.Orders(views.OrdersPage{Layout: h.layout(c, "我的订单"), Orders: os,
		Now: h.now(), Pager: views.Pager{Page: page, More: more, Path: "/orders"}}))
}

// ownOrder loads the logged-in shopper's order named in the path; another shopper's
// order is a 404.
func (h *Handler) ownOrder(c echo.Context) (store.Order, error) {
	no := c.Param("out_trade_no")
	u, err := requireUser(c, "/orders/"+no)
	if answered(c) || err != nil {
		return store.Order{}, err
	}
	if len(no) == 0 || len(no) > 64 {
		return store.Order{}, errNotFound
	}
	return h.st.OrderForUser(c.Request().Context(), u.ID, no)
}

func (h *Handler) order(c echo.Context) error {
	o, err := h.ownOrder(c)
	if answered(c) || err != nil {
		return err
	}
	return h.renderOrder(c, o, false)
}

func (h *Handler) renderOrder(c echo.Context, o store.Order, result bool) error {
	items, err := h.st.OrderItems(c.Request().Context(), o.ID)
	if err != nil {
		return err
	}
	title := "订单详情"
	if result {
		title = "支付结果"
	}
	p := views.OrderPage{Layout: h.layout(c, title), Order: o, Items: items, Now: h.now(), Result: result}
	if o.Status == store.StatusCancelled || o.Status == store.StatusClosed {
		u, ok, err := h.st.UnappliedPayment(c.Request().Context(), o.ID)
		if err != nil {
			return err
		}
		if ok {
			p.Unapplied = &u
		}
	}
	return render(c, http.StatusOK, views.Order(p))
}

// payAgain sends an unpaid, unexpired order back to the cashier: same out_trade_no,
// same amount, a fresh signature.
func (h *Handler) payAgain(c echo.Context) error {
	o, err := h.ownOrder(c)
	if answered(c) || err != nil {
		return err
	}
	if !o.Payable(h.now()) {
		if o.Status == store.StatusUnpaid {
			return inOrder(conflict("订单已超过支付期限，请重新下单。"), o.OutTradeNo)
		}
		if o.Status == store.StatusPaid {
			return inOrder(conflict("订单已支付，请勿重复支付。"), o.OutTradeNo)
		}
		return inOrder(conflict("订单"+views.StatusText(o.Status)+"，不能再付款。"), o.OutTradeNo)
	}
	url, err := h.pay.PayAgainURL(c.Request().Context(), o)
	return inOrder(h.toCashier(c, o, url, err), o.OutTradeNo)
}

func (h *Handler) cancel(c echo.Context) error {
	o, err := h.ownOrder(c)
	if answered(c) || err != nil {
		return err
	}
	if o.Status != store.StatusUnpaid {
		return inOrder(conflict("订单"+views.StatusText(o.Status)+"，不能取消。"), o.OutTradeNo)
	}
	ctx, stop := timeoutCtx(c)
	defer stop()
	err = h.pay.Cancel(ctx, o, RequestID(ctx))
	switch {
	case errors.Is(err, payment.ErrAlreadyPaid):
		h.flash(c, "该订单已在支付宝付款成功，无法取消。")
	case errors.Is(err, store.ErrNotUnpaid):
		h.flash(c, "订单状态已变化，未取消。")
	case err != nil:
		return inOrder(err, o.OutTradeNo)
	default:
		h.flash(c, "订单已取消。")
	}
	return c.Redirect(http.StatusSeeOther, "/orders/"+o.OutTradeNo)
}

func (h *Handler) purchases(c echo.Context) error {
	u, err := requireUser(c, "/purchases")
	if answered(c) || err != nil {
		return err
	}
	page := pageParam(c)
	ps, more, err := h.st.ListPurchases(c.Request().Context(), u.ID, perPage, (page-1)*perPage)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.Purchases(views.PurchasesPage{Layout: h.layout(c, "已购商品"), Purchases: ps,
		Pager: views.Pager{Page: page, More: more, Path: "/purchases"}}))
}
