package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"storefront/money"
	"storefront/payment"
	"storefront/store"
	"storefront/views"
	"storefront/web"
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
		return 0, web.BadRequest("数量必须是 1 到 99 之间的整数。")
	}
	return q, nil
}

// orders is 我的订单, one tab at a time (全部 / 待付款 / 待发货 / 已发货 / 退款 / 已关闭).
func (h *Handler) orders(c echo.Context) error {
	u, err := requireUser(c, c.Request().URL.RequestURI())
	if answered(c) || err != nil {
		return err
	}
	tab := c.QueryParam("tab")
	if !store.ValidTab(tab) {
		tab = store.TabAll
	}
	page := web.PageParam(c)
	os, more, err := h.st.ListOrders(c.Request().Context(), u.ID, tab, perPage, (page-1)*perPage)
	if err != nil {
		return err
	}
	pager := views.Pager{Page: page, More: more, Path: "/orders"}
	if tab != "" {
		pager.Query = "tab=" + tab
	}
	if len(os) == 0 && page > 1 { // past the last page (an old link): not "no orders yet"
		return c.Redirect(http.StatusSeeOther, pager.URL(1))
	}
	return web.Render(c, http.StatusOK, views.Orders(views.OrdersPage{Layout: h.layout(c, "我的订单"), Orders: os,
		Now: h.now(), Tab: tab, Pager: pager}))
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
		return store.Order{}, web.ErrNotFound
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
	ctx := c.Request().Context()
	p := views.OrderPage{Layout: h.layout(c, title), Order: o, Items: items, Now: h.now(), Result: result}
	if p.Refunds, err = h.st.RefundsForOrder(ctx, o.ID); err != nil {
		return err
	}
	if p.Requests, err = h.st.RefundRequestsForOrder(ctx, o.ID); err != nil {
		return err
	}
	if p.Refundable, err = h.st.Refundable(ctx, o); err != nil {
		return err
	}
	if o.Status == store.StatusCancelled || o.Status == store.StatusClosed {
		u, ok, err := h.st.UnappliedPayment(c.Request().Context(), o.ID)
		if err != nil {
			return err
		}
		if ok {
			p.Unapplied = &u
		}
	}
	return web.Render(c, http.StatusOK, views.Order(p))
}

// payAgain sends an unpaid, unexpired order back to the cashier: same out_trade_no,
// same amount, a fresh signature, for the device asking (page or WAP pay).
func (h *Handler) payAgain(c echo.Context) error {
	o, err := h.ownOrder(c)
	if answered(c) || err != nil {
		return err
	}
	if !o.Payable(h.now()) {
		if o.Status == store.StatusUnpaid {
			return web.InOrder(web.Conflict("订单已超过支付期限，请重新下单。"), o.OutTradeNo)
		}
		if o.Status == store.StatusPaid {
			return web.InOrder(web.Conflict("订单已支付，请勿重复支付。"), o.OutTradeNo)
		}
		return web.InOrder(web.Conflict("订单"+views.StatusText(o.Status)+"，不能再付款。"), o.OutTradeNo)
	}
	url, err := h.pay.PayAgainURL(c.Request().Context(), o, product(c))
	return web.InOrder(h.toCashier(c, o, url, err), o.OutTradeNo)
}

// cannotCancel is why an order that isn't waiting for payment can't be cancelled.
func cannotCancel(status string) string {
	switch status {
	case store.StatusCancelled:
		return "订单已取消。"
	case store.StatusClosed:
		return "订单已关闭，无需取消。"
	case store.StatusPaid:
		return "订单已支付，不能取消；如需退款，请在订单页申请退款。"
	}
	return "订单" + views.StatusText(status) + "，不能取消。"
}

// cancelForm asks before cancelling (取消订单 is a page, not a script's confirm box).
func (h *Handler) cancelForm(c echo.Context) error {
	o, err := h.ownOrder(c)
	if answered(c) || err != nil {
		return err
	}
	if o.Status != store.StatusUnpaid {
		return web.InOrder(web.Conflict(cannotCancel(o.Status)), o.OutTradeNo)
	}
	return web.Render(c, http.StatusOK, views.CancelConfirm(views.OrderPage{Layout: h.layout(c, "取消订单"), Order: o}))
}

