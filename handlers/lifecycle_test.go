package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"storefront/payment"
	"storefront/shoptest"
	"storefront/store"
)

func events(t *testing.T, shop *shoptest.Shop, no string) []store.Event {
	t.Helper()
	evs, err := shop.Store.EventsForOrder(context.Background(), no)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// appliedCount counts the events that changed the order's payment status (refund
// answers are about refunds).
func appliedCount(evs []store.Event) int {
	n := 0
	for _, e := range evs {
		if e.Verdict == store.VerdictApplied && e.Source != store.SourceRefund && e.Source != store.SourceRefundQuery {
			n++
		}
	}
	return n
}

func TestPayThroughEmulatorNotifyAndReturn(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "降噪耳机", 89900, nil)
	b := shop.Browser()
	b.Signup(t, "pay@example.com")
	o, u := b.Buy(t, gid, 1)
	page := shop.OpenCashier(t, u.String())
	if !strings.Contains(page, "¥899.00") || !strings.Contains(page, "降噪耳机") {
		t.Fatal("cashier lacks amount or subject")
	}
	paid, status := shop.EmuPay(t, o.OutTradeNo, true)
	if status != 200 || len(paid.TradeNo) != 28 {
		t.Fatalf("pay: %d %+v", status, paid)
	}
	if n, err := shop.Emulator.DeliverDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("DeliverDue = %d, %v", n, err)
	}
	got := shop.Order(t, o.OutTradeNo)
	if got.Status != store.StatusPaid || got.TradeNo != paid.TradeNo || got.PaidAt.IsZero() || got.BuyerLogonID == "" {
		t.Fatalf("after notify: %+v", got)
	}
	tr := shop.EmuTradeOf(t, o.OutTradeNo)
	if tr.Status != "TRADE_SUCCESS" || len(tr.Deliveries) != 1 || tr.Deliveries[0].Body != "success" {
		t.Fatalf("emulator trade %+v", tr)
	}
	// The browser comes back: the result page shows the order and Alipay's trade number.
	r := b.Get(t, paid.ReturnURL)
	for _, want := range []string{"支付成功", o.OutTradeNo, paid.TradeNo, "¥899.00", "降噪耳机"} {
		if !strings.Contains(r.Body, want) {
			t.Fatalf("result page lacks %q (%d)", want, r.Status)
		}
	}
	r = b.Get(t, "/purchases")
	if !strings.Contains(r.Body, "降噪耳机") || !strings.Contains(r.Body, paid.TradeNo) {
		t.Fatal("已购商品 lacks the paid goods")
	}
	if r := b.Get(t, "/orders"); !strings.Contains(r.Body, "待发货") || strings.Contains(r.Body, "支付宝支付") {
		t.Fatal("orders page doesn't show the paid order as 待发货")
	}
	// Someone else opening the same signed return URL learns nothing.
	other := shop.Browser()
	other.Signup(t, "other@example.com")
	if r := other.Get(t, paid.ReturnURL); r.Status != 404 {
		t.Fatalf("other shopper on return URL: %d", r.Status)
	}
}

