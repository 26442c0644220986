// Package handlers speaks HTTP for the shop: it builds the router, reads requests,
// calls the store, the Alipay rules and the views, and maps errors to pages in one
// place (errors.go).
package handlers

import (
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"

	"storefront/payment"
	"storefront/store"
)

// Config holds the handlers' dependencies and settings.
type Config struct {
	Store    *store.Store
	Payments *payment.Service
	Sessions *sessions.CookieStore
	Static   fs.FS         // the static/ folder
	Sandbox  http.Handler  // the local emulator, mounted at /sandbox; nil outside local mode
	Gateway  string        // Alipay gateway URL: the browser is sent there, so CSP must allow it
	OrderTTL time.Duration // unpaid orders close after this
	Secure   bool          // PUBLIC_URL is https: cookies get Secure
	Now      func() time.Time
	Logger   *slog.Logger
	// Limits for login and signup attempts; zero fields take the defaults.
	Limits Limits
	// DevReload lets templ's live-reload proxy (go tool task dev) run its script; never
	// set in production, where the CSP allows no script at all.
	DevReload bool
	// BcryptCost for new passwords; zero means bcrypt.DefaultCost (tests lower it).
	BcryptCost int
}

// Handler holds what every handler needs.
type Handler struct {
	cfg    Config
	st     *store.Store
	pay    *payment.Service
	now    func() time.Time
	log    *slog.Logger
	limits authLimits
	grids  gridCache      // rendered goods grids, per catalogue page
	routed map[route]bool // every registered (method, path)
}

// route is a registered method and path template, the key of Handler.routed.
type route struct{ method, path string }

// New returns the shop's router with every route and middleware installed.
func New(cfg Config) *echo.Echo {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.OrderTTL <= 0 {
		cfg.OrderTTL = 30 * time.Minute
	}
	h := &Handler{cfg: cfg, st: cfg.Store, pay: cfg.Payments, now: cfg.Now, log: cfg.Logger,
		limits: newAuthLimits(cfg.Limits, cfg.Now)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// No proxy in front by default: the peer address is the client. Trusting
	// X-Forwarded-For would let anyone reset their login rate limit.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = h.handleError
	h.middleware(e)
	h.routes(e)
	h.routed = map[route]bool{}
	for _, r := range e.Routes() {
		h.routed[route{r.Method, r.Path}] = true
	}
	return e
}

// isRouted reports whether the request matched a route with its method. Requests that
// did not are answered 404 or 405 by the router's own handler, so checks that would
// answer them differently (a CSRF 403 for a POST to a GET-only page) step aside.
func (h *Handler) isRouted(c echo.Context) bool {
	return h.routed[route{c.Request().Method, c.Path()}] // a struct key: no string built per request
}

func (h *Handler) routes(e *echo.Echo) {
	// Every page that answers GET answers HEAD too, as HTTP expects (uptime probes and
	// link checkers use it); net/http drops the body of a HEAD response.
	get := func(path string, fn echo.HandlerFunc) { e.Match([]string{http.MethodGet, http.MethodHead}, path, fn) }
	get("/", h.goodsList)
	get("/goods/:id", h.goodsDetail)
	get("/signup", h.signupForm)
	e.POST("/signup", h.signup)
	get("/login", h.loginForm)
	e.POST("/login", h.login)
	e.POST("/logout", h.logout)
	get("/account", h.account)
	get("/account/password", h.passwordForm)
	e.POST("/account/password", h.changePassword)
	e.POST("/purchase/:id", h.purchase)
	get("/show_msg", h.showMsg)
	e.POST("/check_order", h.checkOrder)
	get("/orders", h.orders)
	get("/orders/:out_trade_no", h.order)
	e.POST("/orders/:out_trade_no/pay", h.payAgain)
	get("/orders/:out_trade_no/cancel", h.cancelForm)
	e.POST("/orders/:out_trade_no/cancel", h.cancel)
	e.POST("/orders/:out_trade_no/receive", h.receive)
	get("/cart", h.cart)
	e.POST("/cart/items", h.addToCart)
	e.POST("/cart/items/:goods_id/remove", h.removeFromCart)
	e.POST("/cart/items/:goods_id/qty", h.setCartQty)
	get("/checkout", h.checkoutPage)
	e.POST("/checkout", h.checkout)
	get("/addresses", h.addresses)
	e.POST("/addresses", h.addAddress)
	e.POST("/addresses/:id/default", h.defaultAddress)
	e.POST("/addresses/:id/delete", h.deleteAddress)
	get("/purchases", h.purchases)
	get("/healthz", h.healthz)
	get("/static/*", h.static())
	if h.cfg.Sandbox != nil {
		sb := echo.WrapHandler(h.cfg.Sandbox)
		e.Any("/sandbox", sb)
		e.Any("/sandbox/*", sb)
	}
}

func (h *Handler) healthz(c echo.Context) error {
	if err := h.st.Ping(c.Request().Context()); err != nil {
		return c.String(http.StatusServiceUnavailable, "database unavailable")
	}
	return c.String(http.StatusOK, "ok")
}

func (h *Handler) static() echo.HandlerFunc {
	fsrv := http.StripPrefix("/static/", http.FileServerFS(h.cfg.Static))
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}
