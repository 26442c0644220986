package admin

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"storefront/money"
	"storefront/payment"
	"storefront/shanghai"
	"storefront/store"
	views "storefront/views/admin"
	"storefront/web"
)

// ordersPerPage is the back office's order list page.
const ordersPerPage = 50

// day parses a date input (yyyy-mm-dd, Beijing) into the start of that day.
func day(v string) (time.Time, error) {
	return time.ParseInLocation("2006-01-02", strings.TrimSpace(v), shanghai.Location())
}

// dateRange reads from/to (Beijing days, both included) as [from, to).
func dateRange(c echo.Context) (from, to time.Time, err error) {
	if v := c.QueryParam("from"); v != "" {
		if from, err = day(v); err != nil {
			return from, to, web.BadRequest("开始日期格式不正确（yyyy-mm-dd）。")
		}
	}
	if v := c.QueryParam("to"); v != "" {
		if to, err = day(v); err != nil {
			return from, to, web.BadRequest("结束日期格式不正确（yyyy-mm-dd）。")
		}
		to = to.AddDate(0, 0, 1)
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return from, to, web.BadRequest("结束日期不能早于开始日期。")
	}
	return from, to, nil
}

func (h *Handler) orders(c echo.Context) error {
	f := views.OrdersFilter{Status: c.QueryParam("status"), Fulfilment: c.QueryParam("fulfilment"),
		Q: strings.TrimSpace(c.QueryParam("q")), From: c.QueryParam("from"), To: c.QueryParam("to")}
	from, to, err := dateRange(c)
	if err != nil {
		f.Error, from, to = web.Classify(err).Msg, time.Time{}, time.Time{}
	}
	if !validStatus(f.Status) {
		f.Status = ""
	}
	if !validFulfilment(f.Fulfilment) {
		f.Fulfilment = ""
	}
	before, _ := strconv.ParseInt(c.QueryParam("before"), 10, 64)
	os, more, err := h.st.AdminOrders(c.Request().Context(), store.OrderFilter{Status: f.Status, Fulfilment: f.Fulfilment,
		Q: f.Q, From: from, To: to, Before: before, Limit: ordersPerPage})
	if err != nil {
		return err
	}
	p := views.OrdersPage{Layout: h.layout(c, "订单", views.NavOrders), Orders: os, Filter: f,
		Pager: views.Pager{Path: "/admin/orders", Query: c.QueryParams()}}
	if more {
		p.Pager.Before = os[len(os)-1].ID
	}
	return web.Render(c, http.StatusOK, views.Orders(p))
}

func validStatus(s string) bool {
	switch s {
	case store.StatusUnpaid, store.StatusPaid, store.StatusRefunded, store.StatusCancelled, store.StatusClosed:
		return true
	}
	return false
}

func validFulfilment(s string) bool {
	return s == store.Unshipped || s == store.Shipped || s == store.Received
}

// theOrder loads the order named in the path; an unknown or malformed number is a 404.
func (h *Handler) theOrder(c echo.Context) (store.AdminOrder, error) {
	no := c.Param("out_trade_no")
	if no == "" || len(no) > 64 {
		return store.AdminOrder{}, web.ErrNotFound
	}
	return h.st.AdminOrder(c.Request().Context(), no)
}

func (h *Handler) order(c echo.Context) error {
	o, err := h.theOrder(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	p := views.OrderPage{Layout: h.layout(c, "订单 "+o.OutTradeNo, views.NavOrders), Order: o}
	if p.Items, err = h.st.OrderItems(ctx, o.ID); err != nil {
		return err
	}
	if p.Refunds, err = h.st.RefundsForOrder(ctx, o.ID); err != nil {
		return err
	}
	if p.Requests, err = h.st.RefundRequestsForOrder(ctx, o.ID); err != nil {
		return err
	}
	if p.Timeline, err = h.st.Timeline(ctx, o.Order); err != nil {
		return err
	}
	left, err := h.st.Refundable(ctx, o.Order)
	if err != nil {
		return err
	}
	if left > 0 && o.FinishedAt.IsZero() {
		p.Refundable = left.String()
		// The refund form's own request number: sent twice (a double click, a resend
		// after a slow answer), it is still one refund.
		p.RefundNo = store.NewOutRequestNo(h.now())
	}
	return web.Render(c, http.StatusOK, views.Order(p))
}

func (h *Handler) ship(c echo.Context) error {
	o, err := h.theOrder(c)
	if err != nil {
		return err
	}
	carrier, tracking := strings.TrimSpace(c.FormValue("carrier")), strings.TrimSpace(c.FormValue("tracking_no"))
	if carrier == "" || len([]rune(carrier)) > 30 {
		return web.InOrder(web.BadRequest("请填写快递公司（30 个字以内）。"), o.OutTradeNo)
	}
	if !validTracking(tracking) {
		return web.InOrder(web.BadRequest("运单号只能是 4–40 位字母、数字或短横线。"), o.OutTradeNo)
	}
	err = h.st.ShipBy(c.Request().Context(), actor(c), o.OutTradeNo, carrier, tracking)
	if errors.Is(err, store.ErrNotShippable) {
		return web.InOrder(err, o.OutTradeNo) // worded in web/errors.go
	} else if err != nil {
		return err
	}
	h.flash(c, "已发货："+carrier+" "+tracking)
	return c.Redirect(http.StatusSeeOther, "/admin/orders/"+o.OutTradeNo)
}

func validTracking(s string) bool {
	if len(s) < 4 || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-') {
			return false
		}
	}
	return true
}

