// Package handlers speaks HTTP for the shop: it builds the router, reads requests,
// calls the store, the Alipay rules and the views, and maps errors to pages in one
// place (errors.go).
package handlers

import (
	"io/fs"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

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
	// Login attempts allowed per client address and per account (per minute, with the
	// same burst). Zero means the defaults (20 and 5).
	LoginPerIP, LoginPerAccount rate.Limit
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
	limits loginLimits
	grid   atomic.Pointer[gridFragment] // the home page's goods grid, per goods snapshot
}

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
		limits: newLoginLimits(cfg.LoginPerIP, cfg.LoginPerAccount)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// No proxy in front by default: the peer address is the client. Trusting
	// X-Forwarded-For would let anyone reset their login rate limit.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = h.handleError
	h.middleware(e)
	h.routes(e)
	return e
}

func (h *Handler) routes(e *echo.Echo) {
	e.GET("/", h.goodsList)
	e.GET("/goods/:id", h.goodsDetail)
	e.GET("/signup", h.signupForm)
	e.POST("/signup", h.signup)
	e.GET("/login", h.loginForm)
	e.POST("/login", h.login)
	e.POST("/logout", h.logout)
	e.POST("/purchase/:id", h.purchase)
	e.GET("/show_msg", h.showMsg)
	e.POST("/check_order", h.checkOrder)
	e.GET("/orders", h.orders)
	e.GET("/orders/:out_trade_no", h.order)
	e.POST("/orders/:out_trade_no/pay", h.payAgain)
	e.POST("/orders/:out_trade_no/cancel", h.cancel)
	e.GET("/cart", h.cart)
	e.POST("/cart/items", h.addToCart)
	e.POST("/cart/items/:goods_id/remove", h.removeFromCart)
	e.POST("/checkout", h.checkout)
	e.GET("/purchases", h.purchases)
	e.GET("/healthz", h.healthz)
	e.GET("/static/*", h.static())
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
