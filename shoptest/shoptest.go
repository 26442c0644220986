// Package shoptest assembles a whole shop — store on a real database (storetest), Alipay client,
// handlers, and optionally the local emulator — on an httptest server, with a clock the
// test controls. Tests of several packages share it; production code never imports it.
package shoptest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"storefront/admin"
	"storefront/handlers"
	"storefront/money"
	"storefront/payment"
	"storefront/sandbox"
	"storefront/store"
	"storefront/store/storetest"
	"storefront/web"
)

// Test identities; the emulator and the shop agree on them as in local mode.
const (
	AppID    = "2021000000000001"
	SellerID = "2088000000000001"
)

// Keys are the RSA pairs of a test run: the app's and "Alipay's" (the emulator's).
type Keys struct {
	AppPriv, AlipayPriv   *rsa.PrivateKey
	AppPrivPEM, AppPubPEM []byte
	AlipayPrivPEM         []byte
	AlipayPubPEM          []byte
}

// TestKeys returns key pairs generated once per test binary (RSA generation is slow).
var TestKeys = sync.OnceValue(func() Keys {
	app, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ali, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return Keys{AppPriv: app, AlipayPriv: ali,
		AppPrivPEM: payment.EncodePrivateKey(app), AppPubPEM: payment.EncodePublicKey(&app.PublicKey),
		AlipayPrivPEM: payment.EncodePrivateKey(ali), AlipayPubPEM: payment.EncodePublicKey(&ali.PublicKey)}
})

// Clock is a settable clock for the shop and the emulator.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the current fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Options tune a test shop.
type Options struct {
	NoEmulator     bool          // no emulator mounted (gateway calls then fail: "Alipay unreachable")
	SellerID       *string       // nil = SellerID; pointer to "" = not checked
	OrderTTL       time.Duration // default 30m
	ReconcileAfter time.Duration // default 5m
	RealClock      bool          // use time.Now instead of a fake clock
	Logger         *slog.Logger  // default: discard
	Gateway        string        // override the gateway URL (e.g. a stub server)
	// Limits for logins and signups; the zero value is generous (tests sign up many
	// shoppers from one address), RealLimits keeps the shop's defaults.
	Limits     web.Limits
	RealLimits bool
	// ClientTimeout bounds the shop's calls to Alipay (default 5s).
	ClientTimeout time.Duration
	// RefundWindow is the emulator's refund window (default Alipay's 90 days).
	RefundWindow time.Duration
	// TrustedProxies are the reverse proxies the shop takes X-Forwarded-For from.
	TrustedProxies []*net.IPNet
}

// Shop is a running test shop.
type Shop struct {
	URL      string
	Dir      string
	DSN      string // the shop's database (storetest.DSN: SQLite file or PostgreSQL schema)
	Store    *store.Store
	Pay      *payment.Service
	Emulator *sandbox.Emulator
	Clock    *Clock
	Keys     Keys
	Server   *httptest.Server
	Router   http.Handler
	MediaDir string
}

// FreeAddr returns a loopback address with a port free at the time of asking, for a
// server a test starts in another process or goroutine.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// SchemaPath finds schema.sql at the module root from any package's test.
func SchemaPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "schema.sql")
}

