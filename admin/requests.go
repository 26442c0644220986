package admin

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"storefront/store"
	"storefront/web"
)

// approve accepts a shopper's 申请退款: the request and its refund row commit together,
// then Alipay is asked.
func (h *Handler) approve(c echo.Context) error {
	id, err := web.IDParam(c, "id")
	if err != nil {
		return err
	}
	ctx, stop := web.TimeoutCtx(c)
	defer stop()
	r, err := h.st.ApproveRefundRequest(ctx, actor(c), id, c.FormValue("restock") == "1")
	if errors.Is(err, store.ErrRequestDecided) {
		return web.Conflict("这条退款申请已经处理过了。")
	} else if err != nil {
		return err
	}
	r, err = h.pay.SendRefund(ctx, r.ID)
	msg, err := refundOutcome(r, err)
	if err != nil {
		return web.InOrder(err, r.OutTradeNo)
	}
	h.flash(c, "已同意退款申请。"+msg)
	return c.Redirect(http.StatusSeeOther, "/admin/orders/"+r.OutTradeNo)
}

// refuse declines a 申请退款; the note is required, and the shopper sees it.
func (h *Handler) refuse(c echo.Context) error {
	id, err := web.IDParam(c, "id")
	if err != nil {
		return err
	}
	q, err := h.st.RefundRequestByID(c.Request().Context(), id)
	if err != nil {
		return err
	}
	err = h.st.RefuseRefundRequest(c.Request().Context(), actor(c), id, c.FormValue("note"))
	switch {
	case errors.Is(err, store.ErrReasonRequired):
		return web.InOrder(web.BadRequest("拒绝退款申请需要写明理由（顾客会看到）。"), q.OutTradeNo)
	case errors.Is(err, store.ErrRequestDecided):
		return web.InOrder(web.Conflict("这条退款申请已经处理过了。"), q.OutTradeNo)
	case err != nil:
		return err
	}
	h.flash(c, "已拒绝退款申请，顾客会在订单页看到理由。")
	return c.Redirect(http.StatusSeeOther, "/admin/orders/"+q.OutTradeNo)
}
