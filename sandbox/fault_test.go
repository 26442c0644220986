package sandbox

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

func (h *harness) inject(no, fault string) {
	h.t.Helper()
	code, _, body := h.do("POST", h.srv.URL+"/sandbox/api/trades/"+no+"/faults", url.Values{"next": {fault}})
	if code != 200 {
		h.t.Fatalf("inject %s: %d %s", fault, code, body)
	}
}

// paidTrade opens and pays a trade via the API with its notify aimed at tg, with fault set first.
func paidTrade(h *harness, tg *target, no, fault string) {
	h.t.Helper()
	p := trade(no, "12.34")
	p.NotifyURL = tg.srv.URL + "/check_order"
	h.open(p)
	if fault != "" {
		h.inject(no, fault)
	}
	if code, body := h.apiPay(no, ""); code != 200 {
		h.t.Fatalf("pay: %d %s", code, body)
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	t.Run("forge", func(t *testing.T) {
		h := newHarness(t, nil)
		tg := newTarget(t, always(200, "fail"))
		paidTrade(h, tg, "F1", faultForge)
		h.deliver()
		reqs := tg.requests()
		if len(reqs) != 1 {
			t.Fatalf("%d requests", len(reqs))
		}
		if _, err := h.client.DecodeNotification(ctx, reqs[0]); err == nil {
			t.Fatal("forged notify verifies with the emulator key")
		}
		if n := h.notification("F1"); n.Attempts != 1 || n.Status != deliveryPending {
			t.Fatalf("forge not counted as failed: %+v", n)
		}
		h.clock.Advance(4 * time.Minute)
		h.deliver()
		if _, err := h.client.DecodeNotification(ctx, tg.requests()[1]); err != nil {
			t.Fatalf("fault applied twice: %v", err)
		}
	})
	t.Run("wrong_amount", func(t *testing.T) {
		h := newHarness(t, nil)
		tg := newTarget(t, always(200, "success")) // a careless shop: still not counted
		paidTrade(h, tg, "F2", faultWrongAmount)
		h.deliver()
		nt, err := h.client.DecodeNotification(ctx, tg.requests()[0])
		if err != nil || nt.TotalAmount != "12.35" {
			t.Fatalf("wrong_amount: %+v %v", nt, err)
		}
		if h.notification("F2").Status != deliveryPending {
			t.Fatal("bad notify counted as delivered")
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		h := newHarness(t, nil)
		tg := newTarget(t, always(200, "success"))
		paidTrade(h, tg, "F3", faultDuplicate)
		if h.deliver() != 1 {
			t.Fatal("not due")
		}
		reqs := tg.requests()
		if len(reqs) != 2 || reqs[0].Encode() != reqs[1].Encode() {
			t.Fatalf("duplicate: %d requests", len(reqs))
		}
		as, _ := attemptsForTrade(ctx, h.emu.db, "F3")
		if len(as) != 2 || h.notification("F3").Status != deliveryDelivered {
			t.Fatalf("attempts %d", len(as))
		}
	})
	t.Run("drop", func(t *testing.T) {
		h := newHarness(t, nil)
		tg := newTarget(t, always(200, "success"))
		paidTrade(h, tg, "F4", faultDrop)
		h.deliver()
		if len(tg.requests()) != 0 {
			t.Fatal("dropped notify reached the target")
		}
		as, _ := attemptsForTrade(ctx, h.emu.db, "F4")
		if len(as) != 1 || as[0].Error == "" || h.notification("F4").Attempts != 1 {
			t.Fatalf("drop not recorded: %+v", as)
		}
		h.clock.Advance(4 * time.Minute)
		h.deliver()
		if len(tg.requests()) != 1 || h.notification("F4").Status != deliveryDelivered {
			t.Fatal("retry after drop not sent")
		}
	})
	t.Run("delay", func(t *testing.T) {
		h := newHarness(t, nil)
		tg := newTarget(t, always(200, "success"))
		paidTrade(h, tg, "F5", faultDelay)
		h.deliver()
		if len(tg.requests()) != 0 {
			t.Fatal("delayed notify sent now")
		}
		h.clock.Advance(4*time.Minute - time.Millisecond)
		h.deliver()
		if len(tg.requests()) != 0 {
			t.Fatal("delayed notify sent early")
		}
		h.clock.Advance(time.Millisecond)
		h.deliver()
		if len(tg.requests()) != 1 || h.notification("F5").Status != deliveryDelivered {
			t.Fatal("delayed notify not sent at the next step")
		}
	})
	t.Run("bad value", func(t *testing.T) {
		h := newHarness(t, nil)
		h.open(trade("F6", "1.00"))
		code, _, _ := h.do("POST", h.srv.URL+"/sandbox/api/trades/F6/faults", url.Values{"next": {"explode"}})
		if code != 400 {
			t.Fatalf("bad fault: %d", code)
		}
		code, _, _ = h.do("POST", h.srv.URL+"/sandbox/api/trades/NOPE/faults", url.Values{"next": {"drop"}})
		if code != 404 {
			t.Fatalf("unknown trade: %d", code)
		}
	})
}

// TestAutomationAPI checks the JSON shapes and status codes of the automation API.
func TestAutomationAPI(t *testing.T) {
	h := newHarness(t, nil)
	tg := newTarget(t, func(i int) (int, string) {
		if i == 0 {
			return 500, "oops"
		}
		return 200, "success"
	})
	if code, _ := h.apiPay("NOPE", ""); code != 404 {
		t.Fatalf("unknown trade pay: %d", code)
	}
	p := trade("API1", "12.34")
	p.NotifyURL = tg.srv.URL + "/check_order"
	h.open(p)

	// Lost notify: paid, never notified, until /notify creates it.
	code, body := h.apiPay("API1", "?notify=off")
	var pr map[string]string
	if code != 200 || json.Unmarshal([]byte(body), &pr) != nil || len(pr["trade_no"]) != 28 || pr["return_url"] == "" {
		t.Fatalf("pay: %d %s", code, body)
	}
	ru, _ := url.Parse(pr["return_url"])
	if err := h.client.VerifySign(context.Background(), ru.Query()); err != nil {
		t.Fatalf("return_url signature: %v", err)
	}
	code, body = h.apiPay("API1", "")
	var pr2 map[string]string
	if code != 200 || json.Unmarshal([]byte(body), &pr2) != nil || pr2["trade_no"] != pr["trade_no"] {
		t.Fatalf("idempotent pay: %d %s", code, body)
	}
	if h.deliver() != 0 {
		t.Fatal("notify=off notified")
	}
	code, _, _ = h.do("POST", h.srv.URL+"/sandbox/api/trades/API1/notify", url.Values{})
	if code != 202 {
		t.Fatalf("notify: %d", code)
	}
	h.deliver() // 500
	code, _, _ = h.do("POST", h.srv.URL+"/sandbox/api/trades/API1/notify", url.Values{})
	if code != 202 {
		t.Fatalf("notify again: %d", code)
	}
	h.deliver() // success, right away rather than 4m later
	if len(tg.requests()) != 2 {
		t.Fatalf("%d notifies", len(tg.requests()))
	}

	code, _, body = h.do("GET", h.srv.URL+"/sandbox/api/trades/API1", nil)
	var raw map[string]json.RawMessage
	if code != 200 || json.Unmarshal([]byte(body), &raw) != nil {
		t.Fatalf("get: %d %s", code, body)
	}
	for _, k := range []string{"status", "total_amount", "trade_no", "deliveries"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("missing %s in %s", k, body)
		}
	}
	var tj struct {
		Status      string `json:"status"`
		TotalAmount string `json:"total_amount"`
		TradeNo     string `json:"trade_no"`
		Deliveries  []struct {
			At         string `json:"at"`
			HTTPStatus int    `json:"http_status"`
			Body       string `json:"body"`
			Error      string `json:"error"`
		} `json:"deliveries"`
	}
	_ = json.Unmarshal([]byte(body), &tj)
	if tj.Status != "TRADE_SUCCESS" || tj.TotalAmount != "12.34" || tj.TradeNo != pr["trade_no"] || len(tj.Deliveries) != 2 {
		t.Fatalf("trade json: %s", body)
	}
	if d := tj.Deliveries[0]; d.HTTPStatus != 500 || d.Body != "oops" {
		t.Errorf("delivery 0: %+v", d)
	}
	if d := tj.Deliveries[1]; d.HTTPStatus != 200 || d.Body != "success" || d.Error != "" {
		t.Errorf("delivery 1: %+v", d)
	}
	if _, err := time.Parse(time.RFC3339, tj.Deliveries[0].At); err != nil {
		t.Errorf("at %q not RFC3339", tj.Deliveries[0].At)
	}
	if code, _, _ := h.do("GET", h.srv.URL+"/sandbox/api/trades/NOPE", nil); code != 404 {
		t.Errorf("unknown trade get: %d", code)
	}

	// An open cashier is not a trade yet; an unpaid trade has nothing to resend.
	h.open(trade("API2", "1.00"))
	if code, _, _ := h.do("POST", h.srv.URL+"/sandbox/api/trades/API2/notify", url.Values{}); code != 409 {
		t.Errorf("notify of an open cashier: %d", code)
	}
	code, _, body = h.do("GET", h.srv.URL+"/sandbox/api/trades/API2", nil)
	if code != 200 || !json.Valid([]byte(body)) || !containsAll(body, `"deliveries":[]`, `"status":"NOT_CREATED"`, `"total_amount":"1.00"`) {
		t.Errorf("open cashier json: %s", body)
	}
	h.scan("API2")
	if code, _, _ := h.do("POST", h.srv.URL+"/sandbox/api/trades/API2/notify", url.Values{}); code != 409 {
		t.Errorf("notify unpaid: %d", code)
	}
	code, _, body = h.do("GET", h.srv.URL+"/sandbox/api/trades/API2", nil)
	if code != 200 || !json.Valid([]byte(body)) || !containsAll(body, `"deliveries":[]`, `"status":"WAIT_BUYER_PAY"`) {
		t.Errorf("unpaid trade json: %s", body)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