// New starts a shop for t; it is shut down when t ends.
func New(t testing.TB, o Options) *Shop {
	t.Helper()
	if o.OrderTTL == 0 {
		o.OrderTTL = 30 * time.Minute
	}
	if o.ReconcileAfter == 0 {
		o.ReconcileAfter = 5 * time.Minute
	}
	if o.ClientTimeout == 0 {
		o.ClientTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	seller := SellerID
	if o.SellerID != nil {
		seller = *o.SellerID
	}
	s := &Shop{Dir: t.TempDir(), Keys: TestKeys(), Clock: NewClock(time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC))}
	now := s.Clock.Now
	if o.RealClock {
		now = time.Now
	}
	schema, err := os.ReadFile(SchemaPath())
	if err != nil {
		t.Fatal(err)
	}
	s.DSN = storetest.DSN(t)
	s.Store, err = store.Open(s.DSN, string(schema), now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Store.Close() })
	var h http.Handler
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(s.Server.Close)
	s.URL = s.Server.URL
	gateway := o.Gateway
	if gateway == "" {
		gateway = s.URL + "/sandbox/gateway.do"
	}
	client, err := payment.NewClient(payment.ClientOptions{AppID: AppID, AppPrivateKey: s.Keys.AppPrivPEM,
		AlipayPublicKey: s.Keys.AlipayPubPEM, Gateway: gateway, Timeout: o.ClientTimeout})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := payment.NewKeyVerifier(s.Keys.AlipayPubPEM)
	if err != nil {
		t.Fatal(err)
	}
	s.Pay = payment.NewService(client, s.Store, payment.Config{AppID: AppID, SellerID: seller, PublicURL: s.URL,
		ReconcileAfter: o.ReconcileAfter, Verifier: ver}, now, o.Logger)
	cfg := handlers.Config{TrustedProxies: o.TrustedProxies, Store: s.Store, Payments: s.Pay, Static: os.DirFS(filepath.Join(filepath.Dir(SchemaPath()), "static")),
		Sessions: web.NewSessionStore([]byte(strings.Repeat("h", 32)), []byte(strings.Repeat("b", 32)), false, "/"),
		Gateway:  gateway, OrderTTL: o.OrderTTL, Now: now, Logger: o.Logger, BcryptCost: bcrypt.MinCost, Limits: o.Limits}
	if o.Limits == (web.Limits{}) && !o.RealLimits {
		cfg.Limits = web.Limits{LoginPerClient: 1 << 20, LoginPerPair: 1 << 20, LoginPerAccount: 1 << 20, SignupPerClient: 1 << 20}
	}
	if !o.NoEmulator {
		s.Emulator, err = sandbox.New(sandbox.Config{AppID: AppID, SellerID: SellerID, AppPublicKeyPEM: s.Keys.AppPubPEM,
			PrivateKeyPEM: s.Keys.AlipayPrivPEM, DBPath: filepath.Join(s.Dir, "sandbox.db"), Now: now, Logger: o.Logger,
			TimeScale: 1, RefundWindow: o.RefundWindow})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Emulator.Close() })
		cfg.Sandbox = s.Emulator
	}
	s.MediaDir = filepath.Join(s.Dir, "media")
	cfg.MediaDir = s.MediaDir
	cfg.Rooms = []func(*web.Server){admin.Mount(admin.Config{Store: s.Store, Payments: s.Pay,
		Sessions: web.NewSessionStore([]byte(strings.Repeat("H", 32)), []byte(strings.Repeat("B", 32)), false, "/admin"),
		MediaDir: s.MediaDir, Now: now, Logger: o.Logger, BcryptCost: bcrypt.MinCost, Limits: cfg.Limits})}
	s.Router = handlers.New(cfg)
	h = s.Router
	return s
}

// Raw opens the shop's database for direct SQL.
func (s *Shop) Raw(t testing.TB) *storetest.Raw { return storetest.Open(t, s.DSN) }

// BrowserVia is a browser whose requests come through a reverse proxy on loopback that
// names client as their origin in X-Forwarded-For.
func (s *Shop) BrowserVia(client string) *Browser {
	b := s.Browser()
	b.Client.Transport = forwardedFor{client, http.DefaultTransport}
	return b
}

type forwardedFor struct {
	client string
	next   http.RoundTripper
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.client)
	return f.next.RoundTrip(r)
}

// Demo adds physical goods priced price (fen) with optional stock and returns its id.
func (s *Shop) Demo(t testing.TB, name string, price money.Fen, stock *int64) int64 {
	t.Helper()
	return s.AddGoods(t, store.Goods{Name: name, Price: price, Stock: stock})
}

// AddGoods adds g and returns its id.
func (s *Shop) AddGoods(t testing.TB, g store.Goods) int64 {
	t.Helper()
	g, err := s.Store.AddGoods(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	return g.ID
}

// JunkCount is how many refused messages of source were counted with reason.
func (s *Shop) JunkCount(t testing.TB, source, reason string) int64 {
	t.Helper()
	cs, err := s.Store.JunkCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Source == source && c.Reason == reason {
			return c.Count
		}
	}
	return 0
}

