package handlers_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"

	"storefront/payment"
	"storefront/shoptest"
	"storefront/store"
)

var buyerSeq atomic.Int64

// newOrder signs up a shopper and buys goods id once; the cashier is never opened.
func newOrder(t *testing.T, shop *shoptest.Shop, gid int64) store.Order {
	t.Helper()
	b := shop.Browser()
	b.Signup(t, fmt.Sprintf("buyer%d@example.com", buyerSeq.Add(1)))
	o, _ := b.Buy(t, gid, 1)
	return o
}

func TestNotifyTable(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	gid := shop.Demo(t, "小米手环", 19900, nil)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 1024)

	tests := []struct {
		name    string
		mutate  func(o store.Order, v url.Values) string // returns the body to post
		answer  string
		status  string
		verdict string // the event recorded; "" = none
		junk    string // the reason counted as junk instead (a message Alipay didn't sign)
	}{
		{"valid", func(o store.Order, v url.Values) string { return v.Encode() }, "success", store.StatusPaid, store.VerdictApplied, ""},
		{"forged signature", func(o store.Order, v url.Values) string {
			v.Set("sign", shoptest.SignAlipay(otherKey, v))
			return v.Encode()
		}, "fail", store.StatusUnpaid, "", payment.ReasonBadSign},
		{"tampered after signing", func(o store.Order, v url.Values) string {
			v.Set("buyer_logon_id", "someone@else")
			return v.Encode()
		}, "fail", store.StatusUnpaid, "", payment.ReasonBadSign},
		{"alipay_cert_sn in public-key mode", func(o store.Order, v url.Values) string {
			// Even genuinely signed: in public-key mode no message names a certificate.
			v.Set("alipay_cert_sn", "0123456789abcdef0123456789abcdef")
			return shop.Resign(v).Encode()
		}, "fail", store.StatusUnpaid, "", payment.ReasonCertInKeyMode},
		{"wrong app_id", func(o store.Order, v url.Values) string {
			v.Set("app_id", "2021999999999999")
			return shop.Resign(v).Encode()
		}, "fail", store.StatusUnpaid, store.VerdictRejected, ""},
		{"wrong seller_id", func(o store.Order, v url.Values) string {
			v.Set("seller_id", "2088999999999999")
			return shop.Resign(v).Encode()
		}, "fail", store.StatusUnpaid, store.VerdictRejected, ""},
		{"amount off by one fen", func(o store.Order, v url.Values) string {
			v.Set("total_amount", (o.Total - 1).String())
			return shop.Resign(v).Encode()
		}, "fail", store.StatusUnpaid, store.VerdictFlagged, ""},
		{"amount loosely spelled", func(o store.Order, v url.Values) string {
			v.Set("total_amount", o.Total.String()+"0")
			return shop.Resign(v).Encode()
		}, "fail", store.StatusUnpaid, store.VerdictRejected, ""},
		{"TRADE_CLOSED on unpaid order", func(o store.Order, v url.Values) string {
			v.Set("trade_status", "TRADE_CLOSED")
			return shop.Resign(v).Encode()
		}, "success", store.StatusClosed, store.VerdictApplied, ""},
		{"TRADE_CLOSED with amount off by one fen", func(o store.Order, v url.Values) string {
			v.Set("trade_status", "TRADE_CLOSED")
			v.Set("total_amount", (o.Total + 1).String())
			return shop.Resign(v).Encode()
		}, "fail", store.StatusUnpaid, store.VerdictFlagged, ""},
		{"WAIT_BUYER_PAY", func(o store.Order, v url.Values) string {
			v.Set("trade_status", "WAIT_BUYER_PAY")
			return shop.Resign(v).Encode()
		}, "success", store.StatusUnpaid, store.VerdictIgnored, ""},
		{"unknown trade_status", func(o store.Order, v url.Values) string {
			v.Set("trade_status", "TRADE_PENDING")
			return shop.Resign(v).Encode()
		}, "fail", store.StatusUnpaid, store.VerdictRejected, ""},
		{"missing sign", func(o store.Order, v url.Values) string {
			v.Del("sign")
			return v.Encode()
		}, "fail", store.StatusUnpaid, "", payment.ReasonMissingSign},
		{"empty body", func(o store.Order, v url.Values) string { return "" }, "fail", store.StatusUnpaid, "", "unreadable or empty body"},
		{"garbage body", func(o store.Order, v url.Values) string { return "%zz&&==" }, "fail", store.StatusUnpaid, "", "unreadable or empty body"},
		{"empty field kept in body", func(o store.Order, v url.Values) string {
			// Alipay drops empty values when signing; a notify carrying body= must still verify.
			return v.Encode() + "&body="
		}, "success", store.StatusPaid, store.VerdictApplied, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			junkBefore := shop.JunkCount(t, store.SourceNotify, tt.junk)
			o := newOrder(t, shop, gid)
			body := tt.mutate(o, shop.NotifyFor(o, "2026112222001400000000000001"))
			got := shop.PostNotify(t, body, "application/x-www-form-urlencoded; charset=utf-8")
			if got != tt.answer {
				t.Fatalf("answer %q, want %q", got, tt.answer)
			}
			after := shop.Order(t, o.OutTradeNo)
			if after.Status != tt.status {
				t.Fatalf("status %s, want %s", after.Status, tt.status)
			}
			if tt.status == store.StatusUnpaid && after.TradeNo != "" {
				t.Fatalf("trade_no stored on a refused notify: %q", after.TradeNo)
			}
			evs, err := shop.Store.EventsForOrder(context.Background(), o.OutTradeNo)
			if err != nil {
				t.Fatal(err)
			}
			if tt.junk != "" {
				if len(evs) != 0 {
					t.Fatalf("events %+v: a message Alipay didn't sign is counted, never stored in full", evs)
				}
				if got := shop.JunkCount(t, store.SourceNotify, tt.junk); got != junkBefore+1 {
					t.Fatalf("junk %q counted %d times, want %d", tt.junk, got, junkBefore+1)
				}
				return
			}
			if len(evs) != 1 || evs[0].Verdict != tt.verdict || evs[0].Source != store.SourceNotify {
				t.Fatalf("events %+v, want one %s notify event", evs, tt.verdict)
			}
		})
	}
}

