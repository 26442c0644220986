package handlers_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"storefront/payment"
	"storefront/shoptest"
	"storefront/store"
)

// The daily reconciliation against the emulator's trade bill finds each kind of
// difference: a payment the shop missed, a refund made in Alipay's console, a payment
// the shop has that Alipay doesn't, an amount that differs — and a clean day says so.
func TestReconciliationFindsEveryDifference(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "机械键盘", 39900, nil)
	b := shop.Browser()
	b.Signup(t, "recon@example.com")
	ctx := context.Background()
	day := shop.Clock.Now()

	matched := shop.PaidOrder(t, b, gid, 1)
	// Paid at Alipay, the notify lost, the shop never asked: missing in the shop.
	missed, u := b.Buy(t, gid, 1)
	shop.OpenCashier(t, u.String())
	missedPay, _ := shop.EmuPay(t, missed.OutTradeNo, false)
	// Refunded in Alipay's console (no refund notify): missing in the shop.
	if st, body := shop.Emu(t, matched.OutTradeNo, "refund", url.Values{"amount": {"20.00"}}); st != 200 {
		t.Fatalf("console refund: %d %s", st, body)
	}
	// Paid in the shop's books only (a trade Alipay never had): missing at Alipay.
	phantom, _ := b.Buy(t, gid, 1)
	if _, err := shop.Store.ApplyPaid(ctx, store.Event{OutTradeNo: phantom.OutTradeNo, Source: store.SourceQuery, Raw: "{}", TradeStatus: "TRADE_SUCCESS"},
		store.Payment{TradeNo: "2026112222009999999999999999", Amount: phantom.Total, PaidAt: day}); err != nil {
		t.Fatal(err)
	}
	// Paid at Alipay for another amount than the shop's books say.
	differs := shop.PaidOrder(t, b, gid, 2)
	shop.Raw(t).MustExec(t, `UPDATE orders SET total_fen = 1 WHERE id = ?`, differs.ID)

	// The bill of today isn't made until tomorrow (T+1).
	if _, _, err := shop.Pay.ReconcileDay(ctx, day); !errors.Is(err, payment.ErrBillNotReady) {
		t.Fatalf("today's bill: %v, want not ready", err)
	}
	shop.Clock.Advance(24 * time.Hour)
	rec, diffs, err := shop.Pay.ReconcileDay(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "differences" || rec.Payments != 3 || rec.Refunds != 1 {
		t.Fatalf("reconciliation %+v", rec)
	}
	want := map[string]string{
		store.MissingInShop + " payment " + missed.OutTradeNo:    missedPay.TradeNo,
		store.MissingInShop + " refund " + matched.OutTradeNo:    "",
		store.MissingAtAlipay + " payment " + phantom.OutTradeNo: "2026112222009999999999999999",
		store.AmountDiffers + " payment " + differs.OutTradeNo:   "",
	}
	got := map[string]bool{}
	for _, d := range diffs {
		got[d.Kind+" "+d.What+" "+d.OutTradeNo] = true
	}
	for k := range want {
		if !got[k] {
			t.Errorf("reconciliation missed %q; found %v", k, got)
		}
	}
	if len(diffs) != len(want) {
		t.Errorf("%d differences, want %d: %+v", len(diffs), len(want), diffs)
	}
	// Saved, and shown to the operator.
	op := shop.Operator(t, "op@example.com")
	page := op.Get(t, "/admin/payments").Body
	for _, no := range []string{missed.OutTradeNo, phantom.OutTradeNo, differs.OutTradeNo} {
		if !strings.Contains(page, no) {
			t.Errorf("the back office doesn't show the difference for %s", no)
		}
	}
	if csv := op.Get(t, "/admin/export/reconciliation.csv?from="+day.In(time.FixedZone("CST", 8*3600)).Format("2006-01-02")).Body; !strings.Contains(csv, missed.OutTradeNo) {
		t.Error("the reconciliation export lacks the differences")
	}

	// A day where the books agree says so.
	clean := shoptest.New(t, shoptest.Options{})
	cg := clean.Demo(t, "帆布包", 5900, nil)
	cb := clean.Browser()
	cb.Signup(t, "clean@example.com")
	clean.PaidOrder(t, cb, cg, 1)
	cday := clean.Clock.Now()
	clean.Clock.Advance(24 * time.Hour)
	rec, diffs, err = clean.Pay.ReconcileDay(ctx, cday)
	if err != nil || rec.Status != "clean" || len(diffs) != 0 || rec.Payments != 1 {
		t.Fatalf("clean day: %+v %v %v", rec, diffs, err)
	}
	if page := clean.Operator(t, "op@example.com").Get(t, "/admin/payments").Body; !strings.Contains(page, "账目一致") {
		t.Error("the back office doesn't say the day is clean")
	}
	// The worker: nothing before 09:00 Beijing, then yesterday once.
	if err := clean.Pay.ReconcileYesterday(ctx); err != nil {
		t.Fatal(err)
	}
	if rs, _ := clean.Store.Reconciliations(ctx, 5); len(rs) != 1 {
		t.Fatalf("worker made %d reconciliations", len(rs))
	}
}

