package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smartwalle/alipay/v3"
)

// certClient is smartwalle's client in certificate mode, loaded from dir's files (any of
// the three may be left out to make a broken client).
func (h *harness) certClient(dir string, app, root, ali bool) *alipay.Client {
	h.t.Helper()
	c, err := alipay.New(testAppID, string(appKeys.pkcs8), false,
		alipay.WithSandboxGateway(h.srv.URL+"/sandbox/gateway.do"), alipay.WithTimeLocation(shanghai),
		alipay.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		h.t.Fatal(err)
	}
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			h.t.Fatal(err)
		}
		return string(b)
	}
	if app && c.LoadAppCertPublicKey(read(AppCertFile)) != nil ||
		root && c.LoadAliPayRootCert(read(RootCertFile)) != nil ||
		ali && c.LoadAlipayCertPublicKey(read(AlipayCertFile)) != nil {
		h.t.Fatal("load certificates")
	}
	return c
}

// rawCall posts a request signed by c and returns the raw answer body.
func (h *harness) rawCall(c *alipay.Client, p alipay.Param) string {
	h.t.Helper()
	v, err := c.URLValues(p)
	if err != nil {
		h.t.Fatal(err)
	}
	_, _, body := h.do("POST", h.srv.URL+"/sandbox/gateway.do", v)
	return body
}

func subCodeOf(t *testing.T, body, method string) string {
	t.Helper()
	var m map[string]map[string]string
	_ = json.Unmarshal([]byte(body), &m)
	return m[strings.ReplaceAll(method, ".", "_")+"_response"]["sub_code"]
}

func issueCerts(t *testing.T, appPub []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := IssueCerts(dir, appPub, emuKeys.pkcs1); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestIssueCerts(t *testing.T) {
	testKeys(t)
	dir := issueCerts(t, appKeys.pubPKIX)
	read := func(f string) []byte { b, _ := os.ReadFile(filepath.Join(dir, f)); return b }
	st, err := os.Stat(filepath.Join(dir, "sandbox", "alipay_root_key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("root key: %v %v", st, err)
	}
	root, app, ali := read(RootCertFile), read(AppCertFile), read(AlipayCertFile)
	certs, err := parseCerts(root)
	if err != nil || len(certs) != 3 {
		t.Fatalf("root bundle: %d certs, %v", len(certs), err)
	}
	sn, err := rootCertSN(root)
	if err != nil || strings.Count(sn, "_") != 1 || len(sn) != 65 {
		t.Fatalf("root SN %q (two RSA roots, the ECC one left out): %v", sn, err)
	}
	// Kept when nothing changed.
	if err := IssueCerts(dir, appKeys.pubPKIX, emuKeys.pkcs1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root, read(RootCertFile)) || !bytes.Equal(app, read(AppCertFile)) || !bytes.Equal(ali, read(AlipayCertFile)) {
		t.Fatal("certificates issued again though nothing changed")
	}
	// A new app key: only the app certificate is issued again.
	if err := IssueCerts(dir, xk.pubPKIX, emuKeys.pkcs1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root, read(RootCertFile)) || bytes.Equal(app, read(AppCertFile)) || !bytes.Equal(ali, read(AlipayCertFile)) {
		t.Fatal("app key change: want only the app certificate issued again")
	}
	c, _ := parseCert(read(AppCertFile))
	if pk, _ := parsePublicKey(xk.pubPKIX); !pk.Equal(c.PublicKey) {
		t.Fatal("app certificate does not hold the new key")
	}
	// Without its key the root is made anew, and both leaves with it.
	os.Remove(filepath.Join(dir, "sandbox", "alipay_root_key.pem"))
	if err := IssueCerts(dir, xk.pubPKIX, emuKeys.pkcs1); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(root, read(RootCertFile)) || bytes.Equal(ali, read(AlipayCertFile)) {
		t.Fatal("root not made anew")
	}
	// Config checks: the Alipay certificate must hold the emulator's key, the app one the app's.
	cfg, err := LoadCertConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	base := Config{AppID: testAppID, PrivateKeyPEM: emuKeys.pkcs1, DBPath: filepath.Join(t.TempDir(), "s.db"), Certs: cfg}
	bad := base
	bad.PrivateKeyPEM = appKeys.pkcs1
	if _, err := New(bad); err == nil {
		t.Error("alipay certificate of another key accepted")
	}
	bad = base
	bad.AppPublicKeyPEM = appKeys.pubPKIX // the certificate now holds xk
	if _, err := New(bad); err == nil {
		t.Error("app certificate of another key than AppPublicKeyPEM accepted")
	}
	if _, err := LoadCertConfig(t.TempDir()); err == nil {
		t.Error("missing files loaded")
	}
}

// TestCertMode drives page pay, query, close, refund, refund query and a notify with
// smartwalle's client in certificate mode.
func TestCertMode(t *testing.T) {
	ctx := context.Background()
	testKeys(t)
	dir := issueCerts(t, appKeys.pubPKIX)
	certs, err := LoadCertConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *Config) { c.Certs, c.AppPublicKeyPEM = certs, nil })
	cc := h.certClient(dir, true, true, true)
	tg := newTarget(t, always(200, "success"))

	p := trade("CM1", "12.34")
	p.ProductCode = "FAST_INSTANT_TRADE_PAY"
	p.NotifyURL = tg.srv.URL
	u, err := cc.TradePagePay(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, hdr, body := h.do("GET", u.String(), nil); hdr.Get("X-Sandbox-Error") != "" || !strings.Contains(body, "确认付款") {
		t.Fatalf("page pay in cert mode: %q", hdr.Get("X-Sandbox-Error"))
	}
	h.scan("CM1")
	q, err := cc.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "CM1"})
	if err != nil || q.IsFailure() || q.TradeStatus != alipay.TradeStatusWaitBuyerPay {
		t.Fatalf("query: %+v %v", q, err)
	}
	raw := h.rawCall(cc, alipay.TradeQuery{OutTradeNo: "CM1"})
	if !strings.Contains(raw, `},"alipay_cert_sn":"`+h.emu.certs.alipaySN+`","sign":"`) {
		t.Fatalf("answer lacks alipay_cert_sn: %s", raw)
	}
	code, ret := h.apiPay("CM1", "")
	if code != 200 {
		t.Fatal(ret)
	}
	h.deliver()
	v := tg.requests()[0]
	if v.Get("alipay_cert_sn") != h.emu.certs.alipaySN {
		t.Fatalf("notify alipay_cert_sn %q", v.Get("alipay_cert_sn"))
	}
	if nt, err := cc.DecodeNotification(ctx, v); err != nil || nt.TradeStatus != alipay.TradeStatusSuccess {
		t.Fatalf("notify in cert mode: %v", err)
	}
	rf, err := cc.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "CM1", RefundAmount: "2.00", OutRequestNo: "R1"})
	if err != nil || rf.IsFailure() || rf.FundChange != "Y" {
		t.Fatalf("refund: %+v %v", rf, err)
	}
	rq, err := cc.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "CM1", OutRequestNo: "R1"})
	if err != nil || rq.RefundStatus != "REFUND_SUCCESS" {
		t.Fatalf("refund query: %+v %v", rq, err)
	}
}

