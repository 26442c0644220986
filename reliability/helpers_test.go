// Package reliability holds the issue-6 suite: a concurrency storm through the
// in-process harness, and crash and graceful-shutdown tests of the real binary.
package reliability

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"storefront/shoptest"
)

// transport is shared by the suite's clients: enough idle connections per host that
// thousands of requests don't each open (and leave in TIME_WAIT) a new one.
var transport = &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}

func newClient(timeout time.Duration) *http.Client {
	return &http.Client{Transport: transport, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// getTrade reads GET /sandbox/api/trades/{no} (same shape as shoptest.EmuTradeOf, but
// returning errors: the suite calls it from goroutines and against the standalone emulator).
func getTrade(c *http.Client, base, no string) (shoptest.EmuTrade, int, error) {
	var t shoptest.EmuTrade
	resp, err := c.Get(base + "/sandbox/api/trades/" + url.PathEscape(no))
	if err != nil {
		return t, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return t, resp.StatusCode, nil
	}
	return t, resp.StatusCode, json.NewDecoder(resp.Body).Decode(&t)
}

// apiPay pays a trade at the emulator; query is "" or "?notify=off".
func apiPay(c *http.Client, base, no, query string) (tradeNo, returnURL string, err error) {
	resp, err := c.Post(base+"/sandbox/api/trades/"+url.PathEscape(no)+"/pay"+query, "application/x-www-form-urlencoded", strings.NewReader(""))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("pay %s: %d %s", no, resp.StatusCode, b)
	}
	var out struct {
		TradeNo   string `json:"trade_no"`
		ReturnURL string `json:"return_url"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", "", err
	}
	return out.TradeNo, out.ReturnURL, nil
}

// openTrade GETs a signed gateway URL: the emulator creates the trade and shows the cashier.
func openTrade(c *http.Client, gatewayURL string) error {
	resp, err := c.Get(gatewayURL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Sandbox-Error") != "" {
		return fmt.Errorf("cashier: %d %s %.200s", resp.StatusCode, resp.Header.Get("X-Sandbox-Error"), b)
	}
	return nil
}
