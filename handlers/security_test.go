package handlers_test

// The security table (issue 6): every route the router registers is walked, so a new
// route is covered without editing this file. Run:
//
//	go test -race -run 'TestSecurity' -v ./handlers/

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"

	"storefront/handlers"
	"storefront/shoptest"
	"storefront/store/storetest"
	"storefront/web"
)

// secPassword is the shoppers' password in this file: it must never reach a log line.
const secPassword = "Tr0ub4dor&3-never-log-me"

// shoptest's session keys (see shoptest.New): they must never reach a log line either.
var sessionSecrets = []string{strings.Repeat("h", 32), strings.Repeat("b", 32)}

// auditTransport checks every response the table's browsers receive: no 5xx anywhere,
// and every HTML page of the shop carries the security headers.
type auditTransport struct {
	t    *testing.T
	base http.RoundTripper
	mu   sync.Mutex
	seen int
	html int
}

func (a *auditTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := a.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	a.mu.Lock()
	a.seen++
	a.mu.Unlock()
	where := req.Method + " " + req.URL.Path
	if resp.StatusCode >= 500 {
		a.t.Errorf("%s answered %d: no 500 anywhere in the table", where, resp.StatusCode)
	}
	if strings.HasPrefix(req.URL.Path, "/sandbox") {
		return resp, nil // the emulator is another party
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		a.mu.Lock()
		a.html++
		a.mu.Unlock()
		checkSecurityHeaders(a.t, where, resp.Header)
	}
	return resp, nil
}

func checkSecurityHeaders(t *testing.T, where string, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	switch {
	case csp == "":
		t.Errorf("%s: no Content-Security-Policy", where)
	case strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval"):
		t.Errorf("%s: CSP allows unsafe script: %s", where, csp)
	case !strings.Contains(csp, "default-src 'none'"):
		t.Errorf("%s: CSP default-src is not 'none': %s", where, csp)
	}
	for _, d := range strings.Split(csp, ";") {
		d = strings.TrimSpace(d)
		if (strings.HasPrefix(d, "script-src") || strings.HasPrefix(d, "script-src-elem") ||
			strings.HasPrefix(d, "script-src-attr")) && !strings.HasSuffix(d, "'none'") {
			t.Errorf("%s: CSP allows scripts: %q", where, d)
		}
	}
	if got := h.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("%s: X-Frame-Options = %q, want DENY", where, got)
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", where, got)
	}
}

// secEnv is the shop under test plus the pieces the table needs.
type secEnv struct {
	shop  *shoptest.Shop
	audit *auditTransport
	db    *storetest.Raw
	logs  *shoptest.SyncBuffer
	gid   int64
}

func newSecEnv(t *testing.T) *secEnv {
	logs := &shoptest.SyncBuffer{}
	logger := slog.New(web.NewLogHandler(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	// The shop's own login limits; signups are many in this table, all from loopback.
	shop := shoptest.New(t, shoptest.Options{Logger: logger, Limits: web.Limits{SignupPerClient: 1 << 20}})
	env := &secEnv{shop: shop, audit: &auditTransport{t: t, base: http.DefaultTransport}, db: shop.Raw(t), logs: logs}
	env.gid = shop.Demo(t, "机械键盘", 39900, nil)
	return env
}

// browser is a shopper whose every response goes through the audit.
func (env *secEnv) browser() *shoptest.Browser {
	b := env.shop.Browser()
	b.Client.Transport = env.audit
	return b
}

// signup logs a new shopper in with secPassword.
func (env *secEnv) signup(t *testing.T, email string) *shoptest.Browser {
	t.Helper()
	b := env.browser()
	r := b.Post(t, "/signup", url.Values{"email": {email}, "password": {secPassword}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("signup %s: %d", email, r.Status)
	}
	b.AddAddress(t, shoptest.TestAddress)
	return b
}

// fingerprint is everything a state-changing request could change, as one string.
func (env *secEnv) fingerprint(t *testing.T) string {
	t.Helper()
	var parts []string
	// Each query's rows, every column as text, joined: portable SQL, the joining in Go.
	for _, q := range []string{
		`SELECT id FROM users ORDER BY id`,
		`SELECT out_trade_no, status, COALESCE(cashier_at, '') FROM orders ORDER BY id`,
		`SELECT user_id, goods_id, qty FROM cart_items ORDER BY user_id, goods_id`,
		`SELECT COUNT(*) FROM payment_events`,
		`SELECT id, COALESCE(stock, -1), active FROM goods ORDER BY id`,
	} {
		rows, err := env.db.Queryx(q)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for rows.Next() {
			cols, err := rows.SliceScan()
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprint(cols...))
		}
		rows.Close()
		parts = append(parts, strings.Join(lines, ","))
	}
	return strings.Join(parts, " | ")
}

// routes returns the router's registered routes, the emulator's excepted.
func routes(t *testing.T, shop *shoptest.Shop) []*echo.Route {
	e, ok := shop.Router.(interface{ Routes() []*echo.Route })
	if !ok {
		t.Fatalf("shoptest.Shop.Router is %T, which lists no routes", shop.Router)
	}
	var out []*echo.Route
	for _, r := range e.Routes() {
		if strings.HasPrefix(r.Path, "/sandbox") || r.Method == echo.RouteNotFound {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path+out[i].Method < out[j].Path+out[j].Method })
	return out
}

// sendAs sends a bodiless request with method as b (POSTs carry b's CSRF token).
func sendAs(t *testing.T, b *shoptest.Browser, method, path string) shoptest.Response {
	t.Helper()
	switch method {
	case http.MethodGet:
		return b.Get(t, path)
	case http.MethodHead:
		return b.Head(t, path)
	}
	return b.Post(t, path, nil)
}

func stateChanging(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
		return true
	}
	return false
}

// fill replaces path params with real values of the logged-in shopper.
func fill(t *testing.T, path string, params map[string]string) string {
	t.Helper()
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			v, ok := params[s[1:]]
			if !ok {
				t.Fatalf("route %s: no value for path param %s; add one to the table", path, s)
			}
			segs[i] = v
		}
	}
	return strings.Join(segs, "/")
}