func (h *Handler) cancel(c echo.Context) error {
	o, err := h.ownOrder(c)
	if answered(c) || err != nil {
		return err
	}
	if o.Status != store.StatusUnpaid {
		return web.InOrder(web.Conflict(cannotCancel(o.Status)), o.OutTradeNo)
	}
	ctx, stop := web.TimeoutCtx(c)
	defer stop()
	err = h.pay.Cancel(ctx, o, web.RequestID(ctx))
	switch {
	case errors.Is(err, payment.ErrAlreadyPaid):
		h.flash(c, "该订单已在支付宝付款成功，无法取消。")
	case errors.Is(err, store.ErrNotUnpaid):
		h.flash(c, "订单状态已变化，未取消。")
	case err != nil:
		return web.InOrder(err, o.OutTradeNo)
	default:
		h.flash(c, "订单已取消。")
	}
	return c.Redirect(http.StatusSeeOther, "/orders/"+o.OutTradeNo)
}

// receive is 确认收货 on a shipped order.
func (h *Handler) receive(c echo.Context) error {
	o, err := h.ownOrder(c)
	if answered(c) || err != nil {
		return err
	}
	err = h.st.ConfirmReceived(c.Request().Context(), o.UserID, o.OutTradeNo)
	switch {
	case errors.Is(err, store.ErrNotShipped) && o.Status != store.StatusPaid:
		return web.InOrder(web.Conflict("订单"+views.StatusText(o.Status)+"，没有要收的货。"), o.OutTradeNo)
	case errors.Is(err, store.ErrNotShipped) && o.Fulfilment == store.Received:
		return web.InOrder(web.Conflict("已确认收货，无需再次确认。"), o.OutTradeNo)
	case errors.Is(err, store.ErrNotShipped):
		return web.InOrder(err, o.OutTradeNo) // worded in web/errors.go
	case err != nil:
		return err
	}
	h.flash(c, "已确认收货，感谢您的购买。")
	return c.Redirect(http.StatusSeeOther, "/orders/"+o.OutTradeNo)
}

func (h *Handler) purchases(c echo.Context) error {
	u, err := requireUser(c, "/purchases")
	if answered(c) || err != nil {
		return err
	}
	page := web.PageParam(c)
	ps, more, err := h.st.ListPurchases(c.Request().Context(), u.ID, perPage, (page-1)*perPage)
	if err != nil {
		return err
	}
	pager := views.Pager{Page: page, More: more, Path: "/purchases"}
	if len(ps) == 0 && page > 1 {
		return c.Redirect(http.StatusSeeOther, pager.URL(1))
	}
	return web.Render(c, http.StatusOK, views.Purchases(views.PurchasesPage{Layout: h.layout(c, "已购商品"), Purchases: ps,
		Pager: pager}))
}

// account is 我的: the shopper's own pages, one tap from the nav.
func (h *Handler) account(c echo.Context) error {
	if _, err := requireUser(c, "/account"); answered(c) || err != nil {
		return err
	}
	return web.Render(c, http.StatusOK, views.Account(views.AccountPage{Layout: h.layout(c, "我的")}))
}

// requestRefund is 申请退款 on a paid order: a reason and an optional amount (yuan; all
// that is left by default), waiting for an operator.
func (h *Handler) requestRefund(c echo.Context) error {
	o, err := h.ownOrder(c)
	if answered(c) || err != nil {
		return err
	}
	var amount money.Fen
	if v := strings.TrimSpace(c.FormValue("amount")); v != "" {
		if amount, err = money.Parse(v); err != nil || amount <= 0 {
			return web.InOrder(web.BadRequest("退款金额需为两位小数的元，如 10.00；不填则申请全部可退金额。"), o.OutTradeNo)
		}
	}
	_, err = h.st.RequestRefund(c.Request().Context(), o.UserID, o.OutTradeNo, amount, c.FormValue("reason"))
	switch {
	case errors.Is(err, store.ErrReasonRequired):
		return web.InOrder(web.BadRequest("请写一下退款原因，方便我们尽快处理。"), o.OutTradeNo)
	case errors.Is(err, store.ErrRequestWaiting):
		return web.InOrder(web.Conflict("这笔订单已有一条退款申请在处理中。"), o.OutTradeNo)
	case errors.Is(err, store.ErrRefundTooMuch):
		return web.InOrder(web.BadRequest("申请金额超过了可退金额。"), o.OutTradeNo)
	case errors.Is(err, store.ErrNotRefundable):
		return web.InOrder(web.Conflict("只有已支付的订单可以申请退款。"), o.OutTradeNo)
	case err != nil:
		return err
	}
	h.flash(c, "退款申请已提交，商家处理后会在这里显示结果。")
	return c.Redirect(http.StatusSeeOther, "/orders/"+o.OutTradeNo)
}
