package handlers

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"storefront/store"
	"storefront/views"
	"storefront/web"
)

// sessionName is the session cookie's name.
const sessionName = "shop_session"

type sessionUser struct {
	ID    int64
	Email string
	sid   string // the server-side session, ended by logout or a password change
}

// loadSession decodes the session once per request. A cookie that fails to decode
// (old key, tampering) is treated as logged out rather than as an error.
//
// The cookie names a server-side session (table sessions), so logging out or changing
// the password ends it for good, whatever copy of the cookie survives. The check is a
// map lookup: the store keeps the live sessions it has read in memory and drops one the
// moment it ends (see store.SessionUser). The cookie also carries the user's e-mail (for
// the page header) and the database's installation token, so a cookie from an earlier
// shop.db is refused without a query.
func (h *Handler) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if h.srv.Machine(c) || web.HasPathPrefix(c.Request().URL.Path, "/admin") {
			return next(c) // no shopper session: a machine, or the back office (its own)
		}
		sess, _ := h.cfg.Sessions.Get(c.Request(), sessionName)
		c.Set("session", sess)
		id, _ := sess.Values["uid"].(int64)
		email, _ := sess.Values["email"].(string)
		sid, _ := sess.Values["sid"].(string)
		if inst, _ := sess.Values["db"].(string); id > 0 && email != "" && sid != "" && inst == h.st.Installation() {
			uid, err := h.st.SessionUser(c.Request().Context(), sid)
			switch {
			case err == nil && uid == id:
				c.Set("user", sessionUser{ID: id, Email: email, sid: sid})
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		return next(c)
	}
}

func session(c echo.Context) *sessions.Session {
	if s, ok := c.Get("session").(*sessions.Session); ok {
		return s
	}
	return sessions.NewSession(nil, sessionName)
}

func currentUser(c echo.Context) (sessionUser, bool) {
	u, ok := c.Get("user").(sessionUser)
	return u, ok
}

// requireUser returns the logged-in user, or a redirect to the login page that comes
// back to next.
func requireUser(c echo.Context, next string) (sessionUser, error) {
	if u, ok := currentUser(c); ok {
		return u, nil
	}
	return sessionUser{}, c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(next))
}

// answered tells a handler that requireUser already sent the login redirect.
func answered(c echo.Context) bool { return c.Response().Committed }

func (h *Handler) saveSession(c echo.Context, s *sessions.Session) error {
	return h.cfg.Sessions.Save(c.Request(), c.Response(), s)
}

// flash stores a one-time notice shown on the next page.
func (h *Handler) flash(c echo.Context, msg string) {
	s := session(c)
	s.Flashes() // only the latest notice matters; drop any the shopper never saw
	s.AddFlash(msg)
	if err := h.saveSession(c, s); err != nil {
		h.log.WarnContext(c.Request().Context(), "saving flash", "err", err)
	}
}

// layout builds the page frame for c, consuming any flash.
func (h *Handler) layout(c echo.Context, title string) views.Layout {
	l := views.Layout{Title: title}
	if tok, ok := c.Get("csrf").(string); ok {
		l.CSRF = tok
	}
	if u, ok := currentUser(c); ok {
		l.Email = u.Email
	}
	l.CartCount = h.cartCount(c)
	l.Nav = navFor(c.Path())
	if s, ok := c.Get("session").(*sessions.Session); ok && len(s.Values) > 0 {
		if fs := s.Flashes(); len(fs) > 0 {
			if msg, ok := fs[0].(string); ok {
				l.Flash = msg
			}
			if err := h.saveSession(c, s); err != nil {
				h.log.WarnContext(c.Request().Context(), "saving session", "err", err)
			}
		}
	}
	return l
}

// navFor is the bottom tab lit for a route.
func navFor(path string) string {
	switch {
	case path == "/" || web.HasPathPrefix(path, "/goods"):
		return views.NavHome
	case web.HasPathPrefix(path, "/cart"), web.HasPathPrefix(path, "/checkout"):
		return views.NavCart
	case web.HasPathPrefix(path, "/orders"), web.HasPathPrefix(path, "/purchases"), path == "/show_msg":
		return views.NavOrders
	}
	return views.NavMe
}
