package e2e

import (
	"fmt"
	"strings"
)

// The phone run's shopper and address.
const (
	phoneEmail  = "phone@example.com"
	phoneName   = "王小明"
	phonePhone  = "13812345678"
	phoneRegion = "浙江省 杭州市 西湖区"
	phoneDetail = "文三路 90 号 东部软件园 3 号楼 501 室"
)

// phoneFlow is a new shopper on a phone, with JavaScript off: two goods into the cart
// as a visitor, a quantity changed, 去结算 → sign up → 确认订单 with the first address →
// WAP pay → result → the order → 我的订单 → the notify answered; then a second order
// left on the phone cashier with 取消, and the bottom tab bar's four tabs. Every page
// is checked by checkLayout (on the way, by navigate and follow).
func phoneFlow(b *session) {
	checkLayoutCheck(b)
	b.step("goods", func() {
		b.navigate("/")
		b.waitText("main h1", "全部商品")
		b.contains("first goods card", b.text("ul.grid > li.goods:first-child"), "小米手环", "¥199.00", "购买")
		// The phone's navigation is the bottom tab bar; the header's is hidden.
		b.tabbar("/")
		if got := b.eval(`getComputedStyle(document.querySelector("header nav.main-nav")).display`); got != "none" {
			b.fatalf("header nav shown on a phone (display %s)", got)
		}
		b.shot("goods")
	})

	// As a visitor: 小米手环 ×1 and 保温杯 ×2 from their goods pages.
	b.step("add to cart", func() {
		b.follow(`ul.grid > li.goods:first-child > a`)
		b.waitPath("/goods/1")
		b.waitText("main h1", "小米手环")
		b.follow(`form[action="/cart/items"] button.secondary`) // 加入购物车
		b.waitPath("/cart")
		b.waitText("main .flash", "已加入购物车")
		b.follow(`nav.tabbar a[href="/"]`)
		b.follow(`ul.grid > li.goods a[href="/goods/4"]`)
		b.waitText("main h1", "保温杯")
		b.setValue(`form[action="/cart/items"] input[name="qty"]`, "2")
		b.waitText(`form[action="/cart/items"] button.secondary`, "加入购物车")
		b.follow(`form[action="/cart/items"] button.secondary`)
		b.waitPath("/cart")
	})

	b.step("cart", func() {
		b.waitText("nav.tabbar a[href='/cart'] .badge", "3")
		b.waitText("#cart-total", "¥378.80") // 199.00 + 2 × 89.90
		// Each line: a picture (loaded) linking to its goods, and its name as a link.
		got := b.eval(`[...document.querySelectorAll("#cart-lines > li")].map(li => {
			const img = li.querySelector("a[href^='/goods/'] > img");
			const name = li.querySelector("a.name[href^='/goods/']");
			return (img && img.complete && img.naturalWidth > 0 ? "img" : "NO-IMG") + ":" + (name ? name.textContent.trim() : "NO-LINK");
		}).join(" ")`)
		if got != "img:小米手环 img:保温杯" {
			b.fatalf("cart lines: %s", got)
		}
		// On a phone the lines are cards: the table's header row is not shown.
		if got := b.table(".cart-table", [2]string{"小计", ".subtotal"}); got != "no header row" {
			b.fatalf("cart on a phone: %q, want the header row hidden", got)
		}
		// Name, 小计 and the quantity form stand beside the picture, not under it.
		if got := b.eval(`[...document.querySelectorAll("#cart-lines > li")].flatMap(li => {
			const pic = li.querySelector("img").getBoundingClientRect();
			return [...li.querySelectorAll(":scope > .head, :scope > .sub, :scope > .actions")]
				.filter(e => e.getBoundingClientRect().left < pic.right)
				.map(e => e.className + " under the picture");
		}).join("; ")`); got != "" {
			b.fatalf("cart lines: %s", got)
		}
		// 更新 the first line to 2.
		b.setValue(`form[action="/cart/items/1/qty"] input[name="qty"]`, "2")
		b.follow(`form[action="/cart/items/1/qty"] button[type="submit"]`)
		b.waitPath("/cart")
		b.waitText("#cart-total", "¥577.80") // 2 × 199.00 + 2 × 89.90
		b.waitText("nav.tabbar a[href='/cart'] .badge", "4")
		b.waitText("main", "结算前需要登录")
		b.shot("cart")
	})

	// 去结算 as a visitor: the login page says why, and its 注册 link keeps next.
	b.step("signup", func() {
		b.follow("#to-checkout")
		b.waitPath("/login")
		if next := b.query("next"); next != "/checkout" {
			b.fatalf("login next %q, want /checkout", next)
		}
		b.waitText("main .flash", "请先登录")
		signup := b.link("main form", "注册")
		if !strings.Contains(signup, "next=%2Fcheckout") {
			b.fatalf("注册 link %s drops next", signup)
		}
		b.follow(signup)
		b.waitPath("/signup")
		b.waitText("main h1", "注册")
		if got := b.attr(`main form input[name="next"]`, "value"); got != "/checkout" {
			b.fatalf("signup form next %q", got)
		}
		b.fill(`main input[name="email"]`, phoneEmail)
		b.fill(`main input[name="password"]`, "correct horse battery")
		b.follow(`main form button[type="submit"]`)
	})

	// Back on 确认订单 with the visitor's cart; no address yet: the form is on the page.
	b.step("first address", func() {
		b.waitPath("/checkout")
		b.waitText("main h1", "确认订单")
		b.contains("确认订单 lines", b.text("main ul.items"), "小米手环", "× 2", "保温杯", "¥398.00", "¥179.80")
		b.waitText("#checkout-total", "¥577.80")
		b.waitText("#first-address", "还没有收货地址")
		b.fill(`#address-form input[name="name"]`, phoneName)
		b.fill(`#address-form input[name="phone"]`, phonePhone)
		b.fill(`#address-form input[name="region"]`, phoneRegion)
		b.fill(`#address-form input[name="detail"]`, phoneDetail)
		b.follow(`#address-form button[type="submit"]`)
		b.waitPath("/checkout")
		b.waitText("main h1", "确认订单")
		chosen := b.text(`#checkout-form ul.choices li:has(input[name="address_id"]:checked)`)
		b.contains("chosen address", chosen, phoneName, phonePhone, phoneRegion, phoneDetail)
		b.waitText("#checkout-total", "¥577.80")
		b.waitText("#checkout-form button[type='submit']", "支付宝支付")
		b.shot("checkout")
	})

	var outTradeNo string
	b.step("wap cashier", func() {
		b.follow(`#checkout-form button[type="submit"]`)
		b.waitPath("/sandbox/gateway.do")
		if m := b.query("method"); m != "alipay.trade.wap.pay" {
			b.fatalf("gateway method %q, want alipay.trade.wap.pay (the shop did not see a phone)", m)
		}
		b.waitText("main h1", "确认付款")
		b.waitText("main .wap-amount", "¥577.80")
		b.waitText("main .wap-list", "小米手环 等4件")
		outTradeNo = strings.TrimSpace(b.text("main .wap-list dd.mono"))
		if !outTradeNoRE.MatchString(outTradeNo) {
			b.fatalf("cashier shows order number %q: not an out_trade_no", outTradeNo)
		}
		b.t.Logf("out_trade_no %s", outTradeNo)
		b.shot("wap-cashier")
	})

	var tradeNo string
	b.step("result", func() {
		b.follow(`main form[action$="/pay"] button.primary`) // 确认付款
		b.waitPath("/show_msg")
		b.waitText("main h1", "支付成功")
		if got := strings.TrimSpace(b.text("#out-trade-no")); got != outTradeNo {
			b.fatalf("result page order number %q, cashier showed %q", got, outTradeNo)
		}
		tradeNo = strings.TrimSpace(b.text("#trade-no"))
		if !tradeNoRE.MatchString(tradeNo) {
			b.fatalf("result page trade number %q: want 28 digits", tradeNo)
		}
		b.waitText("main .facts", "¥577.80")
		// The long numbers keep to one line beside their labels.
		for _, sel := range []string{"#out-trade-no", "#trade-no"} {
			if n := b.lines(sel); n != 1 {
				b.fatalf("%s takes %d lines on a %d px screen", sel, n, b.dev.width)
			}
		}
		b.waitText("#view-order", "查看订单")
		b.waitText("#keep-shopping", "继续购物")
		b.shot("result")
	})

	b.step("order", func() {
		b.follow("#view-order")
		b.waitPath("/orders/" + outTradeNo)
		b.waitText("#order-state", "待发货")
		b.contains("ship-to", b.text("#ship-to"), phoneName, phonePhone, phoneRegion, phoneDetail)
	})

	b.step("orders", func() {
		b.follow(`nav.tabbar a[href="/orders"]`)
		b.waitPath("/orders")
		b.waitText("main h1", "我的订单")
		b.tabbar("/orders")
		if got := b.eval(`(n => n.scrollWidth > n.clientWidth ? n.scrollWidth + " > " + n.clientWidth : "")(document.querySelector("nav.tabs"))`); got != "" {
			b.fatalf("the order tabs do not fit the screen: %s", got)
		}
		b.follow(b.link("nav.tabs", "待发货"))
		if tab := b.query("tab"); tab != "toship" {
			b.fatalf("待发货 tab is ?tab=%s", tab)
		}
		b.waitText("nav.tabs a.on", "待发货")
		b.contains("orders row", b.waitRow("#orders > li", outTradeNo), "待发货", "¥577.80", "小米手环")
		if got := b.table(".orders-table", [2]string{"状态", ".status"}); got != "no header row" {
			b.fatalf("orders on a phone: %q, want the header row hidden", got)
		}
		b.shot("orders")
	})

	b.step("console", func() {
		card := b.waitNotified(outTradeNo)
		b.contains("console trade card", card, tradeNo, "TRADE_SUCCESS", "¥577.80", "手机网站支付", "200", "success")
	})

	// 取消 on the phone cashier goes to quit_url: the order's page, still to pay.
	var unpaidNo string
	b.step("wap cancel", func() {
		b.navigate("/goods/5")
		b.waitText("main h1", "帆布包")
		b.follow(`form[action="/cart/items"] button[name="buy_now"]`) // 立即购买
		b.waitPath("/checkout")
		b.waitText("main ul.items", "帆布包")
		b.contains("chosen address", b.text(`#checkout-form ul.choices li:has(input:checked)`), phoneName)
		b.follow(`#checkout-form button[type="submit"]`)
		b.waitPath("/sandbox/gateway.do")
		b.waitText("main .wap-amount", "¥59.00")
		no := strings.TrimSpace(b.text("main .wap-list dd.mono"))
		b.follow(`main form[action$="/cancel"] button`) // 取消
		b.waitPath("/orders/" + no)
		b.waitText("main h1", "订单详情")
		b.waitText("#order-state", "待付款")
		b.waitText("main .actions", "支付宝支付")
		unpaidNo = no
	})

	// The pages the flow above doesn't pass through, each checked at 390 px as it opens
	// (navigate checks the layout): 已购商品, the address book, 修改密码, the cancel
	// confirmation, an error page of the shop and one of the emulator.
	b.step("other pages", func() {
		for _, p := range []struct{ path, h1 string }{
			{"/purchases", "已购商品"},
			{"/addresses", "收货地址"},
			{"/account/password", "修改密码"},
			{"/orders/" + unpaidNo + "/cancel", "取消订单？"},
			{"/orders/" + outTradeNo + "/cancel", "无法完成操作"}, // paid: the error page says why
			{"/goods/999999", "页面不存在"},
			{"/sandbox/gateway.do?method=alipay.trade.wap.pay&app_id=x&charset=utf-8&sign_type=RSA2&version=1.0&biz_content=%7B%7D&sign=eHg%3D",
				"抱歉，支付遇到问题"},
		} {
			b.navigate(p.path)
			b.waitText("h1", p.h1)
		}
		b.navigate("/orders") // back in the shop, for the tab bar
	})

	// The tab bar is plain links: each tab opens its page and is lit there.
	b.step("tab bar", func() {
		for _, href := range []string{"/account", "/cart", "/", "/orders"} {
			b.follow(fmt.Sprintf(`nav.tabbar a[href=%q]`, href))
			b.waitPath(href)
			b.tabbar(href)
			if href == "/cart" {
				b.waitText("main", "购物车是空的") // the first order took the whole cart
			}
		}
	})
}

// tabbar checks the bottom tab bar: shown, fixed to the bottom of the screen, four
// tabs, the one for lit lit.
func (b *session) tabbar(lit string) {
	b.t.Helper()
	got := b.eval(`(() => {
		const n = document.querySelector("nav.tabbar");
		if (!n || !n.checkVisibility()) return "no visible nav.tabbar";
		const r = n.getBoundingClientRect();
		if (getComputedStyle(n).position !== "fixed" || Math.abs(r.bottom - innerHeight) > 1) return "not fixed to the bottom: " + r.top + "–" + r.bottom + " of " + innerHeight;
		const tabs = [...n.querySelectorAll("a")].map(a => a.getAttribute("href") + (a.classList.contains("on") ? "*" : ""));
		return tabs.join(" ");
	})()`)
	want := strings.Replace("/ /cart /orders /account", lit+" ", lit+"* ", 1)
	if lit == "/account" {
		want = "/ /cart /orders /account*"
	}
	if got != want {
		b.fatalf("tab bar: %s, want %s", got, want)
	}
}