func TestReturnConfirmsWithQueryWhenNotifyLost(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "保温杯", 8990, nil)
	b := shop.Browser()
	b.Signup(t, "ret@example.com")
	o, u := b.Buy(t, gid, 1)
	shop.OpenCashier(t, u.String())
	paid, _ := shop.EmuPay(t, o.OutTradeNo, false)
	if shop.Order(t, o.OutTradeNo).Status != store.StatusUnpaid {
		t.Fatal("paid without notify or query")
	}
	r := b.Get(t, paid.ReturnURL)
	if r.Status != 200 || !strings.Contains(r.Body, "支付成功") || !strings.Contains(r.Body, paid.TradeNo) {
		t.Fatalf("result page: %d", r.Status)
	}
	evs := events(t, shop, o.OutTradeNo)
	if len(evs) != 2 || evs[0].Source != store.SourceReturn || evs[0].Verdict != store.VerdictVerified ||
		evs[1].Source != store.SourceQuery || evs[1].Verdict != store.VerdictApplied {
		t.Fatalf("events %+v", evs)
	}
	// A forged return (amount changed after signing) is refused and changes nothing.
	fu, _ := url.Parse(paid.ReturnURL)
	q := fu.Query()
	q.Set("total_amount", "0.01")
	fu.RawQuery = q.Encode()
	r = b.Get(t, fu.String())
	if r.Status != 400 || !strings.Contains(r.Body, "验签失败") {
		t.Fatalf("forged return: %d", r.Status)
	}
	if n := len(events(t, shop, o.OutTradeNo)); n != 2 {
		t.Fatalf("a forged return was stored as an event: %d events", n)
	}
	if n := shop.JunkCount(t, store.SourceReturn, payment.ReasonBadSign); n != 1 {
		t.Fatalf("forged return counted %d times as junk, want 1", n)
	}
	// Genuinely signed by Alipay, but for another app: refused, without calling the
	// signature forged.
	q = mustParseQuery(t, paid.ReturnURL)
	q.Set("app_id", "2021000000000999")
	r = b.Get(t, "/show_msg?"+shop.Resign(q).Encode())
	if r.Status != 400 || strings.Contains(r.Body, "验签失败") || !strings.Contains(r.Body, "其他商户") {
		t.Fatalf("another app's return: %d", r.Status)
	}
}

func mustParseQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestReconcileWorkerPaysLostNotify(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{ReconcileAfter: 2 * time.Second})
	gid := shop.Demo(t, "帆布包", 5900, nil)
	b := shop.Browser()
	b.Signup(t, "rec@example.com")
	o, u := b.Buy(t, gid, 1)
	ctx := context.Background()
	// Not due yet, and the cashier never opened: asking changes nothing.
	if n, _ := shop.Pay.ReconcileDue(ctx); n != 0 {
		t.Fatal("reconciled too early")
	}
	shop.Clock.Advance(3 * time.Second)
	if n, _ := shop.Pay.ReconcileDue(ctx); n != 0 || shop.Order(t, o.OutTradeNo).Status != store.StatusUnpaid {
		t.Fatal("changed an order Alipay doesn't know")
	}
	if evs := events(t, shop, o.OutTradeNo); len(evs) != 1 || evs[0].Verdict != store.VerdictIgnored {
		t.Fatalf("TRADE_NOT_EXIST not recorded as ignored: %+v", evs)
	}
	// Backoff: the next query is later than RECONCILE_AFTER.
	if next := shop.Order(t, o.OutTradeNo).ReconcileAt.Sub(shop.Clock.Now()); next <= 2*time.Second {
		t.Fatalf("no backoff: next query in %v", next)
	}
	shop.OpenCashier(t, u.String())
	paid, _ := shop.EmuPay(t, o.OutTradeNo, false)
	shop.Clock.Advance(time.Hour)
	if n, err := shop.Pay.ReconcileDue(ctx); n != 1 || err != nil {
		t.Fatalf("ReconcileDue = %d, %v", n, err)
	}
	got := shop.Order(t, o.OutTradeNo)
	if got.Status != store.StatusPaid || got.TradeNo != paid.TradeNo || !got.ReconcileAt.IsZero() {
		t.Fatalf("after reconcile: %+v", got)
	}
}