func TestNotifyUnknownOrder(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	v := shop.NotifyFor(store.Order{OutTradeNo: "20261122000000999999999999", Total: 100, Subject: "x"}, "1")
	if got := shop.PostNotify(t, v.Encode(), "application/x-www-form-urlencoded"); got != "fail" {
		t.Fatalf("answer %q", got)
	}
	evs, _ := shop.Store.EventsForOrder(context.Background(), "20261122000000999999999999")
	if len(evs) != 1 || evs[0].Verdict != store.VerdictRejected || evs[0].OrderID.Valid {
		t.Fatalf("events %+v", evs)
	}
}

func TestNotifyPaidOrderReplaysAndLateClose(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	o := newOrder(t, shop, shop.Demo(t, "键盘", 39900, nil))
	v := shop.NotifyFor(o, "2026112222001400000000000002")
	for i := 0; i < 3; i++ {
		if got := shop.PostNotify(t, v.Encode(), "application/x-www-form-urlencoded"); got != "success" {
			t.Fatalf("delivery %d: %q", i, got)
		}
	}
	// A TRADE_CLOSED after payment means a full refund somewhere: it never closes the order
	// unconfirmed. Here Alipay can't be asked (no gateway), so the notify is answered fail
	// (Alipay resends it) and the order stays paid.
	v.Set("trade_status", "TRADE_CLOSED")
	shop.Resign(v)
	if got := shop.PostNotify(t, v.Encode(), "application/x-www-form-urlencoded"); got != "fail" {
		t.Fatalf("unconfirmed late close: %q", got)
	}
	after := shop.Order(t, o.OutTradeNo)
	if after.Status != store.StatusPaid || after.TradeNo != "2026112222001400000000000002" || after.Refunded != 0 {
		t.Fatalf("order %+v", after)
	}
	evs, _ := shop.Store.EventsForOrder(context.Background(), o.OutTradeNo)
	verdicts := []string{}
	for _, e := range evs {
		verdicts = append(verdicts, e.Verdict)
	}
	if strings.Join(verdicts, ",") != "applied,duplicate,duplicate" {
		t.Fatalf("verdicts %v", verdicts)
	}
}

