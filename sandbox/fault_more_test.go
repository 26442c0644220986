package sandbox

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/smartwalle/alipay/v3"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// paidWith opens a trade of amount with its notify aimed at tg, injects faults, pays it
// through the API and returns the pay answer's return_url.
func paidWith(h *harness, tg *target, no, amount string, faults ...string) string {
	h.t.Helper()
	p := trade(no, amount)
	p.NotifyURL = tg.srv.URL + "/check_order"
	h.open(p)
	for _, f := range faults {
		h.inject(no, f)
	}
	code, body := h.apiPay(no, "")
	var pr map[string]string
	if code != 200 || json.Unmarshal([]byte(body), &pr) != nil {
		h.t.Fatalf("pay: %d %s", code, body)
	}
	return pr["return_url"]
}

func TestFaultEmptyParam(t *testing.T) {
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "EP1", "12.34", faultEmptyParam)
	h.deliver()
	v := tg.requests()[0]
	if !v.Has("body") || v.Get("body") != "" || !(strings.Contains(tg.raws[0], "body=&") || strings.HasSuffix(tg.raws[0], "body=")) {
		t.Fatalf("no empty body= field: %s", tg.raws[0])
	}
	if err := verifyAlipayRule(v); err != nil {
		t.Fatalf("not signed by Alipay's rule (empties excluded): %v", err)
	}
	// smartwalle keeps empty values in its string to verify, so it rejects this notify:
	// the shop must apply Alipay's rule itself.
	if err := h.client.VerifySign(context.Background(), v); err == nil {
		t.Error("smartwalle verified a notify with an empty field; the fault changed nothing")
	}
	if h.notification("EP1").Status != deliveryDelivered {
		t.Error("a valid notify answered success not counted as delivered")
	}
	h.emu.resend(context.Background(), "EP1")
	h.deliver()
	if v := tg.requests()[1]; v.Has("body") {
		t.Error("empty_param applied twice")
	}
}

func TestFaultGBK(t *testing.T) {
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "GB1", "12.34", faultGBK)
	h.deliver()
	raw := tg.requests()[0] // GBK bytes, as a shop that ignores the charset would see them
	if raw.Get("charset") != "gbk" || !strings.HasSuffix(tg.ctypes[0], "charset=gbk") {
		t.Fatalf("charset field %q, content type %q", raw.Get("charset"), tg.ctypes[0])
	}
	gbkSubject, _ := simplifiedchinese.GBK.NewEncoder().String("测试商品")
	if raw.Get("subject") != gbkSubject {
		t.Fatalf("subject bytes %x, want GBK %x", raw.Get("subject"), gbkSubject)
	}
	if err := verifyAlipayRule(raw); err != nil {
		t.Fatalf("signature is not over the GBK bytes: %v", err)
	}
	dec := url.Values{}
	for k, vs := range raw {
		s, _ := simplifiedchinese.GBK.NewDecoder().String(vs[0])
		dec.Set(k, s)
	}
	if dec.Get("subject") != "测试商品" {
		t.Fatalf("decoded subject %q", dec.Get("subject"))
	}
	if verifyAlipayRule(dec) == nil {
		t.Error("signature verifies over UTF-8 too: not a GBK signature")
	}
}

func TestFaultDiscount(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "DC1", "12.34", faultDiscount)
	paidWith(h, tg, "DC2", "3.00", faultDiscount) // smaller than the coupon: all but 0.01
	h.deliver()
	for _, c := range []struct{ no, receipt, coupon string }{{"DC1", "7.34", "5.00"}, {"DC2", "0.01", "2.99"}} {
		var v url.Values
		for _, r := range tg.requests() {
			if r.Get("out_trade_no") == c.no {
				v = r
			}
		}
		nt, err := h.client.DecodeNotification(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if nt.TotalAmount == c.receipt || nt.ReceiptAmount != c.receipt || nt.BuyerPayAmount != c.receipt {
			t.Errorf("%s notify amounts: total %s receipt %s buyer_pay %s", c.no, nt.TotalAmount, nt.ReceiptAmount, nt.BuyerPayAmount)
		}
		var vouchers []map[string]string
		if err := json.Unmarshal([]byte(nt.VoucherDetailList), &vouchers); err != nil || len(vouchers) != 1 || vouchers[0]["amount"] != c.coupon {
			t.Errorf("%s voucher_detail_list %q", c.no, nt.VoucherDetailList)
		}
		var bills []map[string]string
		if err := json.Unmarshal([]byte(nt.FundBillList), &bills); err != nil || len(bills) != 2 ||
			bills[1]["fundChannel"] != "DISCOUNT" || bills[1]["amount"] != c.coupon || bills[0]["amount"] != c.receipt {
			t.Errorf("%s fund_bill_list %q", c.no, nt.FundBillList)
		}
		q, err := h.client.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: c.no})
		if err != nil || q.ReceiptAmount != c.receipt || q.BuyerPayAmount != c.receipt || len(q.VoucherDetailList) != 1 ||
			len(q.FundBillList) != 2 || q.FundBillList[1].FundChannel != "DISCOUNT" {
			t.Errorf("%s query: %+v %v", c.no, q, err)
		}
	}
	// The discount is taken by the payment, once: a trade paid later pays in full.
	paidWith(h, tg, "DC3", "12.34")
	if q, _ := h.client.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "DC3"}); q.ReceiptAmount != "12.34" || len(q.VoucherDetailList) != 0 {
		t.Errorf("undiscounted trade: %+v", q)
	}
}