func TestPayAgainReusesNumberAndAmount(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{OrderTTL: 30 * time.Minute})
	gid := shop.Demo(t, "机械键盘", 39900, nil)
	b := shop.Browser()
	b.Signup(t, "again@example.com")
	o, u1 := b.Buy(t, gid, 3)
	shop.OpenCashier(t, u1.String())
	shop.Clock.Advance(2 * time.Second)
	r := b.Post(t, "/orders/"+o.OutTradeNo+"/pay", nil)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("pay again: %d %s", r.Status, r.Body)
	}
	again, u2 := shop.OrderFromGateway(t, r.Location), parseURLT(t, r.Location)
	if again.OutTradeNo != o.OutTradeNo || bizField(t, u2, "total_amount") != "1197.00" ||
		bizField(t, u1, "total_amount") != "1197.00" {
		t.Fatalf("pay again changed number or amount: %s", r.Location)
	}
	pub, _ := payment.ParsePublicKey(shop.Keys.AppPubPEM)
	verifyRequest(t, pub, u2.Query()) // freshly signed over its own timestamp
	shop.OpenCashier(t, u2.String())  // the emulator accepts it: same number, same amount
	if os, _, _ := shop.Store.ListOrders(context.Background(), again.UserID, "", 10, 0); len(os) != 1 {
		t.Fatal("pay again created another order")
	}
	shop.EmuPay(t, o.OutTradeNo, true)
	shop.Emulator.DeliverDue(context.Background())
	r = b.Post(t, "/orders/"+o.OutTradeNo+"/pay", nil)
	if r.Status != http.StatusConflict || r.Location != "" || !strings.Contains(r.Body, "已支付") {
		t.Fatalf("pay again on a paid order: %d %q", r.Status, r.Location)
	}
	// An expired unpaid order can't be paid again either.
	o2, _ := b.Buy(t, gid, 1)
	shop.Clock.Advance(31 * time.Minute)
	r = b.Post(t, "/orders/"+o2.OutTradeNo+"/pay", nil)
	if r.Status != http.StatusConflict || !strings.Contains(r.Body, "支付期限") {
		t.Fatalf("pay again on an expired order: %d", r.Status)
	}
}