// refund is an operator's refund of an order's own payment: the amount in yuan with
// exactly two decimals, a reason, optional restock.
func (h *Handler) refund(c echo.Context) error {
	o, err := h.theOrder(c)
	if err != nil {
		return err
	}
	amount, err := money.Parse(strings.TrimSpace(c.FormValue("amount")))
	if err != nil || amount <= 0 {
		return web.InOrder(web.BadRequest("退款金额需为两位小数的元，如 10.00。"), o.OutTradeNo)
	}
	reason := strings.TrimSpace(c.FormValue("reason"))
	if reason == "" {
		return web.InOrder(web.BadRequest("请填写退款原因。"), o.OutTradeNo)
	}
	no := c.FormValue("out_request_no")
	if no != "" && !validRefundNo(no) {
		return web.InOrder(web.BadRequest("退款请求号无效，请刷新订单页后重新填写。"), o.OutTradeNo)
	}
	ctx, stop := web.TimeoutCtx(c)
	defer stop()
	r, err := h.pay.Refund(ctx, store.NewRefund{OrderNo: o.OutTradeNo, Amount: amount, Reason: reason,
		Source: store.RefundByOperator, Restock: c.FormValue("restock") == "1", By: actor(c), OutRequestNo: no})
	if errors.Is(err, store.ErrRefundExists) && r.ID != 0 {
		h.flash(c, "这张退款表单已提交过（请求号 "+r.OutRequestNo+"，"+views.RefundStatusText(r.Status)+"），没有再退一次。")
		return c.Redirect(http.StatusSeeOther, "/admin/orders/"+o.OutTradeNo)
	}
	if msg, err := refundOutcome(r, err); err != nil {
		return web.InOrder(err, o.OutTradeNo)
	} else {
		h.flash(c, msg)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/orders/"+o.OutTradeNo)
}

// validRefundNo: the form's out_request_no is one store.NewOutRequestNo made ("RF" and
// 24 digits).
func validRefundNo(s string) bool {
	return len(s) == 26 && strings.HasPrefix(s, "RF") && allDigits(s[2:])
}

// refundOutcome is what the operator is told after a refund was asked of Alipay, or the
// error page's reason when none was made.
func refundOutcome(r store.Refund, err error) (string, error) {
	var re *payment.RefundError
	switch {
	case err == nil:
		return "退款成功：" + r.Amount.Yuan() + "（请求号 " + r.OutRequestNo + "）。", nil
	case errors.Is(err, payment.ErrRefundPending):
		return "退款已提交，支付宝暂未答复（" + r.FailReason + "）。系统会用同一请求号 " + r.OutRequestNo + " 自动重试并查询，不会重复退款。", nil
	case errors.As(err, &re):
		return "支付宝拒绝了这笔退款：" + re.Msg + "。退款记录为失败，可修改金额后重新发起。", nil
	}
	return "", err
}

func (h *Handler) retryRefund(c echo.Context) error {
	id, err := web.IDParam(c, "id")
	if err != nil {
		return err
	}
	ctx, stop := web.TimeoutCtx(c)
	defer stop()
	r, err := h.pay.SendRefund(ctx, id)
	msg, err := refundOutcome(r, err)
	if err != nil {
		return err
	}
	h.flash(c, msg)
	return c.Redirect(http.StatusSeeOther, "/admin/orders/"+r.OutTradeNo)
}

func (h *Handler) note(c echo.Context) error {
	o, err := h.theOrder(c)
	if err != nil {
		return err
	}
	err = h.st.AddNote(c.Request().Context(), actor(c), o.OutTradeNo, c.FormValue("note"))
	if errors.Is(err, store.ErrReasonRequired) {
		return web.InOrder(web.BadRequest("备注不能为空。"), o.OutTradeNo)
	} else if err != nil {
		return err
	}
	h.flash(c, "备注已添加。")
	return c.Redirect(http.StatusSeeOther, "/admin/orders/"+o.OutTradeNo)
}

// cancel closes an unpaid order for an operator: alipay.trade.close first, as for the
// shopper's cancel.
func (h *Handler) cancel(c echo.Context) error {
	o, err := h.theOrder(c)
	if err != nil {
		return err
	}
	if o.Status != store.StatusUnpaid {
		return web.InOrder(web.Conflict("只有待支付的订单可以取消。"), o.OutTradeNo)
	}
	ctx, stop := web.TimeoutCtx(c)
	defer stop()
	err = h.pay.CancelBy(ctx, o.Order, actor(c), web.RequestID(ctx))
	switch {
	case errors.Is(err, payment.ErrAlreadyPaid):
		h.flash(c, "这笔订单已在支付宝付款成功，没有取消。")
	case errors.Is(err, store.ErrNotUnpaid):
		h.flash(c, "订单状态已变化，没有取消。")
	case err != nil:
		return web.InOrder(err, o.OutTradeNo)
	default:
		h.flash(c, "订单已取消，库存已退回。")
	}
	return c.Redirect(http.StatusSeeOther, "/admin/orders/"+o.OutTradeNo)
}
