package sandbox

import (
	"context"
	"strings"
	"testing"

	"github.com/smartwalle/alipay/v3"
)

// TestShopClientAgainstEmulator drives every API with the shop's real client library.
func TestShopClientAgainstEmulator(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	c := h.client

	page := h.open(trade("T1", "12.34"))
	for _, want := range []string{"确认付款", "取消", "¥12.34", "测试商品", "本地演示商户", "sandbox_buyer@alipay.test"} {
		if !strings.Contains(page, want) {
			t.Errorf("cashier page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "style=") || strings.Contains(page, "<style") {
		t.Error("cashier page has inline script or style")
	}

	// The cashier is open but the buyer has not acted: no trade at Alipay yet.
	q, err := c.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "T1"})
	if err != nil || !q.IsFailure() || q.SubCode != "ACQ.TRADE_NOT_EXIST" {
		t.Fatalf("query before the buyer acts: %+v %v", q, err)
	}
	h.scan("T1")
	q, err = c.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "T1"})
	if err != nil || q.IsFailure() || q.TradeStatus != alipay.TradeStatusWaitBuyerPay || q.TotalAmount != "12.34" {
		t.Fatalf("query unpaid: %+v %v", q, err)
	}
	if len(q.TradeNo) != 28 || !strings.HasPrefix(q.TradeNo, "20250301") {
		t.Errorf("trade_no %q is not 28 digits starting with the Beijing date", q.TradeNo)
	}

	if code, body := h.apiPay("T1", ""); code != 200 || !strings.Contains(body, q.TradeNo) {
		t.Fatalf("pay: %d %s", code, body)
	}
	q, err = c.TradeQuery(ctx, alipay.TradeQuery{TradeNo: q.TradeNo})
	if err != nil || q.IsFailure() || q.TradeStatus != alipay.TradeStatusSuccess || q.BuyerPayAmount != "12.34" ||
		q.SendPayDate == "" || q.BuyerUserId == "" || q.BuyerLogonId == "" || q.ReceiptAmount != "12.34" {
		t.Fatalf("query paid: %+v %v", q, err)
	}

	cl, err := c.TradeClose(ctx, alipay.TradeClose{OutTradeNo: "T1"})
	if err != nil || !cl.IsFailure() || cl.SubCode != "ACQ.TRADE_STATUS_ERROR" {
		t.Fatalf("close paid: %+v %v", cl, err)
	}

	rf, err := c.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "T1", RefundAmount: "2.00", OutRequestNo: "R1"})
	if err != nil || rf.IsFailure() || rf.RefundFee != "2.00" || rf.FundChange != "Y" {
		t.Fatalf("partial refund: %+v %v", rf, err)
	}
	rf, err = c.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "T1", RefundAmount: "2.00", OutRequestNo: "R1"})
	if err != nil || rf.IsFailure() || rf.RefundFee != "2.00" || rf.FundChange != "N" {
		t.Fatalf("repeated refund not idempotent: %+v %v", rf, err)
	}
	rf, err = c.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "T1", RefundAmount: "10.35", OutRequestNo: "R2"})
	if err != nil || !rf.IsFailure() || rf.SubCode != "ACQ.REASON_TRADE_REFUND_FEE_ERR" {
		t.Fatalf("over-refund: %+v %v", rf, err)
	}
	rf, err = c.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "T1", RefundAmount: "1.5", OutRequestNo: "R2"})
	if err != nil || !rf.IsFailure() {
		t.Fatalf("malformed refund amount accepted: %+v %v", rf, err)
	}
	rq, err := c.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "T1", OutRequestNo: "R1"})
	if err != nil || rq.IsFailure() || rq.RefundAmount != "2.00" || rq.TotalAmount != "12.34" || rq.RefundStatus != "REFUND_SUCCESS" {
		t.Fatalf("refund query: %+v %v", rq, err)
	}
	rq, err = c.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "T1", OutRequestNo: "nope"})
	if err != nil || rq.IsFailure() || rq.RefundAmount != "" {
		t.Fatalf("unknown refund query: %+v %v", rq, err)
	}

	rf, err = c.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "T1", RefundAmount: "10.34", OutRequestNo: "R3"})
	if err != nil || rf.IsFailure() || rf.RefundFee != "12.34" {
		t.Fatalf("full refund: %+v %v", rf, err)
	}
	q, err = c.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "T1"})
	if err != nil || q.TradeStatus != alipay.TradeStatusClosed {
		t.Fatalf("after full refund: %+v %v", q, err)
	}

	q, err = c.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "NOPE"})
	if err != nil || !q.IsFailure() || q.SubCode != "ACQ.TRADE_NOT_EXIST" {
		t.Fatalf("unknown trade: %+v %v", q, err)
	}

	h.open(trade("T2", "1.00"))
	cl, err = c.TradeClose(ctx, alipay.TradeClose{OutTradeNo: "T2"})
	if err != nil || !cl.IsFailure() || cl.SubCode != "ACQ.TRADE_NOT_EXIST" {
		t.Fatalf("close before the buyer acts: %+v %v", cl, err)
	}
	h.scan("T2")
	cl, err = c.TradeClose(ctx, alipay.TradeClose{OutTradeNo: "T2"})
	if err != nil || cl.IsFailure() || cl.OutTradeNo != "T2" {
		t.Fatalf("close unpaid: %+v %v", cl, err)
	}

	// A client signing with the wrong key: 40002 isv.invalid-signature, surfaced as failure.
	bad := h.newClient(testAppID, string(xk.pkcs1))
	q, err = bad.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "T2"})
	if err == nil && !q.IsFailure() {
		t.Fatalf("wrong private key accepted: %+v", q)
	}
	if err == nil && q.SubCode != "isv.invalid-signature" {
		t.Errorf("wrong key: sub_code %q", q.SubCode)
	}
	// Another app id: isv.invalid-app-id, surfaced as an error.
	other := h.newClient("2021999999999999", string(appKeys.pkcs1))
	q, err = other.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "T2"})
	if err == nil && !q.IsFailure() {
		t.Fatalf("other app id accepted: %+v", q)
	}
	if err != nil && !strings.Contains(err.Error(), "40002") {
		t.Errorf("other app id: %v", err)
	}
}

// TestUnknownMethod answers isv.invalid-method in an error_response.
func TestUnknownMethod(t *testing.T) {
	h := newHarness(t, nil)
	var p alipay.TradeQuery
	err := h.client.Request(context.Background(), unknownParam{p}, &struct{}{})
	if err == nil || !strings.Contains(err.Error(), "40002") {
		t.Fatalf("unknown method: %v", err)
	}
}

type unknownParam struct{ alipay.TradeQuery }

func (unknownParam) APIName() string { return "alipay.trade.nonexistent" }