func TestNotifyConcurrentDuplicates(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	o := newOrder(t, shop, shop.Demo(t, "耳机", 89900, nil))
	body := shop.NotifyFor(o, "2026112222001400000000000003").Encode()
	var wg sync.WaitGroup
	answers := make([]string, 8)
	for i := range answers {
		wg.Go(func() { answers[i] = shop.PostNotify(t, body, "application/x-www-form-urlencoded") })
	}
	wg.Wait()
	for i, a := range answers {
		if a != "success" {
			t.Fatalf("answer %d = %q", i, a)
		}
	}
	evs, _ := shop.Store.EventsForOrder(context.Background(), o.OutTradeNo)
	applied := 0
	for _, e := range evs {
		if e.Verdict == store.VerdictApplied {
			applied++
		} else if e.Verdict != store.VerdictDuplicate {
			t.Fatalf("unexpected verdict %s", e.Verdict)
		}
	}
	if len(evs) != 8 || applied != 1 {
		t.Fatalf("%d events, %d applied; want 8 events, 1 applied", len(evs), applied)
	}
	if shop.Order(t, o.OutTradeNo).Status != store.StatusPaid {
		t.Fatal("not paid")
	}
}

// gbkNotify encodes and signs v as a GBK notify would be: the signature covers the
// GBK bytes, and the body is percent-encoded GBK.
func gbkNotify(t *testing.T, key *rsa.PrivateKey, v url.Values) string {
	t.Helper()
	return gbkNotifyCharset(t, key, v, "gbk")
}

// gbkNotifyCharset is gbkNotify with the body's charset field set to cs ("" = left out,
// so only the Content-Type header names the encoding).
func gbkNotifyCharset(t *testing.T, key *rsa.PrivateKey, v url.Values, cs string) string {
	t.Helper()
	enc := simplifiedchinese.GBK.NewEncoder()
	g := url.Values{}
	for k, vs := range v {
		s, err := enc.String(vs[0])
		if err != nil {
			t.Fatal(err)
		}
		g.Set(k, s)
	}
	g.Del("charset")
	if cs != "" {
		g.Set("charset", cs)
	}
	g.Set("sign", shoptest.SignAlipay(key, g)) // over the GBK bytes, as Alipay signs them
	return g.Encode()
}

func TestNotifyGBK(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	o := newOrder(t, shop, shop.Demo(t, "保温杯（大号）", 8990, nil))
	v := shop.NotifyFor(o, "2026112222001400000000000004")
	v.Set("subject", o.Subject) // Chinese text: differs between GBK and UTF-8 bytes
	body := gbkNotify(t, shop.Keys.AlipayPriv, v)
	if !strings.Contains(body, "%") {
		t.Fatal("body not encoded")
	}
	if got := shop.PostNotify(t, body, "application/x-www-form-urlencoded; charset=GBK"); got != "success" {
		t.Fatalf("GBK notify: %q", got)
	}
	if shop.Order(t, o.OutTradeNo).Status != store.StatusPaid {
		t.Fatal("GBK notify not applied")
	}
	evs, _ := shop.Store.EventsForOrder(context.Background(), o.OutTradeNo)
	if len(evs) != 1 || !strings.Contains(evs[0].Raw, "保温杯（大号）") {
		t.Fatalf("raw not decoded to UTF-8: %+v", evs)
	}
	// The same GBK bytes read as UTF-8 must not verify (and must not crash).
	o2 := newOrder(t, shop, shop.Demo(t, "帆布包", 5900, nil))
	v2 := shop.NotifyFor(o2, "2026112222001400000000000005")
	bad := strings.Replace(gbkNotify(t, shop.Keys.AlipayPriv, v2), "charset=gbk", "charset=utf-8", 1)
	if got := shop.PostNotify(t, bad, "application/x-www-form-urlencoded"); got != "fail" {
		t.Fatalf("GBK body claiming utf-8: %q", got)
	}
	// No charset field, only the Content-Type header says GBK: honoured too.
	o3 := newOrder(t, shop, shop.Demo(t, "保温杯（小号）", 6990, nil))
	v3 := shop.NotifyFor(o3, "2026112222001400000000000007")
	v3.Set("subject", o3.Subject)
	body3 := gbkNotifyCharset(t, shop.Keys.AlipayPriv, v3, "")
	if strings.Contains(body3, "charset=") {
		t.Fatal("charset field still in the body")
	}
	if got := shop.PostNotify(t, body3, "application/x-www-form-urlencoded; charset=GBK"); got != "success" {
		t.Fatalf("GBK notify named by its Content-Type only: %q", got)
	}
	evs, _ = shop.Store.EventsForOrder(context.Background(), o3.OutTradeNo)
	if len(evs) != 1 || !strings.Contains(evs[0].Raw, "保温杯（小号）") {
		t.Fatalf("raw not decoded from GBK: %+v", evs)
	}
}

