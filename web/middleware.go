package web

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// MaxBody caps request bodies: forms here are tiny, and Alipay's notify is a few KiB.
const MaxBody = 64 << 10

func (s *Server) middleware() {
	e := s.Echo
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
			s.log.LogAttrs(c.Request().Context(), level, "request",
				slog.String("method", v.Method), slog.String("path", v.URIPath),
				slog.Int("status", v.Status), slog.Duration("latency", v.Latency))
			return nil
		},
	}))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.ErrorContext(c.Request().Context(), "panic", "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:         "0",
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		ReferrerPolicy:        "same-origin",
		ContentSecurityPolicy: s.csp(),
	}))
	// Bodies are limited (64 KiB, or a route's own limit for an upload form). The
	// notify answers "fail" rather than 413 (Alipay reads the body), and the emulator is
	// another party with its own rules.
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if s.Machine(c) || r.Body == nil || r.Body == http.NoBody {
				return next(c)
			}
			limit, ok := s.bodyLimits[c.Path()]
			if !ok {
				limit = MaxBody
			}
			if r.ContentLength > limit {
				return echo.ErrStatusRequestEntityTooLarge
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
			if r.Method != http.MethodPost {
				return next(c)
			}
			// A body without Content-Length (chunked) only meets the limit while being
			// read: read the form here, so an oversized one is a 413 and not a "missing
			// CSRF token" 403.
			var err error
			if ct := r.Header.Get(echo.HeaderContentType); strings.HasPrefix(ct, echo.MIMEMultipartForm) {
				err = r.ParseMultipartForm(min(limit, 8<<20))
			} else {
				err = r.ParseForm()
			}
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return echo.ErrStatusRequestEntityTooLarge
			}
			return next(c)
		}
	})
	// Echo's CSRF middleware lets a state-changing request through without any token
	// when the browser says Sec-Fetch-Site: same-origin. We want both defences, not one
	// instead of the other: a cross-site POST is refused here, and then the header is
	// removed so the token is always required (a POST without a valid token is 403).
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if site := r.Header.Get(echo.HeaderSecFetchSite); site != "" && !s.Machine(c) && s.isRouted(c) {
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
		CookieSecure:   s.cfg.Secure,
		CookieSameSite: http.SameSiteLaxMode,
		CookieMaxAge:   86400,
		// Machine routes have no cookies (Alipay's notify is signature-checked; health
		// checks and static files carry no forms and need no token cookie). A request no
		// route takes gets its 404 or 405, not a 403 for the missing token. The goods
		// list asked for with no cookie at all is the page a new visitor sees, which has
		// no form that posts: it needs no token, and minting one (and its Set-Cookie)
		// was about a twentieth of the shop's busiest answer. The first page with a form
		// sets the cookie; a POST without it is refused as before.
		Skipper: func(c echo.Context) bool {
			r := c.Request()
			return s.Machine(c) || !s.isRouted(c) ||
				(r.Method == http.MethodGet && c.Path() == "/" && r.Header.Get(echo.HeaderCookie) == "")
		},
		// A missing token is as forbidden as a wrong one.
		ErrorHandler: func(err error, c echo.Context) error {
			return echo.NewHTTPError(http.StatusForbidden, "csrf")
		},
	}))
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			// Pages carry CSRF tokens and personal data: no shared caches.
			if !s.Machine(c) {
				c.Response().Header().Set("Cache-Control", "no-store")
			}
			return next(c)
		}
	})
}

// csp allows no script at all and lets forms (and the redirects they answer with) go
// only to this site and the Alipay gateway.
func (s *Server) csp() string {
	formAction := "'self'"
	if u, err := url.Parse(s.cfg.Gateway); err == nil && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	csp := "default-src 'none'; img-src 'self' data:; style-src 'self'; form-action " + formAction +
		"; frame-ancestors 'none'; base-uri 'none'"
	if s.cfg.DevReload {
		csp += "; script-src 'self'; connect-src 'self'"
	}
	return csp
}
