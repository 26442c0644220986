package sandbox

// Fuzzing the emulator's gateway (issue 6):
//
//	go test -run=^$ -fuzz=FuzzGateway -fuzztime=20s ./sandbox/
//	go test -run=^$ -fuzz=FuzzSignedGateway -fuzztime=20s ./sandbox/
//	go test -run=^$ -fuzz=FuzzPagePayRules -fuzztime=20s ./sandbox/
//
// Whatever arrives, the gateway answers without panicking and without a 5xx.

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newFuzzEmulator(f *testing.F) *Emulator {
	testKeys(f)
	emu, err := New(Config{AppID: testAppID, SellerID: testSellerID, AppPublicKeyPEM: appKeys.pubPKIX,
		PrivateKeyPEM: emuKeys.pkcs1, DBPath: filepath.Join(f.TempDir(), "sandbox.db"), TimeScale: 1,
		Now:        func() time.Time { return time.Date(2025, 3, 1, 10, 0, 0, 0, shanghai) },
		HTTPClient: &http.Client{Timeout: time.Second}, Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { emu.Close() })
	return emu
}

// signedQuery is a page-pay or API request signed with the app's key, as an SDK sends it.
func signedQuery(method, biz string, extra url.Values) url.Values {
	v := url.Values{"app_id": {testAppID}, "method": {method}, "format": {"JSON"}, "charset": {"utf-8"},
		"sign_type": {"RSA2"}, "timestamp": {"2025-03-01 10:00:00"}, "version": {"1.0"}, "biz_content": {biz}}
	for k, vs := range extra {
		v[k] = vs
	}
	sig, err := signBytes(appKeys.key, []byte(requestSignContent(v)))
	if err != nil {
		panic(err)
	}
	v.Set("sign", sig)
	return v
}

const fuzzBiz = `{"out_trade_no":"F1","total_amount":"12.34","subject":"测试","product_code":"FAST_INSTANT_TRADE_PAY"}`

func serve(emu *Emulator, method, target, ct string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://sandbox.test/", nil)
	u, err := url.Parse(target)
	if err != nil {
		return nil
	}
	req.URL = u
	req.RequestURI = target
	if method == http.MethodPost {
		req.Body = httpBody(body)
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", ct)
	}
	w := httptest.NewRecorder()
	emu.ServeHTTP(w, req)
	return w
}

func FuzzGateway(f *testing.F) {
	emu := newFuzzEmulator(f)
	page := signedQuery(pagePayMethod, fuzzBiz, url.Values{"notify_url": {"http://shop.test/check_order"},
		"return_url": {"http://shop.test/show_msg"}}).Encode()
	query := signedQuery("alipay.trade.query", `{"out_trade_no":"F1"}`, nil).Encode()
	for _, s := range []struct {
		query, body, ct string
		post            bool
	}{
		{page, "", "", false},
		{query, "", "", true},
		{"", page, "application/x-www-form-urlencoded", true},
		{"method=alipay.trade.page.pay", "biz_content=%7B", "application/x-www-form-urlencoded", true},
		{"%zz", "", "", false},
		{"method=alipay.trade.query&app_id=" + testAppID + "&sign_type=RSA2&sign=%%%", "", "", false},
		{"charset=gbk&method=alipay.trade.close", "", "", false},
		{"", "--x\r\nContent-Disposition: form-data; name=\"method\"\r\n\r\nalipay.trade.refund\r\n--x--\r\n", "multipart/form-data; boundary=x", true},
		{"", "a=1", "multipart/form-data", true},
		{"method=&method=alipay.trade.query", "method=alipay.trade.page.pay", "application/x-www-form-urlencoded", true},
	} {
		f.Add(s.query, s.body, s.ct, s.post)
	}
	f.Fuzz(func(t *testing.T, query, body, ct string, post bool) {
		method := http.MethodGet
		if post {
			method = http.MethodPost
		}
		target := "/sandbox/gateway.do"
		if query != "" {
			target += "?" + strings.NewReplacer("#", "%23", " ", "%20", "\r", "", "\n", "").Replace(query)
		}
		w := serve(emu, method, target, ct, body)
		if w == nil {
			return
		}
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, target, w.Code, w.Body.String())
		}
	})
}

