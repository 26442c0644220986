package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// payWithTarget opens a trade whose notify_url is tg and pays it through the cashier.
func payWithTarget(h *harness, no string, notifyURL string) string {
	h.t.Helper()
	p := trade(no, "12.34")
	p.NotifyURL = notifyURL
	p.PassbackParams = "order%3D1"
	p.Body = ""
	h.open(p)
	code, hdr, _ := h.do("POST", h.srv.URL+"/sandbox/cashier/"+no+"/pay", url.Values{})
	if code != http.StatusSeeOther {
		h.t.Fatalf("cashier pay: %d", code)
	}
	return hdr.Get("Location")
}

func (h *harness) notification(no string) notificationRow {
	h.t.Helper()
	var n notificationRow
	if err := h.emu.db.Get(&n, `SELECT * FROM notifications WHERE out_trade_no=? ORDER BY id DESC LIMIT 1`, no); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// TestReturnAndNotifySignatures: both verify with smartwalle, the return carries no
// trade_status, the notify has no empty field and keeps its notify_id across resends.
func TestReturnAndNotifySignatures(t *testing.T) {
	h := newHarness(t, nil)
	tg := newTarget(t, func(i int) (int, string) {
		if i == 0 {
			return 200, "fail"
		}
		return 200, "success"
	})
	loc := payWithTarget(h, "SIG1", tg.srv.URL+"/check_order")
	ru, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, "http://shop.test/show_msg?") {
		t.Fatalf("return location %q", loc)
	}
	rv := ru.Query()
	if err := h.client.VerifySign(context.Background(), rv); err != nil {
		t.Fatalf("return signature: %v", err)
	}
	if rv.Has("trade_status") {
		t.Error("return carries trade_status")
	}
	for _, k := range []string{"method", "out_trade_no", "trade_no", "total_amount", "seller_id", "app_id", "auth_app_id", "charset", "version", "timestamp", "sign_type", "sign"} {
		if rv.Get(k) == "" {
			t.Errorf("return lacks %s", k)
		}
	}
	if rv.Get("method") != "alipay.trade.page.pay.return" {
		t.Errorf("method %q", rv.Get("method"))
	}

	if n := h.deliver(); n != 1 {
		t.Fatalf("delivered %d", n)
	}
	h.clock.Advance(4 * time.Minute)
	if n := h.deliver(); n != 1 {
		t.Fatalf("retry delivered %d", n)
	}
	reqs := tg.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d notifies", len(reqs))
	}
	for _, v := range reqs {
		nt, err := h.client.DecodeNotification(context.Background(), v)
		if err != nil {
			t.Fatalf("notify signature: %v", err)
		}
		if nt.TradeStatus != "TRADE_SUCCESS" || nt.TotalAmount != "12.34" || nt.SellerId != testSellerID || nt.AppId != testAppID || nt.PassbackParams != "order%3D1" {
			t.Errorf("notify fields: %+v", nt)
		}
		for k, vs := range v {
			if len(vs) != 1 || vs[0] == "" {
				t.Errorf("empty or repeated field %s=%q", k, vs)
			}
		}
		for _, k := range []string{"notify_time", "notify_type", "notify_id", "buyer_id", "buyer_logon_id", "gmt_create", "gmt_payment", "fund_bill_list", "receipt_amount", "invoice_amount", "buyer_pay_amount", "point_amount", "subject", "seller_email"} {
			if v.Get(k) == "" {
				t.Errorf("notify lacks %s", k)
			}
		}
		if v.Has("body") {
			t.Error("empty body sent")
		}
		var fb []map[string]string
		if err := json.Unmarshal([]byte(v.Get("fund_bill_list")), &fb); err != nil || len(fb) != 1 {
			t.Errorf("fund_bill_list %q", v.Get("fund_bill_list"))
		}
	}
	if reqs[0].Get("notify_id") != reqs[1].Get("notify_id") {
		t.Error("notify_id changed across resends")
	}
	// Alipay's transport, exactly: its odd Content-Type (with "text/html" in the middle)
	// and an old browser's User-Agent.
	for i := range reqs {
		if ct := tg.ctypes[i]; ct != "application/x-www-form-urlencoded; text/html; charset=UTF-8" {
			t.Errorf("content type %q", ct)
		}
		if ua := tg.uas[i]; ua != "Mozilla/4.0" {
			t.Errorf("user agent %q", ua)
		}
	}
	if h.notification("SIG1").Status != deliveryDelivered {
		t.Error("not marked delivered")
	}
	if h.deliver() != 0 {
		t.Error("delivered after success")
	}
}

// alipaySchedule is Alipay's published notify schedule (docs/payments.md, "The notify"), written out here
// rather than read from retryIntervals, so a change to the table fails this test.
var alipaySchedule = []time.Duration{0, 4 * time.Minute, 14 * time.Minute, 24 * time.Minute,
	84 * time.Minute, 204 * time.Minute, 564 * time.Minute, 1464 * time.Minute} // offsets from payment

