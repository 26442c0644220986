package e2e

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/chromedp/chromedp"
)

// layoutJS finds what a narrow screen typically breaks, and returns one line per fault:
//
//   - the page scrolls sideways: document scrollWidth > innerWidth, or > the screen's
//     width (SCREEN_WIDTH): a phone's browser widens the layout viewport, innerWidth
//     included, to take in content wider than the screen, so innerWidth alone would not do;
//   - a control or short label sticks out of the screen (and not inside a strip that
//     scrolls sideways by design, like the category chips);
//   - a control or short label (buttons, nav links, headings, statuses, prices, chips,
//     tags, labels of facts) wraps onto more than two lines;
//   - any text of the page is broken into about one character per line (two or fewer
//     per line on average over two or more lines): the squeezed column.
//
// Lines are counted from the text's own line boxes (Range.getClientRects, fragments
// whose vertical centres are within half a line of each other are one line), which
// holds whatever the padding, line-height or inline-block display of the element.
const layoutJS = `(() => {
	const out = [];
	const vw = Math.min(window.innerWidth, SCREEN_WIDTH), de = document.documentElement;
	if (de.scrollWidth > vw) out.push("page scrolls sideways: document scrollWidth " + de.scrollWidth + " > " + vw + " (innerWidth " + innerWidth + ", screen SCREEN_WIDTH)");
	const describe = e => {
		let s = e.tagName.toLowerCase();
		if (e.id) s += "#" + e.id;
		for (const c of e.classList) s += "." + c;
		const up = e.parentElement && e.parentElement.closest("[id], [class]");
		if (up && up !== document.body) {
			let u = up.tagName.toLowerCase();
			if (up.id) u += "#" + up.id; else for (const c of up.classList) u += "." + c;
			s = u + " " + s;
		}
		return s + " " + JSON.stringify(e.innerText.trim().replace(/\s+/g, " ").slice(0, 40));
	};
	const shown = e => e.checkVisibility({visibilityProperty: true, opacityProperty: true}) && e.getClientRects().length > 0;
	const inScroller = e => {
		for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
			const ox = getComputedStyle(p).overflowX;
			if (ox === "auto" || ox === "scroll") return true;
		}
		return false;
	};
	const textNodes = (e, own) => {
		if (own) return [...e.childNodes].filter(n => n.nodeType === Node.TEXT_NODE);
		const a = [], w = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
		for (let n; (n = w.nextNode());) a.push(n);
		return a;
	};
	// lines and characters of e's text (own: its direct text only).
	const measure = (e, own) => {
		const mids = [];
		let chars = 0;
		for (const n of textNodes(e, own)) {
			const t = n.textContent.replace(/\s+/g, "");
			if (!t) continue;
			const r = document.createRange();
			r.selectNodeContents(n);
			let seen = false;
			for (const q of r.getClientRects()) {
				if (q.width < 0.5 || q.height < 0.5) continue;
				seen = true;
				const m = q.top + q.height / 2;
				if (!mids.some(x => Math.abs(x.m - m) < Math.min(x.h, q.height) / 2)) mids.push({m: m, h: q.height});
			}
			if (seen) chars += [...t].length;
		}
		return {lines: mids.length, chars: chars};
	};
	const controls = "button, a.button, .button, nav a, h1, .status, .price, .chip, .tag, .badge, dt";
	for (const e of document.querySelectorAll(controls)) {
		if (!shown(e)) continue;
		const m = measure(e, false);
		if (m.chars >= 2 && m.lines > 2) out.push(describe(e) + ": wraps onto " + m.lines + " lines");
		const r = e.getBoundingClientRect();
		if ((r.right > vw + 1 || r.left < -1) && !inScroller(e))
			out.push(describe(e) + ": sticks out of the screen (left " + Math.round(r.left) + ", right " + Math.round(r.right) + ", screen " + vw + ")");
	}
	for (const e of document.body.querySelectorAll("*")) {
		if (["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE"].includes(e.tagName) || !shown(e)) continue;
		const m = measure(e, true);
		if (m.lines >= 2 && m.chars >= 2 && m.chars / m.lines <= 2)
			out.push(describe(e) + ": broken into " + m.lines + " lines of " + (m.chars / m.lines).toFixed(1) + " characters");
	}
	return [...new Set(out)];
})()`

