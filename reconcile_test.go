package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storefront/payment"
	"storefront/shanghai"
	"storefront/shoptest"
	"storefront/store"
)

// `go run . reconcile DATE` against a test shop's emulator (its clock injected): a day
// whose bill isn't made yet is an error saying so; once it is (T+1), the command lists
// the difference planted, a payment missing in the shop, saves the day and succeeds.
func TestReconcileCommand(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "帆布包", 5900, nil)
	b := shop.Browser()
	b.Signup(t, "reconcile@example.com")
	ctx := context.Background()
	shop.PaidOrder(t, b, gid, 1)
	// Paid at Alipay, the notify lost: on the bill, not in the shop's books.
	missed, u := b.Buy(t, gid, 1)
	shop.OpenCashier(t, u.String())
	paid, st := shop.EmuPay(t, missed.OutTradeNo, false)
	if st != 200 || paid.TradeNo == "" {
		t.Fatalf("pay: %d %+v", st, paid)
	}

	// The command runs with the test shop's settings: its database, its keys, and its
	// emulator as the gateway.
	keys := filepath.Join(t.TempDir(), "keys")
	for f, pem := range map[string][]byte{payment.AppPrivateKeyFile: shop.Keys.AppPrivPEM, payment.AppPublicKeyFile: shop.Keys.AppPubPEM,
		payment.SandboxPrivateKeyFile: shop.Keys.AlipayPrivPEM, payment.AlipayPublicKeyFile: shop.Keys.AlipayPubPEM} {
		writeKey(t, filepath.Join(keys, f), pem)
	}
	env := map[string]string{"DB": shop.DSN, "KEYS_DIR": keys, "ALIPAY_GATEWAY": shop.URL + "/sandbox/gateway.do"}
	reconcile := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runReconcile(ctx, args, func(k string) string { return env[k] }, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
		return out.String(), err
	}

	day := shop.Clock.Now().In(shanghai.Location()).Format("2006-01-02")
	if out, err := reconcile(day); err == nil || !strings.Contains(err.Error(), "Alipay has no trade bill for "+day+" yet") {
		t.Fatalf("today's bill: %v, output %q", err, out)
	}
	shop.Clock.Advance(24 * time.Hour)
	out, err := reconcile(day)
	if err != nil {
		t.Fatalf("reconcile %s: %v\n%s", day, err, out)
	}
	if want := day + ": 2 payments and 0 refunds in Alipay's bill — 1 difference:"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, missed.OutTradeNo) {
			line = l
		}
	}
	for _, want := range []string{store.MissingInShop, "payment", "trade " + paid.TradeNo, "alipay ¥59.00"} {
		if !strings.Contains(line, want) {
			t.Errorf("the difference's line %q lacks %q:\n%s", line, want, out)
		}
	}
	rec, err := shop.Store.ReconciliationOf(ctx, day)
	if err != nil || rec.Status != "differences" || rec.Differences != 1 || rec.Payments != 2 {
		t.Fatalf("saved reconciliation %+v %v", rec, err)
	}

	for _, args := range [][]string{{"2026-13-01"}, {"-h"}, {day, day}} {
		if _, err := reconcile(args...); err == nil {
			t.Errorf("reconcile %q succeeded", args)
		}
	}
}
