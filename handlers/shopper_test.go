package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"storefront/money"
	"storefront/shoptest"
	"storefront/store"
)

var regexpExpect = regexp.MustCompile(`name="expect_fen" value="(\d+)"`)

func address(name, phone, region, detail string) url.Values {
	return url.Values{"name": {name}, "phone": {phone}, "region": {region}, "detail": {detail}}
}

// The address book validates every field, keeps one default, and is its owner's only.
func TestAddressBook(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	b := shop.Browser()
	b.SignupNoAddress(t, "addr@example.com")
	for name, form := range map[string]url.Values{
		"empty name":       address("", "13800138000", "浙江省 杭州市", "文三路 100 号"),
		"long name":        address(strings.Repeat("张", 21), "13800138000", "浙江省 杭州市", "文三路 100 号"),
		"landline":         address("张三", "057188888888", "浙江省 杭州市", "文三路 100 号"),
		"12 not a mobile":  address("张三", "12800138000", "浙江省 杭州市", "文三路 100 号"),
		"ten digits":       address("张三", "1380013800", "浙江省 杭州市", "文三路 100 号"),
		"no region":        address("张三", "13800138000", "", "文三路 100 号"),
		"short detail":     address("张三", "13800138000", "浙江省 杭州市", "文三路"),
		"long detail":      address("张三", "13800138000", "浙江省 杭州市", strings.Repeat("路", 121)),
		"control in name":  address("张\x00三", "13800138000", "浙江省 杭州市", "文三路 100 号"),
		"script as a name": address("<script>alert(1)</script>", "13800138000", "浙江省 杭州市", "文三路 100 号"),
	} {
		r := b.Post(t, "/addresses", form)
		if name == "script as a name" {
			// Allowed text (25 characters is too long anyway) — and never rendered as markup.
			if strings.Contains(r.Body, "<script>alert") {
				t.Fatal("an address field was rendered as markup")
			}
			continue
		}
		if r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, r.Status)
		}
	}
	b.AddAddress(t, address(" 李四 ", "138 0013 8000", "上海市  浦东新区", "世纪大道 1 号"))
	b.AddAddress(t, address("王五", "+8613912345678", "北京市 海淀区", "中关村大街 27 号"))
	as, _ := shop.Store.Addresses(context.Background(), 1)
	if len(as) != 2 || !as[0].Default || as[0].Name != "李四" || as[0].Phone != "13800138000" || as[0].Region != "上海市 浦东新区" {
		t.Fatalf("addresses %+v: the first one is the default, fields normalised", as)
	}
	if as[1].Phone != "13912345678" {
		t.Fatalf("+86 not stripped: %q", as[1].Phone)
	}
	second := as[1].ID
	if r := b.Post(t, fmt.Sprintf("/addresses/%d/default", second), nil); r.Status != http.StatusSeeOther {
		t.Fatalf("set default: %d", r.Status)
	}
	if as, _ := shop.Store.Addresses(context.Background(), 1); !as[0].Default || as[0].ID != second || as[1].Default {
		t.Fatal("default not moved")
	}
	other := shop.Browser()
	other.Signup(t, "thief@example.com")
	for _, action := range []string{"default", "delete"} {
		if r := other.Post(t, fmt.Sprintf("/addresses/%d/%s", second, action), nil); r.Status != http.StatusNotFound {
			t.Fatalf("another shopper's %s: %d", action, r.Status)
		}
	}
	if r := other.Get(t, "/addresses"); strings.Contains(r.Body, "王五") {
		t.Fatal("another shopper sees the address")
	}
	if r := b.Post(t, fmt.Sprintf("/addresses/%d/delete", second), nil); r.Status != http.StatusSeeOther {
		t.Fatalf("delete: %d", r.Status)
	}
	if as, _ := shop.Store.Addresses(context.Background(), 1); len(as) != 1 || !as[0].Default {
		t.Fatal("deleting the default left no default")
	}
}

