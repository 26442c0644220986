package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/smartwalle/alipay/v3"
)

// TestTradeExistsOnceTheBuyerActs: as at Alipay, opening the cashier creates no trade.
// Query and close answer ACQ.TRADE_NOT_EXIST, and a close that did so does not stop the
// cashier, which stays payable until its time_expire.
func TestTradeExistsOnceTheBuyerActs(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	c := h.client
	deadline := func(d time.Duration) string { return h.clock.Now().Add(d).In(shanghai).Format(alipayTime) }
	notExist := func(no string) {
		t.Helper()
		q, err := c.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: no})
		if err != nil || q.SubCode != "ACQ.TRADE_NOT_EXIST" {
			t.Fatalf("query %s: %+v %v", no, q.Error, err)
		}
		cl, err := c.TradeClose(ctx, alipay.TradeClose{OutTradeNo: no})
		if err != nil || cl.SubCode != "ACQ.TRADE_NOT_EXIST" {
			t.Fatalf("close %s: %+v %v", no, cl.Error, err)
		}
	}

	t.Run("late payment after a close that found nothing", func(t *testing.T) {
		p := trade("P1", "12.34")
		p.TimeExpire = deadline(10 * time.Minute)
		h.open(p)
		notExist("P1")
		if code, m := h.tradeJSON("P1"); code != 200 || m["status"] != "NOT_CREATED" || m["total_amount"] != "12.34" || m["trade_no"] != "" {
			t.Fatalf("automation view: %d %v", code, m)
		}
		h.clock.Advance(9 * time.Minute)
		code, hdr, _ := h.do("POST", h.srv.URL+"/sandbox/cashier/P1/pay", url.Values{})
		if code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "http://shop.test/show_msg?") {
			t.Fatalf("late pay: %d %s", code, hdr.Get("Location"))
		}
		q, err := c.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "P1"})
		if err != nil || q.TradeStatus != alipay.TradeStatusSuccess {
			t.Fatalf("query after the late payment: %+v %v", q, err)
		}
		if gmt := q.SendPayDate; gmt != bjFormat(h.clock.Now().UnixMilli()) {
			t.Errorf("send_pay_date %q", gmt)
		}
	})

	t.Run("past time_expire the cashier can't be paid", func(t *testing.T) {
		p := trade("P2", "1.00")
		p.TimeExpire = deadline(10 * time.Minute)
		h.open(p)
		notExist("P2")
		h.clock.Advance(10 * time.Minute)
		_, hdr, body := h.do("POST", h.srv.URL+"/sandbox/cashier/P2/pay", url.Values{})
		if hdr.Get("X-Sandbox-Error") != "ACQ.TRADE_HAS_CLOSE" || !strings.Contains(body, `href="http://shop.test/show_msg"`) {
			t.Fatalf("pay past the deadline: %q\n%s", hdr.Get("X-Sandbox-Error"), body)
		}
		if code, _ := h.apiPay("P2", ""); code != http.StatusConflict {
			t.Fatalf("api pay past the deadline: %d", code)
		}
		if code, _, _ := h.do("POST", h.srv.URL+"/sandbox/api/trades/P2/scan", url.Values{}); code != http.StatusConflict {
			t.Fatalf("scan past the deadline: %d", code)
		}
		notExist("P2")
	})

	t.Run("scan creates the trade; a close then stops the cashier", func(t *testing.T) {
		h.open(trade("P3", "2.00"))
		code, _, body := h.do("POST", h.srv.URL+"/sandbox/api/trades/P3/scan", url.Values{})
		var sj map[string]string
		if code != 200 || json.Unmarshal([]byte(body), &sj) != nil || sj["status"] != "WAIT_BUYER_PAY" || len(sj["trade_no"]) != 28 {
			t.Fatalf("scan: %d %s", code, body)
		}
		if _, _, body2 := h.do("POST", h.srv.URL+"/sandbox/api/trades/P3/scan", url.Values{}); !strings.Contains(body2, sj["trade_no"]) {
			t.Fatalf("second scan made another trade: %s", body2)
		}
		q, err := c.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "P3"})
		if err != nil || q.TradeStatus != alipay.TradeStatusWaitBuyerPay || q.TradeNo != sj["trade_no"] {
			t.Fatalf("query after scan: %+v %v", q, err)
		}
		if cl, err := c.TradeClose(ctx, alipay.TradeClose{OutTradeNo: "P3"}); err != nil || cl.IsFailure() {
			t.Fatalf("close after scan: %+v %v", cl, err)
		}
		_, hdr, body := h.do("POST", h.srv.URL+"/sandbox/cashier/P3/pay", url.Values{})
		if hdr.Get("X-Sandbox-Error") != "ACQ.TRADE_HAS_CLOSE" || !strings.Contains(body, "返回商户") {
			t.Fatalf("pay of a closed trade: %q", hdr.Get("X-Sandbox-Error"))
		}
	})

	t.Run("pay again refreshes the pending cashier", func(t *testing.T) {
		p := trade("P4", "3.00")
		p.TimeExpire = deadline(5 * time.Minute)
		h.open(p)
		p.TimeExpire = deadline(20 * time.Minute)
		p.ReturnURL = "http://shop.test/again"
		h.open(p)
		h.clock.Advance(10 * time.Minute)
		code, hdr, _ := h.do("POST", h.srv.URL+"/sandbox/cashier/P4/pay", url.Values{})
		if code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "http://shop.test/again?") {
			t.Fatalf("pay after pay again: %d %s", code, hdr.Get("Location"))
		}
		if _, hdr, _ := h.do("GET", h.pagePayURL(p), nil); hdr.Get("X-Sandbox-Error") != "ACQ.TRADE_HAS_SUCCESS" {
			t.Fatalf("pay again of a paid trade: %q", hdr.Get("X-Sandbox-Error"))
		}
	})

	t.Run("automation pay creates and pays", func(t *testing.T) {
		h.open(trade("P5", "4.00"))
		code, body := h.apiPay("P5", "?notify=off")
		var pr map[string]string
		if code != 200 || json.Unmarshal([]byte(body), &pr) != nil || len(pr["trade_no"]) != 28 || pr["return_url"] == "" {
			t.Fatalf("pay: %d %s", code, body)
		}
		if code, m := h.tradeJSON("P5"); code != 200 || m["status"] != "TRADE_SUCCESS" || m["trade_no"] != pr["trade_no"] {
			t.Fatalf("after pay: %v", m)
		}
		if code, _, _ := h.do("POST", h.srv.URL+"/sandbox/api/trades/NOPE/scan", url.Values{}); code != 404 {
			t.Fatalf("scan of nothing: %d", code)
		}
	})
}

// TestTradeCreatedAtFirstAct: gmt_create is when the buyer acted, not when the cashier opened.
func TestTradeCreatedAtFirstAct(t *testing.T) {
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	p := trade("G1", "1.00")
	p.NotifyURL = tg.srv.URL
	h.open(p)
	opened := h.clock.Now()
	h.clock.Advance(2 * time.Minute)
	h.scan("G1")
	h.clock.Advance(time.Minute)
	h.apiPay("G1", "")
	h.deliver()
	v := tg.requests()[0]
	if v.Get("gmt_create") != bjFormat(opened.Add(2*time.Minute).UnixMilli()) || v.Get("gmt_payment") != bjFormat(h.clock.Now().UnixMilli()) {
		t.Fatalf("gmt_create %q gmt_payment %q", v.Get("gmt_create"), v.Get("gmt_payment"))
	}
}