func parseURLT(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func bizField(t *testing.T, u *url.URL, field string) string {
	var biz map[string]any
	if err := jsonDecode(u.Query().Get("biz_content"), &biz); err != nil {
		t.Fatal(err)
	}
	s, _ := biz[field].(string)
	return s
}

func TestCancel(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	stock := int64(5)
	gid := shop.Demo(t, "限量马克杯", 4900, &stock)
	b := shop.Browser()
	b.Signup(t, "cancel@example.com")
	stockOf := func() int64 {
		g, err := shop.Store.GoodsByID(context.Background(), gid)
		if err != nil {
			t.Fatal(err)
		}
		return *g.Stock
	}

	// Never opened the cashier: Alipay answers TRADE_NOT_EXIST, the order is cancelled.
	o1, _ := b.Buy(t, gid, 2)
	if stockOf() != 3 {
		t.Fatalf("stock not reserved: %d", stockOf())
	}
	r := b.Post(t, "/orders/"+o1.OutTradeNo+"/cancel", nil)
	if r.Status != http.StatusSeeOther || shop.Order(t, o1.OutTradeNo).Status != store.StatusCancelled || stockOf() != 5 {
		t.Fatalf("cancel unopened: %d %s stock %d", r.Status, shop.Order(t, o1.OutTradeNo).Status, stockOf())
	}
	if r := b.Get(t, r.Location); !strings.Contains(r.Body, "订单已取消") || !strings.Contains(r.Body, "已取消") {
		t.Fatal("no confirmation after cancel")
	}
	if r := b.Post(t, "/orders/"+o1.OutTradeNo+"/cancel", nil); r.Status != http.StatusConflict ||
		!strings.Contains(r.Body, "订单已取消。") || strings.Contains(r.Body, "不能取消") {
		t.Fatalf("cancelling a cancelled order: %d %.200s", r.Status, r.Body)
	}
	if r := b.Post(t, "/orders/"+o1.OutTradeNo+"/receive", nil); r.Status != http.StatusConflict || !strings.Contains(r.Body, "没有要收的货") {
		t.Fatalf("receiving a cancelled order: %d %.200s", r.Status, r.Body)
	}
	// The buyer logged in on the cashier, so the trade exists: it is closed at Alipay first.
	o2, u2 := b.Buy(t, gid, 1)
	shop.OpenCashier(t, u2.String())
	shop.Scan(t, o2.OutTradeNo)
	b.Post(t, "/orders/"+o2.OutTradeNo+"/cancel", nil)
	if shop.Order(t, o2.OutTradeNo).Status != store.StatusCancelled || shop.EmuTradeOf(t, o2.OutTradeNo).Status != "TRADE_CLOSED" {
		t.Fatal("cancel didn't close the trade")
	}
	if _, status := shop.EmuPay(t, o2.OutTradeNo, true); status == 200 {
		t.Fatal("a cancelled trade could still be paid")
	}
	// Paid at Alipay but the notify is lost: cancel finds out and the order becomes paid.
	o3, u3 := b.Buy(t, gid, 1)
	shop.OpenCashier(t, u3.String())
	shop.EmuPay(t, o3.OutTradeNo, false)
	r = b.Post(t, "/orders/"+o3.OutTradeNo+"/cancel", nil)
	if got := shop.Order(t, o3.OutTradeNo); got.Status != store.StatusPaid {
		t.Fatalf("cancel of a paid trade left %s", got.Status)
	}
	if r := b.Get(t, r.Location); !strings.Contains(r.Body, "已在支付宝付款") {
		t.Fatal("no message that the order was paid")
	}
	if stockOf() != 4 {
		t.Fatalf("stock %d, want 4", stockOf())
	}
	// A paid order can't be cancelled.
	if r := b.Post(t, "/orders/"+o3.OutTradeNo+"/cancel", nil); r.Status != http.StatusConflict {
		t.Fatalf("cancel paid: %d", r.Status)
	}
}

// Cancelled while the cashier tab was still open, then paid there anyway (at Alipay the
// trade didn't exist yet, so the close found nothing to close — routine in production):
// the order stays cancelled, the payment is flagged once and refunded in full
// automatically, exactly once, and the shopper's pages say so.
func TestPaidAfterCancelIsRefundedOnce(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "限量马克杯", 4900, nil)
	b := shop.Browser()
	b.Signup(t, "late@example.com")
	ctx := context.Background()
	o, u := b.Buy(t, gid, 1)
	shop.OpenCashier(t, u.String())
	b.Post(t, "/orders/"+o.OutTradeNo+"/cancel", nil) // Alipay: TRADE_NOT_EXIST
	if got := shop.Order(t, o.OutTradeNo); got.Status != store.StatusCancelled {
		t.Fatalf("cancel: %s", got.Status)
	}
	if strings.Contains(b.Get(t, "/orders/"+o.OutTradeNo).Body, "refund-due") {
		t.Fatal("refund notice before any payment")
	}
	paid, status := shop.EmuPay(t, o.OutTradeNo, true) // the tab left open
	if status != 200 {
		t.Fatalf("pay: %d", status)
	}
	r := b.Get(t, paid.ReturnURL)
	if r.Status != 200 || !strings.Contains(r.Body, "refund-due") || !strings.Contains(r.Body, paid.TradeNo) || !strings.Contains(r.Body, "自动") {
		t.Fatalf("result page after paying a cancelled order: %d, no refund notice with the trade number", r.Status)
	}
	// The notify 8 times at once, the return again, the query: still one refund.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			shop.Emulator.DeliverDue(ctx)
			shop.PostNotify(t, shop.NotifyFor(o, paid.TradeNo).Encode(), "application/x-www-form-urlencoded")
		})
	}
	wg.Go(func() { b.Get(t, paid.ReturnURL) })
	wg.Go(func() { shop.Pay.Reconcile(ctx, shop.Order(t, o.OutTradeNo), "test") })
	wg.Wait()
	if _, err := shop.Pay.SettleRefunds(ctx); err != nil {
		t.Fatal(err)
	}
	if got := shop.Order(t, o.OutTradeNo); got.Status != store.StatusCancelled {
		t.Fatalf("order %s, want it to stay cancelled", got.Status)
	}
	rs, _ := shop.Store.RefundsForOrder(ctx, o.ID)
	if len(rs) != 1 || rs[0].Status != store.RefundSucceeded || rs[0].Source != store.RefundAuto || rs[0].Amount != o.Total || rs[0].TradeNo != paid.TradeNo {
		t.Fatalf("refunds %+v, want one automatic full refund, succeeded", rs)
	}
	if emu := shop.EmuTradeOf(t, o.OutTradeNo); emu.Status != "TRADE_CLOSED" {
		t.Fatalf("Alipay's trade is %s after the refund", emu.Status)
	}
	flagged := 0
	for _, ev := range events(t, shop, o.OutTradeNo) {
		if ev.Verdict == store.VerdictFlagged {
			flagged++
		}
	}
	if flagged != 1 {
		t.Fatalf("%d flagged events, want the payment flagged once", flagged)
	}
	page := b.Get(t, "/orders/"+o.OutTradeNo).Body
	if strings.Contains(page, "refund-due") || !strings.Contains(page, "已原路退回") {
		t.Fatal("after the refund the page still says the money is owed")
	}
	// A late resend of the original payment notify doesn't bring the debt back.
	shop.PostNotify(t, shop.NotifyFor(o, paid.TradeNo).Encode(), "application/x-www-form-urlencoded")
	if page := b.Get(t, "/orders/"+o.OutTradeNo).Body; strings.Contains(page, "refund-due") {
		t.Fatal("a late payment notify after the refund shows the money as owed again")
	}
	if rs, _ := shop.Store.RefundsForOrder(ctx, o.ID); len(rs) != 1 {
		t.Fatalf("%d refunds after a late resend", len(rs))
	}
}

