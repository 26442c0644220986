package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"storefront/shoptest"
)

// ALIPAY_CERT_MODE=1 in local mode: the emulator issues the three certificates, the
// shop signs with app_cert_sn and alipay_root_cert_sn and checks Alipay's messages by
// alipay_cert_sn; pay (notify and return), query, refund and close all work.
func TestLocalCertificateMode(t *testing.T) {
	dir := t.TempDir()
	addr := shoptest.FreeAddr(t)
	env := map[string]string{"ADDR": addr, "DB": filepath.Join(dir, "shop.db"), "KEYS_DIR": filepath.Join(dir, "keys"),
		"ALIPAY_CERT_MODE": "1", "SANDBOX_TIME_SCALE": "3600"}
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runShop(ctx, func(k string) string { return env[k] }, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + addr
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 300 {
			t.Fatalf("shop did not start: %s", out.String())
		}
		time.Sleep(30 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "certificate mode") {
		t.Fatalf("not in certificate mode: %s", out.String())
	}
	shop := &shoptest.Shop{URL: base}
	b := shop.Browser()
	b.Signup(t, "cert@example.com")
	r := b.Post(t, "/purchase/1", nil)
	u, _ := url.Parse(r.Location)
	if r.Status != http.StatusSeeOther || u.Query().Get("app_cert_sn") == "" || u.Query().Get("alipay_root_cert_sn") == "" {
		t.Fatalf("purchase in certificate mode: %d %s", r.Status, r.Location)
	}
	no := regexp.MustCompile(`"out_trade_no":"([0-9]+)"`).FindStringSubmatch(u.Query().Get("biz_content"))[1]
	shop.OpenCashier(t, r.Location)
	paid, st := shop.EmuPay(t, no, true)
	if st != 200 {
		t.Fatalf("pay: %d", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.Get(t, "/orders/"+no).Body, "待发货") {
		if time.Now().After(deadline) {
			t.Fatal("the notify in certificate mode didn't pay the order")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res := b.Get(t, paid.ReturnURL); res.Status != 200 || !strings.Contains(res.Body, "支付成功") {
		t.Fatalf("return in certificate mode: %d", res.Status)
	}
	// The back office refunds part of it (alipay.trade.refund in certificate mode).
	m := regexp.MustCompile(`dev operator for the back office: (\S+) / (\S+)`).FindStringSubmatch(out.String())
	op := shop.Browser()
	if r := op.Post(t, "/admin/login", url.Values{"email": {m[1]}, "password": {m[2]}}); r.Status != http.StatusSeeOther {
		t.Fatalf("operator login: %d", r.Status)
	}
	if r := op.Post(t, "/admin/orders/"+no+"/refunds", url.Values{"amount": {"10.00"}, "reason": {"证书模式退款"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("refund: %d", r.Status)
	}
	if page := op.Get(t, "/admin/orders/"+no).Body; !strings.Contains(page, "退款成功") {
		t.Fatal("the refund in certificate mode did not succeed")
	}
	// Alipay's quirks, in certificate mode too: each notify fault pays its order by the
	// notify, and escaped_slash's query answer (the notify lost) by the return.
	for _, fault := range []string{"gbk", "v2_sign", "empty_param", "discount", "open_id", "escaped_slash"} {
		r := b.Post(t, "/purchase/1", nil)
		u, _ := url.Parse(r.Location)
		no := regexp.MustCompile(`"out_trade_no":"([0-9]+)"`).FindStringSubmatch(u.Query().Get("biz_content"))[1]
		shop.OpenCashier(t, r.Location)
		shop.Scan(t, no)
		shop.Fault(t, no, fault)
		paid, st := shop.EmuPay(t, no, fault != "escaped_slash")
		if st != 200 {
			t.Fatalf("%s: pay: %d", fault, st)
		}
		if fault == "escaped_slash" {
			if res := b.Get(t, paid.ReturnURL); res.Status != 200 || !strings.Contains(res.Body, "支付成功") {
				t.Fatalf("%s: the return's query in certificate mode: %d", fault, res.Status)
			}
			continue
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(b.Get(t, "/orders/"+no).Body, "待发货") {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the notify in certificate mode didn't pay the order", fault)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A second order: the return page's query, then a cancel (trade.close).
	r = b.Post(t, "/purchase/2", nil)
	no2 := regexp.MustCompile(`%22out_trade_no%22%3A%22([0-9]+)%22`).FindStringSubmatch(r.Location)
	if no2 == nil {
		u2, _ := url.Parse(r.Location)
		no2 = regexp.MustCompile(`"out_trade_no":"([0-9]+)"`).FindStringSubmatch(u2.Query().Get("biz_content"))
	}
	shop.OpenCashier(t, r.Location)
	shop.Scan(t, no2[1])
	if r := b.Post(t, "/orders/"+no2[1]+"/cancel", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("cancel: %d", r.Status)
	}
	if emu := shop.EmuTradeOf(t, no2[1]); emu.Status != "TRADE_CLOSED" {
		t.Fatalf("close in certificate mode: %s", emu.Status)
	}
}
