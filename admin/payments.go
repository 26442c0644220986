package admin

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"storefront/money"
	"storefront/store"
	views "storefront/views/admin"
	"storefront/web"
)

func (h *Handler) payments(c echo.Context) error {
	before, _ := strconv.ParseInt(c.QueryParam("before"), 10, 64)
	fs, more, err := h.st.FlaggedPayments(c.Request().Context(), before, 50)
	if err != nil {
		return err
	}
	p := views.PaymentsPage{Layout: h.layout(c, "异常支付", views.NavPayments), Flagged: fs,
		Pager: views.Pager{Path: "/admin/payments"}}
	if p.Days, err = h.st.Reconciliations(c.Request().Context(), 14); err != nil {
		return err
	}
	if p.Diffs, err = h.st.OpenDifferences(c.Request().Context(), 200); err != nil {
		return err
	}
	if more {
		p.Pager.Before = fs[len(fs)-1].ID
	}
	return web.Render(c, http.StatusOK, views.Payments(p))
}

// refundFlagged refunds a flagged payment in full now (a second payment, a wrong
// amount): a refund of that trade, linked to the event.
func (h *Handler) refundFlagged(c echo.Context) error {
	id, err := web.IDParam(c, "id")
	if err != nil {
		return err
	}
	f, err := h.st.FlaggedPayment(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if f.Done() || !f.AmountFen.Valid || f.TradeNo == "" {
		return web.Conflict("这笔异常支付已经处理，或没有可退的金额。")
	}
	ctx, stop := web.TimeoutCtx(c)
	defer stop()
	r, err := h.pay.Refund(ctx, store.NewRefund{OrderNo: f.OutTradeNo, TradeNo: f.TradeNo, Amount: money.Fen(f.AmountFen.Int64),
		Reason: "异常支付退款：" + f.Reason, Source: store.RefundByOperator, By: actor(c), ForEvent: f.ID})
	if errors.Is(err, store.ErrRefundTooMuch) {
		return web.Conflict("这笔付款已经全部退款或正在退款。")
	}
	msg, err := refundOutcome(r, err)
	if err != nil {
		return err
	}
	h.flash(c, msg)
	return c.Redirect(http.StatusSeeOther, "/admin/payments")
}

// resolve marks a flagged payment dealt with, with the operator's note.
func (h *Handler) resolve(c echo.Context) error {
	id, err := web.IDParam(c, "id")
	if err != nil {
		return err
	}
	err = h.st.ResolvePayment(c.Request().Context(), actor(c), id, c.FormValue("note"))
	if errors.Is(err, store.ErrReasonRequired) {
		return web.BadRequest("请写明处理方式。")
	} else if err != nil {
		return err
	}
	h.flash(c, "已标记为已处理。")
	return c.Redirect(http.StatusSeeOther, "/admin/payments")
}