func TestCancelWhenAlipayUnreachable(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true, Gateway: "http://127.0.0.1:1/gateway.do"})
	gid := shop.Demo(t, "帆布包", 5900, nil)
	b := shop.Browser()
	b.Signup(t, "down@example.com")
	o, _ := b.Buy(t, gid, 1)
	r := b.Post(t, "/orders/"+o.OutTradeNo+"/cancel", nil)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "暂时无法连接支付宝") {
		t.Fatalf("cancel with Alipay down: %d", r.Status)
	}
	if shop.Order(t, o.OutTradeNo).Status != store.StatusUnpaid {
		t.Fatal("cancelled without closing the trade")
	}
	// The expiry worker doesn't close what it couldn't close at Alipay, and says why
	// (RunWorkers then backs off instead of retrying every second).
	shop.Clock.Advance(31 * time.Minute)
	if n, err := shop.Pay.ExpireDue(context.Background()); n != 0 || !errors.Is(err, payment.ErrGatewayDown) {
		t.Fatalf("ExpireDue with Alipay down = %d, %v", n, err)
	}
	if shop.Order(t, o.OutTradeNo).Status != store.StatusUnpaid {
		t.Fatal("expired without closing the trade")
	}
}

func TestExpiryClosesAndReleasesStock(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{OrderTTL: 3 * time.Second})
	stock := int64(3)
	gid := shop.Demo(t, "限量马克杯", 4900, &stock)
	b := shop.Browser()
	b.Signup(t, "exp@example.com")
	untouched, _ := b.Buy(t, gid, 1)
	opened, u := b.Buy(t, gid, 1)
	shop.OpenCashier(t, u.String())
	paidLate, u3 := b.Buy(t, gid, 1)
	shop.OpenCashier(t, u3.String())
	shop.EmuPay(t, paidLate.OutTradeNo, false) // paid, notify lost
	ctx := context.Background()
	if n, _ := shop.Pay.ExpireDue(ctx); n != 0 {
		t.Fatal("expired too early")
	}
	shop.Clock.Advance(4 * time.Second)
	if n, err := shop.Pay.ExpireDue(ctx); n != 3 || err != nil {
		t.Fatalf("ExpireDue = %d, %v", n, err)
	}
	for no, want := range map[string]string{untouched.OutTradeNo: store.StatusClosed, opened.OutTradeNo: store.StatusClosed,
		paidLate.OutTradeNo: store.StatusPaid} {
		if got := shop.Order(t, no).Status; got != want {
			t.Errorf("%s: %s, want %s", no, got, want)
		}
	}
	g, _ := shop.Store.GoodsByID(ctx, gid)
	if *g.Stock != 2 {
		t.Fatalf("stock %d, want 2 (two released, one sold)", *g.Stock)
	}
	if r := b.Get(t, "/orders"); !strings.Contains(r.Body, "已关闭") {
		t.Fatal("orders page lacks 已关闭")
	}
}

