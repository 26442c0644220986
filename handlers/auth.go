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
)

// dummyHash makes a login for an unknown email cost one bcrypt comparison too, so
// response time doesn't reveal which addresses are registered.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a real password"), bcrypt.DefaultCost)

func (h *Handler) signupForm(c echo.Context) error {
	return render(c, http.StatusOK, views.Auth(views.AuthPage{Layout: h.layout(c, "注册"), Signup: true,
		Next: safeNext(c.QueryParam("next"))}))
}

func (h *Handler) loginForm(c echo.Context) error {
	return render(c, http.StatusOK, views.Auth(views.AuthPage{Layout: h.layout(c, "登录"),
		Next: safeNext(c.QueryParam("next"))}))
}

// authForm re-renders the form with an error and the given status.
func (h *Handler) authForm(c echo.Context, status int, signup bool, email, next, msg string) error {
	title := "登录"
	if signup {
		title = "注册"
	}
	return render(c, status, views.Auth(views.AuthPage{Layout: h.layout(c, title), Signup: signup,
		Email: email, Next: next, Error: msg}))
}

func (h *Handler) signup(c echo.Context) error {
	email, password, next := c.FormValue("email"), c.FormValue("password"), safeNext(c.FormValue("next"))
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > 254 {
		return h.authForm(c, http.StatusBadRequest, true, email, next, "请输入有效的邮箱地址。")
	}
	if n := utf8.RuneCountInString(password); n < 8 || len(password) > 72 {
		// bcrypt reads at most 72 bytes; longer passwords would be silently cut.
		return h.authForm(c, http.StatusBadRequest, true, email, next, "密码长度需为 8 到 72 个字符。")
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
	email, password, next := c.FormValue("email"), c.FormValue("password"), safeNext(c.FormValue("next"))
	if !h.limits.allow(c.RealIP(), store.NormalizeEmail(email)) {
		return echo.NewHTTPError(http.StatusTooManyRequests)
	}
	if email == "" || password == "" {
		return h.authForm(c, http.StatusBadRequest, false, email, next, "请输入邮箱和密码。")
	}
	u, err := h.st.UserByEmail(c.Request().Context(), email)
	hash := []byte(u.PasswordHash)
	if errors.Is(err, store.ErrNotFound) {
		hash = dummyHash
	} else if err != nil {
		return err
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || u.ID == 0 {
		return h.authForm(c, http.StatusUnauthorized, false, email, next, "邮箱或密码不正确。")
	}
	return h.startSession(c, u, next)
}

func (h *Handler) startSession(c echo.Context, u store.User, next string) error {
	s := session(c)
	s.Values = map[any]any{"uid": u.ID, "email": u.Email, "db": h.st.Installation()}
	if err := h.saveSession(c, s); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, next)
}

func (h *Handler) logout(c echo.Context) error {
	s := session(c)
	s.Values = map[any]any{}
	s.Options.MaxAge = -1
	if err := h.saveSession(c, s); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/")
}