// formFor is a body that would change something if the route accepted it.
func formFor(path string, gid int64) url.Values {
	g := fmt.Sprint(gid)
	switch path {
	case "/signup":
		return url.Values{"email": {"csrf-victim-new@example.com"}, "password": {secPassword}}
	case "/login":
		return url.Values{"email": {"owner@example.com"}, "password": {secPassword}}
	case "/cart/items":
		return url.Values{"goods_id": {g}, "qty": {"2"}}
	case "/purchase/:id":
		return url.Values{"qty": {"1"}}
	}
	return url.Values{}
}

func TestSecurity(t *testing.T) {
	env := newSecEnv(t)
	shop := env.shop
	owner := env.signup(t, "owner@example.com")
	other := env.signup(t, "other@example.com")
	o, _ := owner.Buy(t, env.gid, 1)
	if r := owner.Post(t, "/cart/items", url.Values{"goods_id": {fmt.Sprint(env.gid)}, "qty": {"1"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("add to cart: %d", r.Status)
	}
	params := map[string]string{"id": fmt.Sprint(env.gid), "goods_id": fmt.Sprint(env.gid), "out_trade_no": o.OutTradeNo,
		"name": "0123456789abcdef0123456789abcdef.png"}
	all := routes(t, shop)
	var covered, csrfRoutes, ownerRoutes, variants int

	t.Run("csrf", func(t *testing.T) {
		for _, r := range all {
			if !stateChanging(r.Method) || r.Path == "/check_order" {
				continue
			}
			covered++
			csrfRoutes++
			path := fill(t, r.Path, params)
			cases := []struct {
				name string
				form url.Values
				hdr  map[string]string
			}{
				{"missing token", formFor(r.Path, env.gid), nil},
				{"empty token", withToken(formFor(r.Path, env.gid), ""), nil},
				{"wrong token", withToken(formFor(r.Path, env.gid), "forged-token-0123456789abcdef"), nil},
				{"token of another shopper", withToken(formFor(r.Path, env.gid), other.CSRF(t)), nil},
				{"cross-site with no token", formFor(r.Path, env.gid), map[string]string{"Sec-Fetch-Site": "cross-site"}},
				// Fetch metadata is a second defence, never a replacement for the token.
				{"same-origin with no token", formFor(r.Path, env.gid), map[string]string{"Sec-Fetch-Site": "same-origin"}},
				{"cross-site with the right token", withToken(formFor(r.Path, env.gid), owner.CSRF(t)), map[string]string{"Sec-Fetch-Site": "cross-site"}},
			}
			variants = len(cases)
			for _, c := range cases {
				before := env.fingerprint(t)
				req, _ := http.NewRequest(r.Method, shop.URL+path, strings.NewReader(c.form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range c.hdr {
					req.Header.Set(k, v)
				}
				resp, err := owner.Client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s %s with %s: %d, want 403", r.Method, path, c.name, resp.StatusCode)
				}
				if after := env.fingerprint(t); after != before {
					t.Errorf("%s %s with %s changed the database:\n before %s\n after  %s", r.Method, path, c.name, before, after)
				}
			}
			// The owner is still logged in: /logout without a token did not end the session.
			if g := owner.Get(t, "/orders"); g.Status != http.StatusOK {
				t.Errorf("after refused %s %s the owner's session is gone: GET /orders %d", r.Method, path, g.Status)
			}
		}
		t.Logf("CSRF: %d state-changing routes × %d bad-token variants refused with 403, database unchanged", csrfRoutes, variants)
	})

	t.Run("owner only", func(t *testing.T) {
		for _, r := range all {
			if !strings.Contains(r.Path, ":out_trade_no") || strings.HasPrefix(r.Path, "/admin") {
				continue
			}
			ownerRoutes++
			path := fill(t, r.Path, params)
			before := env.fingerprint(t)
			res := sendAs(t, other, r.Method, path)
			if res.Status != http.StatusNotFound {
				t.Errorf("non-owner %s %s: %d, want 404", r.Method, path, res.Status)
			}
			if strings.Contains(res.Body, o.Subject) {
				t.Errorf("non-owner %s %s: the page shows the owner's order", r.Method, path)
			}
			if after := env.fingerprint(t); after != before {
				t.Errorf("non-owner %s %s changed the database", r.Method, path)
			}
			// Logged out: never the order either.
			anon := env.browser()
			ares := sendAs(t, anon, r.Method, path)
			if ares.Status != http.StatusSeeOther || !strings.HasPrefix(ares.Location, "/login") {
				t.Errorf("logged-out %s %s: %d %q, want 303 to /login", r.Method, path, ares.Status, ares.Location)
			}
		}
		if ownerRoutes == 0 {
			t.Fatal("no :out_trade_no routes found")
		}
		t.Logf("ownership: %d :out_trade_no routes answer 404 to a logged-in non-owner", ownerRoutes)
	})

	// The back office: no session, a shopper's session (the order's owner's, even) and a
	// forged operator cookie all land on the operator login page, changing nothing and
	// showing nothing; the CSRF table above already covered its forms' tokens.
	t.Run("operators only", func(t *testing.T) {
		forged := env.browser()
		u, _ := url.Parse(shop.URL + "/admin/")
		forged.Client.Jar.SetCookies(u, []*http.Cookie{{Name: "admin_session", Value: "MTcwMDAwMDAwMHxmb3JnZWR8", Path: "/admin"}})
		// A shopper's own cookie, presented as the operators' cookie.
		for _, ck := range owner.Client.Jar.Cookies(u) {
			if ck.Name == "shop_session" {
				forged.Client.Jar.SetCookies(u, []*http.Cookie{{Name: "admin_session", Value: ck.Value, Path: "/admin"}})
			}
		}
		n := 0
		for _, r := range all {
			if !strings.HasPrefix(r.Path, "/admin") || r.Path == "/admin/login" {
				continue
			}
			covered++
			n++
			path := fill(t, r.Path, params)
			for who, b := range map[string]*shoptest.Browser{"no session": env.browser(), "a shopper": owner, "a forged cookie": forged} {
				before := env.fingerprint(t)
				var res shoptest.Response
				if stateChanging(r.Method) {
					res = b.Post(t, path, formFor(r.Path, env.gid)) // with a valid CSRF token
				} else {
					res = sendAs(t, b, r.Method, path)
				}
				if r.Path == "/admin" && res.Location == "/admin/" {
					continue // the bare path is a redirect to the dashboard, which then asks to log in
				}
				if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location, "/admin/login") {
					t.Errorf("%s: %s %s answered %d %q, want 303 to /admin/login", who, r.Method, path, res.Status, res.Location)
				}
				if strings.Contains(res.Body, o.Subject) || strings.Contains(res.Body, "owner@example.com") {
					t.Errorf("%s: %s %s shows back-office data", who, r.Method, path)
				}
				if after := env.fingerprint(t); after != before {
					t.Errorf("%s: %s %s changed the database", who, r.Method, path)
				}
			}
		}
		if n < 20 {
			t.Fatalf("only %d back-office routes found", n)
		}
		t.Logf("back office: %d routes × 3 (no session, a shopper, a forged cookie) go to the operator login, nothing changed", n)
	})

	t.Run("wrong method is 405", func(t *testing.T) {
		byPath := map[string]map[string]bool{}
		for _, r := range all {
			if byPath[r.Path] == nil {
				byPath[r.Path] = map[string]bool{}
			}
			byPath[r.Path][r.Method] = true
		}
		n := 0
		for p, ms := range byPath {
			path := fill(t, p, params)
			for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
				if ms[m] || (m == http.MethodGet && strings.HasSuffix(p, "*")) {
					continue
				}
				if m != http.MethodGet && m != http.MethodPost && !ms[http.MethodGet] && !ms[http.MethodPost] {
					continue
				}
				n++
				req, _ := http.NewRequest(m, shop.URL+path, nil)
				resp, err := owner.Client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				// 405 even without a CSRF token: the route doesn't take the method, so
				// there is nothing for the token to protect.
				if resp.StatusCode != http.StatusMethodNotAllowed {
					t.Errorf("%s %s: %d, want 405", m, path, resp.StatusCode)
				}
			}
		}
		// No route at all is a 404 whatever the method, not a CSRF 403.
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			n++
			req, _ := http.NewRequest(m, shop.URL+"/no/such/page", nil)
			resp, err := owner.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s /no/such/page: %d, want 404", m, resp.StatusCode)
			}
		}
		t.Logf("wrong method or no route: %d (method, path) pairs answer 405 or 404", n)
	})

	t.Run("bad ids are 404", func(t *testing.T) {
		bad := []string{"abc", "0", "-1", "1.5", "999999", "99999999999999999999", "1e3", "%20", "1;DROP%20TABLE%20goods"}
		n := 0
		for _, id := range bad {
			for _, c := range []struct{ method, path string }{
				{"GET", "/goods/" + id}, {"POST", "/purchase/" + id}, {"POST", "/cart/items/" + id + "/remove"},
				{"GET", "/orders/" + id}, {"POST", "/orders/" + id + "/pay"}, {"POST", "/orders/" + id + "/cancel"},
			} {
				n++
				var res shoptest.Response
				if c.method == "GET" {
					res = owner.Get(t, c.path)
				} else {
					res = owner.Post(t, c.path, nil)
				}
				// Removing an unknown goods from the cart is idempotent: 303 back to the cart is fine.
				ok := res.Status == http.StatusNotFound ||
					(strings.HasPrefix(c.path, "/cart/items/") && res.Status == http.StatusSeeOther && id == "999999")
				if !ok {
					t.Errorf("%s %s: %d, want 404", c.method, c.path, res.Status)
				}
			}
		}
		long := strings.Repeat("9", 65)
		for _, p := range []string{"/orders/" + long, "/orders/" + o.OutTradeNo + "x"} {
			n++
			if res := owner.Get(t, p); res.Status != http.StatusNotFound {
				t.Errorf("GET %s: %d, want 404", p, res.Status)
			}
		}
		// Bad forms are 400, not 500.
		for _, f := range []url.Values{{"goods_id": {"abc"}}, {"goods_id": {fmt.Sprint(env.gid)}, "qty": {"0"}},
			{"goods_id": {fmt.Sprint(env.gid)}, "qty": {"1e9"}}, {"goods_id": {"-5"}}} {
			n++
			if res := owner.Post(t, "/cart/items", f); res.Status != http.StatusBadRequest {
				t.Errorf("POST /cart/items %v: %d, want 400", f, res.Status)
			}
		}
		n++
		if res := owner.Post(t, "/cart/items", url.Values{"goods_id": {"999999"}}); res.Status != http.StatusNotFound {
			t.Errorf("POST /cart/items unknown goods: %d, want 404", res.Status)
		}
		t.Logf("bad ids and forms: %d requests answered 404/400", n)
	})

	t.Run("body cap", func(t *testing.T) {
		big := url.Values{"_csrf": {owner.CSRF(t)}, "pad": {strings.Repeat("x", 1<<20)}}.Encode()
		// The goods form takes a 2 MiB picture: past its own cap it is refused too.
		huge := url.Values{"_csrf": {owner.CSRF(t)}, "pad": {strings.Repeat("x", 3<<20)}}.Encode()
		n := 0
		for _, r := range all {
			if !stateChanging(r.Method) || r.Path == "/check_order" {
				continue
			}
			path := fill(t, r.Path, params)
			big := big
			if strings.HasPrefix(r.Path, "/admin/goods") {
				big = huge
			}
			for _, chunked := range []bool{false, true} {
				n++
				before := env.fingerprint(t)
				var body io.Reader = strings.NewReader(big)
				if chunked {
					body = io.MultiReader(strings.NewReader(big)) // unknown length: sent chunked
				}
				req, _ := http.NewRequest(r.Method, shop.URL+path, body)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := owner.Client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestEntityTooLarge {
					t.Errorf("%s %s with a 1 MiB form (chunked=%v): %d, want 413", r.Method, path, chunked, resp.StatusCode)
				}
				if after := env.fingerprint(t); after != before {
					t.Errorf("%s %s with a 1 MiB form changed the database", r.Method, path)
				}
			}
		}
		// The notify is read by Alipay's server: a too-big body is answered "fail", not 413.
		n++
		got := shop.PostNotify(t, big, "application/x-www-form-urlencoded")
		if got != "fail" {
			t.Errorf("1 MiB notify answered %q, want fail", got)
		}
		t.Logf("body cap: %d oversized requests refused (413; notify: fail)", n)
	})

	t.Run("next stays local", func(t *testing.T) {
		evil := []string{"//evil.com", "///evil.com", "/\\evil.com", "\\\\evil.com", "/\\/evil.com", "https://evil.com",
			"http://evil.com/orders", "HTTPS://evil.com", "javascript:alert(1)", "JaVaScRiPt:alert(1)",
			"data:text/html,<script>alert(1)</script>", "/%2F%2Fevil.com", "%2F%2Fevil.com", "/%5Cevil.com",
			"//evil.com/%2F..", "/\t/evil.com", "/\r\n/evil.com", " //evil.com", "evil.com", "@evil.com",
			"/@evil.com", "//user@evil.com", "https:evil.com", "/.//evil.com", "//%65vil.com", "\x00//evil.com",
			"//evil。com", "/orders?x=//evil.com"}
		if testing.Short() {
			evil = evil[:10] // bcrypt is ~20× slower under -race: a subset in -short
		}
		router := newRouter(t, env, nil)
		base, _ := url.Parse(router.URL)
		var n atomic.Int64
		// One account; bcrypt is slow under -race, so the logins run a few at a time.
		if res := postForm(t, routerBrowser(router, env), router.URL+"/signup",
			url.Values{"email": {"next@example.com"}, "password": {secPassword}, "next": {"//evil.com"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("signup: %d", res.StatusCode)
		} else {
			checkLocal(t, base, `signup next="//evil.com"`, res.Header.Get("Location"))
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for _, next := range evil {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				b := routerBrowser(router, env)
				n.Add(1)
				res := postForm(t, b, router.URL+"/login", url.Values{"email": {"next@example.com"}, "password": {secPassword}, "next": {next}})
				if res.StatusCode != http.StatusSeeOther {
					t.Errorf("login next=%q: %d, want 303", next, res.StatusCode)
				} else {
					checkLocal(t, base, fmt.Sprintf("login next=%q", next), res.Header.Get("Location"))
				}
				// The forms echo next into a hidden field: it must be the safe value too.
				for _, form := range []string{"/login", "/signup"} {
					n.Add(1)
					page := getURL(t, b, router.URL+form+"?next="+url.QueryEscape(next))
					m := hiddenNext.FindStringSubmatch(page)
					if m == nil {
						t.Errorf("GET %s?next=%q: no hidden next field", form, next)
					} else {
						checkLocal(t, base, fmt.Sprintf("%s form next=%q", form, next), html.UnescapeString(m[1]))
					}
				}
			})
		}
		wg.Wait()
		// Logged out, a purchase sends the shopper to /login?next=<local path>.
		anon := env.browser()
		res := anon.Post(t, "/purchase/"+fmt.Sprint(env.gid), nil)
		if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location, "/login?next=%2Fgoods%2F") {
			t.Errorf("logged-out purchase: %d %q", res.Status, res.Location)
		}
		t.Logf("next: %d evil values × (login POST, login and signup forms) stayed local (%d checks)", len(evil), n.Load())
	})

	t.Run("session cookie", func(t *testing.T) {
		for _, secure := range []bool{false, true} {
			router := newRouter(t, env, func(c *handlers.Config) {
				c.Sessions = web.NewSessionStore([]byte(sessionSecrets[0]), []byte(sessionSecrets[1]), secure, "/")
				c.Secure = secure
			})
			b := routerBrowser(router, env)
			res := postForm(t, b, router.URL+"/signup", url.Values{"email": {fmt.Sprintf("cookie%v@example.com", secure)},
				"password": {secPassword}})
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("signup: %d", res.StatusCode)
			}
			var found bool
			for _, c := range res.Cookies() {
				if c.Name != "shop_session" {
					continue
				}
				found = true
				if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != secure {
					t.Errorf("session cookie (secure store=%v): HttpOnly=%v SameSite=%v Secure=%v", secure, c.HttpOnly, c.SameSite, c.Secure)
				}
			}
			if !found {
				t.Errorf("signup set no shop_session cookie")
			}
			resp := getResp(t, &http.Client{}, router.URL+"/login")
			for _, c := range resp.Cookies() {
				if c.Name == "_csrf" && (!c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != secure) {
					t.Errorf("_csrf cookie (secure=%v): HttpOnly=%v SameSite=%v Secure=%v", secure, c.HttpOnly, c.SameSite, c.Secure)
				}
			}
		}
	})

	t.Run("login rate limit", func(t *testing.T) {
		router := newRouter(t, env, func(c *handlers.Config) { c.Limits = web.Limits{} }) // the defaults
		// A second shop on the same database: another instance.
		other := newRouter(t, env, func(c *handlers.Config) { c.Limits = web.Limits{} })
		attemptOn := func(r *testRouter, ip, email string) int {
			form := url.Values{"email": {email}, "password": {"wrong password"}, "_csrf": {"tok"}}
			req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: "_csrf", Value: "tok"})
			req.RemoteAddr = ip + ":40000"
			w := httptest.NewRecorder()
			r.handler.ServeHTTP(w, req)
			return w.Code
		}
		attempt := func(ip, email string) int { return attemptOn(router, ip, email) }
		// The limiter refills continuously and bcrypt is slow under -race, so each burst is
		// sent at once: the limit is decided before the password is checked.
		burstOn := func(rs []*testRouter, n int, ip func(i int) string, email func(i int) string) map[int]int {
			var mu sync.Mutex
			codes := map[int]int{}
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					c := attemptOn(rs[i%len(rs)], ip(i), email(i))
					mu.Lock()
					codes[c]++
					mu.Unlock()
				})
			}
			wg.Wait()
			return codes
		}
		burst := func(n int, ip func(i int) string, email func(i int) string) map[int]int {
			return burstOn([]*testRouter{router}, n, ip, email)
		}
		// Per account from one address: 6 tries, one is refused.
		codes := burst(6, func(int) string { return "10.1.0.1" }, func(int) string { return "victim@example.com" })
		if codes[http.StatusTooManyRequests] != 1 || codes[http.StatusUnauthorized] != 5 {
			t.Errorf("6 attempts on one account from one address: %v, want 5×401 and 1×429", codes)
		}
		// Per account from many addresses: 31 tries from 31 addresses, one is refused.
		codes = burst(31, func(i int) string { return fmt.Sprintf("10.4.0.%d", i+1) }, func(int) string { return "target@example.com" })
		if codes[http.StatusTooManyRequests] != 1 || codes[http.StatusUnauthorized] != 30 {
			t.Errorf("31 attempts on one account from 31 addresses: %v, want 30×401 and 1×429", codes)
		}
		// Per address: 21 accounts from one address, plus one more that claims another
		// address in X-Forwarded-For / X-Real-IP: two are refused (the headers are ignored).
		var mu sync.Mutex
		xff := 0
		var wg sync.WaitGroup
		wg.Go(func() {
			form := url.Values{"email": {"spray-xff@example.com"}, "password": {"x"}, "_csrf": {"tok"}}
			req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			req.Header.Set("X-Real-IP", "203.0.113.8")
			req.AddCookie(&http.Cookie{Name: "_csrf", Value: "tok"})
			req.RemoteAddr = "10.2.0.1:40001"
			w := httptest.NewRecorder()
			router.handler.ServeHTTP(w, req)
			mu.Lock()
			xff = w.Code
			mu.Unlock()
		})
		codes = burst(21, func(int) string { return "10.2.0.1" }, func(i int) string { return fmt.Sprintf("spray%d@example.com", i) })
		wg.Wait()
		codes[xff]++
		if codes[http.StatusTooManyRequests] != 2 || codes[http.StatusUnauthorized] != 20 {
			t.Errorf("22 attempts from one address (one with X-Forwarded-For): %v, want 20×401 and 2×429", codes)
		}
		// Someone else, elsewhere, is unaffected.
		if code := attempt("10.3.0.1", "bystander@example.com"); code != http.StatusUnauthorized {
			t.Errorf("unrelated login: %d, want 401", code)
		}
		// A registered account's allowance is kept in the database, so two instances
		// share it: 31 tries from 31 addresses spread over both, one is refused (with
		// each instance's own, all 31 went through).
		hash, err := bcrypt.GenerateFromPassword([]byte("right password"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.shop.Store.CreateUser(context.Background(), "shared@example.com", string(hash)); err != nil {
			t.Fatal(err)
		}
		both := []*testRouter{router, other}
		codes = burstOn(both, 31, func(i int) string { return fmt.Sprintf("10.5.0.%d", i+1) }, func(int) string { return "shared@example.com" })
		if codes[http.StatusTooManyRequests] != 1 || codes[http.StatusUnauthorized] != 30 {
			t.Errorf("31 attempts on a registered account from 31 addresses over 2 instances: %v, want 30×401 and 1×429", codes)
		}
		// Through the shoptest shop (loopback): the account limit holds over HTTP too.
		b := env.browser()
		var last int
		for i := 0; i < 6; i++ {
			last = b.Post(t, "/login", url.Values{"email": {"owner@example.com"}, "password": {"wrong"}}).Status
		}
		if last != http.StatusTooManyRequests {
			t.Errorf("6th wrong login over HTTP: %d, want 429", last)
		}
		t.Log("login rate limit: 6th attempt per account from one address, 31st per account from many, 21st per address answered 429; X-Forwarded-For ignored")
	})

	// Every page that answers GET answers HEAD the same way, without a body.
	t.Run("HEAD like GET", func(t *testing.T) {
		gets := map[string]bool{}
		for _, r := range all {
			if r.Method == http.MethodGet {
				gets[r.Path] = true
			}
		}
		for _, r := range all {
			if r.Method != http.MethodHead {
				continue
			}
			covered++
			if !gets[r.Path] {
				t.Errorf("HEAD %s has no GET twin", r.Path)
			}
			path := fill(t, strings.Replace(r.Path, "*", "style.css", 1), params)
			// Go's client never reads a HEAD body, so the headers are what can be compared:
			// the same status, type and declared length as GET.
			// (A bodiless redirect gets "Content-Length: 0" from net/http on GET only.)
			g, h := owner.Get(t, path), owner.Head(t, path)
			sameLength := h.Header.Get("Content-Length") == g.Header.Get("Content-Length") ||
				(g.Status/100 == 3 && g.Header.Get("Content-Length") == "0" && h.Header.Get("Content-Length") == "")
			if h.Status != g.Status || h.Header.Get("Content-Type") != g.Header.Get("Content-Type") || !sameLength {
				t.Errorf("HEAD %s: %d %q length %q; GET: %d %q length %q", path, h.Status, h.Header.Get("Content-Type"),
					h.Header.Get("Content-Length"), g.Status, g.Header.Get("Content-Type"), g.Header.Get("Content-Length"))
			}
		}
		for p := range gets {
			if !slices.ContainsFunc(all, func(r *echo.Route) bool { return r.Path == p && r.Method == http.MethodHead }) {
				t.Errorf("GET %s answers no HEAD", p)
			}
		}
	})

	// Every route answers GET/HEAD-able pages with the headers (checked by the audit).
	t.Run("headers on every page", func(t *testing.T) {
		for _, r := range all {
			if r.Method != http.MethodGet || strings.HasSuffix(r.Path, "*") {
				continue
			}
			covered++
			path := fill(t, r.Path, params)
			if strings.Contains(r.Path, ":") || r.Path == "/show_msg" {
				_ = owner.Get(t, path)
			} else {
				owner.Get(t, path)
				env.browser().Get(t, path) // logged out too
			}
		}
		owner.Get(t, "/show_msg?out_trade_no="+o.OutTradeNo+"&sign=forged") // 400 page
		owner.Get(t, "/no/such/page")                                       // 404 page
	})

	// Failures are where passwords leak into logs ("login failed for x with y"): the
	// real password goes through each failure path before the logs are read.
	t.Run("failed logins and signups", func(t *testing.T) {
		b := env.browser()
		for _, c := range []struct {
			path string
			form url.Values
			want int
		}{
			{"/login", url.Values{"email": {"nobody@example.com"}, "password": {secPassword}}, http.StatusUnauthorized},
			{"/login", url.Values{"email": {"other@example.com"}, "password": {secPassword + "!"}}, http.StatusUnauthorized},
			{"/login", url.Values{"email": {"not-an-address"}, "password": {secPassword}}, 0},
			{"/signup", url.Values{"email": {"owner@example.com"}, "password": {secPassword}}, 0},
			{"/signup", url.Values{"email": {"bad address"}, "password": {secPassword}}, http.StatusBadRequest},
		} {
			if r := b.Post(t, c.path, c.form); r.Status < 400 || (c.want != 0 && r.Status != c.want) {
				t.Errorf("%s %v: %d", c.path, c.form.Get("email"), r.Status)
			}
		}
	})

	t.Run("logs hold no secrets", func(t *testing.T) {
		logs := env.logs.String()
		if len(logs) == 0 {
			t.Fatal("no log output captured")
		}
		lines := strings.Split(logs, "\n")
		for _, s := range append([]string{secPassword, "PRIVATE KEY", url.QueryEscape(secPassword)}, sessionSecrets...) {
			for i, l := range lines {
				if strings.Contains(l, s) {
					t.Errorf("log line %d contains a secret (%q): %s", i+1, s, l)
				}
			}
		}
		t.Logf("logs: %d lines captured, none holds the password, a private key or the session secret", len(lines))
	})

	t.Logf("security table: %d routes registered (sandbox excluded), %d covered; %d responses audited (%d HTML pages) — no 5xx, headers on every page",
		len(all), covered, env.audit.seen, env.audit.html)
}

