package handlers

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"storefront/store"
	"storefront/views"
	"storefront/web"
)

func (h *Handler) addresses(c echo.Context) error {
	u, err := requireUser(c, "/addresses")
	if answered(c) || err != nil {
		return err
	}
	as, err := h.st.Addresses(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	return web.Render(c, http.StatusOK, views.Addresses(views.AddressesPage{Layout: h.layout(c, "收货地址"), Addresses: as,
		Next: optionalNext(c.QueryParam("next"))}))
}

// addAddress adds to the address book and goes back to next (确认订单, when the first
// address is entered there) or to the book. A form that breaks a rule is shown again
// with what was typed and the reason.
func (h *Handler) addAddress(c echo.Context) error {
	u, err := requireUser(c, "/addresses")
	if answered(c) || err != nil {
		return err
	}
	a := store.Address{UserID: u.ID, Name: c.FormValue("name"), Phone: c.FormValue("phone"),
		Region: c.FormValue("region"), Detail: c.FormValue("detail"), Default: c.FormValue("default") == "1"}
	next := c.FormValue("next")
	ctx := c.Request().Context()
	a, err = h.st.AddAddress(ctx, a)
	var ae *store.AddressError
	switch {
	case errors.As(err, &ae), errors.Is(err, store.ErrTooManyAddresses):
		msg := "地址簿已满（最多 20 个），请先删除不用的地址。"
		if ae != nil {
			msg = ae.Msg
		}
		as, lerr := h.st.Addresses(ctx, u.ID)
		if lerr != nil {
			return lerr
		}
		return web.Render(c, http.StatusBadRequest, views.Addresses(views.AddressesPage{Layout: h.layout(c, "收货地址"),
			Addresses: as, Form: a, Error: msg, Field: fieldOf(ae), Next: optionalNext(next)}))
	case err != nil:
		return err
	}
	if next := optionalNext(next); next != "" {
		// Back to 确认订单 with the new address chosen.
		return c.Redirect(http.StatusSeeOther, web.WithParam(next, "address_id", a.ID))
	}
	h.flash(c, "地址已保存。")
	return c.Redirect(http.StatusSeeOther, "/addresses")
}

func fieldOf(ae *store.AddressError) string {
	if ae == nil {
		return ""
	}
	return ae.Field
}

func (h *Handler) defaultAddress(c echo.Context) error {
	id, err := web.IDParam(c, "id")
	if err != nil {
		return err
	}
	u, err := requireUser(c, "/addresses")
	if answered(c) || err != nil {
		return err
	}
	if err := h.st.SetDefaultAddress(c.Request().Context(), u.ID, id); err != nil {
		return err
	}
	h.flash(c, "已设为默认地址。")
	return c.Redirect(http.StatusSeeOther, backTo(c, "/addresses"))
}

func (h *Handler) deleteAddress(c echo.Context) error {
	id, err := web.IDParam(c, "id")
	if err != nil {
		return err
	}
	u, err := requireUser(c, "/addresses")
	if answered(c) || err != nil {
		return err
	}
	if err := h.st.DeleteAddress(c.Request().Context(), u.ID, id); err != nil {
		return err
	}
	h.flash(c, "地址已删除。已下的订单不受影响。")
	return c.Redirect(http.StatusSeeOther, "/addresses")
}

// backTo is the form's local next, or def.
func backTo(c echo.Context, def string) string {
	if n := c.FormValue("next"); n != "" {
		return web.SafeNext(n)
	}
	return def
}

// optionalNext is a local next, or "" when none was given (or it pointed elsewhere).
func optionalNext(next string) string {
	if next == "" {
		return ""
	}
	if n := web.SafeNext(next); n != "/" || next == "/" {
		return n
	}
	return ""
}
