package handlers

import (
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"storefront/store"
	"storefront/web"
)

// checkOrder is Alipay's notify. The answer is exactly "success" once the transaction
// that applied (or had already applied) the notify has committed, and "fail" for
// anything else, so Alipay keeps resending until the shop really has it.
func (h *Handler) checkOrder(c echo.Context) error {
	r := c.Request()
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, web.MaxBody))
	if err != nil {
		reason := "body unreadable"
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			reason = "body larger than 64 KiB"
		}
		h.pay.RefuseNotify(r.Context(), reason, body, web.RequestID(r.Context()))
		return c.String(http.StatusOK, "fail")
	}
	ev, err := h.pay.HandleNotify(r.Context(), body, r.Header.Get(echo.HeaderContentType), web.RequestID(r.Context()))
	if err != nil {
		h.log.ErrorContext(r.Context(), "notify not stored", "err", err)
		return c.String(http.StatusOK, "fail")
	}
	if !ev.Acknowledged() {
		return c.String(http.StatusOK, "fail")
	}
	return c.String(http.StatusOK, "success")
}

// showMsg is Alipay's browser return: verified, confirmed with trade.query when the
// order is still unpaid, then shown to its owner.
func (h *Handler) showMsg(c echo.Context) error {
	if len(c.QueryParams()) == 0 {
		return h.backFromCashier(c)
	}
	ctx, stop := web.TimeoutCtx(c)
	defer stop()
	o, err := h.pay.HandleReturn(ctx, c.QueryParams(), web.RequestID(ctx))
	if err != nil {
		return web.InOrder(err, h.ownClaimedOrder(c, c.QueryParam("out_trade_no")))
	}
	u, err := requireUser(c, c.Request().URL.RequestURI())
	if answered(c) || err != nil {
		return err
	}
	if o.UserID != u.ID {
		return web.ErrNotFound
	}
	return h.renderOrder(c, o, true)
}

// ownClaimedOrder returns no if it names an order of the logged-in shopper: a return
// that failed its check still says which order it claims, and its owner should be led
// there (anyone else learns nothing).
func (h *Handler) ownClaimedOrder(c echo.Context, no string) string {
	u, ok := currentUser(c)
	if !ok || no == "" || len(no) > 64 {
		return ""
	}
	if _, err := h.st.OrderForUser(c.Request().Context(), u.ID, no); err != nil {
		return ""
	}
	return no
}

// backFromCashier is the return URL with nothing on it: the shopper left Alipay's
// computer cashier without paying (its 返回商户), and goes back to the order they were
// paying — the unpaid one they last took to the cashier.
func (h *Handler) backFromCashier(c echo.Context) error {
	u, err := requireUser(c, "/orders?tab="+store.TabUnpaid)
	if answered(c) || err != nil {
		return err
	}
	no, err := h.st.LatestToPay(c.Request().Context(), u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return c.Redirect(http.StatusSeeOther, "/orders")
	} else if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/orders/"+no)
}