func TestDeliveryScheduleIsAlipays(t *testing.T) {
	if maxAttempts != 8 || len(retryIntervals) != 7 {
		t.Fatalf("%d attempts, %d intervals; Alipay notifies 8 times", maxAttempts, len(retryIntervals))
	}
	h := newHarness(t, func(cfg *Config) { cfg.TimeScale = 60 }) // a minute per second
	tg := newTarget(t, always(200, "fail"))
	start := h.clock.Now()
	payWithTarget(h, "ALI", tg.srv.URL+"/check_order")
	for i, off := range alipaySchedule {
		if i > 0 {
			h.clock.Advance(start.Add(off/60).Sub(h.clock.Now()) - time.Millisecond)
			if h.deliver() != 0 {
				t.Fatalf("attempt %d before %v", i+1, off)
			}
			h.clock.Advance(time.Millisecond)
		}
		if n := h.deliver(); n != 1 {
			t.Fatalf("attempt %d not sent at %v (scaled ÷60)", i+1, off)
		}
	}
	h.clock.Advance(48 * time.Hour)
	if h.deliver() != 0 || len(tg.requests()) != 8 {
		t.Fatalf("%d requests, want exactly 8", len(tg.requests()))
	}
}

// TestDeliverySchedule: failures of every kind retry at 0, 4m, 10m, 10m, 1h, 2h, 6h, 15h,
// then give up; "success" stops it, and only exactly "success" counts.
func TestDeliverySchedule(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	refused := closed.URL + "/check_order"
	closed.Close()
	for _, c := range []struct {
		name   string
		scale  float64
		answer func(int) (int, string)
		url    string
	}{
		{"fail", 1, always(200, "fail"), ""},
		{"500", 1, always(500, "success"), ""},
		{"success newline", 1, always(200, "success\n"), ""},
		{"SUCCESS", 3600, always(200, "SUCCESS"), ""},
		{"refused", 3600, nil, refused},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *Config) { cfg.TimeScale = c.scale })
			notifyTo := c.url
			var tg *target
			if notifyTo == "" {
				tg = newTarget(t, c.answer)
				notifyTo = tg.srv.URL + "/check_order"
			}
			payWithTarget(h, "SCHED", notifyTo)
			for i := 0; i < maxAttempts; i++ {
				if i > 0 {
					step := h.emu.scaled(retryIntervals[i-1]).Milliseconds()
					h.clock.Advance(time.Duration(step-1) * time.Millisecond)
					if n := h.deliver(); n != 0 {
						t.Fatalf("attempt %d sent early", i+1)
					}
					h.clock.Advance(time.Millisecond)
				}
				if n := h.deliver(); n != 1 {
					t.Fatalf("attempt %d: delivered %d", i+1, n)
				}
				n := h.notification("SCHED")
				if n.Attempts != i+1 {
					t.Fatalf("attempts %d, want %d", n.Attempts, i+1)
				}
				if i < maxAttempts-1 {
					want := h.clock.Now().UnixMilli() + h.emu.scaled(retryIntervals[i]).Milliseconds()
					if n.Status != deliveryPending || n.NextAt != want {
						t.Fatalf("after attempt %d: %s next %d want %d", i+1, n.Status, n.NextAt, want)
					}
				}
			}
			if st := h.notification("SCHED").Status; st != deliveryGaveUp {
				t.Fatalf("status %s, want gave_up", st)
			}
			h.clock.Advance(48 * time.Hour)
			if h.deliver() != 0 {
				t.Fatal("sent after giving up")
			}
			if tg != nil && len(tg.requests()) != maxAttempts {
				t.Fatalf("%d requests", len(tg.requests()))
			}
			as, _ := attemptsForTrade(context.Background(), h.emu.db, "SCHED")
			if len(as) != maxAttempts {
				t.Fatalf("%d attempts recorded", len(as))
			}
			if c.url != "" && as[0].Error == "" {
				t.Error("refused connection: no error recorded")
			}
		})
	}
	t.Run("stops on success", func(t *testing.T) {
		h := newHarness(t, nil)
		tg := newTarget(t, func(i int) (int, string) {
			if i < 2 {
				return 200, "fail"
			}
			return 200, "success"
		})
		payWithTarget(h, "OK3", tg.srv.URL)
		h.deliver()
		h.clock.Advance(4 * time.Minute)
		h.deliver()
		h.clock.Advance(10 * time.Minute)
		h.deliver()
		h.clock.Advance(30 * time.Hour)
		if h.deliver() != 0 || len(tg.requests()) != 3 || h.notification("OK3").Status != deliveryDelivered {
			t.Fatalf("requests %d, status %s", len(tg.requests()), h.notification("OK3").Status)
		}
	})
}

// TestDeliverySurvivesRestart: a queued notify is still sent by a new emulator on the same file.
func TestDeliverySurvivesRestart(t *testing.T) {
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	payWithTarget(h, "RESTART", tg.srv.URL)
	if err := h.emu.Close(); err != nil {
		t.Fatal(err)
	}
	emu2, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer emu2.Close()
	if n, err := emu2.DeliverDue(context.Background()); n != 1 || err != nil {
		t.Fatalf("after restart: %d %v", n, err)
	}
	if len(tg.requests()) != 1 {
		t.Fatal("not delivered")
	}
}

// TestRunDelivers: the background loop sends the first attempt promptly and stops on cancel.
func TestRunDelivers(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Now = nil })
	tg := newTarget(t, always(200, "success"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.emu.Run(ctx) }()
	payWithTarget(h, "RUN1", tg.srv.URL)
	deadline := time.Now().Add(3 * time.Second)
	for len(tg.requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return on cancel")
	}
	if len(tg.requests()) != 1 {
		t.Fatalf("%d requests", len(tg.requests()))
	}
}
