package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"storefront/shoptest"
	"storefront/store"
)

// The shop survives each of Alipay's real-world notify and answer quirks, end to end
// against the emulator: the odd Content-Type, an empty field, GBK, a discounted payment,
// buyer_open_id, a V2-signed notify and return, \/ in a signed query answer.
func TestAlipayQuirksEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		fault string
		check func(t *testing.T, shop *shoptest.Shop, o store.Order)
	}{
		{"", nil}, // Alipay's own Content-Type and User-Agent, on every notify
		{"empty_param", nil},
		{"gbk", nil},
		{"v2_sign", nil},
		{"discount", func(t *testing.T, shop *shoptest.Shop, o store.Order) {
			if !o.BuyerPaid.Valid || o.BuyerPaid.Int64 >= int64(o.Total) || !o.Receipt.Valid {
				t.Fatalf("discounted payment: buyer paid %v receipt %v of %s", o.BuyerPaid, o.Receipt, o.Total)
			}
		}},
		{"open_id", func(t *testing.T, shop *shoptest.Shop, o store.Order) {
			if o.BuyerOpenID == "" || o.BuyerID != "" {
				t.Fatalf("buyer_open_id %q, buyer_id %q", o.BuyerOpenID, o.BuyerID)
			}
		}},
	} {
		name := tc.fault
		if name == "" {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			shop := shoptest.New(t, shoptest.Options{})
			gid := shop.Demo(t, "降噪耳机", 89900, nil)
			b := shop.Browser()
			b.Signup(t, "quirk@example.com")
			o, u := b.Buy(t, gid, 1)
			shop.OpenCashier(t, u.String())
			if tc.fault != "" {
				shop.Scan(t, o.OutTradeNo)
				shop.Fault(t, o.OutTradeNo, tc.fault)
			}
			paid, st := shop.EmuPay(t, o.OutTradeNo, true)
			if st != 200 {
				t.Fatalf("pay: %d", st)
			}
			shop.Emulator.DeliverDue(context.Background())
			emu := shop.EmuTradeOf(t, o.OutTradeNo)
			if len(emu.Deliveries) == 0 || emu.Deliveries[len(emu.Deliveries)-1].Body != "success" {
				t.Fatalf("the shop answered %+v to the %s notify", emu.Deliveries, name)
			}
			got := shop.Order(t, o.OutTradeNo)
			if got.Status != store.StatusPaid || got.TradeNo != paid.TradeNo {
				t.Fatalf("order %s after the %s notify", got.Status, name)
			}
			if r := b.Get(t, paid.ReturnURL); r.Status != 200 || !strings.Contains(r.Body, "支付成功") {
				t.Fatalf("return after %s: %d", name, r.Status)
			}
			if tc.check != nil {
				tc.check(t, shop, got)
			}
		})
	}
}

// A V2-signed return (sign_type inside the signed content) for an order whose notify was
// lost: verified (V1 first, then V2, as Alipay's SDK does), then confirmed by a query
// whose signed answer escapes / as \/.
func TestV2ReturnAndEscapedSlashQuery(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "保温杯", 8990, nil)
	b := shop.Browser()
	b.Signup(t, "v2@example.com")
	o, u := b.Buy(t, gid, 1)
	shop.OpenCashier(t, u.String())
	shop.Scan(t, o.OutTradeNo)
	shop.Fault(t, o.OutTradeNo, "v2_sign")
	shop.Fault(t, o.OutTradeNo, "escaped_slash")
	paid, _ := shop.EmuPay(t, o.OutTradeNo, false) // no notify: the return and its query settle it
	r := b.Get(t, paid.ReturnURL)
	if r.Status != 200 || !strings.Contains(r.Body, "支付成功") {
		t.Fatalf("V2 return with a \\/ query answer: %d", r.Status)
	}
	if got := shop.Order(t, o.OutTradeNo); got.Status != store.StatusPaid {
		t.Fatalf("order %s", got.Status)
	}
}

// TRADE_FINISHED after the refund window: no state change, refunds then shown as no
// longer possible, to the shopper and to the operator.
func TestTradeFinished(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{RefundWindow: 24 * time.Hour})
	gid := shop.Demo(t, "帆布包", 5900, nil)
	b := shop.Browser()
	b.Signup(t, "fin@example.com")
	o := shop.PaidOrder(t, b, gid, 1)
	op := shop.Operator(t, "op@example.com")
	if page := op.Get(t, "/admin/orders/"+o.OutTradeNo).Body; !strings.Contains(page, `id="refund-form"`) {
		t.Fatal("no refund form on a refundable order")
	}
	shop.Clock.Advance(25 * time.Hour)
	ctx := context.Background()
	if _, err := shop.Emulator.FinishDue(ctx); err != nil {
		t.Fatal(err)
	}
	shop.Emulator.DeliverDue(ctx)
	got := shop.Order(t, o.OutTradeNo)
	if got.Status != store.StatusPaid || got.FinishedAt.IsZero() {
		t.Fatalf("after TRADE_FINISHED: %s finished %v", got.Status, got.FinishedAt)
	}
	if page := op.Get(t, "/admin/orders/"+o.OutTradeNo).Body; strings.Contains(page, `id="refund-form"`) || !strings.Contains(page, "退款期限") {
		t.Fatal("the back office still offers a refund after TRADE_FINISHED")
	}
	if r := op.Post(t, "/admin/orders/"+o.OutTradeNo+"/refunds", url.Values{"amount": {"1.00"}, "reason": {"x"}}); r.Status != http.StatusConflict {
		t.Fatalf("refund after TRADE_FINISHED: %d", r.Status)
	}
	if page := b.Get(t, "/orders/"+o.OutTradeNo).Body; strings.Contains(page, "申请退款</summary>") || !strings.Contains(page, "退款期限") {
		t.Fatal("the shopper is still offered 申请退款 after TRADE_FINISHED")
	}
}
