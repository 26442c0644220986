package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// maxBody caps request bodies: forms here are tiny, and Alipay's notify is a few KiB.
const maxBody = 64 << 10

func (h *Handler) middleware(e *echo.Echo) {
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		RequestIDHandler: func(c echo.Context, id string) {
			r := c.Request()
			c.SetRequest(r.WithContext(WithRequestID(r.Context(), id)))
		},
	}))
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogURIPath: true, LogMethod: true, LogLatency: true, LogError: true,
		HandleError: true,
		// The path only: a query string may carry a signed Alipay return or a token.
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			h.log.LogAttrs(c.Request().Context(), level, "request",
				slog.String("method", v.Method), slog.String("path", v.URIPath),
				slog.Int("status", v.Status), slog.Duration("latency", v.Latency))
			return nil
		},
	}))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			h.log.ErrorContext(c.Request().Context(), "panic", "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:         "0",
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		ReferrerPolicy:        "same-origin",
		ContentSecurityPolicy: h.csp(),
	}))
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit: "64K",
		// The notify answers "fail" rather than 413 (Alipay reads the body), and the
		// emulator is another party with its own rules.
		Skipper: func(c echo.Context) bool { return c.Path() == "/check_order" || isSandbox(c) },
	}))
	// A body without Content-Length (chunked) only meets the limit while being read: read
	// the form here, so an oversized one is a 413 and not a "missing CSRF token" 403.
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.Method != http.MethodPost || c.Path() == "/check_order" || isSandbox(c) {
				return next(c)
			}
			var err error
			if ct := r.Header.Get(echo.HeaderContentType); strings.HasPrefix(ct, echo.MIMEMultipartForm) {
				err = r.ParseMultipartForm(maxBody)
			} else {
				err = r.ParseForm()
			}
			if errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
				return echo.ErrStatusRequestEntityTooLarge
			}
			return next(c)
		}
	})
	// Echo's CSRF middleware lets a state-changing request through without any token
	// when the browser says Sec-Fetch-Site: same-origin. We want both defences, not one
	// instead of the other: a cross-site POST is refused here, and then the header is
	// removed so the token is always required (DESIGN: a POST without a valid token is 403).
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if site := r.Header.Get(echo.HeaderSecFetchSite); site != "" && !isSandbox(c) && c.Path() != "/check_order" && h.isRouted(c) {
				unsafe := r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions
				if unsafe && (site == "cross-site" || site == "same-site") {
					return echo.NewHTTPError(http.StatusForbidden, "cross-site request")
				}
				r.Header.Del(echo.HeaderSecFetchSite)
			}
			return next(c)
		}
	})
	e.Use(middleware.CSRFWithConfig(middleware.CSRFConfig{
		TokenLookup:    "form:_csrf",
		CookieName:     "_csrf",
		CookiePath:     "/",
		CookieHTTPOnly: true,
		CookieSecure:   h.cfg.Secure,
		CookieSameSite: http.SameSiteLaxMode,
		CookieMaxAge:   86400,
		// /check_order has no cookies (Alipay's server calls it) and is signature-checked;
		// /healthz and static files carry no forms and need no token cookie.
		// A request no route takes gets its 404 or 405, not a 403 for the missing token.
		Skipper: func(c echo.Context) bool {
			p := c.Path()
			return p == "/check_order" || p == "/healthz" || p == "/static/*" || isSandbox(c) || !h.isRouted(c)
		},
		// A missing token is as forbidden as a wrong one.
		ErrorHandler: func(err error, c echo.Context) error {
			return echo.NewHTTPError(http.StatusForbidden, "csrf")
		},
	}))
	e.Use(h.loadSession)
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			// Pages carry CSRF tokens and personal data: no shared caches.
			if !strings.HasPrefix(c.Path(), "/static") {
				c.Response().Header().Set("Cache-Control", "no-store")
			}
			return next(c)
		}
	})
}

func isSandbox(c echo.Context) bool {
	return strings.HasPrefix(c.Request().URL.Path, "/sandbox")
}

// csp allows no script at all and lets forms (and the redirects they answer with) go
// only to this site and the Alipay gateway.
func (h *Handler) csp() string {
	formAction := "'self'"
	if u, err := url.Parse(h.cfg.Gateway); err == nil && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	csp := "default-src 'none'; img-src 'self' data:; style-src 'self'; form-action " + formAction +
		"; frame-ancestors 'none'; base-uri 'none'"
	if h.cfg.DevReload {
		csp += "; script-src 'self'; connect-src 'self'"
	}
	return csp
}

// timeoutCtx bounds calls to Alipay made while a shopper waits.
func timeoutCtx(c echo.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request().Context(), 15*time.Second)
}