// 确认订单 and the address snapshot: a shopper without an address is sent to 确认订单
// (nothing created), enters one there, and the order keeps it whatever the address book
// does later. Virtual goods need none and are received once paid.
func TestCheckoutWithAddress(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	gid := shop.Demo(t, "机械键盘", 39900, nil)
	course := shop.AddGoods(t, store.Goods{Name: "摄影入门课", Price: 9900, Virtual: true})
	b := shop.Browser()
	b.SignupNoAddress(t, "ship@example.com")
	r := b.Post(t, fmt.Sprintf("/purchase/%d", gid), url.Values{"qty": {"2"}})
	if r.Status != http.StatusSeeOther || r.Location != fmt.Sprintf("/checkout?goods_id=%d&qty=2", gid) {
		t.Fatalf("purchase without an address: %d %q", r.Status, r.Location)
	}
	if os, _, _ := shop.Store.ListOrders(context.Background(), 1, "", 10, 0); len(os) != 0 {
		t.Fatal("an order was created without an address")
	}
	page := b.Get(t, r.Location)
	if page.Status != 200 || !strings.Contains(page.Body, "确认订单") || !strings.Contains(page.Body, `id="first-address"`) ||
		!strings.Contains(page.Body, "¥798.00") || strings.Contains(page.Body, "提交订单") {
		t.Fatalf("确认订单 without an address: %d", page.Status)
	}
	// The first address, entered on 确认订单, comes back to it chosen.
	form := address("张三", "13800138000", "浙江省 杭州市 西湖区", "文三路 100 号")
	form.Set("next", r.Location)
	ar := b.Post(t, "/addresses", form)
	if ar.Status != http.StatusSeeOther || !strings.HasPrefix(ar.Location, "/checkout?") || !strings.Contains(ar.Location, "address_id=") {
		t.Fatalf("first address from 确认订单: %d %q", ar.Status, ar.Location)
	}
	page = b.Get(t, ar.Location)
	if !strings.Contains(page.Body, "张三") || !strings.Contains(page.Body, "提交订单") || !strings.Contains(page.Body, "支付宝支付") {
		t.Fatal("确认订单 after adding the address")
	}
	m := regexpExpect.FindStringSubmatch(page.Body)
	cr := b.Post(t, "/checkout", url.Values{"goods_id": {fmt.Sprint(gid)}, "qty": {"2"}, "expect_fen": {m[1]}})
	if cr.Status != http.StatusSeeOther || !strings.Contains(cr.Location, "/sandbox/gateway.do?") {
		t.Fatalf("提交订单: %d %q", cr.Status, cr.Location)
	}
	o := shop.OrderFromGateway(t, cr.Location)
	if o.ShipName != "张三" || o.ShipPhone != "13800138000" || o.ShipDetail != "文三路 100 号" || !o.NeedsShipping || o.Total != 79800 {
		t.Fatalf("order's address snapshot: %+v", o)
	}
	// Edits to the book never change the order.
	as, _ := shop.Store.Addresses(context.Background(), 1)
	b.Post(t, fmt.Sprintf("/addresses/%d/delete", as[0].ID), nil)
	b.AddAddress(t, address("李四", "13900139000", "上海市", "世纪大道 1 号"))
	if got := shop.Order(t, o.OutTradeNo); got.ShipName != "张三" {
		t.Fatal("the order's address followed the address book")
	}
	if op := b.Get(t, "/orders/"+o.OutTradeNo); !strings.Contains(op.Body, "张三") || !strings.Contains(op.Body, "文三路 100 号") {
		t.Fatal("the order page doesn't show its address")
	}
	// Someone else's address id is refused.
	other := shop.Browser()
	other.Signup(t, "other@example.com")
	oas, _ := shop.Store.Addresses(context.Background(), 2)
	if r := b.Post(t, fmt.Sprintf("/purchase/%d", gid), url.Values{"address_id": {fmt.Sprint(oas[0].ID)}}); r.Status != http.StatusBadRequest {
		t.Fatalf("purchase to another shopper's address: %d", r.Status)
	}
	// Virtual goods: no address needed, received once paid.
	vb := shop.Browser()
	vb.SignupNoAddress(t, "virtual@example.com")
	if page := vb.Get(t, fmt.Sprintf("/checkout?goods_id=%d&qty=1", course)); !strings.Contains(page.Body, "无需收货地址") || !strings.Contains(page.Body, "提交订单") {
		t.Fatal("确认订单 of virtual goods asks for an address")
	}
	vr := vb.Post(t, fmt.Sprintf("/purchase/%d", course), nil)
	if vr.Status != http.StatusSeeOther || !strings.Contains(vr.Location, "gateway.do") {
		t.Fatalf("virtual purchase: %d %q", vr.Status, vr.Location)
	}
	vo := shop.OrderFromGateway(t, vr.Location)
	if vo.NeedsShipping || vo.ShipName != "" {
		t.Fatalf("virtual order: %+v", vo)
	}
	if got := shop.PostNotify(t, shop.NotifyFor(vo, "2026112222001400000000000077").Encode(), "application/x-www-form-urlencoded"); got != "success" {
		t.Fatal(got)
	}
	if got := shop.Order(t, vo.OutTradeNo); got.Fulfilment != store.Received || got.ReceivedAt.IsZero() {
		t.Fatalf("a paid virtual order is %s", got.Fulfilment)
	}
}

