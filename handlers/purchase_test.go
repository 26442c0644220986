package handlers_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"storefront/payment"
	"storefront/shanghai"
	"storefront/shoptest"
	"storefront/store"
)

func verifyRequest(t *testing.T, pub *rsa.PublicKey, q url.Values) {
	t.Helper()
	if err := shoptest.VerifyRequest(pub, q); err != nil {
		t.Fatalf("gateway URL signature does not verify with the app public key: %v", err)
	}
}

func TestPurchaseRedirectIsSignedPagePay(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true, OrderTTL: 30 * time.Minute})
	gid := shop.Demo(t, "小米手环", 19900, nil)
	b := shop.Browser()
	b.Signup(t, "a@example.com")
	o, u := b.Buy(t, gid, 2)

	if got := u.Scheme + "://" + u.Host + u.Path; got != shop.URL+"/sandbox/gateway.do" {
		t.Fatalf("gateway %s", got)
	}
	pub, err := payment.ParsePublicKey(shop.Keys.AppPubPEM)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	verifyRequest(t, pub, q)
	want := map[string]string{"app_id": shoptest.AppID, "method": "alipay.trade.page.pay", "charset": "utf-8",
		"sign_type": "RSA2", "version": "1.0", "format": "JSON",
		"notify_url": shop.URL + "/check_order", "return_url": shop.URL + "/show_msg"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if _, err := shanghai.Parse(q.Get("timestamp")); err != nil {
		t.Errorf("timestamp %q: %v", q.Get("timestamp"), err)
	}
	var biz map[string]any
	if err := json.Unmarshal([]byte(q.Get("biz_content")), &biz); err != nil {
		t.Fatal(err)
	}
	wantBiz := map[string]any{"out_trade_no": o.OutTradeNo, "total_amount": "398.00", "subject": "小米手环 ×2",
		"product_code": "FAST_INSTANT_TRADE_PAY",
		"time_expire":  shanghai.Format(shop.Clock.Now().Add(30 * time.Minute))}
	for k, v := range wantBiz {
		if biz[k] != v {
			t.Errorf("biz_content %s = %v, want %v", k, biz[k], v)
		}
	}
	// The order stores its own amount and item snapshot, computed by the server.
	if o.Total != 39800 || o.Status != store.StatusUnpaid || len(o.OutTradeNo) != 26 {
		t.Fatalf("order %+v", o)
	}
	items, _ := shop.Store.OrderItems(context.Background(), o.ID)
	if len(items) != 1 || items[0].Name != "小米手环" || items[0].UnitFen != 19900 || items[0].Qty != 2 {
		t.Fatalf("items %+v", items)
	}
	// A later price change doesn't touch the order.
	if err := shop.Store.UpdateGoods(context.Background(), gid, 100, nil, true); err != nil {
		t.Fatal(err)
	}
	items, _ = shop.Store.OrderItems(context.Background(), o.ID)
	if items[0].UnitFen != 19900 || shop.Order(t, o.OutTradeNo).Total != 39800 {
		t.Fatal("snapshot changed with the goods price")
	}
}

func TestPurchaseIgnoresClientPrice(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	gid := shop.Demo(t, "键盘", 39900, nil)
	b := shop.Browser()
	b.Signup(t, "p@example.com")
	r := b.Post(t, "/purchase/1", url.Values{"price": {"0.01"}, "total_amount": {"0.01"}})
	if r.Status != http.StatusSeeOther || gid != 1 {
		t.Fatalf("%d", r.Status)
	}
	if o := shop.OrderFromGateway(t, r.Location); o.Total != 39900 {
		t.Fatalf("total %v", o.Total)
	}
}

