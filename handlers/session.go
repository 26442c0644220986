package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"storefront/store"
	"storefront/views"
)

// sessionName is the session cookie's name.
const sessionName = "shop_session"

// NewSessionStore returns the cookie session store: signed and encrypted with keys
// derived from the secret, HttpOnly, SameSite=Lax, Secure when the site is https.
func NewSessionStore(hashKey, blockKey []byte, secure bool) *sessions.CookieStore {
	s := sessions.NewCookieStore(hashKey, blockKey)
	s.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   7 * 24 * 3600,
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	s.MaxAge(s.Options.MaxAge)
	for _, c := range s.Codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.SetSerializer(jsonValues{})
		}
	}
	return s
}

// jsonValues serializes session values as JSON instead of gob: gob sends and compiles
// its type description with every cookie, which was a tenth of a logged-in page's CPU.
// Keys are strings; integers come back as int64 (the user id), strings as strings.
type jsonValues struct{}

// Serialize implements securecookie.Serializer.
func (jsonValues) Serialize(src any) ([]byte, error) {
	vals, ok := src.(map[any]any)
	if !ok {
		return nil, fmt.Errorf("session: cannot serialize %T", src)
	}
	m := make(map[string]any, len(vals))
	for k, v := range vals {
		ks, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("session: key %v is not a string", k)
		}
		m[ks] = v
	}
	return json.Marshal(m)
}

// Deserialize implements securecookie.Serializer.
func (jsonValues) Deserialize(src []byte, dst any) error {
	out, ok := dst.(*map[any]any)
	if !ok {
		return fmt.Errorf("session: cannot deserialize into %T", dst)
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return err
	}
	if *out == nil {
		*out = make(map[any]any, len(m))
	}
	for k, v := range m {
		(*out)[k] = fromJSON(v)
	}
	return nil
}

func fromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = fromJSON(x[i])
		}
	}
	return v
}

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
		if isSandbox(c) || c.Path() == "/check_order" || strings.HasPrefix(c.Path(), "/static") || c.Path() == "/healthz" {
			return next(c)
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
	case path == "/" || hasPathPrefix(path, "/goods"):
		return views.NavHome
	case hasPathPrefix(path, "/cart"), hasPathPrefix(path, "/checkout"):
		return views.NavCart
	case hasPathPrefix(path, "/orders"), hasPathPrefix(path, "/purchases"), path == "/show_msg":
		return views.NavOrders
	}
	return views.NavMe
}

// hasPathPrefix reports whether path is prefix or below it ("/cart", "/cart/x", "/cart?y").
func hasPathPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	rest := path[len(prefix):]
	return rest == "" || rest[0] == '/' || rest[0] == '?'
}

// withParam adds k=v to the local path p's query.
func withParam(p, k string, v int64) string {
	u, err := url.Parse(p)
	if err != nil {
		return p
	}
	q := u.Query()
	q.Set(k, strconv.FormatInt(v, 10))
	u.RawQuery = q.Encode()
	return u.String()
}

// safeNext keeps next only if it is a path on this site: no scheme, no host, no
// "//evil" or "/\evil" that browsers read as another host.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}