func withToken(v url.Values, tok string) url.Values {
	v.Set("_csrf", tok)
	return v
}

// testRouter is handlers.New over the shop's store and payments with other settings
// (rate limits, secure cookies), on its own server.
type testRouter struct {
	URL     string
	handler http.Handler
}

func newRouter(t *testing.T, env *secEnv, mod func(*handlers.Config)) *testRouter {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := handlers.Config{Store: env.shop.Store, Payments: env.shop.Pay,
		Sessions: web.NewSessionStore([]byte(sessionSecrets[0]), []byte(sessionSecrets[1]), false, "/"),
		Gateway:  env.shop.URL + "/sandbox/gateway.do", Logger: logger, Limits: web.Limits{LoginPerClient: 10000, LoginPerPair: 10000, LoginPerAccount: 10000, SignupPerClient: 10000}}
	if mod != nil {
		mod(&cfg)
	}
	h := handlers.New(cfg)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testRouter{URL: srv.URL, handler: h}
}

func routerBrowser(r *testRouter, env *secEnv) *http.Client {
	c := &http.Client{Transport: env.audit, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c.Jar = newJar()
	return c
}

func postForm(t *testing.T, c *http.Client, target string, form url.Values) *http.Response {
	t.Helper()
	u := mustURL(target)
	tok := ""
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "_csrf" {
			tok = ck.Value
		}
	}
	if tok == "" {
		getURL(t, c, u.Scheme+"://"+u.Host+"/login") // a page with a form mints the token
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name == "_csrf" {
				tok = ck.Value
			}
		}
	}
	form.Set("_csrf", tok)
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func getURL(t *testing.T, c *http.Client, target string) string {
	t.Helper()
	resp, err := c.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func getResp(t *testing.T, c *http.Client, target string) *http.Response {
	t.Helper()
	resp, err := c.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// checkLocal fails unless loc, as a browser would read it, stays on base's host.
func checkLocal(t *testing.T, base *url.URL, what, loc string) {
	t.Helper()
	if loc == "" || loc[0] != '/' || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") ||
		strings.ContainsAny(loc, "\\\r\n\t\x00") {
		t.Errorf("%s: Location %q leaves the site", what, loc)
		return
	}
	u, err := base.Parse(loc)
	if err != nil || u.Host != base.Host || u.Scheme != base.Scheme {
		t.Errorf("%s: Location %q resolves to %v", what, loc, u)
	}
}

var hiddenNext = regexp.MustCompile(`name="next" value="([^"]*)"`)

func newJar() http.CookieJar {
	j, _ := cookiejar.New(nil)
	return j
}