// TestCertModeErrors: a missing or wrong SN gets Alipay's sub_code, on the APIs and on
// the page-pay error page.
func TestCertModeErrors(t *testing.T) {
	testKeys(t)
	dir := issueCerts(t, appKeys.pubPKIX)
	other := issueCerts(t, appKeys.pubPKIX) // same app key, another root
	certs, _ := LoadCertConfig(dir)
	h := newHarness(t, func(c *Config) { c.Certs = certs })
	mixed := h.certClient(dir, true, false, true)
	if err := mixed.LoadAliPayRootCert(string(must(os.ReadFile(filepath.Join(other, RootCertFile))))); err != nil {
		t.Fatal(err)
	}
	wrongApp := h.certClient(other, true, false, false)
	_ = wrongApp.LoadAliPayRootCert(string(must(os.ReadFile(filepath.Join(dir, RootCertFile)))))
	q := alipay.TradeQuery{OutTradeNo: "X"}
	for _, c := range []struct {
		name   string
		client *alipay.Client
		code   string
	}{
		{"public-key client", h.client, "isv.missing-app-cert-sn"},
		{"no root SN", h.certClient(dir, true, false, true), "isv.missing-alipay-root-cert-sn"},
		{"wrong root SN", mixed, "isv.invalid-alipay-root-cert-sn"},
		{"wrong app SN", wrongApp, "isv.app-cert-not-exist"},
		{"right", h.certClient(dir, true, true, true), "ACQ.TRADE_NOT_EXIST"},
	} {
		if got := subCodeOf(t, h.rawCall(c.client, q), q.APIName()); got != c.code {
			t.Errorf("%s: %q, want %q", c.name, got, c.code)
		}
	}
	p := trade("CE1", "1.00")
	p.ProductCode = "FAST_INSTANT_TRADE_PAY"
	u, _ := h.client.TradePagePay(p)
	if _, hdr, body := h.do("GET", u.String(), nil); hdr.Get("X-Sandbox-Error") != "isv.missing-app-cert-sn" || !strings.Contains(body, "返回商户") {
		t.Errorf("page pay without SN: %q", hdr.Get("X-Sandbox-Error"))
	}
	// An emulator in public-key mode refuses a certificate-mode request.
	pk := newHarness(t, nil)
	if got := subCodeOf(t, pk.rawCall(pk.certClient(dir, true, true, true), q), q.APIName()); got != "isv.app-cert-not-exist" {
		t.Errorf("cert request in public-key mode: %q", got)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
