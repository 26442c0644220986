package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"storefront/payment"
	"storefront/shoptest"
	"storefront/store"
)

// startShop runs runShop with env until the test ends and waits for /healthz.
func startShop(t *testing.T, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var out bytes.Buffer
	errc := make(chan error, 1)
	wg.Go(func() {
		errc <- runShop(ctx, func(k string) string { return env[k] }, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	base := "http://" + env["ADDR"]
	for i := 0; i < 100; i++ {
		select {
		case err := <-errc:
			t.Fatalf("runShop: %v", err)
		default:
		}
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return base
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("shop did not start")
	return ""
}

// buyOne signs up and buys goods 1 and returns the 303's Location.
func buyOne(t *testing.T, base string) *url.URL {
	t.Helper()
	shop := &shoptest.Shop{URL: base}
	b := shop.Browser()
	b.Signup(t, "main@example.com")
	r := b.Post(t, "/purchase/1", nil)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("purchase: %d %.300s", r.Status, r.Body)
	}
	u, err := url.Parse(r.Location)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestLocalModeZeroConfig(t *testing.T) {
	dir := t.TempDir()
	addr := shoptest.FreeAddr(t)
	base := startShop(t, map[string]string{"ADDR": addr, "DB": filepath.Join(dir, "shop.db"), "KEYS_DIR": filepath.Join(dir, "keys")})
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "小米手环") || !strings.Contains(string(body), "¥199.00") {
		t.Fatal("goods page lacks seeded goods")
	}
	for _, f := range []string{payment.AppPrivateKeyFile, payment.SandboxPrivateKeyFile, "session.key"} {
		st, err := os.Stat(filepath.Join(dir, "keys", f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, err, st)
		}
	}
	u := buyOne(t, base)
	if u.Host != addr || u.Path != "/sandbox/gateway.do" {
		t.Fatalf("gateway %s", u)
	}
	pubPEM, _ := os.ReadFile(filepath.Join(dir, "keys", payment.AppPublicKeyFile))
	pub, err := payment.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := shoptest.VerifyRequest(pub, u.Query()); err != nil {
		t.Fatalf("gateway URL does not verify with KEYS_DIR/app_public_key.pem: %v", err)
	}
	// And the emulator mounted in the same process accepts it: the cashier page opens.
	resp, err = http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "确认付款") {
		t.Fatalf("cashier page: %d %.300s", resp.StatusCode, page)
	}
}

func writeKey(t *testing.T, path string, pemBytes []byte) {
	t.Helper()
	if err := payment.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSandboxModeWithForeignKeys(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	// Keys "someone else generated": the app key as PKCS#1, as Alipay's key tool writes it.
	app, _ := rsa.GenerateKey(rand.Reader, 2048)
	alipay, _ := rsa.GenerateKey(rand.Reader, 2048)
	writeKey(t, filepath.Join(keys, payment.AppPrivateKeyFile),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(app)}))
	writeKey(t, filepath.Join(keys, payment.AlipayPublicKeyFile), payment.EncodePublicKey(&alipay.PublicKey))
	env := map[string]string{"ADDR": shoptest.FreeAddr(t), "DB": filepath.Join(dir, "shop.db"), "KEYS_DIR": keys,
		"ALIPAY_MODE": "sandbox", "ALIPAY_APP_ID": "9021000100000001", "ALIPAY_SELLER_ID": "2088721000000001"}
	base := startShop(t, env)
	u := buyOne(t, base)
	if u.Host != "openapi-sandbox.dl.alipaydev.com" {
		t.Fatalf("sandbox gateway %s", u.Host)
	}
	if err := shoptest.VerifyRequest(&app.PublicKey, u.Query()); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(env["DB"], schemaSQL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	orders, _, err := st.ListOrders(context.Background(), 1, "", 1, 0)
	if err != nil || len(orders) != 1 {
		t.Fatalf("orders %v %v", orders, err)
	}
	o := orders[0]
	notify := func(mut func(url.Values)) string {
		v := url.Values{"notify_id": {"x1"}, "notify_type": {"trade_status_sync"}, "app_id": {env["ALIPAY_APP_ID"]},
			"seller_id": {env["ALIPAY_SELLER_ID"]}, "out_trade_no": {o.OutTradeNo}, "trade_no": {"2026112222001400001234567890"},
			"trade_status": {"TRADE_SUCCESS"}, "total_amount": {o.Total.String()}, "charset": {"utf-8"}, "sign_type": {"RSA2"},
			"gmt_payment": {"2026-11-22 10:00:00"}}
		mut(v)
		v.Set("sign", shoptest.SignAlipay(alipay, v))
		resp, err := http.PostForm(base+"/check_order", v)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for name, mut := range map[string]func(url.Values){
		"wrong app_id":    func(v url.Values) { v.Set("app_id", "2021000000000001") },
		"wrong seller_id": func(v url.Values) { v.Set("seller_id", "2088000000000001") },
		"amount off":      func(v url.Values) { v.Set("total_amount", (o.Total + 1).String()) },
	} {
		if got := notify(mut); got != "fail" {
			t.Fatalf("%s: %q", name, got)
		}
	}
	if got, _ := st.OrderByNo(context.Background(), o.OutTradeNo); got.Status != store.StatusUnpaid {
		t.Fatal("a bad notify changed the order")
	}
	if got := notify(func(url.Values) {}); got != "success" {
		t.Fatalf("valid notify: %q", got)
	}
	if got, _ := st.OrderByNo(context.Background(), o.OutTradeNo); got.Status != store.StatusPaid {
		t.Fatalf("order %s after valid notify", got.Status)
	}
}

func TestModesRefuseToStartWithoutKeys(t *testing.T) {
	for _, mode := range []string{"sandbox", "production"} {
		dir := t.TempDir()
		_, err := loadConfig(func(k string) string {
			return map[string]string{"ALIPAY_MODE": mode, "KEYS_DIR": dir}[k]
		})
		if err == nil {
			t.Fatalf("%s mode started without keys", mode)
		}
		for _, want := range []string{"ALIPAY_APP_ID", "app_private_key.pem", "alipay_public_key.pem"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s mode error doesn't say to set %s: %v", mode, want, err)
			}
		}
		if mode == "production" && !strings.Contains(err.Error(), "SESSION_SECRET") {
			t.Errorf("production doesn't ask for SESSION_SECRET: %v", err)
		}
	}
	if _, err := loadConfig(func(k string) string { return map[string]string{"ORDER_TTL": "soon"}[k] }); err == nil {
		t.Fatal("bad ORDER_TTL accepted")
	}
	if _, err := loadConfig(func(k string) string { return map[string]string{"ALIPAY_MODE": "live"}[k] }); err == nil {
		t.Fatal("unknown mode accepted")
	}
}

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != 200 {
		t.Fatalf("GOGC %d, want 200", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Fatalf("memory limit %d", got)
	}
	debug.SetGCPercent(150)
	tuneGC(func(k string) string { return map[string]string{"GOGC": "150", "GOMEMLIMIT": "1GiB"}[k] })
	if got := debug.SetGCPercent(100); got != 150 {
		t.Fatalf("an explicit GOGC was overridden: %d", got)
	}
}

// With PUBLIC_URL on https, main wires Secure into both cookies (the session and the
// CSRF token), so neither ever travels over plain http.
func TestHTTPSPublicURLMakesCookiesSecure(t *testing.T) {
	dir := t.TempDir()
	addr := shoptest.FreeAddr(t)
	base := startShop(t, map[string]string{"ADDR": addr, "DB": filepath.Join(dir, "shop.db"),
		"KEYS_DIR": filepath.Join(dir, "keys"), "PUBLIC_URL": "https://shop.example.test"})
	resp, err := http.Get(base + "/signup")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var csrf *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "_csrf" {
			csrf = c
		}
	}
	if csrf == nil || !csrf.Secure || !csrf.HttpOnly {
		t.Fatalf("CSRF cookie %+v, want Secure and HttpOnly", csrf)
	}
	form := url.Values{"_csrf": {csrf.Value}, "email": {"tls@example.com"}, "password": {"correct horse battery"}}
	req, _ := http.NewRequest(http.MethodPost, base+"/signup", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "_csrf", Value: csrf.Value})
	resp, err = (&http.Transport{}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("signup: %d", resp.StatusCode)
	}
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "shop_session" {
			sess = c
		}
	}
	if sess == nil || !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie %+v, want Secure, HttpOnly, SameSite=Lax", sess)
	}
}