// SignContent is the string Alipay signs for a notify or return: every non-empty param
// except sign and sign_type, sorted by key, raw k=v joined by &.
func SignContent(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k == "sign" || k == "sign_type" || params.Get(k) == "" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k + "=" + params.Get(k))
	}
	return b.String()
}

// SignAlipay signs params the way Alipay signs notifies and returns (SHA256withRSA over
// SignContent).
func SignAlipay(key *rsa.PrivateKey, params url.Values) string {
	sum := sha256.Sum256([]byte(SignContent(params)))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// NotifyFor returns a full TRADE_SUCCESS notify for order o, signed with Alipay's key.
func (s *Shop) NotifyFor(o store.Order, tradeNo string) url.Values {
	v := url.Values{
		"notify_time": {"2026-11-22 10:05:00"}, "notify_type": {"trade_status_sync"}, "notify_id": {"n" + o.OutTradeNo},
		"app_id": {AppID}, "auth_app_id": {AppID}, "charset": {"utf-8"}, "version": {"1.0"}, "sign_type": {"RSA2"},
		"trade_no": {tradeNo}, "out_trade_no": {o.OutTradeNo}, "buyer_id": {"2088102177846880"},
		"buyer_logon_id": {"san***@alipay.test"}, "seller_id": {SellerID}, "trade_status": {"TRADE_SUCCESS"},
		"total_amount": {o.Total.String()}, "receipt_amount": {o.Total.String()}, "buyer_pay_amount": {o.Total.String()},
		"subject": {o.Subject}, "gmt_create": {"2026-11-22 10:04:00"}, "gmt_payment": {"2026-11-22 10:04:30"},
	}
	v.Set("sign", SignAlipay(s.Keys.AlipayPriv, v))
	return v
}

// Resign replaces v's signature after a test changed a field.
func (s *Shop) Resign(v url.Values) url.Values {
	v.Set("sign", SignAlipay(s.Keys.AlipayPriv, v))
	return v
}

// PostNotify posts a form body to /check_order and returns the answer's body.
func (s *Shop) PostNotify(t testing.TB, body, contentType string) string {
	t.Helper()
	resp, err := http.Post(s.URL+"/check_order", contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Browser is a shopper's browser: a cookie jar, redirects not followed.
type Browser struct {
	shop   *Shop
	Client *http.Client
}

// Browser returns a new browser with an empty cookie jar.
func (s *Shop) Browser() *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{shop: s, Client: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// BrowserFrom returns a new browser whose connections come from the loopback address ip
// (127.0.0.2, 127.0.0.3, …): another client address, as the shop's limits see it.
func (s *Shop) BrowserFrom(ip string) *Browser {
	b := s.Browser()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	b.Client.Transport = &http.Transport{DialContext: d.DialContext}
	return b
}

// Response is a finished response with its body read.
type Response struct {
	Status   int
	Body     string
	Header   http.Header
	Location string
}

func (b *Browser) do(t testing.TB, req *http.Request) Response {
	t.Helper()
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Body: string(body), Header: resp.Header, Location: resp.Header.Get("Location")}
}

// Get fetches path (or an absolute URL).
func (b *Browser) Get(t testing.TB, path string) Response {
	t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = b.shop.URL + path
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(t, req)
}

// Head sends a HEAD request for path.
func (b *Browser) Head(t testing.TB, path string) Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, b.shop.URL+path, nil)
	return b.do(t, req)
}

// CSRF returns the browser's CSRF token, fetching a page first if it has none.
func (b *Browser) CSRF(t testing.TB) string {
	t.Helper()
	u, _ := url.Parse(b.shop.URL)
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == "_csrf" {
			return c.Value
		}
	}
	b.Get(t, "/login") // a page with a form (a new visitor's goods list mints no token)
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == "_csrf" {
			return c.Value
		}
	}
	t.Fatal("no _csrf cookie")
	return ""
}

