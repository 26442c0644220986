package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"storefront/shoptest"
)

// A shopper whose return fails its check reads plain words: what happened, their order's
// number, not to pay twice, and the way to the order. The technical reason is not shown.
func TestFailurePagesSpeakToTheShopper(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "保温杯", 8990, nil)
	b := shop.Browser()
	b.Signup(t, "plain@example.com")
	o, u := b.Buy(t, gid, 1)
	shop.OpenCashier(t, u.String())
	paid, _ := shop.EmuPay(t, o.OutTradeNo, false)
	q := mustParseQuery(t, paid.ReturnURL)
	q.Set("total_amount", "0.01") // changed after signing
	forged := "/show_msg?" + q.Encode()

	r := b.Get(t, forged)
	if r.Status != http.StatusBadRequest {
		t.Fatalf("forged return: %d", r.Status)
	}
	for _, want := range []string{o.OutTradeNo, `href="/orders/` + o.OutTradeNo + `"`, "请勿重复支付", "联系客服", "验签失败"} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("the owner's failure page lacks %q", want)
		}
	}
	for _, jargon := range []string{"这不是支付宝签发", "signature", "sign"} {
		if strings.Contains(strings.ToLower(textOf(r.Body)), jargon) {
			t.Errorf("the failure page shows developer words %q", jargon)
		}
	}
	// Someone else following the same URL learns nothing about the order.
	other := shop.Browser()
	other.Signup(t, "other@example.com")
	if r := other.Get(t, forged); r.Status != http.StatusBadRequest || strings.Contains(r.Body, o.OutTradeNo) {
		t.Fatalf("another shopper's failure page names the order: %d", r.Status)
	}
	// Paying a paid order again: said plainly, with the way back to it.
	b.Get(t, paid.ReturnURL) // the query settles it
	r = b.Post(t, "/orders/"+o.OutTradeNo+"/pay", url.Values{})
	if r.Status != http.StatusConflict || !strings.Contains(r.Body, "已支付，请勿重复支付") || !strings.Contains(r.Body, o.OutTradeNo) {
		t.Fatalf("pay again on a paid order: %d", r.Status)
	}
}

// textOf is the page's visible text, roughly: tags removed.
func textOf(html string) string {
	var b strings.Builder
	in := false
	for _, r := range html {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}
