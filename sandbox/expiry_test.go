package sandbox

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/smartwalle/alipay/v3"
)

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	t.Run("timeout_express scaled", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.TimeScale = 60 })
		p := trade("E1", "1.00")
		p.TimeoutExpress = "1m"
		h.open(p)
		h.scan("E1")
		h.clock.Advance(999 * time.Millisecond)
		if n, _ := h.emu.ExpireDue(ctx); n != 0 {
			t.Fatal("closed early")
		}
		h.clock.Advance(time.Millisecond)
		if n, err := h.emu.ExpireDue(ctx); n != 1 || err != nil {
			t.Fatalf("expire: %d %v", n, err)
		}
		q, err := h.client.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "E1"})
		if err != nil || q.TradeStatus != alipay.TradeStatusClosed {
			t.Fatalf("query: %+v %v", q, err)
		}
		if code, _ := h.apiPay("E1", ""); code != 409 {
			t.Fatalf("api pay after close: %d", code)
		}
		_, hdr, _ := h.do("POST", h.srv.URL+"/sandbox/cashier/E1/pay", url.Values{})
		if hdr.Get("X-Sandbox-Error") != "ACQ.TRADE_HAS_CLOSE" {
			t.Fatalf("cashier pay after close: %q", hdr.Get("X-Sandbox-Error"))
		}
	})
	t.Run("time_expire absolute, not scaled", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.TimeScale = 3600 })
		p := trade("E2", "1.00")
		p.TimeExpire = h.clock.Now().Add(3 * time.Second).In(shanghai).Format(alipayTime)
		h.open(p)
		h.scan("E2")
		h.clock.Advance(2 * time.Second)
		if n, _ := h.emu.ExpireDue(ctx); n != 0 {
			t.Fatal("time_expire was scaled")
		}
		h.clock.Advance(time.Second)
		if n, _ := h.emu.ExpireDue(ctx); n != 1 {
			t.Fatal("time_expire in the past not closed")
		}
		if code, _ := h.apiPay("E2", ""); code != 409 {
			t.Fatalf("pay after close: %d", code)
		}
	})
	t.Run("time_expire already past: no cashier, no trade", func(t *testing.T) {
		h := newHarness(t, nil)
		p := trade("E4", "1.00")
		p.TimeExpire = h.clock.Now().Add(-time.Second).In(shanghai).Format(alipayTime)
		_, hdr, body := h.do("GET", h.pagePayURL(p), nil)
		if hdr.Get("X-Sandbox-Error") != "ACQ.TRADE_HAS_CLOSE" || strings.Contains(body, "确认付款") {
			t.Fatalf("past time_expire: %q, cashier shown: %v", hdr.Get("X-Sandbox-Error"), strings.Contains(body, "确认付款"))
		}
		q, err := h.client.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "E4"})
		if err != nil || q.SubCode != "ACQ.TRADE_NOT_EXIST" {
			t.Fatalf("query: %+v %v", q, err)
		}
	})
	t.Run("cashier cancel tells a paid or closed trade apart", func(t *testing.T) {
		h := newHarness(t, nil)
		h.open(trade("E5", "1.00"))
		if _, hdr, body := h.do("POST", h.srv.URL+"/sandbox/cashier/E5/cancel", url.Values{}); hdr.Get("X-Sandbox-Error") != "" ||
			!strings.Contains(body, "尚未付款") {
			t.Fatalf("cancel of an open cashier: %q", hdr.Get("X-Sandbox-Error"))
		}
		h.apiPay("E5", "?notify=off")
		if _, hdr, body := h.do("POST", h.srv.URL+"/sandbox/cashier/E5/cancel", url.Values{}); hdr.Get("X-Sandbox-Error") != "ACQ.TRADE_HAS_SUCCESS" ||
			strings.Contains(body, "尚未付款") || !strings.Contains(body, `href="http://shop.test/show_msg"`) {
			t.Fatalf("cancel of a paid trade: %q", hdr.Get("X-Sandbox-Error"))
		}
		for _, no := range []string{"E6", "E7"} {
			p := trade(no, "1.00")
			p.TimeoutExpress = "1m"
			h.open(p)
			if no == "E7" {
				h.scan(no) // E6 stays a cashier, E7 becomes a trade
			}
		}
		h.clock.Advance(time.Minute)
		for _, no := range []string{"E6", "E7"} {
			if _, hdr, body := h.do("POST", h.srv.URL+"/sandbox/cashier/"+no+"/cancel", url.Values{}); hdr.Get("X-Sandbox-Error") != "ACQ.TRADE_HAS_CLOSE" ||
				!strings.Contains(body, "返回商户") {
				t.Fatalf("cancel of expired %s: %q", no, hdr.Get("X-Sandbox-Error"))
			}
		}
	})
	t.Run("default timeout and lazy close", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.TimeScale = 3600 })
		h.open(trade("E3", "1.00")) // 15 days / 3600 = 6 minutes
		h.clock.Advance(6*time.Minute - time.Second)
		if code, _ := h.apiPay("E3", "?notify=off"); code != 200 {
			t.Fatal("could not pay before the default timeout")
		}
		h.open(trade("E4", "1.00"))
		h.clock.Advance(6 * time.Minute)
		if code, _ := h.apiPay("E4", ""); code != 409 {
			t.Fatalf("pay after default timeout: %d", code) // closed on access, before ExpireDue runs
		}
	})
	t.Run("cancel keeps waiting", func(t *testing.T) {
		h := newHarness(t, nil)
		h.open(trade("E5", "1.00"))
		code, _, body := h.do("POST", h.srv.URL+"/sandbox/cashier/E5/cancel", url.Values{})
		// 返回商户 is the bare return_url: no query, so the shop sees "came back without paying".
		if code != 200 || !strings.Contains(body, "您已取消付款") || !strings.Contains(body, `href="http://shop.test/show_msg"`) {
			t.Fatalf("cancel page: %d\n%s", code, body)
		}
		if _, err := getTrade(ctx, h.emu.db, "E5"); err != errNotFound {
			t.Fatalf("cancel created the trade: %v", err)
		}
		h.scan("E5")
		h.do("POST", h.srv.URL+"/sandbox/cashier/E5/cancel", url.Values{})
		tr, _ := getTrade(ctx, h.emu.db, "E5")
		if tr.Status != statusWait {
			t.Fatalf("status %s", tr.Status)
		}
		// Without a return_url the way back is the merchant's site root (from notify_url).
		p := trade("E8", "1.00")
		p.ReturnURL = ""
		h.open(p)
		if _, _, body := h.do("POST", h.srv.URL+"/sandbox/cashier/E8/cancel", url.Values{}); !strings.Contains(body, `href="http://shop.test/"`) {
			t.Fatalf("cancel without return_url:\n%s", body)
		}
	})
}

