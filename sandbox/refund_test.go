package sandbox

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/smartwalle/alipay/v3"
)

// TestRefundRules: alipay.trade.refund answers as Alipay's does.
func TestRefundRules(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "RR1", "10.00")
	refund := func(no, amount, reqNo string) *alipay.TradeRefundRsp {
		t.Helper()
		rf, err := h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: no, RefundAmount: amount, OutRequestNo: reqNo})
		if err != nil {
			t.Fatal(err)
		}
		return rf
	}
	if rf := refund("RR1", "3.00", ""); rf.SubCode != "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL" {
		t.Fatalf("partial without out_request_no: %+v", rf.Error)
	}
	if rf := refund("RR1", "10.01", "R1"); rf.SubCode != "ACQ.REASON_TRADE_REFUND_FEE_ERR" {
		t.Fatalf("more than was paid: %+v", rf.Error)
	}
	if rf := refund("RR1", "3.00", "R1"); rf.IsFailure() || rf.FundChange != "Y" || rf.RefundFee != "3.00" {
		t.Fatalf("partial: %+v", rf)
	}
	if rf := refund("RR1", "4.00", "R1"); rf.SubCode != "ACQ.DISCORDANT_REPEAT_REQUEST" {
		t.Fatalf("same out_request_no, other amount: %+v", rf.Error)
	}
	if rf := refund("RR1", "3.00", "R1"); rf.IsFailure() || rf.FundChange != "N" || rf.RefundFee != "3.00" {
		t.Fatalf("repeat: %+v", rf)
	}
	if rf := refund("RR1", "7.01", "R2"); rf.SubCode != "ACQ.REASON_TRADE_REFUND_FEE_ERR" {
		t.Fatalf("more than is left: %+v", rf.Error)
	}
	// What is left, without out_request_no, is the full refund Alipay allows.
	if rf := refund("RR1", "7.00", ""); rf.IsFailure() || rf.RefundFee != "10.00" || rf.FundChange != "Y" {
		t.Fatalf("full rest without out_request_no: %+v", rf)
	}
	if rf := refund("RR1", "7.00", ""); rf.IsFailure() || rf.FundChange != "N" {
		t.Fatalf("repeat of the full refund: %+v", rf)
	}
	if rf := refund("RR1", "0.01", "R3"); rf.SubCode != "ACQ.TRADE_STATUS_ERROR" {
		t.Fatalf("refund of a fully refunded trade: %+v", rf.Error)
	}
	rq, err := h.client.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "RR1", OutRequestNo: "R1"})
	if err != nil || rq.RefundStatus != "REFUND_SUCCESS" || rq.RefundAmount != "3.00" || rq.TotalAmount != "10.00" || rq.GMTRefundPay == "" {
		t.Fatalf("refund query: %+v %v", rq, err)
	}
	rq, err = h.client.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "RR1", OutRequestNo: "R9"})
	if err != nil || rq.IsFailure() || rq.RefundAmount != "" || rq.RefundStatus != "" {
		t.Fatalf("refund never received: %+v %v", rq, err)
	}

	// Unpaid trades: waiting, closed unpaid, or no trade at all.
	h.open(trade("RR2", "1.00"))
	if rf := refund("RR2", "1.00", "R1"); rf.SubCode != "ACQ.TRADE_NOT_EXIST" {
		t.Fatalf("refund of an open cashier: %+v", rf.Error)
	}
	h.scan("RR2")
	if rf := refund("RR2", "1.00", "R1"); rf.SubCode != "ACQ.TRADE_STATUS_ERROR" {
		t.Fatalf("refund of a waiting trade: %+v", rf.Error)
	}
	if cl, _ := h.client.TradeClose(ctx, alipay.TradeClose{OutTradeNo: "RR2"}); cl.IsFailure() {
		t.Fatal(cl)
	}
	if rf := refund("RR2", "1.00", "R1"); rf.SubCode != "ACQ.TRADE_STATUS_ERROR" {
		t.Fatalf("refund of a closed unpaid trade: %+v", rf.Error)
	}
}

