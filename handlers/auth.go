package handlers

import (
	"errors"
	"net/http"
	"net/mail"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"

	"storefront/store"
	"storefront/views"
	"storefront/web"
)

// maxEmail is the longest address there can be (RFC 5321's path limit).
const maxEmail = 254

func (h *Handler) signupForm(c echo.Context) error {
	return web.Render(c, http.StatusOK, views.Auth(views.AuthPage{Layout: h.layout(c, "注册"), Signup: true,
		Next: web.SafeNext(c.QueryParam("next"))}))
}

func (h *Handler) loginForm(c echo.Context) error {
	next := web.SafeNext(c.QueryParam("next"))
	return web.Render(c, http.StatusOK, views.Auth(views.AuthPage{Layout: h.layout(c, "登录"), Next: next,
		Why: loginReason(next)}))
}

// authForm re-renders the form with an error and the given status.
func (h *Handler) authForm(c echo.Context, status int, signup bool, email, next, msg string) error {
	title := "登录"
	if signup {
		title = "注册"
	}
	return web.Render(c, status, views.Auth(views.AuthPage{Layout: h.layout(c, title), Signup: signup,
		Email: email, Next: next, Error: msg}))
}

// validPassword is the rule for a new password: bcrypt reads at most 72 bytes, and
// longer passwords would be silently cut.
func validPassword(p string) bool {
	return utf8.RuneCountInString(p) >= 8 && len(p) <= 72
}

func (h *Handler) signup(c echo.Context) error {
	email, password, next := c.FormValue("email"), c.FormValue("password"), web.SafeNext(c.FormValue("next"))
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > maxEmail {
		return h.authForm(c, http.StatusBadRequest, true, "", next, "请输入有效的邮箱地址。")
	}
	if !validPassword(password) {
		return h.authForm(c, http.StatusBadRequest, true, email, next, "密码长度需为 8 到 72 个字符。")
	}
	// The limiter decides before bcrypt is paid: account creation costs the shop a hash.
	if !h.limits.AllowSignup(c.RealIP()) {
		return echo.NewHTTPError(http.StatusTooManyRequests)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), h.cfg.BcryptCost)
	if err != nil {
		return err
	}
	u, err := h.st.CreateUser(c.Request().Context(), email, string(hash))
	if errors.Is(err, store.ErrEmailTaken) {
		return h.authForm(c, http.StatusConflict, true, email, next, "该邮箱已注册，请直接登录。")
	} else if err != nil {
		return err
	}
	return h.startSession(c, u, next)
}

func (h *Handler) login(c echo.Context) error {
	email, password, next := c.FormValue("email"), c.FormValue("password"), web.SafeNext(c.FormValue("next"))
	ip := c.RealIP()
	if !h.limits.LoginFrom(ip) {
		return echo.NewHTTPError(http.StatusTooManyRequests)
	}
	account := store.NormalizeEmail(email)
	if account == "" || password == "" || len(account) > maxEmail {
		// Refused before it reaches any per-account table: nothing to remember.
		return h.authForm(c, http.StatusBadRequest, false, "", next, "请输入邮箱和密码。")
	}
	ctx := c.Request().Context()
	u, err := h.st.UserByEmail(ctx, account)
	if errors.Is(err, store.ErrNotFound) {
		u = store.User{} // no hash: checked against the dummy one
	} else if err != nil {
		return err
	}
	if ok, err := h.limits.LoginTo(ctx, ip, account, u.ID); err != nil {
		return err
	} else if !ok {
		return echo.NewHTTPError(http.StatusTooManyRequests)
	}
	if !web.PasswordMatches(u.PasswordHash, password) {
		return h.authForm(c, http.StatusUnauthorized, false, email, next, "邮箱或密码不正确。")
	}
	if err := h.limits.LoginSucceeded(ctx, ip, account, u.ID); err != nil {
		return err
	}
	return h.startSession(c, u, next)
}

