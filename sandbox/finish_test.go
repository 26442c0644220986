package sandbox

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/smartwalle/alipay/v3"
)

// TestTradeFinished: past the refund window a paid trade becomes TRADE_FINISHED, with a
// notify carrying the payment's fields; refunds then answer ACQ.TRADE_HAS_FINISHED.
func TestTradeFinished(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, func(c *Config) { c.TimeScale = 3600 }) // 90 days → 36 minutes
	if h.emu.cfg.RefundWindow != 90*24*time.Hour {
		t.Fatalf("default refund window %v", h.emu.cfg.RefundWindow)
	}
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "TF1", "12.34")
	paidWith(h, tg, "TF2", "5.00") // fully refunded before the window ends: never finishes
	paidWith(h, tg, "TF3", "5.00") // partly refunded: still finishes
	h.deliver()
	for no, amount := range map[string]string{"TF2": "5.00", "TF3": "1.00"} {
		if rf, err := h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: no, RefundAmount: amount, OutRequestNo: "R1"}); err != nil || rf.IsFailure() {
			t.Fatal(rf, err)
		}
	}
	h.clock.Advance(36*time.Minute - time.Millisecond)
	if n, err := h.emu.FinishDue(ctx); n != 0 || err != nil {
		t.Fatalf("finished early: %d %v", n, err)
	}
	h.clock.Advance(time.Millisecond)
	if n, err := h.emu.FinishDue(ctx); n != 2 || err != nil {
		t.Fatalf("finish: %d %v", n, err)
	}
	if n, _ := h.emu.FinishDue(ctx); n != 0 {
		t.Fatal("finished twice")
	}
	h.deliver()
	var fin []string
	for _, v := range tg.requests() {
		if v.Get("trade_status") != "TRADE_FINISHED" {
			continue
		}
		fin = append(fin, v.Get("out_trade_no"))
		nt, err := h.client.DecodeNotification(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if nt.ReceiptAmount == "" || nt.BuyerPayAmount == "" || nt.FundBillList == "" || nt.GmtPayment == "" {
			t.Errorf("finished notify lacks the payment's fields: %+v", nt)
		}
		if nt.OutTradeNo == "TF3" && nt.RefundFee != "1.00" {
			t.Errorf("TF3 refund_fee %q", nt.RefundFee)
		}
	}
	if len(fin) != 2 || strings.Contains(strings.Join(fin, ","), "TF2") {
		t.Fatalf("finished notifies for %v", fin)
	}
	q, err := h.client.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "TF1"})
	if err != nil || q.TradeStatus != alipay.TradeStatusFinished || q.ReceiptAmount != "12.34" {
		t.Fatalf("query: %+v %v", q, err)
	}
	if q, _ := h.client.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "TF2"}); q.TradeStatus != alipay.TradeStatusClosed {
		t.Fatalf("refunded trade: %s", q.TradeStatus)
	}
	rf, err := h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "TF1", RefundAmount: "1.00", OutRequestNo: "R1"})
	if err != nil || rf.SubCode != "ACQ.TRADE_HAS_FINISHED" {
		t.Fatalf("refund after the window: %+v %v", rf, err)
	}
	if code, _, _ := h.do("POST", h.srv.URL+"/sandbox/api/trades/TF1/refund", map[string][]string{"amount": {"1.00"}}); code != 409 {
		t.Fatalf("console refund after the window: %d", code)
	}
	if _, hdr, _ := h.do("GET", h.pagePayURL(trade("TF1", "12.34")), nil); hdr.Get("X-Sandbox-Error") != "ACQ.TRADE_HAS_SUCCESS" {
		t.Fatalf("pay again: %q", hdr.Get("X-Sandbox-Error"))
	}
	_, _, page := h.do("GET", h.srv.URL+"/sandbox/", nil)
	if !strings.Contains(page, "交易结束") || !strings.Contains(page, "TRADE_FINISHED") {
		t.Error("console does not show the finished trade")
	}
}

// TestFinishOnAccess: an answer never depends on whether the loop has run yet.
func TestFinishOnAccess(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RefundWindow = time.Hour })
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "FA1", "1.00")
	h.clock.Advance(time.Hour)
	q, err := h.client.TradeQuery(context.Background(), alipay.TradeQuery{OutTradeNo: "FA1"})
	if err != nil || q.TradeStatus != alipay.TradeStatusFinished {
		t.Fatalf("query past the window, loop not run: %+v %v", q, err)
	}
}

// TestRunExpiresAndFinishes: standalone, the background loop alone expires unpaid trades
// and finishes paid ones, and delivers the TRADE_FINISHED notify.
func TestRunExpiresAndFinishes(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Now, c.TimeScale, c.RefundWindow = nil, 200, 2*time.Minute }) // a minute in 300 ms
	tg := newTarget(t, always(200, "success"))
	p := trade("RUN_E", "1.00")
	p.TimeoutExpress = "1m"
	h.open(p)
	h.scan("RUN_E")
	paidWith(h, tg, "RUN_F", "1.00")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.emu.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e, _ := getTrade(ctx, h.emu.db, "RUN_E")
		f, _ := getTrade(ctx, h.emu.db, "RUN_F")
		finished := false
		for _, v := range tg.requests() {
			finished = finished || v.Get("trade_status") == "TRADE_FINISHED"
		}
		if e.Status == statusClosed && f.Status == statusFinished && finished {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("Run did not expire, finish and notify")
}
