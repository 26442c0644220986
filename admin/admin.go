// Package admin is the back office's room (/admin): operators log in on their own page
// and ship, refund, answer refund requests, deal with flagged payments, manage goods,
// read the day's sales, export for the books and read the actions log. It mounts on
// the shop's router (package web) and shares its middleware and error mapping; its
// views are package views/admin.
package admin

import (
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"

	"storefront/payment"
	"storefront/store"
	views "storefront/views/admin"
	"storefront/web"
)

// Config holds the back office's dependencies.
type Config struct {
	Store    *store.Store
	Payments *payment.Service
	// Sessions is the operators' cookie store: its own cookie, path and keys, so a
	// shopper's cookie can never be read as an operator's.
	Sessions *web.SessionStore
	MediaDir string // where uploaded goods images are kept (served at /media/)
	Now      func() time.Time
	Logger   *slog.Logger
	Limits   web.Limits // login attempts; zero fields take the defaults
	// BcryptCost is for checking the dummy hash; zero means bcrypt.DefaultCost.
	BcryptCost int
}

// Handler holds what every back-office handler needs.
type Handler struct {
	cfg    Config
	st     *store.Store
	pay    *payment.Service
	now    func() time.Time
	log    *slog.Logger
	limits web.AuthLimits
	days   dayCache
	live   liveCache
	srv    *web.Server
}

// sessionName is the operators' session cookie.
const sessionName = "admin_session"

// Mount returns the function that adds the back office to the site's router.
func Mount(cfg Config) func(*web.Server) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	h := &Handler{cfg: cfg, st: cfg.Store, pay: cfg.Payments, now: cfg.Now, log: cfg.Logger,
		limits: web.NewAuthLimits(cfg.Limits, cfg.Now, cfg.Store, store.Operators)}
	return func(srv *web.Server) {
		h.srv = srv
		srv.Use(h.loadOperator)
		srv.Room("/admin", h.errorPage)
		get, post := srv.Get, srv.Post
		get("/admin/login", h.loginForm)
		post("/admin/login", h.login)
		post("/admin/logout", h.logout)
		get("/admin/", h.dashboard)
		get("/admin", h.toDashboard)
		get("/admin/orders", h.orders)
		get("/admin/orders/:out_trade_no", h.order)
		post("/admin/orders/:out_trade_no/ship", h.ship)
		post("/admin/orders/:out_trade_no/refunds", h.refund)
		post("/admin/orders/:out_trade_no/notes", h.note)
		post("/admin/orders/:out_trade_no/cancel", h.cancel)
		post("/admin/refunds/:id/retry", h.retryRefund)
		post("/admin/refund-requests/:id/approve", h.approve)
		post("/admin/refund-requests/:id/refuse", h.refuse)
		get("/admin/payments", h.payments)
		post("/admin/payments/:id/refund", h.refundFlagged)
		post("/admin/payments/:id/resolve", h.resolve)
		get("/admin/goods", h.goods)
		post("/admin/goods", h.createGoods)
		get("/admin/goods/:id", h.editGoods)
		post("/admin/goods/:id", h.updateGoods)
		srv.BodyLimit("/admin/goods", maxUpload+64<<10)
		srv.BodyLimit("/admin/goods/:id", maxUpload+64<<10)
		get("/admin/export/orders.csv", h.exportOrders)
		get("/admin/export/refunds.csv", h.exportRefunds)
		get("/admin/export/reconciliation.csv", h.exportReconciliation)
		get("/admin/audit", h.audit)
	}
}

// operator is the logged-in operator of a back-office request.
type operator struct {
	ID    int64
	Email string
	sid   string
}

// loadOperator reads the operators' own cookie on back-office paths and lets a request
// through only with a live back-office session: the login page aside, anyone else
// (no cookie, a shopper's cookie, a forged one) is sent to the login page.
func (h *Handler) loadOperator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		path := c.Request().URL.Path
		if !web.HasPathPrefix(path, "/admin") {
			return next(c)
		}
		sess, _ := h.cfg.Sessions.Get(c.Request(), sessionName)
		c.Set("admin_session", sess)
		id, _ := sess.Values["op"].(int64)
		email, _ := sess.Values["email"].(string)
		sid, _ := sess.Values["sid"].(string)
		if inst, _ := sess.Values["db"].(string); id > 0 && sid != "" && inst == h.st.Installation() {
			if got, err := h.st.SessionOperator(c.Request().Context(), sid); err == nil && got == id {
				c.Set("operator", operator{ID: id, Email: email, sid: sid})
			}
		}
		if c.Path() == "/admin/login" || c.Get("operator") != nil {
			return next(c)
		}
		// The router's 404 and 405 stay what they are; a real back-office page asks for
		// the operator's login and comes back after it.
		if !h.srv.Routed(c) {
			return next(c)
		}
		back := "/admin/"
		if c.Request().Method == "GET" || c.Request().Method == "HEAD" {
			back = c.Request().URL.RequestURI()
		}
		return c.Redirect(303, "/admin/login?next="+url.QueryEscape(back))
	}
}

func currentOperator(c echo.Context) operator {
	op, _ := c.Get("operator").(operator)
	return op
}

// actor is who the store logs for this request's actions.
func actor(c echo.Context) store.Actor { return store.Actor{OperatorID: currentOperator(c).ID} }

func adminSession(c echo.Context) *sessions.Session {
	if s, ok := c.Get("admin_session").(*sessions.Session); ok {
		return s
	}
	return sessions.NewSession(nil, sessionName)
}

// flash stores a one-time notice shown on the next back-office page.
func (h *Handler) flash(c echo.Context, msg string) {
	s := adminSession(c)
	s.Flashes()
	s.AddFlash(msg)
	if err := h.cfg.Sessions.Save(c.Request(), c.Response(), s); err != nil {
		h.log.WarnContext(c.Request().Context(), "saving flash", "err", err)
	}
}

// layout builds the page frame, consuming any flash.
func (h *Handler) layout(c echo.Context, title, nav string) views.Layout {
	l := views.Layout{Title: title, Operator: currentOperator(c).Email, CSRF: web.CSRFToken(c), Nav: nav}
	if s, ok := c.Get("admin_session").(*sessions.Session); ok && len(s.Values) > 0 {
		if fs := s.Flashes(); len(fs) > 0 {
			l.Flash, _ = fs[0].(string)
			if err := h.cfg.Sessions.Save(c.Request(), c.Response(), s); err != nil {
				h.log.WarnContext(c.Request().Context(), "saving session", "err", err)
			}
		}
	}
	return l
}

// errorPage is the back office's error page, for the shared error mapping.
func (h *Handler) errorPage(c echo.Context, p web.Problem) templ.Component {
	return views.Error(views.ErrorPage{Layout: h.layout(c, p.Title, ""), Message: p.Msg, Next: p.Next,
		OrderNo: p.OrderNo, RequestID: p.RequestID})
}

// safeAdminNext keeps next only if it is a back-office path.
func safeAdminNext(next string) string {
	n := web.SafeNext(next)
	if !strings.HasPrefix(n, "/admin/") {
		return "/admin/"
	}
	return n
}

func (h *Handler) toDashboard(c echo.Context) error { return c.Redirect(303, "/admin/") }