func TestBadInputNeverA500(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	shop.Demo(t, "键盘", 39900, nil)
	anon := shop.Browser()
	b := shop.Browser()
	b.Signup(t, "bad@example.com")
	tests := []struct {
		name   string
		do     func() shoptest.Response
		status int
		text   string
	}{
		{"non-numeric goods id", func() shoptest.Response { return anon.Get(t, "/goods/abc") }, 404, "找不到"},
		{"unknown goods id", func() shoptest.Response { return anon.Get(t, "/goods/999") }, 404, "找不到"},
		{"negative goods id", func() shoptest.Response { return anon.Get(t, "/goods/-1") }, 404, ""},
		{"huge goods id", func() shoptest.Response { return anon.Get(t, "/goods/99999999999999999999") }, 404, ""},
		{"unknown route", func() shoptest.Response { return anon.Get(t, "/nope") }, 404, ""},
		{"purchase non-numeric", func() shoptest.Response { return b.Post(t, "/purchase/abc", nil) }, 404, ""},
		{"purchase unknown", func() shoptest.Response { return b.Post(t, "/purchase/999", nil) }, 404, ""},
		{"purchase qty 0", func() shoptest.Response { return b.Post(t, "/purchase/1", url.Values{"qty": {"0"}}) }, 400, "数量"},
		{"purchase qty 100", func() shoptest.Response { return b.Post(t, "/purchase/1", url.Values{"qty": {"100"}}) }, 400, "数量"},
		{"purchase qty text", func() shoptest.Response { return b.Post(t, "/purchase/1", url.Values{"qty": {"两"}}) }, 400, "数量"},
		{"GET purchase", func() shoptest.Response { return b.Get(t, "/purchase/1") }, 405, ""},
		{"GET check_order", func() shoptest.Response { return anon.Get(t, "/check_order") }, 405, ""},
		{"unknown order", func() shoptest.Response { return b.Get(t, "/orders/20261122000000123456789012") }, 404, ""},
		{"overlong order no", func() shoptest.Response { return b.Get(t, "/orders/"+strings.Repeat("9", 300)) }, 404, ""},
		{"signup bad email", func() shoptest.Response {
			return anon.Post(t, "/signup", url.Values{"email": {"not-an-email"}, "password": {"longenough"}})
		}, 400, "邮箱"},
		{"signup short password", func() shoptest.Response {
			return anon.Post(t, "/signup", url.Values{"email": {"x@example.com"}, "password": {"short"}})
		}, 400, "密码"},
		{"signup taken", func() shoptest.Response {
			return anon.Post(t, "/signup", url.Values{"email": {"BAD@example.com"}, "password": {"longenough"}})
		}, 409, "已注册"},
		{"login wrong password", func() shoptest.Response {
			return anon.Post(t, "/login", url.Values{"email": {"bad@example.com"}, "password": {"wrongwrong"}})
		}, 401, "不正确"},
		{"login missing fields", func() shoptest.Response { return anon.Post(t, "/login", url.Values{}) }, 400, ""},
		// A bare return is the shopper leaving the cashier unpaid: back to the orders.
		{"return without params", func() shoptest.Response { return b.Get(t, "/show_msg") }, 303, ""},
		{"return with junk params", func() shoptest.Response { return b.Get(t, "/show_msg?out_trade_no=x") }, 400, "验签失败"},
		{"oversized form", func() shoptest.Response {
			return b.Post(t, "/purchase/1", url.Values{"qty": {"1"}, "pad": {strings.Repeat("x", 100<<10)}})
		}, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.do()
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %.300s", r.Status, tt.status, r.Body)
			}
			if tt.text != "" && !strings.Contains(r.Body, tt.text) {
				t.Fatalf("body lacks %q: %.300s", tt.text, r.Body)
			}
			if strings.Contains(r.Body, "goroutine ") || strings.Contains(r.Body, ".go:") {
				t.Fatal("stack trace in response")
			}
		})
	}
	if n, _, _ := shop.Store.ListOrders(context.Background(), 1, "", 10, 0); len(n) != 0 {
		t.Fatalf("bad input created orders: %+v", n)
	}
}

func TestLoggedOutPurchaseGoesToLogin(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	shop.Demo(t, "键盘", 39900, nil)
	b := shop.Browser()
	r := b.Post(t, "/purchase/1", nil)
	if r.Status != http.StatusSeeOther || r.Location != "/login?next=%2Fgoods%2F1" {
		t.Fatalf("%d %q", r.Status, r.Location)
	}
	// Logging in with next comes back to the goods page.
	shop.Browser().Signup(t, "n@example.com")
	r = b.Post(t, "/login", url.Values{"email": {"n@example.com"}, "password": {"correct horse battery"}, "next": {"/goods/1"}})
	if r.Status != http.StatusSeeOther || r.Location != "/goods/1" {
		t.Fatalf("login: %d %q", r.Status, r.Location)
	}
	r = b.Post(t, "/login", url.Values{"email": {"n@example.com"}, "password": {"correct horse battery"}, "next": {"//evil.example/x"}})
	if r.Location != "/" {
		t.Fatalf("next left the site: %q", r.Location)
	}
}

func TestCSRFRequired(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	shop.Demo(t, "键盘", 39900, nil)
	b := shop.Browser()
	b.Signup(t, "c@example.com")
	for _, form := range []url.Values{{}, {"_csrf": {"forged-token-forged-token-forged"}}} {
		r := b.PostRaw(t, "/purchase/1", form)
		if r.Status != http.StatusForbidden {
			t.Fatalf("purchase with %v: %d", form, r.Status)
		}
	}
	if os, _, _ := shop.Store.ListOrders(context.Background(), 1, "", 10, 0); len(os) != 0 {
		t.Fatal("an order was created without a CSRF token")
	}
	if r := shop.Browser().PostRaw(t, "/signup", url.Values{"email": {"z@example.com"}, "password": {"longenough"}}); r.Status != 403 {
		t.Fatalf("signup without token: %d", r.Status)
	}
	if _, err := shop.Store.UserByEmail(context.Background(), "z@example.com"); err != store.ErrNotFound {
		t.Fatal("user created without a CSRF token")
	}
}

