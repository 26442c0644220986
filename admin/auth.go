package admin

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"storefront/store"
	views "storefront/views/admin"
	"storefront/web"
)

func (h *Handler) loginForm(c echo.Context) error {
	if currentOperator(c).ID != 0 {
		return c.Redirect(http.StatusSeeOther, safeAdminNext(c.QueryParam("next")))
	}
	return web.Render(c, http.StatusOK, views.Login(views.LoginPage{Layout: h.layout(c, "运营登录", ""),
		Next: safeAdminNext(c.QueryParam("next"))}))
}

// login checks an operator's password, limited like the shop's login (per address, per
// account from one address, per account).
func (h *Handler) login(c echo.Context) error {
	email, password, next := c.FormValue("email"), c.FormValue("password"), safeAdminNext(c.FormValue("next"))
	again := func(status int, msg string) error {
		return web.Render(c, status, views.Login(views.LoginPage{Layout: h.layout(c, "运营登录", ""), Email: email, Next: next, Error: msg}))
	}
	ip := c.RealIP()
	if !h.limits.LoginFrom(ip) {
		return echo.NewHTTPError(http.StatusTooManyRequests)
	}
	account := store.NormalizeEmail(email)
	if account == "" || password == "" || len(account) > 254 {
		email = ""
		return again(http.StatusBadRequest, "请输入邮箱和密码。")
	}
	ctx := c.Request().Context()
	op, err := h.st.OperatorByEmail(ctx, account)
	if errors.Is(err, store.ErrNotFound) {
		op = store.Operator{} // no hash: checked against the dummy one
	} else if err != nil {
		return err
	}
	if ok, err := h.limits.LoginTo(ctx, ip, account, op.ID); err != nil {
		return err
	} else if !ok {
		return echo.NewHTTPError(http.StatusTooManyRequests)
	}
	if !web.PasswordMatches(op.PasswordHash, password) {
		return again(http.StatusUnauthorized, "邮箱或密码不正确。")
	}
	if err := h.limits.LoginSucceeded(ctx, ip, account, op.ID); err != nil {
		return err
	}
	sid, err := h.st.StartOperatorSession(ctx, op.ID)
	if err != nil {
		return err
	}
	s := adminSession(c)
	s.Values = map[any]any{"op": op.ID, "email": op.Email, "sid": sid, "db": h.st.Installation()}
	if err := h.cfg.Sessions.Save(c.Request(), c.Response(), s); err != nil {
		return err
	}
	h.log.InfoContext(ctx, "operator logged in", "operator", op.Email)
	return c.Redirect(http.StatusSeeOther, next)
}

func (h *Handler) logout(c echo.Context) error {
	if op := currentOperator(c); op.sid != "" {
		if err := h.st.EndOperatorSession(c.Request().Context(), op.sid); err != nil {
			return err
		}
	}
	s := adminSession(c)
	s.Values = map[any]any{}
	s.Options.MaxAge = -1
	if err := h.cfg.Sessions.Save(c.Request(), c.Response(), s); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/admin/login")
}