// checkLayout runs layoutJS on the current page and records what it finds: the flow
// goes on, and the test fails at the end with every page's faults (reportLayout), and a
// LAYOUT screenshot of each faulty page.
func (b *session) checkLayout() {
	b.t.Helper()
	b.pages++
	if b.widths == nil {
		b.widths = map[int64]int{}
	}
	b.widths[b.dev.width]++
	faults := b.layoutFaults()
	if len(faults) == 0 {
		return
	}
	loc, _ := chromedp.Run(b.sctx, chromedp.Location())
	loc = strings.TrimPrefix(loc, b.base)
	if png, err := b.capture(b.sctx); err == nil {
		b.shots.save(fmt.Sprintf("FAILED-layout-%d-%s", b.pages, b.name), png)
	}
	for _, f := range faults {
		b.layout = append(b.layout, fmt.Sprintf("step %s, %s (%d px): %s", b.name, loc, b.dev.width, f))
	}
}

// layoutFaults are the current page's layout faults: layoutJS's, and a layout viewport
// other than the device's width (a page without its viewport meta, or one so wide that
// the phone's browser zooms out to show it all, is laid out wider than the screen).
func (b *session) layoutFaults() []string {
	b.t.Helper()
	js := strings.ReplaceAll(layoutJS, "SCREEN_WIDTH", strconv.FormatInt(b.dev.width, 10))
	faults, err := chromedp.Run(b.sctx, chromedp.Evaluate[[]string](js))
	if err != nil {
		b.fatalf("layout check: %v", err)
	}
	w, err := chromedp.Run(b.sctx, chromedp.Evaluate[int64](`innerWidth`))
	if err != nil {
		b.fatalf("layout check: %v", err)
	}
	if w != b.dev.width {
		faults = append(faults, fmt.Sprintf("laid out %d px wide on a %d px screen (viewport meta missing, or the page zoomed out to fit wide content)", w, b.dev.width))
	}
	return faults
}

// reportLayout fails the test with every layout fault found.
func (b *session) reportLayout() {
	b.t.Helper()
	if len(b.layout) > 0 {
		b.t.Errorf("%d layout faults (%s):\n  %s", len(b.layout), b.checked(), strings.Join(b.layout, "\n  "))
		return
	}
	b.t.Logf("layout: %s, no fault", b.checked())
}

// checked says how many pages were checked on how wide a screen: "25 pages checked on
// a 390 px wide screen", or "11 at 1366 px, 3 at 390 px" when the session changed width.
func (b *session) checked() string {
	if len(b.widths) <= 1 {
		return fmt.Sprintf("%d pages checked on a %d px wide screen", b.pages, b.dev.width)
	}
	ws := make([]int64, 0, len(b.widths))
	for w := range b.widths {
		ws = append(ws, w)
	}
	slices.Sort(ws)
	slices.Reverse(ws)
	var parts []string
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("%d at %d px", b.widths[w], w))
	}
	return fmt.Sprintf("%d pages checked: %s", b.pages, strings.Join(parts, ", "))
}

// layoutFixture has one fault of each kind layoutJS looks for, and things it must
// leave alone (a strip that scrolls sideways by design, ordinary wrapped text).
const layoutFixture = `<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>fixture</title>
<style>body { margin: 0; font: 15px/1.6 sans-serif; } .strip { display: flex; overflow-x: auto; gap: 8px; }
.strip a { flex: none; white-space: nowrap; }</style></head><body>
<div style="width: 40px"><button id="narrow">加入购物车</button></div>
<h1 id="squeezed" style="width: 1.2em">确认订单</h1>
<dl style="display: grid; grid-template-columns: 1fr 1.2em"><dt id="fine-dt">收货人</dt><dd id="col">王小明收</dd></dl>
<p><a class="button" id="out" style="position: relative; left: 360px; white-space: nowrap">去结算</a></p>
<div id="wide" style="width: 600px; height: 4px"></div>
<nav class="strip"><a class="chip" id="scrolled" href="#">全部商品分类</a><a class="chip" href="#">数码产品配件</a><a class="chip" href="#">家居生活用品</a><a class="chip" href="#">课程与礼品卡</a></nav>
<p id="prose">结算前需要登录；登录或注册后，购物车里的商品会保留。这是一段会在手机上正常换行的长文字，不应被当成问题。</p>
<button id="fine">提交订单，支付宝支付</button>
</body></html>`