func TestStockNoOversell(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	stock := int64(10)
	gid := shop.Demo(t, "限量马克杯", 4900, &stock)
	browsers := make([]*shoptest.Browser, 50)
	for i := range browsers {
		browsers[i] = shop.Browser()
		browsers[i].Signup(t, fmt.Sprintf("rush%d@example.com", i))
		browsers[i].Post(t, "/cart/items", url.Values{"goods_id": {fmt.Sprint(gid)}, "qty": {"1"}})
	}
	var sold, refused atomic.Int32
	var wg sync.WaitGroup
	for _, b := range browsers {
		wg.Go(func() {
			r := b.Post(t, "/checkout", nil)
			switch {
			case r.Status == http.StatusSeeOther:
				sold.Add(1)
			case r.Status == http.StatusConflict && strings.Contains(r.Body, "库存不足"):
				refused.Add(1)
			default:
				t.Errorf("checkout: %d %.200s", r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	g, _ := shop.Store.GoodsByID(context.Background(), gid)
	if sold.Load() != 10 || refused.Load() != 40 || *g.Stock != 0 {
		t.Fatalf("sold %d, refused %d, stock left %d", sold.Load(), refused.Load(), *g.Stock)
	}
}

func TestCartCheckout(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	band := shop.Demo(t, "小米手环", 19900, nil)
	cup := shop.Demo(t, "保温杯", 8990, nil)
	bag := shop.Demo(t, "帆布包", 5900, nil)
	b := shop.Browser()
	b.Signup(t, "cart@example.com")
	add := func(id int64, qty string) shoptest.Response {
		return b.Post(t, "/cart/items", url.Values{"goods_id": {fmt.Sprint(id)}, "qty": {qty}})
	}
	for _, tt := range []struct {
		id     int64
		qty    string
		status int
	}{{band, "1", 303}, {cup, "1", 303}, {cup, "1", 303}, {bag, "1", 303}, {band, "0", 400}, {band, "99", 400},
		{band, "x", 400}, {999, "1", 404}} {
		if r := add(tt.id, tt.qty); r.Status != tt.status {
			t.Fatalf("add %d×%s: %d, want %d", tt.id, tt.qty, r.Status, tt.status)
		}
	}
	if r := b.Post(t, "/cart/items/"+fmt.Sprint(bag)+"/remove", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("remove: %d", r.Status)
	}
	r := b.Get(t, "/cart")
	if !strings.Contains(r.Body, "¥378.80") || strings.Contains(r.Body, "帆布包") {
		t.Fatalf("cart total or lines wrong")
	}
	// A re-price is shown before checkout; the order uses today's price.
	shop.Store.UpdateGoods(context.Background(), cup, 9990, nil, true)
	if r := b.Get(t, "/cart"); !strings.Contains(r.Body, "价格已由 ¥89.90 调整为 ¥99.90") {
		t.Fatal("re-price not shown")
	}
	r = b.Post(t, "/checkout", nil)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("checkout: %d %s", r.Status, r.Body)
	}
	o := shop.OrderFromGateway(t, r.Location)
	items, _ := shop.Store.OrderItems(context.Background(), o.ID)
	if o.Total != 19900+2*9990 || o.Subject != "小米手环 等3件" || len(items) != 2 || items[1].Qty != 2 {
		t.Fatalf("order %+v items %+v", o, items)
	}
	if bizField(t, parseURLT(t, r.Location), "subject") != "小米手环 等3件" {
		t.Fatal("subject not sent to Alipay")
	}
	if r := b.Get(t, "/cart"); !strings.Contains(r.Body, "购物车是空的") {
		t.Fatal("cart not emptied")
	}
	// Sent again (a double tap, back and submit): to the order the first one made.
	if r := b.Post(t, "/checkout", nil); r.Status != http.StatusSeeOther || r.Location != "/orders/"+o.OutTradeNo {
		t.Fatalf("checkout sent twice: %d to %q, want the order made", r.Status, r.Location)
	} else if page := b.Get(t, r.Location).Body; !strings.Contains(page, "已经提交过") {
		t.Fatal("the second checkout isn't told the order was made")
	}
	// Withdrawn goods: shown, and checkout refuses without creating an order.
	add(band, "1")
	shop.Store.UpdateGoods(context.Background(), band, 19900, nil, false)
	if r := b.Get(t, "/cart"); !strings.Contains(r.Body, "已下架") || strings.Contains(r.Body, "去结算") {
		t.Fatal("withdrawn goods not flagged")
	}
	if r := b.Post(t, "/checkout", nil); r.Status != http.StatusConflict || !strings.Contains(r.Body, "已下架") {
		t.Fatalf("checkout with withdrawn goods: %d", r.Status)
	}
	if os, more, _ := shop.Store.ListOrders(context.Background(), o.UserID, "", 10, 0); more || len(os) != 1 {
		t.Fatal("refused checkout created an order")
	}
}

// The cart page sends the total it showed; a price that moved since then is not charged
// silently. Lines are capped at 99 pieces with a message that says so, and a total above
// Alipay's limit for one trade is named as such.
func TestCartConfirmsPriceAndLimits(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	band := shop.Demo(t, "小米手环", 19900, nil)
	b := shop.Browser()
	b.Signup(t, "limits@example.com")
	add := func(id int64, qty string) shoptest.Response {
		return b.Post(t, "/cart/items", url.Values{"goods_id": {fmt.Sprint(id)}, "qty": {qty}})
	}
	add(band, "98")
	if r := add(band, "2"); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "已有 98 件") {
		t.Fatalf("line over 99: %d, want 400 naming the 98 already there", r.Status)
	}
	b.Post(t, "/cart/items/"+fmt.Sprint(band)+"/remove", nil)
	add(band, "1")

	expect := regexp.MustCompile(`name="expect_fen" value="(\d+)"`)
	m := expect.FindStringSubmatch(b.Get(t, "/checkout").Body)
	if m == nil || m[1] != "19900" {
		t.Fatalf("确认订单 carries no shown total: %v", m)
	}
	shop.Store.UpdateGoods(context.Background(), band, 24900, nil, true) // while the shopper looks
	r := b.Post(t, "/checkout", url.Values{"expect_fen": {m[1]}})
	if r.Status != http.StatusSeeOther || r.Location != "/cart" {
		t.Fatalf("checkout after a price change: %d %q, want 303 back to the cart", r.Status, r.Location)
	}
	me, err := shop.Store.UserByEmail(context.Background(), "limits@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if os, _, _ := shop.Store.ListOrders(context.Background(), me.ID, "", 10, 0); len(os) != 0 {
		t.Fatal("an order was created at a price the shopper was not shown")
	}
	page := b.Get(t, "/cart").Body
	if !strings.Contains(page, "价格有变动") || !strings.Contains(page, "价格已由 ¥199.00 调整为 ¥249.00") {
		t.Fatal("the cart does not explain the refused checkout")
	}
	m = expect.FindStringSubmatch(b.Get(t, "/checkout").Body)
	if r := b.Post(t, "/checkout", url.Values{"expect_fen": {m[1]}}); r.Status != http.StatusSeeOther ||
		shop.OrderFromGateway(t, r.Location).Total != 24900 {
		t.Fatalf("checkout at the shown new price: %d %q", r.Status, r.Location)
	}
	if r := b.Post(t, "/checkout", url.Values{"expect_fen": {"abc"}}); r.Status != http.StatusBadRequest {
		t.Fatalf("bad expect_fen: %d", r.Status)
	}

	// Two million yuan × 60 is past Alipay's 100,000,000.00 for one trade.
	gold := shop.Demo(t, "金条", 2_000_000_00, nil)
	if r := b.Post(t, "/purchase/"+fmt.Sprint(gold), url.Values{"qty": {"60"}}); r.Status != http.StatusBadRequest ||
		!strings.Contains(r.Body, "限额") || strings.Contains(r.Body, "数量必须") {
		t.Fatalf("purchase above Alipay's limit: %d", r.Status)
	}
	add(gold, "60")
	if page := b.Get(t, "/cart").Body; !strings.Contains(page, "超过支付宝单笔限额") || strings.Contains(page, "去结算") {
		t.Fatal("cart above the limit not explained, or still offers checkout")
	}
}

// TestPayCancelRace races the buyer paying at the cashier against the shopper
// cancelling and the expiry worker closing: whichever wins, the shop and Alipay agree
// and the order changed once.
func TestPayCancelRace(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "小米手环", 19900, nil)
	b := shop.Browser()
	b.Signup(t, "race@example.com")
	outcomes := map[string]int{}
	for i := 0; i < 15; i++ {
		o, u := b.Buy(t, gid, 1)
		shop.OpenCashier(t, u.String())
		var wg sync.WaitGroup
		wg.Go(func() { shop.EmuPay(t, o.OutTradeNo, true) })
		wg.Go(func() { b.Post(t, "/orders/"+o.OutTradeNo+"/cancel", nil) })
		wg.Go(func() { shop.Pay.Expire(context.Background(), o, "test:expiry") }) // the expiry worker's decision
		wg.Wait()
		shop.Emulator.DeliverDue(context.Background())
		// A payment that lost the race to the cancel is refunded automatically.
		if _, err := shop.Pay.SettleRefunds(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, alipay := shop.Order(t, o.OutTradeNo), shop.EmuTradeOf(t, o.OutTradeNo)
		rs, _ := shop.Store.RefundsForOrder(context.Background(), o.ID)
		switch {
		case got.Status == store.StatusPaid && alipay.Status == "TRADE_SUCCESS" && len(rs) == 0:
		case (got.Status == store.StatusCancelled || got.Status == store.StatusClosed) && alipay.Status == "TRADE_CLOSED" && len(rs) == 0:
			// closed at Alipay before anyone paid
		case (got.Status == store.StatusCancelled || got.Status == store.StatusClosed) && alipay.Status == "TRADE_CLOSED" &&
			len(rs) == 1 && rs[0].Status == store.RefundSucceeded:
			outcomes["refunded"]++ // paid in the open cashier after the cancel
		default:
			t.Fatalf("shop %s, Alipay %s, refunds %+v", got.Status, alipay.Status, rs)
		}
		if n := appliedCount(events(t, shop, o.OutTradeNo)); n != 1 {
			t.Fatalf("%d applied transitions", n)
		}
		outcomes[got.Status]++
	}
	t.Logf("outcomes: %v", outcomes)
}

// The janitors: a shipped order nobody confirmed is received after AUTO_RECEIVE, and
// expired sessions are deleted. Each job runs once per period whoever asks (its lease
// is kept for the period), so instances sharing a database don't all do it each second.
func TestJanitorsAutoReceiveAndPurge(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "台灯", 15900, nil)
	b := shop.Browser()
	b.Signup(t, "janitor@example.com")
	ctx := context.Background()
	ship := func() store.Order {
		o := shop.PaidOrder(t, b, gid, 1)
		if err := shop.Store.Ship(ctx, o.OutTradeNo, "顺丰速运", "SF1"); err != nil {
			t.Fatal(err)
		}
		return o
	}
	raw := shop.Raw(t)
	first, second := ship(), ship()
	if _, err := shop.Store.StartSession(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Eleven days on: past AUTO_RECEIVE (10 days) and the session's 7.
	shop.Clock.Advance(11 * 24 * time.Hour)
	raw.MustExec(t, `UPDATE orders SET shipped_at = ? WHERE id = ?`, store.At(shop.Clock.Now()), second.ID) // shipped just now
	shop.Pay.RunJanitors(ctx)
	if got := shop.Order(t, first.OutTradeNo); got.Fulfilment != store.Received {
		t.Fatalf("shipped 11 days ago with AUTO_RECEIVE 10 days: %s", got.Fulfilment)
	}
	if got := shop.Order(t, second.OutTradeNo); got.Fulfilment != store.Shipped {
		t.Fatalf("shipped just now: %s", got.Fulfilment)
	}
	var expired int
	raw.Get(&expired, `SELECT COUNT(*) FROM sessions WHERE expires_at <= ?`, store.At(shop.Clock.Now()))
	if expired != 0 {
		t.Fatalf("%d expired sessions left after the purge", expired)
	}
	// The second order becomes due, but the job's minute is not over: nobody runs it.
	raw.MustExec(t, `UPDATE orders SET shipped_at = ? WHERE id = ?`, store.At(shop.Clock.Now().Add(-11*24*time.Hour)), second.ID)
	shop.Pay.RunJanitors(ctx)
	if got := shop.Order(t, second.OutTradeNo); got.Fulfilment != store.Shipped {
		t.Fatalf("auto-receive ran twice in its minute: %s", got.Fulfilment)
	}
	shop.Clock.Advance(time.Minute)
	shop.Pay.RunJanitors(ctx)
	if got := shop.Order(t, second.OutTradeNo); got.Fulfilment != store.Received {
		t.Fatalf("auto-receive a minute later: %s", got.Fulfilment)
	}
}