// startSession records a new server-side session for u and sets its cookie.
func (h *Handler) startSession(c echo.Context, u store.User, next string) error {
	sid, err := h.st.StartSession(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	// What the visitor put in the cart before logging in joins the account's cart.
	if err := h.mergeVisitorCart(c, u.ID); err != nil {
		return err
	}
	s := session(c)
	s.Values = map[any]any{"uid": u.ID, "email": u.Email, "db": h.st.Installation(), "sid": sid}
	if err := h.saveSession(c, s); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, next)
}

// logout ends the session on the server, so the cookie stops working even if a copy of
// it survives, and clears it in this browser.
func (h *Handler) logout(c echo.Context) error {
	s := session(c)
	if sid, _ := s.Values["sid"].(string); sid != "" {
		if err := h.st.EndSession(c.Request().Context(), sid); err != nil {
			return err
		}
	}
	s.Values = map[any]any{}
	s.Options.MaxAge = -1
	if err := h.saveSession(c, s); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/")
}

func (h *Handler) passwordForm(c echo.Context) error {
	if _, err := requireUser(c, "/account/password"); answered(c) || err != nil {
		return err
	}
	return web.Render(c, http.StatusOK, views.Password(views.PasswordPage{Layout: h.layout(c, "修改密码")}))
}

// changePassword checks the current password (limited like a login: it is one), sets
// the new one and ends every other session of the shopper.
func (h *Handler) changePassword(c echo.Context) error {
	u, err := requireUser(c, "/account/password")
	if answered(c) || err != nil {
		return err
	}
	again := func(status int, msg string) error {
		return web.Render(c, status, views.Password(views.PasswordPage{Layout: h.layout(c, "修改密码"), Error: msg}))
	}
	current, next, confirm := c.FormValue("current"), c.FormValue("password"), c.FormValue("confirm")
	if !validPassword(next) {
		return again(http.StatusBadRequest, "新密码长度需为 8 到 72 个字符。")
	}
	if next != confirm {
		return again(http.StatusBadRequest, "两次输入的新密码不一致。")
	}
	ip := c.RealIP()
	if !h.limits.LoginFrom(ip) {
		return echo.NewHTTPError(http.StatusTooManyRequests)
	}
	ctx := c.Request().Context()
	if ok, err := h.limits.LoginTo(ctx, ip, u.Email, u.ID); err != nil {
		return err
	} else if !ok {
		return echo.NewHTTPError(http.StatusTooManyRequests)
	}
	user, err := h.st.UserByID(ctx, u.ID)
	if err != nil {
		return err
	}
	if !web.PasswordMatches(user.PasswordHash, current) {
		return again(http.StatusUnauthorized, "当前密码不正确。")
	}
	if err := h.limits.LoginSucceeded(ctx, ip, u.Email, u.ID); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(next), h.cfg.BcryptCost)
	if err != nil {
		return err
	}
	if err := h.st.SetPassword(ctx, u.ID, string(hash)); err != nil {
		return err
	}
	if err := h.st.EndOtherSessions(ctx, u.ID, u.sid); err != nil {
		return err
	}
	h.flash(c, "密码已修改。其他设备上的登录已全部退出。")
	return c.Redirect(http.StatusSeeOther, "/account/password")
}

// loginReason says why the login page appeared, from where the shopper was going.
func loginReason(next string) string {
	switch {
	case next == "/":
		return ""
	case web.HasPathPrefix(next, "/cart"):
		return "请先登录，登录后回到购物车。"
	case web.HasPathPrefix(next, "/checkout"), web.HasPathPrefix(next, "/goods"):
		return "请先登录再下单，登录后继续购买。"
	case web.HasPathPrefix(next, "/orders"), web.HasPathPrefix(next, "/show_msg"):
		return "请先登录，登录后查看您的订单。"
	case web.HasPathPrefix(next, "/purchases"):
		return "请先登录，登录后查看已购商品。"
	case web.HasPathPrefix(next, "/addresses"), web.HasPathPrefix(next, "/account"):
		return "请先登录，登录后管理您的账户。"
	}
	return "请先登录。"
}