// A visitor's cart lives in the session and joins the account at login (and signup);
// quantities can be changed; the nav shows the count on every page.
func TestVisitorCartMergesAtLogin(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	band := shop.Demo(t, "小米手环", 19900, nil)
	cup := shop.Demo(t, "保温杯", 8990, nil)
	owner := shop.Browser()
	owner.Signup(t, "cart@example.com")
	owner.Post(t, "/cart/items", url.Values{"goods_id": {fmt.Sprint(band)}, "qty": {"1"}})
	owner.Post(t, "/logout", nil)

	v := shop.Browser()
	if r := v.Post(t, "/cart/items", url.Values{"goods_id": {fmt.Sprint(band)}, "qty": {"2"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("visitor add: %d", r.Status)
	}
	v.Post(t, "/cart/items", url.Values{"goods_id": {fmt.Sprint(cup)}, "qty": {"1"}})
	page := v.Get(t, "/cart")
	for _, want := range []string{"小米手环", "保温杯", "¥487.90", `href="/goods/1"`, `src="`, "结算前需要登录"} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("visitor's cart lacks %q", want)
		}
	}
	if !strings.Contains(v.Get(t, "/").Body, `class="badge"`) || !strings.Contains(v.Get(t, "/goods/2").Body, ">3<") {
		t.Fatal("the nav has no count badge")
	}
	if r := v.Post(t, fmt.Sprintf("/cart/items/%d/qty", cup), url.Values{"qty": {"3"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("visitor qty: %d", r.Status)
	}
	if r := v.Post(t, fmt.Sprintf("/cart/items/%d/qty", cup), url.Values{"qty": {"100"}}); r.Status != http.StatusBadRequest {
		t.Fatalf("qty 100: %d", r.Status)
	}
	// 去结算 asks the visitor to log in, says why, and comes back.
	r := v.Get(t, "/checkout")
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/login?next=%2Fcheckout") {
		t.Fatalf("visitor checkout: %d %q", r.Status, r.Location)
	}
	lp := v.Get(t, r.Location)
	if !strings.Contains(lp.Body, "请先登录") || !strings.Contains(lp.Body, `href="/signup?next=%2Fcheckout"`) {
		t.Fatal("the login page doesn't say why, or its 注册 link drops next")
	}
	lr := v.Post(t, "/login", url.Values{"email": {"cart@example.com"}, "password": {"correct horse battery"}, "next": {"/checkout"}})
	if lr.Status != http.StatusSeeOther || lr.Location != "/checkout" {
		t.Fatalf("login: %d %q", lr.Status, lr.Location)
	}
	lines, _ := shop.Store.Cart(context.Background(), 1)
	got := map[int64]int64{}
	for _, l := range lines {
		got[l.GoodsID] = l.Qty
	}
	if got[band] != 3 || got[cup] != 3 || len(got) != 2 {
		t.Fatalf("merged cart %v, want band 1+2 and cup 3", got)
	}
	if r := v.Get(t, "/cart"); !strings.Contains(r.Body, "¥866.70") {
		t.Fatal("the cart after login doesn't show the merged lines")
	}
	// The account's cart: quantities editable, a missing line is a 404.
	if r := v.Post(t, fmt.Sprintf("/cart/items/%d/qty", band), url.Values{"qty": {"1"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("qty: %d", r.Status)
	}
	if n, _ := shop.Store.CartCount(context.Background(), 1); n != 4 {
		t.Fatalf("count %d after setting 1 + 3", n)
	}
	if r := v.Post(t, "/cart/items/999/qty", url.Values{"qty": {"1"}}); r.Status != http.StatusNotFound {
		t.Fatalf("qty of no line: %d", r.Status)
	}
	// A visitor's cart survives signup too.
	s := shop.Browser()
	s.Post(t, "/cart/items", url.Values{"goods_id": {fmt.Sprint(cup)}, "qty": {"2"}})
	s.SignupNoAddress(t, "new@example.com")
	if n, _ := shop.Store.CartCount(context.Background(), 2); n != 2 {
		t.Fatalf("cart after signup: %d", n)
	}
}

// A phone gets WAP pay (quit_url the order page, minute-precision time_expire); a
// computer gets page pay; pay again follows the device asking.
func TestPhoneGetsWAPPay(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	gid := shop.Demo(t, "保温杯", 8990, nil)
	b := shop.Browser()
	b.Signup(t, "wap@example.com")
	iphone := "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
	post := func(path, ua string) *url.URL {
		req, _ := http.NewRequest(http.MethodPost, shop.URL+path, strings.NewReader(url.Values{"_csrf": {b.CSRF(t)}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if ua != "" {
			req.Header.Set("User-Agent", ua)
		}
		resp, err := b.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		u, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		return u
	}
	u := post(fmt.Sprintf("/purchase/%d", gid), iphone)
	o := shop.OrderFromGateway(t, u.String())
	if u.Query().Get("method") != "alipay.trade.wap.pay" || bizField(t, u, "product_code") != "QUICK_WAP_WAY" ||
		bizField(t, u, "quit_url") != shop.URL+"/orders/"+o.OutTradeNo {
		t.Fatalf("phone purchase: %s %s %s", u.Query().Get("method"), bizField(t, u, "product_code"), bizField(t, u, "quit_url"))
	}
	te, err := time.ParseInLocation("2006-01-02 15:04", bizField(t, u, "time_expire"), time.FixedZone("CST", 8*3600))
	if err != nil || te.After(o.ExpiresAt.Time) || o.ExpiresAt.Sub(te) >= time.Minute {
		t.Fatalf("WAP time_expire %q for expiry %v", bizField(t, u, "time_expire"), o.ExpiresAt)
	}
	verifyRequest(t, &shop.Keys.AppPriv.PublicKey, u.Query())
	if u := post("/orders/"+o.OutTradeNo+"/pay", ""); u.Query().Get("method") != "alipay.trade.page.pay" ||
		bizField(t, u, "product_code") != "FAST_INSTANT_TRADE_PAY" {
		t.Fatalf("pay again from a computer: %s", u.Query().Get("method"))
	}
	if u := post("/orders/"+o.OutTradeNo+"/pay", iphone); u.Query().Get("method") != "alipay.trade.wap.pay" {
		t.Fatalf("pay again from a phone: %s", u.Query().Get("method"))
	}
}

// 我的订单 tabs, 确认收货 on a shipped order, 已关闭 says why, 取消订单 asks first, the
// result page offers ways on, and leaving the cashier unpaid leads back to the order.
func TestOrdersAsShoppersFollowThem(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "保温杯", 8990, nil)
	b := shop.Browser()
	b.Signup(t, "follow@example.com")
	ctx := context.Background()
	unpaid, _ := b.Buy(t, gid, 1)
	shipped, su := b.Buy(t, gid, 1)
	shop.OpenCashier(t, su.String())
	paid, _ := shop.EmuPay(t, shipped.OutTradeNo, true)
	shop.Emulator.DeliverDue(ctx)
	if err := shop.Store.Ship(ctx, shipped.OutTradeNo, "顺丰速运", "SF1234567890"); err != nil {
		t.Fatal(err)
	}
	cancelled, _ := b.Buy(t, gid, 1)
	if r := b.Get(t, "/orders/"+cancelled.OutTradeNo+"/cancel"); r.Status != 200 || !strings.Contains(r.Body, "确认取消") {
		t.Fatalf("cancel confirmation page: %d", r.Status)
	}
	if shop.Order(t, cancelled.OutTradeNo).Status != store.StatusUnpaid {
		t.Fatal("the confirmation page cancelled the order")
	}
	b.Post(t, "/orders/"+cancelled.OutTradeNo+"/cancel", nil)

	tab := func(name string) string { return b.Get(t, "/orders?tab="+name).Body }
	if s := tab("unpaid"); !strings.Contains(s, unpaid.OutTradeNo) || strings.Contains(s, shipped.OutTradeNo) {
		t.Fatal("待付款 tab")
	}
	if s := tab("shipped"); !strings.Contains(s, shipped.OutTradeNo) || strings.Contains(s, unpaid.OutTradeNo) || !strings.Contains(s, "确认收货") {
		t.Fatal("已发货 tab")
	}
	if s := tab("closed"); !strings.Contains(s, cancelled.OutTradeNo) || !strings.Contains(s, "已关闭（已取消）") {
		t.Fatal("已关闭 tab doesn't say why")
	}
	if s := tab("toship"); strings.Contains(s, shipped.OutTradeNo) {
		t.Fatal("待发货 tab holds a shipped order")
	}
	if r := b.Get(t, "/orders?tab=nonsense"); r.Status != 200 || !strings.Contains(r.Body, unpaid.OutTradeNo) {
		t.Fatal("an unknown tab is not 全部")
	}
	page := b.Get(t, "/orders/"+shipped.OutTradeNo).Body
	if !strings.Contains(page, "顺丰速运") || !strings.Contains(page, "SF1234567890") {
		t.Fatal("the order page doesn't show the shipment")
	}
	if r := b.Post(t, "/orders/"+unpaid.OutTradeNo+"/receive", nil); r.Status != http.StatusConflict {
		t.Fatalf("确认收货 on an unpaid order: %d", r.Status)
	}
	if r := b.Post(t, "/orders/"+shipped.OutTradeNo+"/receive", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("确认收货: %d", r.Status)
	}
	if o := shop.Order(t, shipped.OutTradeNo); o.Fulfilment != store.Received {
		t.Fatalf("after 确认收货: %s", o.Fulfilment)
	}
	result := b.Get(t, paid.ReturnURL).Body
	if !strings.Contains(result, `id="view-order"`) || !strings.Contains(result, `id="keep-shopping"`) {
		t.Fatal("the result page offers no way on")
	}
	// The cashier's 返回商户 on page pay is the bare return URL: back to the unpaid order.
	if r := b.Get(t, "/show_msg"); r.Status != http.StatusSeeOther || r.Location != "/orders/"+unpaid.OutTradeNo {
		t.Fatalf("bare return: %d %q", r.Status, r.Location)
	}
	_ = money.Fen(0)
}

// A page past the last (an old link, a typed number) leads to the last page, not to an
// empty grid or "no orders yet" whose 上一页 leads to another empty page.
func TestPagesPastTheLastRedirect(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "键盘", 39900, nil)
	b := shop.Browser()
	b.Signup(t, "pages@example.com")
	b.Buy(t, gid, 1)
	for _, c := range []struct{ path, want string }{
		{"/?page=1000000", "/"},
		{"/?category=%E6%97%A0&page=3", "/?category=%E6%97%A0"},
		{"/orders?page=50", "/orders"},
		{"/orders?tab=unpaid&page=9", "/orders?tab=unpaid"},
		{"/purchases?page=4", "/purchases"},
	} {
		r := b.Get(t, c.path)
		if r.Status != http.StatusSeeOther || r.Header.Get("Location") != c.want {
			t.Errorf("%s: %d to %q, want 303 to %q", c.path, r.Status, r.Header.Get("Location"), c.want)
		}
	}
	if r := b.Get(t, "/?page=1"); r.Status != http.StatusOK {
		t.Fatalf("page 1: %d", r.Status)
	}
}
