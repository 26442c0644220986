package shoptest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"storefront/store"
)

// OpenCashier fetches a gateway URL as the shopper's browser would. As at Alipay, that
// alone creates no trade: until the buyer acts (Scan, or paying) query and close answer
// ACQ.TRADE_NOT_EXIST, and the open cashier stays payable until time_expire.
func (s *Shop) OpenCashier(t testing.TB, gatewayURL string) string {
	t.Helper()
	resp, err := http.Get(gatewayURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("X-Sandbox-Error") != "" || !strings.Contains(string(b), "确认付款") {
		t.Fatalf("cashier page: %d %s %.300s", resp.StatusCode, resp.Header.Get("X-Sandbox-Error"), b)
	}
	return string(b)
}

// Scan is the buyer logging in on the open cashier (scanning its code): the trade now
// exists at the emulator, WAIT_BUYER_PAY.
func (s *Shop) Scan(t testing.TB, outTradeNo string) {
	t.Helper()
	resp, err := http.Post(s.URL+"/sandbox/api/trades/"+outTradeNo+"/scan", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scan %s: %d", outTradeNo, resp.StatusCode)
	}
}

// Paid is the emulator's answer to the pay API.
type Paid struct {
	TradeNo   string `json:"trade_no"`
	ReturnURL string `json:"return_url"`
}

// EmuPay pays a trade as the sandbox buyer; notify=false loses the notify.
func (s *Shop) EmuPay(t testing.TB, outTradeNo string, notify bool) (Paid, int) {
	t.Helper()
	u := s.URL + "/sandbox/api/trades/" + outTradeNo + "/pay"
	if !notify {
		u += "?notify=off"
	}
	resp, err := http.Post(u, "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p Paid
	json.NewDecoder(resp.Body).Decode(&p)
	return p, resp.StatusCode
}

// EmuTrade is the emulator's view of a trade.
type EmuTrade struct {
	Status      string `json:"status"`
	TotalAmount string `json:"total_amount"`
	TradeNo     string `json:"trade_no"`
	Deliveries  []struct {
		At         string `json:"at"`
		HTTPStatus int    `json:"http_status"`
		Body       string `json:"body"`
		Error      string `json:"error"`
	} `json:"deliveries"`
	RefundedAmount string `json:"refunded_amount"`
	Refunds        []struct {
		OutRequestNo string `json:"out_request_no"`
		Amount       string `json:"amount"`
	} `json:"refunds"`
}

// EmuTradeOf reads a trade from the emulator's automation API (status 404 → zero value).
func (s *Shop) EmuTradeOf(t testing.TB, outTradeNo string) EmuTrade {
	t.Helper()
	resp, err := http.Get(s.URL + "/sandbox/api/trades/" + outTradeNo)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr EmuTrade
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// Emu posts form to the emulator's automation API route for a trade (faults, refund,
// refund-notify, …) and returns the status and body.
func (s *Shop) Emu(t testing.TB, outTradeNo, action string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(s.URL+"/sandbox/api/trades/"+outTradeNo+"/"+action, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Fault sets the emulator's fault for the trade's next delivery or call.
func (s *Shop) Fault(t testing.TB, outTradeNo, fault string) {
	t.Helper()
	if st, body := s.Emu(t, outTradeNo, "faults", url.Values{"next": {fault}}); st != http.StatusOK {
		t.Fatalf("fault %s on %s: %d %s", fault, outTradeNo, st, body)
	}
}

// PaidOrder buys goodsID as b and pays it at the emulator, notify delivered: a paid order.
func (s *Shop) PaidOrder(t testing.TB, b *Browser, goodsID int64, qty int) store.Order {
	t.Helper()
	o, u := b.Buy(t, goodsID, qty)
	s.OpenCashier(t, u.String())
	if _, st := s.EmuPay(t, o.OutTradeNo, true); st != http.StatusOK {
		t.Fatalf("pay %s: %d", o.OutTradeNo, st)
	}
	s.Emulator.DeliverDue(context.Background())
	o = s.Order(t, o.OutTradeNo)
	if o.Status != store.StatusPaid {
		t.Fatalf("order %s is %s after paying", o.OutTradeNo, o.Status)
	}
	return o
}
