package sandbox

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/smartwalle/alipay/v3"
	"golang.org/x/text/encoding/simplifiedchinese"
)

func TestSignContentRules(t *testing.T) {
	v := url.Values{"b": {"2"}, "a": {"1"}, "empty": {""}, "sign": {"x"}, "sign_type": {"RSA2"}, "c": {"a b&c"}}
	if got := requestSignContent(v); got != "a=1&b=2&c=a b&c&sign_type=RSA2" {
		t.Errorf("request rule: %q", got)
	}
	if got := notifySignContent(v); got != "a=1&b=2&c=a b&c" {
		t.Errorf("notify rule: %q", got)
	}
	testKeys(t)
	for _, k := range [][]byte{emuKeys.pkcs1, emuKeys.pkcs8} {
		if _, err := parsePrivateKey(k); err != nil {
			t.Error(err)
		}
	}
	// Alipay's console hands out bare base64 without PEM armour.
	body := strings.Join(strings.Split(string(appKeys.pubPKIX), "\n")[1:], "")
	body = strings.TrimSuffix(body, "-----END PUBLIC KEY-----")
	if _, err := parsePublicKey([]byte(body)); err != nil {
		t.Errorf("bare base64 public key: %v", err)
	}
	if _, err := parsePrivateKey([]byte("garbage")); err == nil {
		t.Error("garbage key accepted")
	}
}

// TestGBKRequest: a GBK request is verified over its raw bytes, then decoded.
func TestGBKRequest(t *testing.T) {
	h := newHarness(t, nil)
	enc := func(s string) string {
		b, err := simplifiedchinese.GBK.NewEncoder().String(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v := url.Values{
		"app_id": {testAppID}, "method": {"alipay.trade.page.pay"}, "charset": {"gbk"}, "sign_type": {"RSA2"},
		"timestamp": {time.Now().In(shanghai).Format(alipayTime)}, "version": {"1.0"}, "format": {"JSON"},
		"return_url":  {"http://shop.test/show_msg"},
		"biz_content": {enc(`{"out_trade_no":"GBK1","total_amount":"8.00","subject":"中文商品","product_code":"FAST_INSTANT_TRADE_PAY"}`)},
	}
	sig, err := signBytes(appKeys.key, []byte(requestSignContent(v)))
	if err != nil {
		t.Fatal(err)
	}
	v.Set("sign", sig)
	code, hdr, body := h.do("POST", h.srv.URL+"/sandbox/gateway.do", v)
	if code != 200 || hdr.Get("X-Sandbox-Error") != "" || !strings.Contains(body, "中文商品") {
		t.Fatalf("gbk page pay: %d %q", code, hdr.Get("X-Sandbox-Error"))
	}
	h.scan("GBK1")
	q, err := h.client.TradeQuery(context.Background(), alipay.TradeQuery{OutTradeNo: "GBK1"})
	if err != nil || q.IsFailure() || q.Subject != "中文商品" {
		t.Fatalf("query: %+v %v", q, err)
	}
}