func TestFaultOpenID(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "OI1", "12.34", faultOpenID)
	h.deliver()
	v := tg.requests()[0]
	id := v.Get("buyer_open_id")
	if !strings.HasPrefix(id, "074a") || len(id) < 30 || len(id) > 40 || v.Has("buyer_id") {
		t.Fatalf("notify buyer: open id %q, buyer_id %q", id, v.Get("buyer_id"))
	}
	if _, err := h.client.DecodeNotification(ctx, v); err != nil {
		t.Fatal(err)
	}
	q, err := h.client.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "OI1"})
	if err != nil || q.BuyerOpenId != id || q.BuyerUserId != "" {
		t.Fatalf("query buyer: %+v %v", q, err)
	}
	rf, err := h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "OI1", RefundAmount: "1.00", OutRequestNo: "R1"})
	if err != nil || rf.IsFailure() || rf.BuyerUserId != "" {
		t.Fatalf("refund buyer: %+v %v", rf, err)
	}
}

func TestFaultV2Sign(t *testing.T) {
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	ret := paidWith(h, tg, "V21", "12.34", faultV2Sign)
	h.deliver()
	ru, _ := url.Parse(ret)
	for name, v := range map[string]url.Values{"notify": tg.requests()[0], "return": ru.Query()} {
		if err := verifyV2Rule(v); err != nil {
			t.Errorf("%s: not signed by the V2 rule: %v", name, err)
		}
		if verifyAlipayRule(v) == nil {
			t.Errorf("%s: still verifies by the usual rule", name)
		}
	}
	// Another trade's return and the next notify are back to the usual rule.
	ret2 := paidWith(h, tg, "V22", "1.00")
	ru2, _ := url.Parse(ret2)
	if err := h.client.VerifySign(context.Background(), ru2.Query()); err != nil {
		t.Errorf("usual return: %v", err)
	}
	h.emu.resend(context.Background(), "V21")
	h.deliver()
	for _, v := range tg.requests()[1:] {
		if err := verifyAlipayRule(v); err != nil {
			t.Errorf("%s: v2_sign applied twice: %v", v.Get("out_trade_no"), err)
		}
	}
}

func TestFaultEscapedSlash(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "ES1", "12.34", faultEscapedSlash)
	var seen []string
	h.client.OnReceivedData(func(ctx context.Context, method string, data []byte) { seen = append(seen, string(data)) })
	defer h.client.OnReceivedData(nil)
	q, err := h.client.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "ES1"})
	if err != nil || q.IsFailure() {
		t.Fatalf("query with escaped slashes: signature over the bytes as sent must verify: %+v %v", q, err)
	}
	if len(seen) != 1 || !strings.Contains(seen[0], `\/`) || strings.Contains(strings.ReplaceAll(seen[0], `\/`, ""), "/") {
		t.Fatalf("answer not escaped: %s", seen)
	}
	if !strings.Contains(q.StoreName, "/") {
		t.Errorf("store_name %q", q.StoreName)
	}
	if _, err := h.client.TradeQuery(ctx, alipay.TradeQuery{OutTradeNo: "ES1"}); err != nil || strings.Contains(seen[1], `\/`) {
		t.Fatalf("escaped twice: %s %v", seen[1], err)
	}
}

func TestFaultRefundTimeout(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "RT1", "12.34", faultRefundTimeout)
	impatient := h.newClientOpts(testAppID, string(appKeys.pkcs8), 300*time.Millisecond)
	start := time.Now()
	rf, err := impatient.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "RT1", RefundAmount: "2.00", OutRequestNo: "R1"})
	if err == nil {
		t.Fatalf("refund answered despite refund_timeout: %+v", rf)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the client waited %v", d)
	}
	// The money moved: the refund query knows it, a retry answers fund_change N.
	rq, err := h.client.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "RT1", OutRequestNo: "R1"})
	if err != nil || rq.RefundStatus != "REFUND_SUCCESS" || rq.RefundAmount != "2.00" {
		t.Fatalf("refund query: %+v %v", rq, err)
	}
	rf, err = h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "RT1", RefundAmount: "2.00", OutRequestNo: "R1"})
	if err != nil || rf.IsFailure() || rf.FundChange != "N" || rf.RefundFee != "2.00" {
		t.Fatalf("retry: %+v %v", rf, err)
	}

	// A patient client is let go after refundWithholdMax with nothing useful.
	defer func(d time.Duration) { refundWithholdMax = d }(refundWithholdMax)
	refundWithholdMax = 100 * time.Millisecond
	h.inject("RT1", faultRefundTimeout)
	rf, err = h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "RT1", RefundAmount: "3.00", OutRequestNo: "R2"})
	if err == nil && !rf.IsFailure() {
		t.Fatalf("withheld answer looked like a success: %+v", rf)
	}
	if tr, _ := getTrade(ctx, h.emu.db, "RT1"); tr.RefundedFen != 500 {
		t.Fatalf("refunded %d fen, want 500", tr.RefundedFen)
	}
}

