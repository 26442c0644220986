package shoptest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// OpenCashier fetches a gateway URL as the shopper's browser would, which creates the
// trade at the emulator (as at Alipay, a trade exists once its cashier page is shown).
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
