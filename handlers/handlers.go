// Package handlers is the shop's room: its pages and forms, Alipay's notify and return.
// It reads requests, calls the store, the Alipay rules and the views; the router, the
// middleware and the mapping of errors to statuses are package web's, shared with the
// back office.
package handlers

import (
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"

	"storefront/payment"
	"storefront/store"
	"storefront/views"
	"storefront/web"
)

// Config holds the handlers' dependencies and settings.
type Config struct {
	Store    *store.Store
	Payments *payment.Service
	Sessions *web.SessionStore
	Static   fs.FS         // the static/ folder
	MediaDir string        // uploaded goods images (written by the back office)
	Sandbox  http.Handler  // the local emulator, mounted at /sandbox; nil outside local mode
	Gateway  string        // Alipay gateway URL: the browser is sent there, so CSP must allow it
	OrderTTL time.Duration // unpaid orders close after this
	Secure   bool          // PUBLIC_URL is https: cookies get Secure
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client.
	TrustedProxies []*net.IPNet
	Now            func() time.Time
	Logger         *slog.Logger
	// Limits for login and signup attempts; zero fields take the defaults.
	Limits web.Limits
	// DevReload lets templ's live-reload proxy (go tool task dev) run its script; never
	// set in production, where the CSP allows no script at all.
	DevReload bool
	// BcryptCost for new passwords; zero means bcrypt.DefaultCost (tests lower it).
	BcryptCost int
	// Rooms mount more of the site on the same router (the back office), sharing its
	// middleware and error mapping.
	Rooms []func(*web.Server)
}

// Handler holds what every handler needs.
type Handler struct {
	cfg    Config
	st     *store.Store
	pay    *payment.Service
	now    func() time.Time
	log    *slog.Logger
	limits web.AuthLimits
	grids  renderCache // rendered goods grids, per catalogue page
	pages  renderCache // whole goods list pages as a plain visitor sees them
	srv    *web.Server
}

// Paths called by machines, not browsers: no session, no CSRF token.
var machinePaths = []string{"/check_order", "/healthz", "/static/*", "/media/:name"}

// New returns the site's router: the shared plumbing (package web), the shop's routes,
// and those of every room in cfg.Rooms.
func New(cfg Config) *web.Server {
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
	srv := web.New(web.Config{Gateway: cfg.Gateway, Secure: cfg.Secure, DevReload: cfg.DevReload, Logger: cfg.Logger,
		Foreign: "/sandbox", Machine: machinePaths, TrustedProxies: cfg.TrustedProxies})
	h := &Handler{cfg: cfg, st: cfg.Store, pay: cfg.Payments, now: cfg.Now, log: cfg.Logger,
		limits: web.NewAuthLimits(cfg.Limits, cfg.Now, cfg.Store, store.Shoppers), srv: srv}
	srv.Use(h.loadSession)
	srv.Room("/", h.errorPage)
	h.routes(srv)
	for _, mount := range cfg.Rooms {
		mount(srv)
	}
	return srv
}

func (h *Handler) routes(srv *web.Server) {
	get := srv.Get
	e := srv.Echo
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
	e.POST("/orders/:out_trade_no/refund-request", h.requestRefund)
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
	get("/media/:name", h.media)
	if h.cfg.Sandbox != nil {
		sb := echo.WrapHandler(h.cfg.Sandbox)
		e.Any("/sandbox", sb)
		e.Any("/sandbox/*", sb)
	}
}

// errorPage is the shop's error page: what happened, and the ways on — the order or
// goods it is about, the orders page after a failed payment result, the home page.
func (h *Handler) errorPage(c echo.Context, p web.Problem) templ.Component {
	page := views.ErrorPage{Layout: h.layout(c, p.Title), Status: p.Status, Message: p.Msg, Next: p.Next,
		OrderNo: p.OrderNo, RequestID: p.RequestID}
	if p.OrderNo != "" {
		page.Links = append(page.Links, views.Link{Href: "/orders/" + p.OrderNo, Text: "查看订单"})
	}
	if p.GoodsID != 0 {
		page.Links = append(page.Links, views.Link{Href: "/goods/" + strconv.FormatInt(p.GoodsID, 10), Text: "返回商品"})
	}
	if p.OrderNo != "" || p.Payment {
		page.Links = append(page.Links, views.Link{Href: "/orders", Text: "我的订单"})
	}
	page.Links = append(page.Links, views.Link{Href: "/", Text: "返回首页"})
	return views.Error(page)
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