func TestOrdersOwnOnlyNewestFirstPaginated(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	gid := shop.Demo(t, "键盘", 39900, nil)
	alice, bob := shop.Browser(), shop.Browser()
	alice.Signup(t, "alice@example.com")
	bob.Signup(t, "bob@example.com")
	var nos []string
	for i := 0; i < 23; i++ {
		o, _ := alice.Buy(t, gid, 1)
		nos = append(nos, o.OutTradeNo)
		shop.Clock.Advance(time.Second)
	}
	bobOrder, _ := bob.Buy(t, gid, 1)

	r := alice.Get(t, "/orders")
	if r.Status != 200 || !strings.Contains(r.Body, "待付款") || !strings.Contains(r.Body, "¥399.00") {
		t.Fatalf("orders page: %d", r.Status)
	}
	if strings.Contains(r.Body, bobOrder.OutTradeNo) {
		t.Fatal("alice sees bob's order")
	}
	newest, oldest := strings.Index(r.Body, nos[22]), strings.Index(r.Body, nos[3])
	if newest < 0 || oldest < 0 || newest > oldest {
		t.Fatal("page 1 is not newest first")
	}
	if strings.Contains(r.Body, nos[2]) || !strings.Contains(r.Body, "第 1 页") || !strings.Contains(r.Body, "?page=2") {
		t.Fatal("page 1 holds more than 20 orders or lacks the pager")
	}
	if r := alice.Get(t, "/orders?page=2"); !strings.Contains(r.Body, nos[0]) || strings.Contains(r.Body, nos[3]) ||
		strings.Contains(r.Body, "?page=3") || !strings.Contains(r.Body, "?page=1") {
		t.Fatal("page 2 wrong")
	}
	if r := alice.Get(t, "/orders?page=x"); r.Status != 200 {
		t.Fatalf("bad page param: %d", r.Status)
	}
	// Another user's order: 404 on every order route, and nothing changes.
	if r := alice.Get(t, "/orders/"+bobOrder.OutTradeNo); r.Status != 404 {
		t.Fatalf("alice GET bob's order: %d", r.Status)
	}
	for _, action := range []string{"/pay", "/cancel"} {
		if r := alice.Post(t, "/orders/"+bobOrder.OutTradeNo+action, nil); r.Status != 404 {
			t.Fatalf("alice POST bob's order%s: %d", action, r.Status)
		}
	}
	if got := shop.Order(t, bobOrder.OutTradeNo); got.Status != store.StatusUnpaid {
		t.Fatalf("bob's order changed: %s", got.Status)
	}
	if r := bob.Get(t, "/orders/"+bobOrder.OutTradeNo); r.Status != 200 || !strings.Contains(r.Body, bobOrder.OutTradeNo) {
		t.Fatalf("bob's own order: %d", r.Status)
	}
	if r := shop.Browser().Get(t, "/orders"); r.Status != http.StatusSeeOther {
		t.Fatalf("logged out /orders: %d", r.Status)
	}
}

func jsonDecode(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// A session cookie that outlived its database (shop.db deleted and recreated, the session
// key kept) is a logged-out visitor in the new one — not the new user who got the same
// id, and not a 500 on the next purchase.
func TestSessionFromAnEarlierDatabase(t *testing.T) {
	old := shoptest.New(t, shoptest.Options{NoEmulator: true})
	ob := old.Browser()
	ob.Signup(t, "first@example.com")
	oldURL, _ := url.Parse(old.URL)
	cookies := ob.Client.Jar.Cookies(oldURL)

	// The same session keys (shoptest uses fixed ones), a new database file.
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	shop.Demo(t, "键盘", 39900, nil)
	nb := shop.Browser()
	nb.Signup(t, "second@example.com") // gets user id 1, as first@ had in the old file
	u, err := shop.Store.UserByEmail(context.Background(), "second@example.com")
	if err != nil || u.ID != 1 {
		t.Fatalf("second user: %+v %v", u, err)
	}

	b := shop.Browser()
	newURL, _ := url.Parse(shop.URL)
	b.Client.Jar.SetCookies(newURL, cookies)
	if r := b.Get(t, "/orders"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/login") {
		t.Fatalf("old cookie on /orders: %d %q, want a redirect to login", r.Status, r.Location)
	}
	if r := b.Post(t, "/purchase/1", nil); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/login") {
		t.Fatalf("purchase with an old cookie: %d %q", r.Status, r.Location)
	}
	if r := b.Get(t, "/"); r.Status != 200 || strings.Contains(r.Body, "example.com") {
		t.Fatalf("home page with an old cookie shows a user: %d", r.Status)
	}
	// The cookie still works where it was issued.
	if r := ob.Get(t, "/orders"); r.Status != 200 {
		t.Fatalf("old cookie in its own shop: %d", r.Status)
	}
}
