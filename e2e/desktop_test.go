package e2e

import (
	"strings"
)

// The desktop run's shopper and the two addresses of their book.
const (
	desktopEmail = "desktop@example.com"
	homeName     = "张三"
	homePhone    = "13912345678"
	homeRegion   = "北京市 北京市 海淀区"
	homeDetail   = "中关村大街 27 号 1101 室"
	workName     = "李四"
	workPhone    = "15800001111"
	workRegion   = "上海市 上海市 浦东新区"
	workDetail   = "世纪大道 100 号 环球金融中心 20 楼"
)

// desktopFlow is a new shopper on a computer (page pay): 立即购买 from a goods page →
// login says why → 注册 keeps next → 确认订单 with the first address → cashier → result →
// the order ships there; 立即购买 again with a second address added from 确认订单, left
// on the cashier with 取消 → 返回商户 → back at the order, still to pay; a cart of two
// goods → 确认订单 with the other address chosen from the book → pay → the order ships
// there; 我的订单 待发货; the console shows both notifies answered success.
func desktopFlow(b *session) {
	b.step("goods", func() {
		b.navigate("/")
		b.waitText("main h1", "全部商品")
		b.contains("first goods card", b.text("ul.grid > li.goods:first-child"), "小米手环", "¥199.00", "购买")
		b.waitText("header nav.main-nav", "注册")
		if b.eval(`document.querySelector("nav.tabbar").checkVisibility() ? "shown" : ""`) != "" {
			b.fatalf("the phone's tab bar is shown on a computer")
		}
		b.shot("goods")
	})

	b.step("goods page", func() {
		b.follow(`ul.grid > li.goods a[href="/goods/3"]`)
		b.waitPath("/goods/3")
		b.waitText("main h1", "降噪耳机")
		b.waitText("main .price", "¥899.00")
		b.waitText("main #stock", "有货")
		b.shot("goods-page")
	})

	// 立即购买 logged out: login says why, 注册 keeps where the shopper was going.
	b.step("buy now, sign up", func() {
		b.follow(`form[action="/cart/items"] button[name="buy_now"]`)
		b.waitPath("/login")
		next := b.query("next")
		if !strings.HasPrefix(next, "/checkout?") || !strings.Contains(next, "goods_id=3") {
			b.fatalf("login next %q, want 确认订单 of goods 3", next)
		}
		b.waitText("main .flash", "请先登录再下单")
		b.follow(b.link("main form", "注册"))
		b.waitPath("/signup")
		if got := b.attr(`main form input[name="next"]`, "value"); got != next {
			b.fatalf("signup form next %q, login had %q", got, next)
		}
		b.fill(`main input[name="email"]`, desktopEmail)
		b.fill(`main input[name="password"]`, "correct horse battery")
		b.follow(`main form button[type="submit"]`)
		b.waitPath("/checkout")
		b.waitText("header nav .who", desktopEmail)
		b.waitText("main h1", "确认订单")
		b.waitText("main ul.items", "降噪耳机 × 1")
		b.waitText("#checkout-total", "¥899.00")
	})

	b.step("first address", func() {
		b.waitText("#first-address", "还没有收货地址")
		b.fill(`#address-form input[name="name"]`, homeName)
		b.fill(`#address-form input[name="phone"]`, homePhone)
		b.fill(`#address-form input[name="region"]`, homeRegion)
		b.fill(`#address-form input[name="detail"]`, homeDetail)
		b.follow(`#address-form button[type="submit"]`)
		b.waitPath("/checkout")
		if b.query("goods_id") != "3" || b.query("qty") != "1" {
			b.fatalf("back on 确认订单 without 立即购买's goods")
		}
		b.contains("chosen address", b.text(`#checkout-form ul.choices li:has(input:checked)`), homeName, homePhone, homeRegion, homeDetail, "默认")
		b.waitText("#checkout-total", "¥899.00")
		b.waitText("#checkout-form button[type='submit']", "支付宝支付")
		b.shot("checkout")
	})

	var first, firstTradeNo string
	b.step("cashier", func() {
		b.follow(`#checkout-form button[type="submit"]`)
		b.waitPath("/sandbox/gateway.do")
		if m := b.query("method"); m != "alipay.trade.page.pay" {
			b.fatalf("gateway method %q, want alipay.trade.page.pay", m)
		}
		b.waitText("main h1", "收银台")
		b.waitText("main dd.amount", "¥899.00")
		b.waitText("main dl.order", "降噪耳机")
		first = strings.TrimSpace(b.text("main dl.order dd.mono"))
		if !outTradeNoRE.MatchString(first) {
			b.fatalf("cashier shows order number %q: not an out_trade_no", first)
		}
		b.shot("cashier")
	})

	b.step("result", func() {
		b.follow(`main form[action$="/pay"] button.primary`)
		b.waitPath("/show_msg")
		b.waitText("main h1", "支付成功")
		if got := strings.TrimSpace(b.text("#out-trade-no")); got != first {
			b.fatalf("result page order number %q, cashier showed %q", got, first)
		}
		firstTradeNo = strings.TrimSpace(b.text("#trade-no"))
		if !tradeNoRE.MatchString(firstTradeNo) {
			b.fatalf("result page trade number %q: want 28 digits", firstTradeNo)
		}
		b.waitText("main .facts", "¥899.00")
		b.waitText("#keep-shopping", "继续购物")
		b.shot("result")
		b.follow("#view-order")
		b.waitPath("/orders/" + first)
		b.waitText("#order-state", "待发货")
		b.contains("ship-to", b.text("#ship-to"), homeName, homePhone, homeRegion, homeDetail)
	})

	// 立即购买 again, to a second address added from 确认订单 (新增或管理收货地址 and back);
	// then the page-pay cashier's 取消: a page at Alipay, whose 返回商户 leads to the order.
	var third string
	b.step("cashier cancel", func() {
		b.navigate("/goods/5")
		b.waitText("main h1", "帆布包")
		b.follow(`form[action="/cart/items"] button[name="buy_now"]`)
		b.waitPath("/checkout")
		b.contains("chosen address", b.text(`#checkout-form ul.choices li:has(input:checked)`), homeName)
		b.follow(b.link("#checkout-form", "新增或管理收货地址"))
		b.waitPath("/addresses")
		b.waitRow("#addresses > li", homeName)
		b.fill(`#address-form input[name="name"]`, workName)
		b.fill(`#address-form input[name="phone"]`, workPhone)
		b.fill(`#address-form input[name="region"]`, workRegion)
		b.fill(`#address-form input[name="detail"]`, workDetail)
		b.follow(`#address-form button[type="submit"]`)
		b.waitPath("/checkout")
		b.waitText("main ul.items", "帆布包 × 1")
		b.contains("chosen address", b.text(`#checkout-form ul.choices li:has(input:checked)`), workName, workPhone, workRegion, workDetail)
		b.follow(`#checkout-form button[type="submit"]`)
		b.waitPath("/sandbox/gateway.do")
		b.waitText("main dd.amount", "¥59.00")
		third = strings.TrimSpace(b.text("main dl.order dd.mono"))
		b.follow(`main form[action$="/cancel"] button`)
		b.waitText("main h1", "您已取消付款")
		b.waitText("main", third)
		b.follow(b.link("main", "返回商户"))
		b.waitPath("/orders/" + third)
		b.waitText("#order-state", "待付款")
		b.contains("ship-to", b.text("#ship-to"), workName)
	})

	// A cart of two goods, shipped to the second address, chosen on 确认订单.
	var second, secondTradeNo string
	b.step("cart", func() {
		for _, g := range []struct{ id, qty, name string }{{"7", "1", "充电宝"}, {"9", "2", "护眼台灯"}} {
			b.navigate("/goods/" + g.id)
			b.waitText("main h1", g.name)
			b.setValue(`form[action="/cart/items"] input[name="qty"]`, g.qty)
			b.follow(`form[action="/cart/items"] button.secondary`)
			b.waitPath("/cart")
		}
		b.waitText("header #nav-cart .badge", "3")
		b.waitText("#cart-total", "¥447.00") // 129.00 + 2 × 159.00
		// Where there is room the cart is a table: a header row over aligned columns.
		if got := b.table(".cart-table", [2]string{"单价", ".unit"}, [2]string{"数量", "form.qty, .count"},
			[2]string{"小计", ".subtotal"}, [2]string{"操作", "form.remove"}); got != "" {
			b.fatalf("cart table: %s", got)
		}
		b.follow("#to-checkout")
		b.waitPath("/checkout")
		b.contains("确认订单 lines", b.text("main ul.items"), "充电宝 × 1", "护眼台灯 × 2", "¥318.00")
		// The book has two addresses; the default is chosen, the shopper picks the other.
		if n := b.eval(`String(document.querySelectorAll("#checkout-form input[name=address_id]").length)`); n != "2" {
			b.fatalf("%s addresses to choose from, want 2", n)
		}
		b.contains("default address", b.text(`#checkout-form ul.choices li:has(input:checked)`), homeName)
		b.press(`#checkout-form ul.choices li:has(input[name="address_id"]:not(:checked)) label`)
		b.contains("chosen address", b.text(`#checkout-form ul.choices li:has(input:checked)`), workName, workPhone, workRegion, workDetail)
		b.waitText("#checkout-total", "¥447.00")
		b.follow(`#checkout-form button[type="submit"]`)
		b.waitPath("/sandbox/gateway.do")
		b.waitText("main dd.amount", "¥447.00")
		b.waitText("main dl.order", "充电宝 等3件")
		second = strings.TrimSpace(b.text("main dl.order dd.mono"))
		b.follow(`main form[action$="/pay"] button.primary`)
		b.waitPath("/show_msg")
		b.waitText("main h1", "支付成功")
		secondTradeNo = strings.TrimSpace(b.text("#trade-no"))
		b.follow("#view-order")
		b.waitPath("/orders/" + second)
		b.waitText("#order-state", "待发货")
		b.contains("ship-to", b.text("#ship-to"), workName, workPhone, workRegion, workDetail)
	})

	b.step("orders", func() {
		b.follow(`header nav a[href="/orders"]`)
		b.waitPath("/orders")
		b.follow(b.link("nav.tabs", "待发货"))
		b.waitText("nav.tabs a.on", "待发货")
		b.contains("orders row", b.waitRow("#orders > li", first), "待发货", "¥899.00", "降噪耳机")
		b.contains("orders row", b.waitRow("#orders > li", second), "待发货", "¥447.00", "充电宝 等3件")
		if strings.Contains(b.text("#orders"), third) {
			b.fatalf("the unpaid order %s is listed under 待发货", third)
		}
		if got := b.table(".orders-table", [2]string{"商品 / 订单号", ".name"}, [2]string{"下单时间", ".time"},
			[2]string{"金额", ".amount"}, [2]string{"状态", ".status"}, [2]string{"操作", ".actions"}); got != "" {
			b.fatalf("orders table: %s", got)
		}
		b.shot("orders")
	})

	b.step("console", func() {
		b.contains("console trade card", b.waitNotified(first), firstTradeNo, "TRADE_SUCCESS", "¥899.00", "电脑网站支付", "success")
		b.contains("console trade card", b.waitNotified(second), secondTradeNo, "TRADE_SUCCESS", "¥447.00", "success")
		b.shot("console")
	})
}