// TestRefundNotify: off by default; switched on, each refund notifies with refund_fee,
// gmt_refund, out_biz_no (and gmt_close when full), without the payment's amounts.
func TestRefundNotify(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "RN1", "10.00")
	h.deliver()
	if rf, _ := h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "RN1", RefundAmount: "1.00", OutRequestNo: "R1"}); rf.IsFailure() {
		t.Fatal(rf)
	}
	if n := h.deliver(); n != 0 || len(tg.requests()) != 1 {
		t.Fatalf("refund notified while the switch is off: %d", n)
	}
	for _, bad := range []url.Values{{"on": {"yes"}}, {}} {
		if code, _, _ := h.do("POST", h.srv.URL+"/sandbox/api/trades/RN1/refund-notify", bad); code != 400 {
			t.Fatalf("refund-notify %v: %d", bad, code)
		}
	}
	if code, _, _ := h.do("POST", h.srv.URL+"/sandbox/api/trades/NOPE/refund-notify", url.Values{"on": {"1"}}); code != 404 {
		t.Fatalf("unknown trade: %d", code)
	}
	code, _, body := h.do("POST", h.srv.URL+"/sandbox/api/trades/RN1/refund-notify", url.Values{"on": {"1"}})
	if code != 200 || !strings.Contains(body, `"refund_notify":true`) {
		t.Fatalf("switch on: %d %s", code, body)
	}
	if _, m := h.tradeJSON("RN1"); m["refund_notify"] != true {
		t.Fatalf("trade json: %v", m)
	}
	if rf, _ := h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "RN1", RefundAmount: "2.00", OutRequestNo: "R2"}); rf.IsFailure() {
		t.Fatal(rf)
	}
	if rf, _ := h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "RN1", RefundAmount: "7.00", OutRequestNo: "R3"}); rf.IsFailure() {
		t.Fatal(rf)
	}
	h.deliver()
	reqs := tg.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d notifies", len(reqs))
	}
	for i, want := range []struct{ status, fee, biz string }{{"TRADE_SUCCESS", "3.00", "R2"}, {"TRADE_CLOSED", "10.00", "R3"}} {
		v := reqs[1+i]
		if v.Get("out_biz_no") != want.biz { // deliveries may run concurrently: find the right one
			v = reqs[2-i]
		}
		nt, err := h.client.DecodeNotification(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if string(nt.TradeStatus) != want.status || nt.RefundFee != want.fee || nt.OutBizNo != want.biz || nt.GmtRefund == "" || nt.TotalAmount != "10.00" {
			t.Errorf("refund notify %d: %+v", i, nt)
		}
		if (want.status == "TRADE_CLOSED") != (nt.GmtClose != "") {
			t.Errorf("gmt_close %q on %s", nt.GmtClose, want.status)
		}
		for _, k := range []string{"receipt_amount", "invoice_amount", "buyer_pay_amount", "point_amount", "fund_bill_list"} {
			if v.Has(k) {
				t.Errorf("refund notify carries %s", k)
			}
		}
	}
	h.do("POST", h.srv.URL+"/sandbox/api/trades/RN1/refund-notify", url.Values{"on": {"0"}})
	if _, m := h.tradeJSON("RN1"); m["refund_notify"] != false {
		t.Fatalf("switch off: %v", m)
	}
}

// TestConsoleRefund: a refund as the merchant in Alipay's own console, by the API's rules.
func TestConsoleRefund(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "CR1", "10.00")
	h.deliver()
	h.do("POST", h.srv.URL+"/sandbox/api/trades/CR1/refund-notify", url.Values{"on": {"1"}})
	code, _, body := h.do("POST", h.srv.URL+"/sandbox/api/trades/CR1/refund", url.Values{"amount": {"2.50"}, "reason": {"买家要求"}})
	var rj map[string]string
	if code != 200 || json.Unmarshal([]byte(body), &rj) != nil || rj["refund_fee"] != "2.50" || !strings.HasPrefix(rj["out_request_no"], "alipay_console_") {
		t.Fatalf("console refund: %d %s", code, body)
	}
	// The shop can learn of it only by Alipay's means: the notify (switch on) and the queries.
	h.deliver()
	reqs := tg.requests()
	if nt, err := h.client.DecodeNotification(ctx, reqs[len(reqs)-1]); err != nil || nt.OutBizNo != rj["out_request_no"] || nt.RefundFee != "2.50" {
		t.Fatalf("refund notify: %+v %v", nt, err)
	}
	rq, err := h.client.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "CR1", OutRequestNo: rj["out_request_no"]})
	if err != nil || rq.RefundStatus != "REFUND_SUCCESS" {
		t.Fatalf("refund query: %+v %v", rq, err)
	}
	// The same rules as the API, with readable refusals.
	code, _, body = h.do("POST", h.srv.URL+"/sandbox/api/trades/CR1/refund", url.Values{"amount": {"7.51"}})
	if code != 409 || !strings.Contains(body, "ACQ.REASON_TRADE_REFUND_FEE_ERR") || !strings.Contains(body, "7.50") {
		t.Fatalf("over-refund: %d %s", code, body)
	}
	for _, bad := range []string{"", "1", "1.5", "-1.00", "abc"} {
		if code, _, _ := h.do("POST", h.srv.URL+"/sandbox/api/trades/CR1/refund", url.Values{"amount": {bad}}); code != 400 {
			t.Errorf("amount %q: %d", bad, code)
		}
	}
	if code, _, _ := h.do("POST", h.srv.URL+"/sandbox/api/trades/NOPE/refund", url.Values{"amount": {"1.00"}}); code != 404 {
		t.Errorf("unknown trade: %d", code)
	}
	// From the console form: back to the console, or a page that says why and leads back.
	code, hdr, _ := h.do("POST", h.srv.URL+"/sandbox/api/trades/CR1/refund", url.Values{"amount": {"1.00"}, "back": {"console"}})
	if code != 303 || hdr.Get("Location") != "/sandbox/" {
		t.Fatalf("console form: %d %s", code, hdr.Get("Location"))
	}
	code, hdr, body = h.do("POST", h.srv.URL+"/sandbox/api/trades/CR1/refund", url.Values{"amount": {"9.00"}, "back": {"console"}})
	if code != 409 || !strings.Contains(body, "退款金额超限") || !strings.Contains(body, `href="/sandbox/"`) || strings.Contains(body, "<script") {
		t.Fatalf("console form over-refund: %d\n%s", code, body)
	}
	// The console lists every refund, who made it, and its out_request_no.
	h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "CR1", RefundAmount: "0.50", OutRequestNo: "SHOP_R1"})
	_, _, page := h.do("GET", h.srv.URL+"/sandbox/", nil)
	for _, want := range []string{rj["out_request_no"], "SHOP_R1", "支付宝后台（控制台）", "商户接口（API）", "¥2.50", "¥0.50", "买家要求", "关闭退款通知"} {
		if !strings.Contains(page, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if _, m := h.tradeJSON("CR1"); m["refunded_amount"] != "4.00" || len(m["refunds"].([]any)) != 3 {
		t.Errorf("trade json refunds: %v", m)
	}
}
