package sandbox

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/smartwalle/alipay/v3"
)

func wapTrade(no, amount string) alipay.TradeWapPay {
	var p alipay.TradeWapPay
	p.OutTradeNo, p.TotalAmount, p.Subject, p.ProductCode = no, amount, "手机商品", "QUICK_WAP_WAY"
	p.ReturnURL, p.NotifyURL = "http://shop.test/show_msg", "http://shop.test/check_order"
	p.QuitURL = "http://shop.test/orders/" + no + "?from=alipay"
	return p
}

func (h *harness) wapPayURL(p alipay.TradeWapPay) string {
	h.t.Helper()
	u, err := h.client.TradeWapPay(p)
	if err != nil {
		h.t.Fatal(err)
	}
	return u.String()
}

// TestWapPay: alipay.trade.wap.pay on the same gateway, with its own rules, its phone
// cashier, 取消 to quit_url and the wap return method.
func TestWapPay(t *testing.T) {
	h := newHarness(t, nil)
	p := wapTrade("W1", "9.90")
	p.TimeExpire = h.clock.Now().Add(30 * time.Minute).In(shanghai).Format("2006-01-02 15:04")
	code, hdr, page := h.do("GET", h.wapPayURL(p), nil)
	if code != 200 || hdr.Get("X-Sandbox-Error") != "" {
		t.Fatalf("wap cashier: %d %q\n%s", code, hdr.Get("X-Sandbox-Error"), page)
	}
	for _, want := range []string{`class="wap"`, "确认付款", "取消", "¥9.90", "手机商品", `action="/sandbox/cashier/W1/pay"`, `action="/sandbox/cashier/W1/cancel"`} {
		if !strings.Contains(page, want) {
			t.Errorf("wap cashier lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "style=") || strings.Contains(page, "<style") {
		t.Error("wap cashier has inline script or style")
	}
	if pc := h.open(trade("PC1", "9.90")); strings.Contains(pc, `class="wap"`) {
		t.Error("page pay shows the phone cashier")
	}

	// 取消 leaves for quit_url, changing nothing.
	code, hdr, _ = h.do("POST", h.srv.URL+"/sandbox/cashier/W1/cancel", url.Values{})
	if code != http.StatusSeeOther || hdr.Get("Location") != p.QuitURL {
		t.Fatalf("cancel: %d %q", code, hdr.Get("Location"))
	}
	// The same out_trade_no with another amount is refused, as for page pay.
	q := p
	q.TotalAmount = "9.91"
	if _, hdr, body := h.do("GET", h.wapPayURL(q), nil); hdr.Get("X-Sandbox-Error") != "ACQ.CONTEXT_INCONSISTENT" ||
		!strings.Contains(body, `href="http://shop.test/orders/W1?from=alipay"`) {
		t.Fatalf("other amount: %q", hdr.Get("X-Sandbox-Error"))
	}

	// Paying returns with method alipay.trade.wap.pay.return, signed.
	code, hdr, _ = h.do("POST", h.srv.URL+"/sandbox/cashier/W1/pay", url.Values{})
	loc, _ := url.Parse(hdr.Get("Location"))
	if code != http.StatusSeeOther || loc == nil || loc.Query().Get("method") != "alipay.trade.wap.pay.return" {
		t.Fatalf("pay: %d %q", code, hdr.Get("Location"))
	}
	if err := h.client.VerifySign(context.Background(), loc.Query()); err != nil {
		t.Fatalf("return signature: %v", err)
	}
	// The back button: the cashier again, its 确认付款 and 取消, all lead back to quit_url.
	for _, c := range []struct{ method, url string }{
		{"GET", h.wapPayURL(p)},
		{"POST", h.srv.URL + "/sandbox/cashier/W1/pay"},
		{"POST", h.srv.URL + "/sandbox/cashier/W1/cancel"},
	} {
		code, hdr, body := h.do(c.method, c.url, url.Values{})
		if code == http.StatusSeeOther && c.url == h.srv.URL+"/sandbox/cashier/W1/pay" {
			continue // a double click on 确认付款 lands on the return page again
		}
		if hdr.Get("X-Sandbox-Error") != "ACQ.TRADE_HAS_SUCCESS" || !strings.Contains(body, `href="http://shop.test/orders/W1?from=alipay"`) {
			t.Errorf("%s %s after paying: %d %q", c.method, c.url, code, hdr.Get("X-Sandbox-Error"))
		}
	}
}

func TestWapPayRules(t *testing.T) {
	h := newHarness(t, nil)
	at := h.clock.Now().Add(time.Hour).In(shanghai)
	cases := []struct {
		name string
		mod  func(*alipay.TradeWapPay)
		code string
	}{
		{"seconds in time_expire", func(p *alipay.TradeWapPay) { p.TimeExpire = at.Format(alipayTime) }, "invalid-time-expire"},
		{"page pay product code", func(p *alipay.TradeWapPay) { p.ProductCode = "FAST_INSTANT_TRADE_PAY" }, "invalid-product-code"},
		{"quit_url fragment", func(p *alipay.TradeWapPay) { p.QuitURL = "http://shop.test/orders#top" }, "invalid-quit-url"},
		{"quit_url relative", func(p *alipay.TradeWapPay) { p.QuitURL = "/orders" }, "invalid-quit-url"},
		{"quit_url scheme", func(p *alipay.TradeWapPay) { p.QuitURL = "javascript:alert(1)" }, "invalid-quit-url"},
		{"amount", func(p *alipay.TradeWapPay) { p.TotalAmount = "1.5" }, "invalid-total-amount"},
		{"return query", func(p *alipay.TradeWapPay) { p.ReturnURL = "http://shop.test/show_msg?a=1" }, "invalid-return-url"},
		{"past deadline", func(p *alipay.TradeWapPay) {
			p.TimeExpire = h.clock.Now().Add(-time.Minute).In(shanghai).Format("2006-01-02 15:04")
		}, "ACQ.TRADE_HAS_CLOSE"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			no := "WR" + string(rune('A'+i))
			p := wapTrade(no, "1.00")
			c.mod(&p)
			_, hdr, body := h.do("GET", h.wapPayURL(p), nil)
			if hdr.Get("X-Sandbox-Error") != c.code || strings.Contains(body, "确认付款") {
				t.Fatalf("got %q, want %q", hdr.Get("X-Sandbox-Error"), c.code)
			}
			if _, err := getCashier(context.Background(), h.emu.db, no); err != errNotFound {
				t.Fatalf("cashier stored: %v", err)
			}
			if !strings.Contains(body, "返回商户") {
				t.Error("error page has no way back to the merchant")
			}
		})
	}
	// WAP's minutes format is a page-pay error, and WAP without quit_url is allowed.
	pp := trade("PR1", "1.00")
	pp.TimeExpire = at.Format("2006-01-02 15:04")
	if _, hdr, _ := h.do("GET", h.pagePayURL(pp), nil); hdr.Get("X-Sandbox-Error") != "invalid-time-expire" {
		t.Fatalf("page pay with WAP's format: %q", hdr.Get("X-Sandbox-Error"))
	}
	p := wapTrade("WQ", "1.00")
	p.QuitURL = ""
	p.TimeExpire = at.Format("2006-01-02 15:04")
	if _, hdr, _ := h.do("GET", h.wapPayURL(p), nil); hdr.Get("X-Sandbox-Error") != "" {
		t.Fatalf("wap without quit_url: %q", hdr.Get("X-Sandbox-Error"))
	}
	ca, err := getCashier(context.Background(), h.emu.db, "WQ")
	if err != nil || ca.ExpiresAt != at.Truncate(time.Minute).UnixMilli() {
		t.Fatalf("wap deadline: %+v %v", ca, err)
	}
	// Its 取消 falls back to the cancelled page with the bare return_url.
	if code, _, body := h.do("POST", h.srv.URL+"/sandbox/cashier/WQ/cancel", url.Values{}); code != 200 || !strings.Contains(body, `href="http://shop.test/show_msg"`) {
		t.Fatalf("cancel without quit_url: %d", code)
	}
}

// TestErrorPagesLeadBack: every error page a buyer can reach offers a way back: quit_url,
// or the bare return_url, or the merchant's site root, from what the request carried.
func TestErrorPagesLeadBack(t *testing.T) {
	h := newHarness(t, nil)
	tamper := func(u string) string {
		p, _ := url.Parse(u)
		q := p.Query()
		q.Set("biz_content", strings.Replace(q.Get("biz_content"), `"1.00"`, `"0.01"`, 1))
		p.RawQuery = q.Encode()
		return p.String()
	}
	noReturn := trade("B2", "1.00")
	noReturn.ReturnURL = ""
	bare := trade("B3", "1.00")
	bare.ReturnURL, bare.NotifyURL = "", ""
	for _, c := range []struct {
		name, url, want string
	}{
		{"forged page pay", tamper(h.pagePayURL(trade("B1", "1.00"))), `href="http://shop.test/show_msg"`},
		{"forged wap pay", tamper(h.wapPayURL(wapTrade("B1", "1.00"))), `href="http://shop.test/orders/B1?from=alipay"`},
		{"site root", h.pagePayURL(func() alipay.TradePagePay { p := noReturn; p.TotalAmount = "1"; return p }()), `href="http://shop.test/"`},
	} {
		_, hdr, body := h.do("GET", c.url, nil)
		if hdr.Get("X-Sandbox-Error") == "" || !strings.Contains(body, c.want) {
			t.Errorf("%s: %q lacks %s", c.name, hdr.Get("X-Sandbox-Error"), c.want)
		}
	}
	// Nothing to go back to: the page says so instead of linking nowhere.
	b := bare
	b.TotalAmount = "1"
	if _, _, body := h.do("GET", h.pagePayURL(b), nil); strings.Contains(body, "<a ") || !strings.Contains(body, "返回商户网站") {
		t.Errorf("no URLs at all:\n%s", body)
	}
}
