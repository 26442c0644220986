package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartwalle/alipay/v3"

	"storefront/payment"
)

const (
	testAppID    = "2021000000000001"
	testSellerID = "2088000000000001"
)

// keyPair holds one RSA key in the PEM forms the tests need.
type keyPair struct {
	key     *rsa.PrivateKey
	pkcs1   []byte
	pkcs8   []byte
	pubPKIX []byte
}

var (
	keysOnce             sync.Once
	appKeys, emuKeys, xk keyPair // xk: an unrelated key, for "wrong key" cases
)

func makeKeyPair(t testing.TB) keyPair {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(k)
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return keyPair{
		key:     k,
		pkcs1:   pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}),
		pkcs8:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pubPKIX: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
	}
}

// testKeys generates the keys once per test binary: RSA-2048 generation is the slow part.
func testKeys(t testing.TB) {
	keysOnce.Do(func() {
		appKeys, emuKeys, xk = makeKeyPair(t), makeKeyPair(t), makeKeyPair(t)
	})
}

// fakeClock is a settable clock for the schedule and expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	t      *testing.T
	emu    *Emulator
	srv    *httptest.Server
	clock  *fakeClock
	cfg    Config
	client *alipay.Client
	web    *http.Client // a browser that does not follow redirects
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	testKeys(t)
	clock := &fakeClock{t: time.Date(2025, 3, 1, 10, 0, 0, 0, shanghai)}
	cfg := Config{
		AppID: testAppID, SellerID: testSellerID,
		AppPublicKeyPEM: appKeys.pubPKIX, PrivateKeyPEM: emuKeys.pkcs1,
		DBPath: filepath.Join(t.TempDir(), "sandbox.db"), TimeScale: 1, Now: clock.Now,
		HTTPClient: &http.Client{Timeout: 5 * time.Second},
		Logger:     discardLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	emu, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	h := &harness{t: t, emu: emu, srv: srv, clock: clock, cfg: cfg,
		web: &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	h.client = h.newClient(testAppID, string(appKeys.pkcs8))
	t.Cleanup(func() { srv.Close(); emu.Close() })
	return h
}

// newClient is the shop's own Alipay client (payment.NewClient, as main.go builds it)
// pointed at the emulator.
func (h *harness) newClient(appID, privPEM string) *alipay.Client {
	h.t.Helper()
	return h.newClientOpts(appID, privPEM, 5*time.Second)
}

func (h *harness) newClientOpts(appID, privPEM string, timeout time.Duration) *alipay.Client {
	h.t.Helper()
	c, err := payment.NewClient(payment.ClientOptions{AppID: appID, AppPrivateKey: []byte(privPEM),
		AlipayPublicKey: emuKeys.pubPKIX, Gateway: h.srv.URL + "/sandbox/gateway.do", Timeout: timeout})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) pagePayURL(p alipay.TradePagePay) string {
	h.t.Helper()
	if p.ProductCode == "" {
		p.ProductCode = "FAST_INSTANT_TRADE_PAY"
	}
	u, err := h.client.TradePagePay(p)
	if err != nil {
		h.t.Fatal(err)
	}
	return u.String()
}

func trade(no, amount string) alipay.TradePagePay {
	var p alipay.TradePagePay
	p.OutTradeNo, p.TotalAmount, p.Subject = no, amount, "测试商品"
	p.ReturnURL, p.NotifyURL = "http://shop.test/show_msg", "http://shop.test/check_order"
	return p
}

// do sends a request and returns status, headers and body.
func (h *harness) do(method, target string, form url.Values) (int, http.Header, string) {
	h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := h.web.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// open shows the cashier for p, failing the test unless it rendered.
func (h *harness) open(p alipay.TradePagePay) string {
	h.t.Helper()
	code, hdr, body := h.do("GET", h.pagePayURL(p), nil)
	if code != 200 || hdr.Get("X-Sandbox-Error") != "" {
		h.t.Fatalf("cashier: %d %s\n%s", code, hdr.Get("X-Sandbox-Error"), body)
	}
	return body
}

// scan is the buyer scanning the cashier (or logging in): the trade is created, unpaid.
func (h *harness) scan(no string) {
	h.t.Helper()
	code, _, body := h.do("POST", h.srv.URL+"/sandbox/api/trades/"+no+"/scan", url.Values{})
	if code != 200 {
		h.t.Fatalf("scan %s: %d %s", no, code, body)
	}
}

func (h *harness) apiPay(no string, query string) (int, string) {
	code, _, body := h.do("POST", h.srv.URL+"/sandbox/api/trades/"+no+"/pay"+query, url.Values{})
	return code, body
}

func (h *harness) deliver() int {
	h.t.Helper()
	n, err := h.emu.DeliverDue(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// target is a scripted notify receiver.
type target struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []url.Values
	raws   []string // bodies as received, before any decoding
	ctypes []string
	uas    []string
	answer func(i int) (int, string)
}

func newTarget(t *testing.T, answer func(i int) (int, string)) *target {
	tg := &target{answer: answer}
	tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw)) // Alipay's Content-Type defeats r.ParseForm's media-type parsing
		tg.mu.Lock()
		i := len(tg.reqs)
		tg.reqs = append(tg.reqs, form)
		tg.raws = append(tg.raws, string(raw))
		tg.ctypes = append(tg.ctypes, r.Header.Get("Content-Type"))
		tg.uas = append(tg.uas, r.Header.Get("User-Agent"))
		tg.mu.Unlock()
		code, body := tg.answer(i)
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(tg.srv.Close)
	return tg
}

func (tg *target) requests() []url.Values {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]url.Values(nil), tg.reqs...)
}

func always(code int, body string) func(int) (int, string) {
	return func(int) (int, string) { return code, body }
}

// verifyAlipayRule checks a notify or return against Alipay's own rule (every field but
// sign and sign_type, empty values dropped) with the emulator's public key.
func verifyAlipayRule(v url.Values) error {
	return verifyBytes(&emuKeys.key.PublicKey, []byte(notifySignContent(v)), v.Get("sign"))
}

// verifyV2Rule checks the V2 rule: only sign left out.
func verifyV2Rule(v url.Values) error {
	return verifyBytes(&emuKeys.key.PublicKey, []byte(v2SignContent(v)), v.Get("sign"))
}

func (h *harness) tradeJSON(no string) (int, map[string]any) {
	h.t.Helper()
	code, _, body := h.do("GET", h.srv.URL+"/sandbox/api/trades/"+no, nil)
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	return code, m
}