// A notify that passes every check but cannot be stored is answered fail — Alipay will
// send it again — and changes nothing.
func TestNotifyStoreFailureAnswersFail(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	o := newOrder(t, shop, shop.Demo(t, "马克杯", 4900, nil))
	restore := shop.Raw(t).FailInserts(t, "payment_events", "disk on fire")
	v := shop.NotifyFor(o, "2026112222001400000000000008")
	if got := shop.PostNotify(t, v.Encode(), "application/x-www-form-urlencoded"); got != "fail" {
		t.Fatalf("notify that could not be stored: %q, want fail", got)
	}
	if got := shop.Order(t, o.OutTradeNo); got.Status != store.StatusUnpaid || got.TradeNo != "" {
		t.Fatalf("order %s %q after a failed store", got.Status, got.TradeNo)
	}
	restore()
	if got := shop.PostNotify(t, v.Encode(), "application/x-www-form-urlencoded"); got != "success" {
		t.Fatalf("the resend after recovery: %q", got)
	}
}

func TestNotifyBodyLimit(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	o := newOrder(t, shop, shop.Demo(t, "马克杯", 4900, nil))
	v := shop.NotifyFor(o, "2026112222001400000000000006")
	v.Set("body", strings.Repeat("x", 70<<10))
	shop.Resign(v)
	if got := shop.PostNotify(t, v.Encode(), "application/x-www-form-urlencoded"); got != "fail" {
		t.Fatalf("oversized notify: %q", got)
	}
	if shop.Order(t, o.OutTradeNo).Status != store.StatusUnpaid {
		t.Fatal("oversized notify applied")
	}
	resp, err := http.Get(shop.URL + "/check_order")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /check_order: %d", resp.StatusCode)
	}
}

// A return's signed query string sits in the shopper's browser history. Posted to the
// notify URL, any number of times, it is refused and only counted, like junk: it used
// to be stored in full each time (600 posts, 600 rows).
func TestSignedReturnPostedAsNotifyIsJunk(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	b := shop.Browser()
	b.Signup(t, "replay@example.com")
	o, u := b.Buy(t, shop.Demo(t, "键盘", 39900, nil), 1)
	shop.OpenCashier(t, u.String())
	paid, st := shop.EmuPay(t, o.OutTradeNo, true)
	if st != http.StatusOK || paid.ReturnURL == "" {
		t.Fatalf("pay: %d, return URL %q", st, paid.ReturnURL)
	}
	shop.Emulator.DeliverDue(context.Background())
	ret, err := url.Parse(paid.ReturnURL)
	if err != nil {
		t.Fatal(err)
	}
	raw := shop.Raw(t)
	var before, after, counted int
	if err := raw.Get(&before, `SELECT COUNT(*) FROM payment_events`); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if got := shop.PostNotify(t, ret.RawQuery, "application/x-www-form-urlencoded"); got != "fail" {
			t.Fatalf("a return posted as a notify answered %q, want fail", got)
		}
	}
	if err := shop.Store.FlushJunk(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw.Get(&after, `SELECT COUNT(*) FROM payment_events`)
	raw.Get(&counted, `SELECT COALESCE(SUM(count), 0) FROM junk_counts WHERE reason LIKE 'signed, but not a notify%'`)
	if after != before || counted != 50 {
		t.Fatalf("50 posted returns: payment_events %d → %d, counted as junk %d; want no rows and 50 counted", before, after, counted)
	}
	if got := shop.Order(t, o.OutTradeNo); got.Status != store.StatusPaid {
		t.Fatalf("order is %s", got.Status)
	}
}