// checkLayoutCheck runs the layout check on layoutFixture: it must name each fault,
// and nothing else. A check that finds nothing on the shop proves nothing otherwise.
func checkLayoutCheck(b *session) {
	b.step("layout fixture", func() {
		b.do(chromedp.Navigate("data:text/html;charset=utf-8," + url.PathEscape(layoutFixture)))
		faults := strings.Join(b.layoutFaults(), "\n")
		b.t.Logf("the layout check on its fixture:\n  %s", strings.ReplaceAll(faults, "\n", "\n  "))
		for _, want := range []string{
			"page scrolls sideways",
			`button#narrow "加入购物车": wraps onto`,
			`button#narrow "加入购物车": broken into`,
			`h1#squeezed "确认订单": broken into`,
			`dd#col "王小明收": broken into`,
			`a#out.button "去结算": sticks out`,
		} {
			if !strings.Contains(faults, want) {
				b.fatalf("the layout check misses %q; it found:\n%s", want, faults)
			}
		}
		for _, not := range []string{"#scrolled", "#prose", "#fine", "fine-dt"} {
			if strings.Contains(faults, not) {
				b.fatalf("the layout check flags %s, which is fine; it found:\n%s", not, faults)
			}
		}
	})
}

// lines is the number of lines the text of the first element matching sel takes.
func (b *session) lines(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.sctx, chromedp.Evaluate[int](fmt.Sprintf(`(() => {
		const tops = [], r = document.createRange();
		r.selectNodeContents(document.querySelector(%q));
		for (const q of r.getClientRects())
			if (q.width >= 0.5 && !tops.some(t => Math.abs(t - q.top) < q.height / 2)) tops.push(q.top);
		return tops.length;
	})()`, sel)))
	if err != nil {
		b.fatalf("lines of %s: %v", sel, err)
	}
	return n
}

// tableJS checks a list that is a table on a wide screen (views' "table" wrapper: a
// header row over rows of the same grid). TABLE is the wrapper's selector, COLS pairs
// of a header's text and the selector of its cells in every row. It returns "" when the
// header row is shown and each cell lies in its header's column, at its left edge, or
// at its right edge when the header is right-aligned (money, 操作), and a line per
// fault otherwise. On a phone the header is hidden: "no header row".
const tableJS = `((table, cols) => {
	const t = document.querySelector(table);
	if (!t) return "no " + table;
	const head = t.querySelector(":scope > .table-head");
	if (!head || !head.checkVisibility()) return "no header row";
	const rows = [...t.querySelectorAll(":scope > ul > li.row")];
	if (rows.length === 0) return "no rows";
	const out = [];
	for (const [label, sel] of cols) {
		const h = [...head.children].find(e => e.textContent.trim() === label);
		if (!h) { out.push("no header " + label); continue; }
		const col = h.getBoundingClientRect(), right = getComputedStyle(h).textAlign === "right";
		rows.forEach((row, i) => {
			const c = row.querySelector(sel);
			if (!c) { out.push("row " + (i + 1) + " has no " + sel); return; }
			const r = c.getBoundingClientRect();
			const off = right ? r.right - col.right : r.left - col.left;
			if (r.left < col.left - 1 || r.right > col.right + 1 || Math.abs(off) > 1)
				out.push("row " + (i + 1) + " " + sel + " [" + Math.round(r.left) + ", " + Math.round(r.right) + "] is not under " + label + " [" + Math.round(col.left) + ", " + Math.round(col.right) + "]");
		});
	}
	return out.join("; ");
})(TABLE, COLS)`

// table runs tableJS on the list in table (a selector) with cols (header text, cell
// selector), and returns its verdict.
func (b *session) table(table string, cols ...[2]string) string {
	b.t.Helper()
	pairs := make([]string, len(cols))
	for i, c := range cols {
		pairs[i] = fmt.Sprintf("[%q, %q]", c[0], c[1])
	}
	js := strings.Replace(tableJS, "(TABLE, COLS)", fmt.Sprintf("(%q, [%s])", table, strings.Join(pairs, ", ")), 1)
	return b.eval(js)
}
