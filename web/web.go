// Package web is the HTTP plumbing the shop and its back office share: the router and
// its middleware (request ids, logging, security headers, body limits, fetch metadata
// and CSRF), the one mapping from errors to statuses and messages, rendering, the
// cookie sessions' codec, the login limits and the small readers of ids and pages.
// Each room — the shop's pages (package handlers), the back office (package admin) —
// adds its routes and its own error page; neither copies any of this.
package web

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"
)

// Config is what the shared plumbing needs to know.
type Config struct {
	Gateway   string // Alipay gateway URL: forms and redirects go there, so the CSP allows it
	Secure    bool   // the site is https: cookies get Secure
	DevReload bool   // the CSP allows templ's live-reload script (never in production)
	Logger    *slog.Logger
	// Foreign is a path prefix served by another party (the local Alipay emulator): no
	// CSRF, body limit or shop headers of ours apply there.
	Foreign string
	// Machine lists route paths called by machines, not browsers (Alipay's notify,
	// health checks, static files): no CSRF token, no session.
	Machine []string
	// TrustedProxies are the reverse proxies in front of the shop (TRUSTED_PROXIES): a
	// request whose peer is one of them names its client in X-Forwarded-For.
	TrustedProxies []*net.IPNet
}

// ErrorPage renders a room's error page for p.
type ErrorPage func(c echo.Context, p Problem) templ.Component

// Server is the router with the shared middleware installed.
type Server struct {
	Echo       *echo.Echo
	cfg        Config
	log        *slog.Logger
	machine    map[string]bool
	bodyLimits map[string]int64 // route path → a larger body limit (uploads)
	rooms      []room
	routedOnce sync.Once
	routed     map[route]bool // every registered (method, path)
}

type room struct {
	prefix string
	page   ErrorPage
}

// route is a registered method and path template, the key of Server.routed.
type route struct{ method, path string }

// New returns the router with the shared middleware; rooms add routes and error pages.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{Echo: echo.New(), cfg: cfg, log: cfg.Logger, machine: map[string]bool{}, bodyLimits: map[string]int64{}}
	for _, p := range cfg.Machine {
		s.machine[p] = true
	}
	e := s.Echo
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = clientIP(cfg.TrustedProxies)
	e.HTTPErrorHandler = s.handleError
	s.middleware()
	return s
}

// clientIP says who the client is, for the login limits and the logs. With no proxy
// configured the peer address is the client: trusting X-Forwarded-For from anyone would
// let anyone reset their limits. Behind configured proxies, X-Forwarded-For is read from
// the right, past the proxies, to the first address that is not one of them; a request
// that didn't come through a proxy is its peer, whatever it claims.
func clientIP(proxies []*net.IPNet) echo.IPExtractor {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range proxies {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// Get registers fn for GET and HEAD: every page that answers GET answers HEAD too, as
// HTTP expects (uptime probes and link checkers use it); net/http drops the body.
func (s *Server) Get(path string, fn echo.HandlerFunc, mw ...echo.MiddlewareFunc) {
	s.Echo.Match([]string{http.MethodGet, http.MethodHead}, path, fn, mw...)
}

// Post registers fn for POST.
func (s *Server) Post(path string, fn echo.HandlerFunc, mw ...echo.MiddlewareFunc) {
	s.Echo.POST(path, fn, mw...)
}

// Use adds a middleware for every request (a room's session loader checks its prefix).
func (s *Server) Use(mw echo.MiddlewareFunc) { s.Echo.Use(mw) }

// Room registers the error page for paths under prefix; the longest prefix wins.
func (s *Server) Room(prefix string, page ErrorPage) {
	s.rooms = append(s.rooms, room{prefix, page})
}

// BodyLimit lets one route path take bodies up to n bytes (an upload form).
func (s *Server) BodyLimit(path string, n int64) { s.bodyLimits[path] = n }

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.Echo.ServeHTTP(w, r) }

// Routes lists every registered route (the security tests walk them).
func (s *Server) Routes() []*echo.Route { return s.Echo.Routes() }

// isRouted reports whether the request matched a route with its method. Requests that
// did not are answered 404 or 405 by the router's own handler, so checks that would
// answer them differently (a CSRF 403 for a POST to a GET-only page) step aside.
func (s *Server) isRouted(c echo.Context) bool {
	s.routedOnce.Do(func() {
		s.routed = map[route]bool{}
		for _, r := range s.Echo.Routes() {
			s.routed[route{r.Method, r.Path}] = true
		}
	})
	return s.routed[route{c.Request().Method, c.Path()}] // a struct key: no string built per request
}

// Routed reports whether the request matched a registered route and method (and so is
// not about to get the router's 404 or 405).
func (s *Server) Routed(c echo.Context) bool { return s.isRouted(c) }

// foreign reports whether the request is for the other party mounted here.
func (s *Server) foreign(c echo.Context) bool {
	return s.cfg.Foreign != "" && strings.HasPrefix(c.Request().URL.Path, s.cfg.Foreign)
}

// Machine reports whether the route is called by machines (no session, no CSRF).
func (s *Server) Machine(c echo.Context) bool {
	return s.machine[c.Path()] || s.foreign(c)
}

// TimeoutCtx bounds calls to Alipay made while a shopper or operator waits.
func TimeoutCtx(c echo.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request().Context(), 15*time.Second)
}

// CSRFToken is the request's token for the hidden _csrf field of its forms.
func CSRFToken(c echo.Context) string {
	tok, _ := c.Get("csrf").(string)
	return tok
}
