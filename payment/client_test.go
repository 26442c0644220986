package payment

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/smartwalle/alipay/v3"
)

// In production, smartwalle downloads the certificate of any alipay_cert_sn a response
// names that it doesn't know (alipay.open.app.alipaycert.download), unverified. The
// shop's client never asks for one: the answer is refused, and the gateway hears only
// the call that was made.
func TestProductionClientNeverDownloadsACertificate(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	var mu sync.Mutex
	var methods []string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		methods = append(methods, r.Form.Get("method"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.Write([]byte(`{"alipay_trade_query_response":{"code":"10000","msg":"Success","out_trade_no":"X","trade_status":"TRADE_SUCCESS"},` +
			`"alipay_cert_sn":"0123456789abcdef0123456789abcdef","sign":"c2lnbg=="}`))
	}))
	defer gw.Close()
	c, err := NewClient(ClientOptions{AppID: "2021000000000001", AppPrivateKey: priv, AlipayPublicKey: pub,
		Production: true, Gateway: gw.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.TradeQuery(context.Background(), alipay.TradeQuery{OutTradeNo: "X"}); err == nil {
		t.Fatal("an answer signed under an unknown certificate was accepted")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(methods) != 1 || methods[0] != "alipay.trade.query" {
		t.Fatalf("the gateway was asked %q, want only alipay.trade.query", methods)
	}
}