// Post submits a form to path with the browser's CSRF token added.
func (b *Browser) Post(t testing.TB, path string, form url.Values) Response {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["_csrf"]; !ok {
		form.Set("_csrf", b.CSRF(t))
	}
	return b.PostRaw(t, path, form)
}

// PostRaw submits a form exactly as given (no CSRF token added).
func (b *Browser) PostRaw(t testing.TB, path string, form url.Values) Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.shop.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

// Signup creates and logs in a shopper who has a default delivery address (as a shopper
// who bought before does), so /purchase goes straight to the cashier.
func (b *Browser) Signup(t testing.TB, email string) {
	t.Helper()
	b.SignupNoAddress(t, email)
	b.AddAddress(t, TestAddress)
}

// SignupNoAddress creates and logs in a shopper with an empty address book.
func (b *Browser) SignupNoAddress(t testing.TB, email string) {
	t.Helper()
	r := b.Post(t, "/signup", url.Values{"email": {email}, "password": {"correct horse battery"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("signup %s: %d %s", email, r.Status, r.Body)
	}
}

// TestAddress is a valid delivery address form.
var TestAddress = url.Values{"name": {"张三"}, "phone": {"13800138000"}, "region": {"浙江省 杭州市 西湖区"},
	"detail": {"文三路 100 号 1 幢 101 室"}}

// AddAddress adds an address to the logged-in shopper's book.
func (b *Browser) AddAddress(t testing.TB, form url.Values) {
	t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = append([]string(nil), v...)
	}
	if r := b.Post(t, "/addresses", f); r.Status != http.StatusSeeOther {
		t.Fatalf("add address: %d %.300s", r.Status, r.Body)
	}
}

// Buy posts /purchase/id and returns the order it created (from the gateway redirect).
func (b *Browser) Buy(t testing.TB, goodsID int64, qty int) (store.Order, *url.URL) {
	t.Helper()
	form := url.Values{}
	if qty > 0 {
		form.Set("qty", itoa(qty))
	}
	r := b.Post(t, "/purchase/"+itoa(int(goodsID)), form)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("purchase: %d %s", r.Status, r.Body)
	}
	return b.shop.orderFromGateway(t, r.Location)
}

func (s *Shop) orderFromGateway(t testing.TB, location string) (store.Order, *url.URL) {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	var biz struct {
		OutTradeNo string `json:"out_trade_no"`
	}
	if err := jsonUnmarshal(u.Query().Get("biz_content"), &biz); err != nil {
		t.Fatalf("biz_content: %v in %s", err, location)
	}
	o, err := s.Store.OrderByNo(context.Background(), biz.OutTradeNo)
	if err != nil {
		t.Fatal(err)
	}
	return o, u
}

// OrderFromGateway returns the order a gateway URL is for.
func (s *Shop) OrderFromGateway(t testing.TB, location string) store.Order {
	o, _ := s.orderFromGateway(t, location)
	return o
}

// Order re-reads an order.
func (s *Shop) Order(t testing.TB, no string) store.Order {
	t.Helper()
	o, err := s.Store.OrderByNo(context.Background(), no)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// VerifyRequest checks a page-pay request as Alipay does: every param except sign
// (sign_type included), empty values dropped, sorted by key, raw k=v joined by &.
func VerifyRequest(pub *rsa.PublicKey, q url.Values) error {
	keys := []string{}
	for k := range q {
		if k != "sign" && q.Get(k) != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + q.Get(k)
	}
	sig, err := base64.StdEncoding.DecodeString(q.Get("sign"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "&")))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
}

// OperatorPassword is the password of operators made by Operator.
const OperatorPassword = "operator password 1"

// Operator creates the operator email and returns a browser logged in to the back office.
func (s *Shop) Operator(t testing.TB, email string) *Browser {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(OperatorPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Store.SaveOperator(context.Background(), email, string(hash)); err != nil {
		t.Fatal(err)
	}
	b := s.Browser()
	r := b.Post(t, "/admin/login", url.Values{"email": {email}, "password": {OperatorPassword}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("operator login: %d %.300s", r.Status, r.Body)
	}
	return b
}

// Base is the shop's URL, for requests a test builds itself.
func (b *Browser) Base() string { return b.shop.URL }
