package sandbox

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/smartwalle/alipay/v3"
)

// TestPagePayRuleErrors: each broken request shows Alipay's error page with the named
// code and creates or changes nothing.
func TestPagePayRuleErrors(t *testing.T) {
	h := newHarness(t, nil)
	h.open(trade("EXIST", "5.00"))

	tamper := func(u string) string {
		p, _ := url.Parse(u)
		q := p.Query()
		biz := strings.Replace(q.Get("biz_content"), `"5.00"`, `"0.01"`, 1)
		q.Set("biz_content", biz)
		p.RawQuery = q.Encode()
		return p.String()
	}
	// resigned changes public params of a valid request and signs it again with the app's
	// key, so the check under test is reached past the signature.
	resigned := func(no string, mod func(url.Values)) string {
		p, _ := url.Parse(h.pagePayURL(trade(no, "1.00")))
		q := p.Query()
		mod(q)
		q.Del("sign")
		sig, err := signBytes(appKeys.key, []byte(requestSignContent(q)))
		if err != nil {
			t.Fatal(err)
		}
		q.Set("sign", sig)
		p.RawQuery = q.Encode()
		return p.String()
	}
	mk := func(no, amount string, mod func(*alipay.TradePagePay)) string {
		p := trade(no, amount)
		if mod != nil {
			mod(&p)
		}
		return h.pagePayURL(p)
	}
	cases := []struct {
		name, url, code, no string
	}{
		{"tampered", tamper(mk("TAMPER", "5.00", nil)), "invalid-signature", "TAMPER"},
		{"wrong app id", func() string {
			u, _ := h.newClient("2021999999999999", string(appKeys.pkcs1)).TradePagePay(func() alipay.TradePagePay {
				p := trade("OTHERAPP", "5.00")
				p.ProductCode = "FAST_INSTANT_TRADE_PAY"
				return p
			}())
			return u.String()
		}(), "isv.invalid-app-id", "OTHERAPP"},
		{"one decimal", mk("A1", "1.5", nil), "invalid-total-amount", "A1"},
		{"zero", mk("A2", "0.00", nil), "invalid-total-amount", "A2"},
		{"too big", mk("A3", "100000000.01", nil), "invalid-total-amount", "A3"},
		{"negative", mk("A4", "-1.00", nil), "invalid-total-amount", "A4"},
		{"exponent", mk("A5", "1e2", nil), "invalid-total-amount", "A5"},
		{"dash in no", mk("BAD-NO", "1.00", nil), "invalid-out-trade-no", "BAD-NO"},
		{"65 chars", mk(strings.Repeat("a", 65), "1.00", nil), "invalid-out-trade-no", strings.Repeat("a", 65)},
		{"empty subject", mk("S1", "1.00", func(p *alipay.TradePagePay) { p.Subject = "" }), "invalid-subject", "S1"},
		{"long subject", mk("S2", "1.00", func(p *alipay.TradePagePay) { p.Subject = strings.Repeat("字", 257) }), "invalid-subject", "S2"},
		{"product code", mk("P1", "1.00", func(p *alipay.TradePagePay) { p.ProductCode = "QUICK_WAP_WAY" }), "invalid-product-code", "P1"},
		{"return query", mk("U1", "1.00", func(p *alipay.TradePagePay) { p.ReturnURL = "http://shop.test/show_msg?x=1" }), "invalid-return-url", "U1"},
		{"notify relative", mk("U2", "1.00", func(p *alipay.TradePagePay) { p.NotifyURL = "/check_order" }), "invalid-notify-url", "U2"},
		{"timeout 1.5h", mk("X1", "1.00", func(p *alipay.TradePagePay) { p.TimeoutExpress = "1.5h" }), "invalid-timeout-express", "X1"},
		{"timeout 16d", mk("X2", "1.00", func(p *alipay.TradePagePay) { p.TimeoutExpress = "16d" }), "invalid-timeout-express", "X2"},
		{"time_expire format", mk("X3", "1.00", func(p *alipay.TradePagePay) { p.TimeExpire = "2025/03/01 10:00" }), "invalid-time-expire", "X3"},
		{"other amount", mk("EXIST", "6.00", nil), "ACQ.CONTEXT_INCONSISTENT", ""},
		{"no timestamp", resigned("T1", func(q url.Values) { q.Del("timestamp") }), "isv.invalid-timestamp", "T1"},
		{"timestamp format", resigned("T2", func(q url.Values) { q.Set("timestamp", "2026-11-22T10:00:00Z") }), "isv.invalid-timestamp", "T2"},
		{"version", resigned("V1", func(q url.Values) { q.Set("version", "2.0") }), "isv.invalid-parameter", "V1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, hdr, body := h.do("GET", c.url, nil)
			if code != 200 || hdr.Get("X-Sandbox-Error") != c.code || !strings.Contains(body, c.code) {
				t.Fatalf("got %d %q, want 200 %q", code, hdr.Get("X-Sandbox-Error"), c.code)
			}
			if strings.Contains(body, "确认付款") {
				t.Fatal("error page offers to pay")
			}
			if c.no != "" {
				if _, err := getTrade(context.Background(), h.emu.db, c.no); err != errNotFound {
					t.Fatalf("trade %s created: %v", c.no, err)
				}
				if _, err := getCashier(context.Background(), h.emu.db, c.no); err != errNotFound {
					t.Fatalf("cashier %s stored: %v", c.no, err)
				}
			}
		})
	}
	ca, err := getCashier(context.Background(), h.emu.db, "EXIST")
	if err != nil || ca.TotalFen != 500 {
		t.Fatalf("existing cashier changed: %+v %v", ca, err)
	}
	if _, err := getTrade(context.Background(), h.emu.db, "EXIST"); err != errNotFound {
		t.Fatalf("opening the cashier created the trade: %v", err)
	}

	// POST works like GET, and paying again with the same amount shows the cashier again.
	u, _ := url.Parse(mk("EXIST", "5.00", func(p *alipay.TradePagePay) { p.ReturnURL = "http://shop.test/again" }))
	code, hdr, body := h.do("POST", h.srv.URL+"/sandbox/gateway.do", u.Query())
	if code != 200 || hdr.Get("X-Sandbox-Error") != "" || !strings.Contains(body, "确认付款") {
		t.Fatalf("pay again: %d %s", code, hdr.Get("X-Sandbox-Error"))
	}
	ca, _ = getCashier(context.Background(), h.emu.db, "EXIST")
	if ca.ReturnURL != "http://shop.test/again" {
		t.Fatalf("return_url not refreshed: %q", ca.ReturnURL)
	}
	// Once the trade exists, the same amount is still required, and pay again refreshes it too.
	h.scan("EXIST")
	if _, hdr, _ := h.do("GET", mk("EXIST", "6.00", nil), nil); hdr.Get("X-Sandbox-Error") != "ACQ.CONTEXT_INCONSISTENT" {
		t.Fatalf("other amount after the trade exists: %q", hdr.Get("X-Sandbox-Error"))
	}
	h.open(func() alipay.TradePagePay {
		p := trade("EXIST", "5.00")
		p.ReturnURL = "http://shop.test/third"
		return p
	}())
	if tr, _ := getTrade(context.Background(), h.emu.db, "EXIST"); tr.ReturnURL != "http://shop.test/third" || tr.Status != statusWait {
		t.Fatalf("waiting trade not refreshed: %+v", tr)
	}

	// Paid and closed trades refuse a new page pay.
	h.apiPay("EXIST", "?notify=off")
	if _, hdr, _ := h.do("GET", mk("EXIST", "5.00", nil), nil); hdr.Get("X-Sandbox-Error") != "ACQ.TRADE_HAS_SUCCESS" {
		t.Fatalf("paid: %q", hdr.Get("X-Sandbox-Error"))
	}
	h.open(trade("CLOSEME", "1.00"))
	h.scan("CLOSEME")
	if r, err := h.client.TradeClose(context.Background(), alipay.TradeClose{OutTradeNo: "CLOSEME"}); err != nil || r.IsFailure() {
		t.Fatal(r, err)
	}
	if _, hdr, _ := h.do("GET", mk("CLOSEME", "1.00", nil), nil); hdr.Get("X-Sandbox-Error") != "ACQ.TRADE_HAS_CLOSE" {
		t.Fatalf("closed: %q", hdr.Get("X-Sandbox-Error"))
	}

	// Garbage never yields a 500.
	for _, q := range []string{"", "method=alipay.trade.page.pay", "%zz", "method=alipay.trade.page.pay&app_id=" + testAppID + "&sign_type=RSA2&sign=@@"} {
		code, _, _ := h.do("GET", h.srv.URL+"/sandbox/gateway.do?"+q, nil)
		if code >= 500 {
			t.Errorf("%q -> %d", q, code)
		}
	}
}