// TestConsole renders a trade with its deliveries and the action buttons.
func TestConsole(t *testing.T) {
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	paidTrade(h, tg, "C1", "")
	h.deliver()
	h.open(trade("C2", "3.00"))
	h.scan("C2")
	h.open(trade("C3", "4.00"))
	code, hdr, body := h.do("GET", h.srv.URL+"/sandbox/", nil)
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("console: %d %v", code, hdr)
	}
	for _, want := range []string{"C1", "C2", "C3", "TRADE_SUCCESS", "WAIT_BUYER_PAY", "未创建（收银台已打开）", "¥12.34", ">success<", "200",
		`action="/sandbox/api/trades/C3/scan"`, `action="/sandbox/api/trades/C3/pay"`, `action="/sandbox/api/trades/C1/refund"`,
		`action="/sandbox/api/trades/C1/refund-notify"`,
		`action="/sandbox/api/trades/C1/notify"`, `action="/sandbox/api/trades/C1/faults"`, `value="wrong_amount"`, "2025-03-01 10:00:00"} {
		if !strings.Contains(body, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "style=") {
		t.Error("inline script or style")
	}
	// Console buttons come back to the console.
	code, hdr, _ = h.do("POST", h.srv.URL+"/sandbox/api/trades/C1/faults", url.Values{"next": {"drop"}, "back": {"console"}})
	if code != 303 || hdr.Get("Location") != "/sandbox/" {
		t.Fatalf("fault from console: %d %s", code, hdr.Get("Location"))
	}
	code, hdr, css := h.do("GET", h.srv.URL+"/sandbox/static/sandbox.css", nil)
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/css") || !strings.Contains(css, ".amount") {
		t.Fatalf("css: %d %s", code, hdr.Get("Content-Type"))
	}
}
