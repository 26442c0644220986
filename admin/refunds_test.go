package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"storefront/money"
	"storefront/shoptest"
	"storefront/store"
)

// refundVia posts the back office's refund form for o.
func refundVia(t *testing.T, op *shoptest.Browser, o store.Order, amount string, extra url.Values) shoptest.Response {
	t.Helper()
	form := url.Values{"amount": {amount}, "reason": {"测试退款"}}
	for k, v := range extra {
		form[k] = v
	}
	return op.Post(t, "/admin/orders/"+o.OutTradeNo+"/refunds", form)
}

func refunds(t *testing.T, shop *shoptest.Shop, o store.Order) []store.Refund {
	t.Helper()
	rs, err := shop.Store.RefundsForOrder(context.Background(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func setup(t *testing.T, o shoptest.Options) (*shoptest.Shop, *shoptest.Browser, *shoptest.Browser, int64) {
	shop := shoptest.New(t, o)
	stock := int64(10)
	gid := shop.Demo(t, "机械键盘", 39900, &stock)
	buyer := shop.Browser()
	buyer.Signup(t, "buyer@example.com")
	return shop, buyer, shop.Operator(t, "op@example.com"), gid
}

// A part refund, then the rest: the order tracks the amount and turns 已退款 at the end;
// more than is left is refused before Alipay is called; the emulator has both refunds.
func TestPartThenFullRefund(t *testing.T) {
	shop, buyer, op, gid := setup(t, shoptest.Options{})
	o := shop.PaidOrder(t, buyer, gid, 1)
	if r := refundVia(t, op, o, "10.00", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("refund ¥10: %d %.300s", r.Status, r.Body)
	}
	got := shop.Order(t, o.OutTradeNo)
	if got.Status != store.StatusPaid || got.Refunded != 1000 {
		t.Fatalf("after ¥10: %s refunded %s", got.Status, got.Refunded)
	}
	if page := op.Get(t, "/admin/orders/"+o.OutTradeNo).Body; !strings.Contains(page, "退款成功") && !strings.Contains(page, "已退款") {
		t.Fatal("the operator isn't told the refund succeeded")
	}
	// More than is left: refused by the store's guard, Alipay never asked.
	before := shop.EmuTradeOf(t, o.OutTradeNo)
	if r := refundVia(t, op, o, "389.01", nil); r.Status != http.StatusConflict && r.Status != http.StatusBadRequest {
		t.Fatalf("over-refund: %d", r.Status)
	}
	if n := len(refunds(t, shop, o)); n != 1 {
		t.Fatalf("%d refund rows after a refused over-refund", n)
	}
	if after := shop.EmuTradeOf(t, o.OutTradeNo); after.RefundedAmount != before.RefundedAmount {
		t.Fatal("Alipay was asked for an over-refund")
	}
	if r := refundVia(t, op, o, "389.00", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("the rest: %d", r.Status)
	}
	got = shop.Order(t, o.OutTradeNo)
	if got.Status != store.StatusRefunded || got.Refunded != o.Total {
		t.Fatalf("after the rest: %s refunded %s", got.Status, got.Refunded)
	}
	emu := shop.EmuTradeOf(t, o.OutTradeNo)
	if emu.Status != "TRADE_CLOSED" || len(emu.Refunds) != 2 {
		t.Fatalf("emulator: %s with %d refunds", emu.Status, len(emu.Refunds))
	}
	// The shopper: 已退款, both refunds on the page, gone from 已购商品.
	page := buyer.Get(t, "/orders/"+o.OutTradeNo).Body
	if !strings.Contains(page, "已退款") || !strings.Contains(page, "¥10.00") || !strings.Contains(page, "¥389.00") {
		t.Fatal("the shopper's order page doesn't show the refunds")
	}
	if strings.Contains(buyer.Get(t, "/purchases").Body, "机械键盘") {
		t.Fatal("a fully refunded order still shows under 已购商品")
	}
}

// Two operators refunding at once more than the order holds: one of them is refused.
func TestConcurrentRefundsNeverExceedThePayment(t *testing.T) {
	shop, buyer, op, gid := setup(t, shoptest.Options{})
	op2 := shop.Operator(t, "op2@example.com")
	o := shop.PaidOrder(t, buyer, gid, 1) // ¥399.00
	for round := range 5 {
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for i, b := range []*shoptest.Browser{op, op2} {
			wg.Go(func() { codes[i] = refundVia(t, b, o, "300.00", nil).Status })
		}
		wg.Wait()
		var sum money.Fen
		for _, r := range refunds(t, shop, o) {
			if r.Status != store.RefundFailed {
				sum += r.Amount
			}
		}
		if sum > o.Total {
			t.Fatalf("round %d: refunds %s exceed the payment %s", round, sum, o.Total)
		}
		if round == 0 && (codes[0] == http.StatusSeeOther) == (codes[1] == http.StatusSeeOther) {
			t.Fatalf("two refunds of ¥300 on ¥399: answers %v, want one made and one refused", codes)
		}
	}
	if n := len(refunds(t, shop, o)); n != 1 {
		t.Fatalf("%d refunds, want 1", n)
	}
}

// refund_timeout: Alipay makes the refund but the answer comes after the shop gave up.
// The refund stays pending; the worker asks refund.query, finds it made and settles it —
// once, with no second request.
func TestRefundTimeoutSettledByWorker(t *testing.T) {
	shop, buyer, op, gid := setup(t, shoptest.Options{ClientTimeout: time.Second})
	o := shop.PaidOrder(t, buyer, gid, 1)
	shop.Fault(t, o.OutTradeNo, "refund_timeout")
	r := refundVia(t, op, o, "50.00", nil)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("refund: %d", r.Status)
	}
	rs := refunds(t, shop, o)
	if len(rs) != 1 || rs[0].Status != store.RefundPending {
		t.Fatalf("after a timeout: %+v, want one pending", rs)
	}
	if page := op.Get(t, "/admin/orders/"+o.OutTradeNo).Body; !strings.Contains(page, "自动重试") {
		t.Fatal("the operator isn't told the refund is pending")
	}
	shop.Clock.Advance(10 * time.Minute)
	for range 3 {
		if _, err := shop.Pay.SettleRefunds(context.Background()); err != nil {
			t.Fatal(err)
		}
		shop.Clock.Advance(10 * time.Minute)
	}
	rs = refunds(t, shop, o)
	if len(rs) != 1 || rs[0].Status != store.RefundSucceeded {
		t.Fatalf("after the worker: %+v", rs)
	}
	if got := shop.Order(t, o.OutTradeNo); got.Refunded != 5000 {
		t.Fatalf("refunded %s, want ¥50.00 once", got.Refunded)
	}
	if emu := shop.EmuTradeOf(t, o.OutTradeNo); emu.RefundedAmount != "50.00" || len(emu.Refunds) != 1 {
		t.Fatalf("emulator refunded %s in %d refunds", emu.RefundedAmount, len(emu.Refunds))
	}
}

// 立即重试 after refund_timeout: Alipay had made the refund, so the same out_request_no
// is answered 10000 with fund_change N. That is the refund succeeding, not failing, and
// no second refund is made.
func TestRetryAfterTimeoutIsFundChangeN(t *testing.T) {
	shop, buyer, op, gid := setup(t, shoptest.Options{ClientTimeout: time.Second})
	o := shop.PaidOrder(t, buyer, gid, 1)
	shop.Fault(t, o.OutTradeNo, "refund_timeout")
	refundVia(t, op, o, "50.00", nil)
	rs := refunds(t, shop, o)
	if len(rs) != 1 || rs[0].Status != store.RefundPending {
		t.Fatalf("after a timeout: %+v, want one pending", rs)
	}
	if r := op.Post(t, fmt.Sprintf("/admin/refunds/%d/retry", rs[0].ID), nil); r.Status != http.StatusSeeOther {
		t.Fatalf("retry: %d %.300s", r.Status, r.Body)
	}
	rs = refunds(t, shop, o)
	if len(rs) != 1 || rs[0].Status != store.RefundSucceeded {
		t.Fatalf("after 立即重试: %+v, want the one refund succeeded", rs)
	}
	if got := shop.Order(t, o.OutTradeNo); got.Refunded != 5000 {
		t.Fatalf("refunded %s, want ¥50.00 once", got.Refunded)
	}
	emu := shop.EmuTradeOf(t, o.OutTradeNo)
	if emu.RefundedAmount != "50.00" || len(emu.Refunds) != 1 || emu.Refunds[0].OutRequestNo != rs[0].OutRequestNo {
		t.Fatalf("emulator refunded %s in %+v, want ¥50.00 once under %s", emu.RefundedAmount, emu.Refunds, rs[0].OutRequestNo)
	}
}

// The refund form carries its own out_request_no: sent twice (a double click, a resend
// after a slow answer), it is one refund, and the second answer says so.
func TestRefundFormSentTwiceRefundsOnce(t *testing.T) {
	shop, buyer, op, gid := setup(t, shoptest.Options{})
	o := shop.PaidOrder(t, buyer, gid, 1)
	m := regexp.MustCompile(`name="out_request_no" value="(RF[0-9]{24})"`).FindStringSubmatch(op.Get(t, "/admin/orders/"+o.OutTradeNo).Body)
	if m == nil {
		t.Fatal("the refund form has no out_request_no of its own")
	}
	form := url.Values{"out_request_no": {m[1]}}
	for i := range 2 {
		if r := refundVia(t, op, o, "10.00", form); r.Status != http.StatusSeeOther {
			t.Fatalf("send %d: %d %.300s", i+1, r.Status, r.Body)
		}
	}
	rs := refunds(t, shop, o)
	if len(rs) != 1 || rs[0].OutRequestNo != m[1] || rs[0].Status != store.RefundSucceeded {
		t.Fatalf("refunds %+v, want one succeeded under %s", rs, m[1])
	}
	if got := shop.Order(t, o.OutTradeNo); got.Refunded != 1000 {
		t.Fatalf("refunded %s, want ¥10.00 once", got.Refunded)
	}
	if emu := shop.EmuTradeOf(t, o.OutTradeNo); len(emu.Refunds) != 1 {
		t.Fatalf("Alipay made %d refunds, want 1", len(emu.Refunds))
	}
	if page := op.Get(t, "/admin/orders/"+o.OutTradeNo).Body; !strings.Contains(page, "已提交过") {
		t.Fatal("the second send isn't told the form was sent already")
	}
	if r := refundVia(t, op, o, "10.00", url.Values{"out_request_no": {"RF1' OR 1=1"}}); r.Status != http.StatusBadRequest {
		t.Fatalf("a made-up out_request_no: %d, want 400", r.Status)
	}
}

// ACQ.SYSTEM_ERROR leaves Alipay's decision unknown: the refund stays pending and the
// same out_request_no settles it, whether Alipay had made it or not.
func TestRefundSystemError(t *testing.T) {
	for _, fault := range []string{"refund_system_error", "refund_system_error_made"} {
		t.Run(fault, func(t *testing.T) {
			shop, buyer, op, gid := setup(t, shoptest.Options{})
			o := shop.PaidOrder(t, buyer, gid, 1)
			shop.Fault(t, o.OutTradeNo, fault)
			refundVia(t, op, o, "20.00", nil)
			rs := refunds(t, shop, o)
			if len(rs) != 1 || rs[0].Status != store.RefundPending || !strings.Contains(rs[0].FailReason, "SYSTEM_ERROR") {
				t.Fatalf("after %s: %+v", fault, rs)
			}
			shop.Clock.Advance(time.Hour)
			if _, err := shop.Pay.SettleRefunds(context.Background()); err != nil {
				t.Fatal(err)
			}
			rs = refunds(t, shop, o)
			if rs[0].Status != store.RefundSucceeded || rs[0].OutRequestNo == "" {
				t.Fatalf("after the worker: %+v", rs)
			}
			emu := shop.EmuTradeOf(t, o.OutTradeNo)
			if emu.RefundedAmount != "20.00" || len(emu.Refunds) != 1 {
				t.Fatalf("emulator refunded %s in %d refunds, want ¥20.00 once", emu.RefundedAmount, len(emu.Refunds))
			}
			if emu.Refunds[0].OutRequestNo != rs[0].OutRequestNo {
				t.Fatalf("Alipay made refund %s, the shop recorded %s: the retry used a new number",
					emu.Refunds[0].OutRequestNo, rs[0].OutRequestNo)
			}
		})
	}
}

// A business error fails the refund, with Alipay's reason for the operator.
func TestRefundBusinessErrorFails(t *testing.T) {
	shop, buyer, op, gid := setup(t, shoptest.Options{})
	o := shop.PaidOrder(t, buyer, gid, 1)
	// Refunded in Alipay's console behind the shop's back, so Alipay has less left than
	// the shop thinks: the shop's refund of the rest is refused.
	if st, body := shop.Emu(t, o.OutTradeNo, "refund", url.Values{"amount": {"399.00"}}); st != http.StatusOK {
		t.Fatalf("console refund: %d %s", st, body)
	}
	refundVia(t, op, o, "100.00", nil)
	rs := refunds(t, shop, o)
	if len(rs) != 1 || rs[0].Status != store.RefundFailed || !strings.Contains(rs[0].FailReason, "ACQ.") {
		t.Fatalf("refunds %+v, want one failed with Alipay's reason", rs)
	}
	if page := op.Get(t, "/admin/orders/"+o.OutTradeNo).Body; !strings.Contains(page, rs[0].FailReason) {
		t.Fatal("the operator doesn't see Alipay's reason")
	}
}

// A refund made in Alipay's own console, reported by its refund notify, is recorded once
// with source alipay, and the order follows the money.
func TestConsoleRefundRecordedOnce(t *testing.T) {
	shop, buyer, _, gid := setup(t, shoptest.Options{})
	o := shop.PaidOrder(t, buyer, gid, 1)
	shop.Emu(t, o.OutTradeNo, "refund-notify", url.Values{"on": {"1"}})
	if st, body := shop.Emu(t, o.OutTradeNo, "refund", url.Values{"amount": {"99.00"}}); st != http.StatusOK {
		t.Fatalf("console refund: %d %s", st, body)
	}
	ctx := context.Background()
	shop.Emulator.DeliverDue(ctx)
	shop.Emu(t, o.OutTradeNo, "notify", nil) // delivered again
	shop.Emulator.DeliverDue(ctx)
	rs := refunds(t, shop, o)
	if len(rs) != 1 || rs[0].Source != store.RefundByAlipay || rs[0].Status != store.RefundSucceeded || rs[0].Amount != 9900 {
		t.Fatalf("refunds %+v, want one ¥99.00 from alipay", rs)
	}
	got := shop.Order(t, o.OutTradeNo)
	if got.Refunded != 9900 || got.Status != store.StatusPaid {
		t.Fatalf("order %s refunded %s", got.Status, got.Refunded)
	}
	// The rest in the console too: the order becomes 已退款.
	shop.Emu(t, o.OutTradeNo, "refund", url.Values{"amount": {"300.00"}})
	shop.Emulator.DeliverDue(ctx)
	if got := shop.Order(t, o.OutTradeNo); got.Status != store.StatusRefunded || got.Refunded != o.Total {
		t.Fatalf("after the full console refund: %s refunded %s", got.Status, got.Refunded)
	}
}

// Restock is the operator's choice and happens once, however many refunds ask for it.
func TestRestockOnce(t *testing.T) {
	shop, buyer, op, gid := setup(t, shoptest.Options{})
	o := shop.PaidOrder(t, buyer, gid, 3) // stock 10 → 7
	stock := func() int64 {
		g, _ := shop.Store.AnyGoods(context.Background(), gid)
		return *g.Stock
	}
	if stock() != 7 {
		t.Fatalf("stock %d", stock())
	}
	refundVia(t, op, o, "100.00", nil)
	if stock() != 7 {
		t.Fatal("a refund without restock moved stock")
	}
	refundVia(t, op, o, "100.00", url.Values{"restock": {"1"}})
	refundVia(t, op, o, "100.00", url.Values{"restock": {"1"}})
	if stock() != 10 {
		t.Fatalf("stock %d after two refunds with restock, want 10 (restocked once)", stock())
	}
}

// The shopper's 申请退款: approve makes the refund; refuse needs a note, which the
// shopper sees.
func TestRefundRequests(t *testing.T) {
	shop, buyer, op, gid := setup(t, shoptest.Options{})
	o := shop.PaidOrder(t, buyer, gid, 1)
	if r := buyer.Post(t, "/orders/"+o.OutTradeNo+"/refund-request", url.Values{"reason": {""}}); r.Status != http.StatusBadRequest {
		t.Fatalf("request without a reason: %d", r.Status)
	}
	if r := buyer.Post(t, "/orders/"+o.OutTradeNo+"/refund-request", url.Values{"reason": {"不想要了"}, "amount": {"50.00"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("request: %d", r.Status)
	}
	if r := buyer.Post(t, "/orders/"+o.OutTradeNo+"/refund-request", url.Values{"reason": {"再来一次"}}); r.Status != http.StatusConflict {
		t.Fatalf("a second waiting request: %d", r.Status)
	}
	other := shop.Browser()
	other.Signup(t, "other@example.com")
	if r := other.Post(t, "/orders/"+o.OutTradeNo+"/refund-request", url.Values{"reason": {"x"}}); r.Status != http.StatusNotFound {
		t.Fatalf("another shopper's request: %d", r.Status)
	}
	if !strings.Contains(op.Get(t, "/admin/").Body, "不想要了") {
		t.Fatal("the dashboard doesn't list the waiting request")
	}
	qs, _ := shop.Store.RefundRequestsForOrder(context.Background(), o.ID)
	if r := op.Post(t, fmt.Sprintf("/admin/refund-requests/%d/refuse", qs[0].ID), url.Values{"note": {""}}); r.Status != http.StatusBadRequest {
		t.Fatalf("refuse without a note: %d", r.Status)
	}
	if r := op.Post(t, fmt.Sprintf("/admin/refund-requests/%d/refuse", qs[0].ID), url.Values{"note": {"商品已拆封，不支持退款"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("refuse: %d", r.Status)
	}
	if page := buyer.Get(t, "/orders/"+o.OutTradeNo).Body; !strings.Contains(page, "商品已拆封，不支持退款") {
		t.Fatal("the shopper doesn't see why the request was refused")
	}
	buyer.Post(t, "/orders/"+o.OutTradeNo+"/refund-request", url.Values{"reason": {"质量问题"}})
	qs, _ = shop.Store.RefundRequestsForOrder(context.Background(), o.ID)
	if r := op.Post(t, fmt.Sprintf("/admin/refund-requests/%d/approve", qs[1].ID), nil); r.Status != http.StatusSeeOther {
		t.Fatalf("approve: %d", r.Status)
	}
	if r := op.Post(t, fmt.Sprintf("/admin/refund-requests/%d/approve", qs[1].ID), nil); r.Status != http.StatusConflict {
		t.Fatalf("approve twice: %d", r.Status)
	}
	rs := refunds(t, shop, o)
	if len(rs) != 1 || rs[0].Source != store.RefundByShopper || rs[0].Amount != o.Total || rs[0].Status != store.RefundSucceeded {
		t.Fatalf("refunds after approval: %+v", rs)
	}
	if got := shop.Order(t, o.OutTradeNo); got.Status != store.StatusRefunded {
		t.Fatalf("order %s after the approved full request", got.Status)
	}
}
