package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"storefront/shanghai"
)

// What the operator does to the desktop shopper's two paid orders.
const (
	shipCarrier  = "顺丰速运"
	shipTracking = "SF1234567890123"
	refundAmount = "10.00"
	refundReason = "外包装破损，部分退款"
)

// devOperatorRE is the line a local shop prints on its first start.
var devOperatorRE = regexp.MustCompile(`dev operator for the back office: (\S+) / (\S+) `)

// operatorFlow follows desktopFlow on the same shop: the dev operator, in a browser
// context of their own (their own cookies), logs in at /admin/login with the login the
// shop printed, reads the dashboard (two orders paid today, the 14-day chart), filters
// 订单 by 待发货 and finds exactly the shopper's two paid orders, ships the first, refunds
// ¥10.00 of the second, and sees the refund on the emulator's console. The back-office
// pages are checked for layout faults at 1366 px, and the dashboard, the list and an
// order once more at 390 px. Then the shopper, in their own browser, sees the shipment
// and the refund on their order pages, the part-refunded order still 待发货, and cannot
// open the back office.
func operatorFlow(b *session, paidDay string) {
	m := devOperatorRE.FindStringSubmatch(b.out.String())
	if m == nil {
		b.t.Fatalf("the shop's stdout has no dev operator line:\n%s", b.out.String())
	}
	email, password := m[1], m[2]
	op := b.otherUser(desktop)
	defer op.reportLayout()

	op.step("admin login", func() {
		// Nothing of the shopper's session crossed into this browser context.
		op.navigate("/orders")
		op.waitPath("/login")
		op.navigate("/admin/login")
		op.waitText("main h1", "运营登录")
		if op.eval(`document.querySelector("nav.admin-nav") ? "nav" : ""`) != "" {
			op.fatalf("the back-office nav is shown before login")
		}
		op.fill(`main form input[name="email"]`, email)
		op.fill(`main form input[name="password"]`, password)
		op.follow(`main form button[type="submit"]`)
		op.waitPath("/admin/")
		op.waitText("header .who", email)
		op.waitText("nav.admin-nav a.on", "概览")
	})

	op.step("admin dashboard", func() {
		op.waitText("main h1", "今日概览")
		if today := beijingDay(); today == paidDay {
			op.waitText("#today-orders", "2")
			if got := strings.TrimSpace(op.text("#today-orders")); got != "2" {
				op.fatalf("今日付款订单 %q, want 2", got)
			}
			op.waitText("#today-sales", "¥1346.00") // 899.00 + 447.00
		} else {
			op.t.Logf("the Beijing day turned (%s → %s) between paying and the dashboard: not counting today's orders", paidDay, today)
		}
		if got := strings.TrimSpace(op.text("#to-ship")); got != "2" {
			op.fatalf("待发货 %q, want 2", got)
		}
		// The chart: 14 days, today's bar the tallest (the only day with sales), drawn.
		chart := op.eval(`(() => {
			const svg = document.querySelector("svg.chart");
			if (!svg || !svg.checkVisibility()) return "no visible svg.chart";
			const r = svg.getBoundingClientRect();
			const bars = [...svg.querySelectorAll("rect.bar")];
			const last = bars[bars.length - 1];
			return Math.round(r.width) + "x" + Math.round(r.height) + " " + bars.length + " bars, today " +
				(last ? last.getAttribute("height") : "none") + " " + (last ? last.parentElement.querySelector("title").textContent : "");
		})()`)
		if !regexp.MustCompile(`^\d{3,}x\d{2,} 14 bars, today 170 `).MatchString(chart) {
			op.fatalf("sales chart: %s; want 14 bars, today's 170 high", chart)
		}
		op.t.Logf("sales chart: %s", chart)
		op.shot("admin-dashboard")
	})

	// 订单 filtered by 待发货: the two paid orders, not the unpaid one.
	var shipNo, refundNo string
	op.step("admin orders", func() {
		op.follow(op.link("nav.admin-nav", "订单"))
		op.waitPath("/admin/orders")
		op.waitText("nav.admin-nav a.on", "订单")
		if n := op.eval(`String(document.querySelectorAll("#admin-orders tbody tr").length)`); n != "3" {
			op.fatalf("%s orders listed, want the shopper's 3", n)
		}
		op.setValue(`#order-filters select[name="fulfilment"]`, "unshipped")
		op.follow(`#order-filters button[type="submit"]`)
		op.waitPath("/admin/orders")
		if f := op.query("fulfilment"); f != "unshipped" {
			op.fatalf("filtered by fulfilment=%q, want unshipped", f)
		}
		if got := op.eval(`document.querySelector("#order-filters select[name=fulfilment]").selectedOptions[0].textContent`); got != "待发货" {
			op.fatalf("the filter shows %q after filtering, want 待发货", got)
		}
		rows := op.eval(`[...document.querySelectorAll("#admin-orders tbody tr")].map(tr => tr.innerText.replace(/\s+/g, " ")).join("\n")`)
		lines := strings.Split(rows, "\n")
		if len(lines) != 2 {
			op.fatalf("待发货 lists %d orders, want 2:\n%s", len(lines), rows)
		}
		// Newest first: the cart (¥447.00), then 降噪耳机 (¥899.00).
		op.contains("first row", lines[0], desktopEmail, "¥447.00", "待发货", workName)
		op.contains("second row", lines[1], desktopEmail, "¥899.00", "待发货", homeName)
		shipNo = strings.TrimSpace(op.text("#admin-orders tbody tr:nth-child(1) td a.mono"))
		refundNo = strings.TrimSpace(op.text("#admin-orders tbody tr:nth-child(2) td a.mono"))
		for _, no := range []string{shipNo, refundNo} {
			if !outTradeNoRE.MatchString(no) {
				op.fatalf("order number %q in the list", no)
			}
		}
	})

	op.step("admin ship", func() {
		op.follow(fmt.Sprintf(`#admin-orders a[href="/admin/orders/%s"]`, shipNo))
		op.waitPath("/admin/orders/" + shipNo)
		op.waitText("main h1", shipNo)
		op.waitText("#admin-state", "待发货")
		op.contains("ship-to", op.text("#admin-address"), workName, workPhone, workRegion, workDetail)
		op.fill(`#ship-form input[name="carrier"]`, shipCarrier)
		op.fill(`#ship-form input[name="tracking_no"]`, shipTracking)
		op.follow(`#ship-form button[type="submit"]`)
		op.waitPath("/admin/orders/" + shipNo)
		op.waitText("main .flash", "已发货："+shipCarrier+" "+shipTracking)
		op.waitText("#admin-state", "已发货")
		op.contains("facts", op.text("main dl.facts"), "物流", shipCarrier, shipTracking)
		if op.eval(`document.querySelector("#ship-form") ? "form" : ""`) != "" {
			op.fatalf("the ship form is still shown on a shipped order")
		}
		op.contains("timeline", op.waitRow("#timeline > li", "已发货 "+shipCarrier), email, "发货", "待发货 →", shipTracking)
	})

	op.step("admin refund", func() {
		op.follow(op.link("nav.admin-nav", "订单"))
		op.waitPath("/admin/orders")
		op.follow(fmt.Sprintf(`#admin-orders a[href="/admin/orders/%s"]`, refundNo))
		op.waitPath("/admin/orders/" + refundNo)
		op.waitText("#admin-state", "待发货")
		op.waitText("#refund-form", "最多可退 899.00")
		op.fill(`#refund-form input[name="amount"]`, refundAmount)
		op.fill(`#refund-form input[name="reason"]`, refundReason)
		op.follow(`#refund-form button[type="submit"]`)
		op.waitPath("/admin/orders/" + refundNo)
		op.waitText("main .flash", "退款成功：¥"+refundAmount)
		op.contains("refund row", op.waitRow("#admin-refunds tbody tr", refundReason), "¥"+refundAmount, "已退款", "运营")
		op.waitText("#admin-refunded", "¥"+refundAmount)
		// A part refund leaves the order paid, still to ship, with the rest refundable.
		op.waitText("#admin-state", "待发货")
		op.waitText("#admin-state", "已支付")
		op.waitText("#refund-form", "最多可退 889.00")
		op.waitText("#ship-form", "确认发货")
		op.contains("timeline", op.waitRow("#timeline > li", "发起退款"), email)
		op.shot("admin-order")
	})

	op.step("console refund", func() {
		op.navigate("/sandbox/")
		op.waitText("main h1", "沙箱控制台")
		card := op.waitRow("article.trade", refundNo)
		op.contains("console trade card", card, "¥899.00（已退 ¥10.00）", "TRADE_SUCCESS")
		row := op.poll("the refund on the console", fmt.Sprintf(`(() => {
			const a = [...document.querySelectorAll("article.trade")].find(a => a.innerText.includes(%q));
			const rows = a ? [...a.querySelectorAll("table.refunds tbody tr")] : [];
			return rows.length === 1 ? rows[0].innerText : "";
		})()`, refundNo))
		op.contains("console refund", row, "¥10.00", "商户接口（API）", refundReason)
		other := op.waitRow("article.trade", shipNo)
		if strings.Contains(other, "已退") {
			op.fatalf("the shipped order's trade shows a refund: %s", other)
		}
	})

	// The admin CSS stacks tables into rows under 720 px: once on a phone's width.
	op.step("admin at 390 px", func() {
		op.do(phone.metrics(phone.height))
		op.dev = phone
		defer func() {
			op.dev = desktop
			op.do(desktop.metrics(desktop.height))
		}()
		for _, path := range []string{"/admin/", "/admin/orders", "/admin/orders/" + refundNo} {
			op.navigate(path)
			op.waitText("nav.admin-nav", "订单")
		}
		if got := op.eval(`getComputedStyle(document.querySelector("#admin-refunds thead")).display`); got != "none" {
			op.fatalf("the refunds table keeps its header row at 390 px (display %s)", got)
		}
	})

	// The shopper's own browser: the shipment and the refund, and no back office.
	b.step("shopper sees", func() {
		b.navigate("/orders/" + shipNo)
		b.waitText("#order-state", "已发货")
		b.contains("facts", b.text("main dl.facts"), "物流", shipCarrier, shipTracking, "发货时间")
		b.navigate("/orders/" + refundNo)
		b.waitText("#order-state", "待发货")
		b.contains("refunds", b.text("#refunds"), "已退款", "¥"+refundAmount)
		b.navigate("/orders?tab=refund")
		b.contains("退款 tab", b.waitRow("#orders > li", refundNo), "已退 ¥"+refundAmount)
	})

	b.step("shopper no admin", func() {
		b.navigate("/admin/orders")
		b.waitPath("/admin/login")
		if next := b.query("next"); next != "/admin/orders" {
			b.fatalf("login next %q, want /admin/orders", next)
		}
		b.waitText("main h1", "运营登录")
		if b.eval(`document.querySelector("nav.admin-nav") ? "nav" : ""`) != "" {
			b.fatalf("the back-office nav is shown to a shopper")
		}
	})
}

// beijingDay is today's date in Beijing, the dashboard's day.
func beijingDay() string { return time.Now().In(shanghai.Location()).Format("2006-01-02") }