func TestFaultRefundSystemError(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	paidWith(h, tg, "SE1", "12.34", faultRefundSystemError)
	rf, err := h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "SE1", RefundAmount: "2.00", OutRequestNo: "R1"})
	if err != nil || !rf.IsFailure() || rf.Code != "20000" || rf.SubCode != "ACQ.SYSTEM_ERROR" {
		t.Fatalf("system error: %+v %v", rf, err)
	}
	rq, err := h.client.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "SE1", OutRequestNo: "R1"})
	if err != nil || rq.IsFailure() || rq.RefundAmount != "" || rq.RefundStatus != "" {
		t.Fatalf("refund was made: %+v %v", rq, err)
	}
	rf, err = h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "SE1", RefundAmount: "2.00", OutRequestNo: "R1"})
	if err != nil || rf.IsFailure() || rf.FundChange != "Y" {
		t.Fatalf("retry: %+v %v", rf, err)
	}

	h.inject("SE1", faultRefundSystemErrorMade)
	rf, err = h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "SE1", RefundAmount: "3.00", OutRequestNo: "R2"})
	if err != nil || rf.SubCode != "ACQ.SYSTEM_ERROR" {
		t.Fatalf("system error (made): %+v %v", rf, err)
	}
	rq, err = h.client.TradeFastPayRefundQuery(ctx, alipay.TradeFastPayRefundQuery{OutTradeNo: "SE1", OutRequestNo: "R2"})
	if err != nil || rq.RefundStatus != "REFUND_SUCCESS" || rq.RefundAmount != "3.00" {
		t.Fatalf("refund query after a made system error: %+v %v", rq, err)
	}
	rf, err = h.client.TradeRefund(ctx, alipay.TradeRefund{OutTradeNo: "SE1", RefundAmount: "3.00", OutRequestNo: "R2"})
	if err != nil || rf.IsFailure() || rf.FundChange != "N" || rf.RefundFee != "5.00" {
		t.Fatalf("retry after a made system error: %+v %v", rf, err)
	}
}

// TestSeveralFaultsAtOnce: faults of different events wait for their own event, and the
// content faults of one delivery combine.
func TestSeveralFaultsAtOnce(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	p := trade("SF1", "12.34")
	p.NotifyURL = tg.srv.URL
	h.open(p)
	for _, f := range []string{faultDrop, faultGBK, faultDiscount, faultEmptyParam} {
		h.inject("SF1", f) // before the trade exists: kept for it
	}
	h.apiPay("SF1", "")
	if tr, _ := getTrade(ctx, h.emu.db, "SF1"); tr.DiscountFen != 500 {
		t.Fatalf("discount not taken at payment: %+v", tr)
	}
	h.deliver() // dropped; gbk and empty_param wait for a notify that is sent
	if len(tg.requests()) != 0 {
		t.Fatal("drop did not drop")
	}
	h.clock.Advance(4 * time.Minute)
	h.deliver()
	v := tg.requests()[0]
	gbkReceipt, _ := simplifiedchinese.GBK.NewEncoder().String("7.34")
	if v.Get("charset") != "gbk" || !v.Has("body") || v.Get("receipt_amount") != gbkReceipt || verifyAlipayRule(v) != nil {
		t.Fatalf("combined notify: %s", tg.raws[0])
	}
	as, _ := attemptsForTrade(ctx, h.emu.db, "SF1")
	if len(as) != 2 || as[0].Fault != faultDrop || !strings.Contains(as[1].Fault, faultGBK) || !strings.Contains(as[1].Fault, faultEmptyParam) {
		t.Fatalf("recorded faults: %+v", as)
	}
	if fs, _ := pendingFaults(ctx, h.emu.db, "SF1"); len(fs) != 0 {
		t.Fatalf("faults left: %+v", fs)
	}
}

func TestFaultsEndpoint(t *testing.T) {
	h := newHarness(t, nil)
	h.open(trade("FE1", "1.00"))
	code, _, body := h.do("POST", h.srv.URL+"/sandbox/api/trades/FE1/faults", url.Values{"next": {"explode"}})
	if code != 400 {
		t.Fatalf("bad fault: %d", code)
	}
	for _, f := range allFaults {
		if !strings.Contains(body, f) {
			t.Errorf("400 message lacks %s: %s", f, body)
		}
		h.inject("FE1", f) // every fault is accepted, on a cashier that is not a trade yet
	}
	if len(allFaults) != 14 {
		t.Errorf("%d faults", len(allFaults))
	}
	if code, _, _ := h.do("POST", h.srv.URL+"/sandbox/api/trades/NOPE/faults", url.Values{"next": {"gbk"}}); code != 404 {
		t.Fatalf("unknown trade: %d", code)
	}
}