// A refund made in Alipay's console that the shop learned of from a TRADE_CLOSED notify
// (which names no request number) is kept as ALIPAY_CLOSED_ + trade_no, while the bill
// lists it under the console's own number: it is one refund, not a refund missing in the
// shop plus one missing at Alipay.
func TestReconciliationMatchesRefundRecordedUnderShopsNumber(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "机械键盘", 39900, nil)
	b := shop.Browser()
	b.Signup(t, "closed@example.com")
	ctx := context.Background()
	day := shop.Clock.Now()

	o := shop.PaidOrder(t, b, gid, 1)
	// Refunded in full in Alipay's console without a refund notify: Alipay closes the trade.
	if st, body := shop.Emu(t, o.OutTradeNo, "refund", url.Values{"amount": {o.Total.String()}}); st != 200 {
		t.Fatalf("console refund: %d %s", st, body)
	}
	// The TRADE_CLOSED notify names no out_biz_no: the shop records the refund under a
	// number of its own.
	v := shop.NotifyFor(o, o.TradeNo)
	v.Set("notify_id", "closed"+o.OutTradeNo)
	v.Set("trade_status", "TRADE_CLOSED")
	if got := shop.PostNotify(t, shop.Resign(v).Encode(), "application/x-www-form-urlencoded"); got != "success" {
		t.Fatalf("TRADE_CLOSED notify: %q", got)
	}
	rs, err := shop.Store.RefundsForOrder(ctx, o.ID)
	if err != nil || len(rs) != 1 || rs[0].OutRequestNo != "ALIPAY_CLOSED_"+o.TradeNo || rs[0].Status != store.RefundSucceeded {
		t.Fatalf("refunds after TRADE_CLOSED: %+v %v", rs, err)
	}
	emu := shop.EmuTradeOf(t, o.OutTradeNo)
	if len(emu.Refunds) != 1 || emu.Refunds[0].OutRequestNo == rs[0].OutRequestNo {
		t.Fatalf("the emulator's refunds %+v: want one under the console's own number", emu.Refunds)
	}

	shop.Clock.Advance(24 * time.Hour)
	rec, diffs, err := shop.Pay.ReconcileDay(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "clean" || rec.Payments != 1 || rec.Refunds != 1 || len(diffs) != 0 {
		t.Fatalf("reconciliation %+v, differences %+v", rec, diffs)
	}
}

// Refund differences: a refund whose amount at Alipay is not the shop's, and one the shop
// counts as succeeded that Alipay never made. A console refund of the same trade and
// amount does not stand in for the latter: the shop's own refunds reach Alipay under
// their own request numbers, so it is a refund missing in the shop besides.
func TestReconciliationRefundDifferences(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "机械键盘", 39900, nil)
	b := shop.Browser()
	b.Signup(t, "refunds@example.com")
	ctx := context.Background()
	day := shop.Clock.Now()

	// Refunded through Alipay, then the shop's books say another amount.
	differs := shop.PaidOrder(t, b, gid, 1)
	ref, err := shop.Pay.Refund(ctx, store.NewRefund{OrderNo: differs.OutTradeNo, Amount: 3000, Reason: "少发一件",
		Source: store.RefundByOperator, By: store.System})
	if err != nil || ref.Status != store.RefundSucceeded {
		t.Fatalf("refund: %+v %v", ref, err)
	}
	shop.Raw(t).MustExec(t, `UPDATE refunds SET amount_fen = 2500 WHERE id = ?`, ref.ID)

	// Settled in the shop's books without Alipay ever being asked: missing at Alipay. And
	// a refund of the same amount made in Alipay's console: missing in the shop.
	phantom := shop.PaidOrder(t, b, gid, 1)
	own, err := shop.Store.CreateRefund(ctx, store.NewRefund{OrderNo: phantom.OutTradeNo, Amount: 2000, Reason: "补偿",
		Source: store.RefundByOperator, By: store.System})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shop.Store.SettleRefund(ctx, own.ID, day); err != nil {
		t.Fatal(err)
	}
	if st, body := shop.Emu(t, phantom.OutTradeNo, "refund", url.Values{"amount": {"20.00"}}); st != 200 {
		t.Fatalf("console refund: %d %s", st, body)
	}

	shop.Clock.Advance(24 * time.Hour)
	rec, diffs, err := shop.Pay.ReconcileDay(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "differences" || rec.Payments != 2 || rec.Refunds != 2 {
		t.Fatalf("reconciliation %+v", rec)
	}
	type key struct{ kind, order, request string }
	got := map[key]store.Difference{}
	for _, d := range diffs {
		if d.What != "refund" {
			t.Errorf("unexpected difference %+v", d)
			continue
		}
		got[key{d.Kind, d.OutTradeNo, d.OutRequestNo}] = d
	}
	if d, ok := got[key{store.AmountDiffers, differs.OutTradeNo, ref.OutRequestNo}]; !ok || d.ShopFen.Int64 != 2500 || d.AlipayFen.Int64 != 3000 {
		t.Errorf("refund amount differs: %+v (found %v)", d, ok)
	}
	if d, ok := got[key{store.MissingAtAlipay, phantom.OutTradeNo, own.OutRequestNo}]; !ok || d.ShopFen.Int64 != 2000 || d.AlipayFen.Valid {
		t.Errorf("refund missing at Alipay: %+v (found %v)", d, ok)
	}
	var console string
	for k := range got {
		if k.kind == store.MissingInShop && k.order == phantom.OutTradeNo {
			console = k.request
		}
	}
	if console == "" || console == own.OutRequestNo || got[key{store.MissingInShop, phantom.OutTradeNo, console}].AlipayFen.Int64 != 2000 {
		t.Errorf("console refund missing in shop: %+v", diffs)
	}
	if len(diffs) != 3 {
		t.Errorf("%d differences, want 3: %+v", len(diffs), diffs)
	}
}