// FuzzSignedGateway signs whatever the fuzzer makes, so it gets past the signature check
// into the page-pay rules, the trade store and the server APIs.
func FuzzSignedGateway(f *testing.F) {
	emu := newFuzzEmulator(f)
	for _, s := range []struct{ method, biz, notify, ret, charset string }{
		{pagePayMethod, fuzzBiz, "http://shop.test/check_order", "http://shop.test/show_msg", "utf-8"},
		{pagePayMethod, `{"out_trade_no":"F1","total_amount":"12.35","subject":"x","product_code":"FAST_INSTANT_TRADE_PAY"}`, "", "", "utf-8"},
		{pagePayMethod, `{"out_trade_no":"F2","total_amount":12.3,"subject":"x","product_code":"FAST_INSTANT_TRADE_PAY","timeout_express":"1c","time_expire":"2025-03-01 10:00:01"}`, "http://a?b", "", "gbk"},
		{"alipay.trade.query", `{"out_trade_no":"F1"}`, "", "", "utf-8"},
		{"alipay.trade.query", `{"trade_no":"1"}`, "", "", "utf-8"},
		{"alipay.trade.close", `{"out_trade_no":"F1"}`, "", "", "utf-8"},
		{"alipay.trade.refund", `{"out_trade_no":"F1","refund_amount":"1.00","out_request_no":"r1"}`, "", "", "utf-8"},
		{"alipay.trade.refund", `{"out_trade_no":"F1","refund_amount":"-1"}`, "", "", "utf-8"},
		{"alipay.trade.fastpay.refund.query", `{"out_trade_no":"F1","out_request_no":"r1"}`, "", "", "utf-8"},
		{"alipay.trade.query", `null`, "", "", "latin1"},
		{wapPayMethod, `{"out_trade_no":"W1","total_amount":"1.00","subject":"x","product_code":"QUICK_WAP_WAY","quit_url":"http://shop.test/q","time_expire":"2025-03-01 11:00"}`, "http://shop.test/n", "http://shop.test/r", "utf-8"},
		{wapPayMethod, `{"out_trade_no":"W2","total_amount":"1.00","subject":"x","product_code":"QUICK_WAP_WAY","quit_url":"ftp://x#","time_expire":"2025-03-01 11:00:00"}`, "", "", "utf-8"},
		{"alipay.data.dataservice.bill.downloadurl.query", `{"bill_type":"trade","bill_date":"2025-02-28"}`, "", "", "utf-8"},
		{"alipay.data.dataservice.bill.downloadurl.query", `{"bill_type":"signcustomer","bill_date":"2025-13-40"}`, "", "", "utf-8"},
	} {
		f.Add(s.method, s.biz, s.notify, s.ret, s.charset, false)
	}
	f.Fuzz(func(t *testing.T, method, biz, notify, ret, charset string, post bool) {
		extra := url.Values{"charset": {charset}}
		if notify != "" {
			extra.Set("notify_url", notify)
		}
		if ret != "" {
			extra.Set("return_url", ret)
		}
		v := signedQuery(method, biz, extra)
		var w *httptest.ResponseRecorder
		if post {
			w = serve(emu, http.MethodPost, "/sandbox/gateway.do", "application/x-www-form-urlencoded", v.Encode())
		} else {
			w = serve(emu, http.MethodGet, "/sandbox/gateway.do?"+v.Encode(), "", "")
		}
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, biz, w.Code, w.Body.String())
		}
		// Acting on whatever cashier the request opened must not fail either.
		if isPayMethod(method) && w.Header().Get("X-Sandbox-Error") == "" && w.Code == http.StatusOK {
			biz, _ := parseBiz(biz)
			if no := biz["out_trade_no"]; validOutTradeNo(no) {
				for _, path := range []string{"/scan", "/faults", "/pay?notify=off", "/refund", "/refund-notify"} {
					pw := serve(emu, http.MethodPost, "/sandbox/api/trades/"+no+path, "application/x-www-form-urlencoded", "next=gbk&amount=0.01&on=1")
					if pw.Code >= 500 {
						t.Fatalf("%s %s: %d %s", path, no, pw.Code, pw.Body.String())
					}
				}
				for _, path := range []string{"/sandbox/cashier/" + no + "/cancel", "/sandbox/cashier/" + no + "/pay"} {
					if pw := serve(emu, http.MethodPost, path, "application/x-www-form-urlencoded", ""); pw.Code >= 500 {
						t.Fatalf("%s: %d", path, pw.Code)
					}
				}
			}
		}
	})
}

// FuzzPagePayRules fuzzes the field rules directly: no panic, and what passes is within
// Alipay's limits.
func FuzzPagePayRules(f *testing.F) {
	f.Add(fuzzBiz, "http://shop.test/check_order", "http://shop.test/show_msg")
	f.Add(`{"out_trade_no":"F1","total_amount":"100000000.00","subject":"x","product_code":"FAST_INSTANT_TRADE_PAY","timeout_express":"15d"}`, "", "")
	f.Add(`{"out_trade_no":"F1","total_amount":"0.00","subject":"x"}`, "https://x/#a", "ftp://x")
	f.Add(`{"total_amount":1e2}`, "//x", "http://[::1")
	f.Add(`[]`, "", "")
	f.Add(`{"out_trade_no":"W","total_amount":"1.00","subject":"x","product_code":"QUICK_WAP_WAY","quit_url":"http://a/#","time_expire":"2025-03-01 10:00"}`, "", "")
	f.Fuzz(func(t *testing.T, bizJSON, notify, ret string) {
		biz, err := parseBiz(bizJSON)
		if err != nil {
			return
		}
		method := pagePayMethod
		if biz["product_code"] == "QUICK_WAP_WAY" {
			method = wapPayMethod
		}
		in, gerr := validatePay(&gatewayRequest{Method: method,
			Params: url.Values{"notify_url": {notify}, "return_url": {ret}}, Biz: biz})
		if gerr != nil {
			return
		}
		if in.TotalFen < 1 || in.TotalFen > maxAmountFen || formatFen(in.TotalFen) != biz["total_amount"] {
			t.Fatalf("accepted total_amount %q as %d fen", biz["total_amount"], in.TotalFen)
		}
		if in.QuitURL != "" && (in.Method != methodWap || validQuitURL(in.QuitURL) != nil || strings.Contains(in.QuitURL, "#")) {
			t.Fatalf("accepted quit_url %q", in.QuitURL)
		}
		if !validOutTradeNo(in.OutTradeNo) || !validSubject(in.Subject) {
			t.Fatalf("accepted out_trade_no %q / subject %q", in.OutTradeNo, in.Subject)
		}
		_ = (&Emulator{cfg: Config{TimeScale: 1}}).expiresAt(in.Method, time.Now(), in.TimeExpire, in.TimeoutExpress)
	})
}

func httpBody(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }
