package sandbox

import (
	"context"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/smartwalle/alipay/v3"
)

// TestConsoleActions: the console shows open cashiers and trades with the buttons that
// fit each, every fault, the refund form and the refund-notify switch; its forms come
// back to it.
func TestConsoleActions(t *testing.T) {
	h := newHarness(t, nil)
	tg := newTarget(t, always(200, "success"))
	h.open(trade("K1", "1.00"))
	h.inject("K1", faultGBK)
	paidWith(h, tg, "K2", "8.00")
	_, _, page := h.do("GET", h.srv.URL+"/sandbox/", nil)
	card := func(no string) string {
		i := strings.Index(page, `<dd class="mono">`+no+`</dd>`)
		if i < 0 {
			t.Fatalf("no card for %s", no)
		}
		rest := page[i:]
		if j := strings.Index(rest, "</article>"); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	k1, k2 := card("K1"), card("K2")
	for _, want := range []string{"未创建（收银台已打开）", "NOT_CREATED", "/api/trades/K1/scan", "/api/trades/K1/pay", "下一次通知用 GBK 编码（<span class=\"mono\">gbk</span>）", "开启退款通知"} {
		if !strings.Contains(k1, want) {
			t.Errorf("open cashier card lacks %q", want)
		}
	}
	if strings.Contains(k1, "/refund\"") || strings.Contains(k1, "/notify\"") {
		t.Error("open cashier offers a refund or a resend")
	}
	for _, want := range []string{"支付成功", "/api/trades/K2/refund\"", "可退 ¥8.00", "/api/trades/K2/notify"} {
		if !strings.Contains(k2, want) {
			t.Errorf("paid card lacks %q", want)
		}
	}
	if strings.Contains(k2, "/api/trades/K2/scan") || strings.Contains(k2, "/api/trades/K2/pay") {
		t.Error("paid trade offers scan or pay")
	}
	for _, f := range allFaults {
		if !strings.Contains(k2, `name="next" value="`+f+`"`) || !strings.Contains(k2, faultLabels[f]) {
			t.Errorf("no button for fault %s", f)
		}
	}
	for _, path := range []string{"K1/scan", "K1/pay", "K2/refund-notify?on=1"} {
		form := url.Values{"back": {"console"}}
		if p, q, ok := strings.Cut(path, "?"); ok {
			path = p
			v, _ := url.ParseQuery(q)
			form.Set("on", v.Get("on"))
		}
		code, hdr, body := h.do("POST", h.srv.URL+"/sandbox/api/trades/"+path, form)
		if code != 303 || hdr.Get("Location") != "/sandbox/" {
			t.Errorf("%s from the console: %d %s", path, code, body)
		}
	}
	if q, _ := h.client.TradeQuery(context.Background(), alipay.TradeQuery{OutTradeNo: "K1"}); q.TradeStatus != alipay.TradeStatusSuccess {
		t.Errorf("console pay: %s", q.TradeStatus)
	}
	_, _, page = h.do("GET", h.srv.URL+"/sandbox/", nil)
	if !strings.Contains(page, "关闭退款通知") {
		t.Error("refund-notify switch not shown on")
	}
	// A failing console action says why, in Chinese, and leads back to the console.
	code, _, body := h.do("POST", h.srv.URL+"/sandbox/api/trades/NOPE/scan", url.Values{"back": {"console"}})
	if code != 404 || !strings.Contains(body, "交易不存在") || !strings.Contains(body, `href="/sandbox/"`) {
		t.Errorf("failed console action: %d\n%s", code, body)
	}
}

var (
	inlineRe = regexp.MustCompile(`(?i)<script|<style|\sstyle=|\son[a-z]+=|javascript:`)
	tdRe     = regexp.MustCompile(`<td[ >]`)
	pxRe     = regexp.MustCompile(`(?m)(^|[;{\s])(min-width|width|flex-basis)\s*:\s*(\d+)px`)
)

// TestPagesFitPhones checks, without a browser, the rules that keep every emulator page
// readable at 390 px: no inline script or style (the shop's CSP), a viewport, no fixed
// width wider than the phone, numbers that wrap, and tables that turn into labelled
// blocks on narrow screens.
func TestPagesFitPhones(t *testing.T) {
	h := newHarness(t, nil)
	tg := newTarget(t, always(500, strings.Repeat("很长的错误响应", 40)))
	paidWith(h, tg, "L1", "12.34")
	h.deliver()
	h.client.TradeRefund(context.Background(), alipay.TradeRefund{OutTradeNo: "L1", RefundAmount: "1.00", OutRequestNo: strings.Repeat("R", 64)})
	h.open(trade("L2", "1.00"))
	noReturn := trade("L3", "1.00")
	noReturn.ReturnURL = ""
	h.open(noReturn)
	_, _, cancelled := h.do("POST", h.srv.URL+"/sandbox/cashier/L2/cancel", url.Values{})
	_, _, paid := h.do("POST", h.srv.URL+"/sandbox/cashier/L3/pay", url.Values{})
	_, _, forged := h.do("GET", strings.Replace(h.pagePayURL(trade("L4", "1.00")), "sign=", "sign=AAAA", 1), nil)
	_, _, console := h.do("GET", h.srv.URL+"/sandbox/", nil)
	p := wapTrade("L5", "1.00")
	_, _, wap := h.do("GET", h.wapPayURL(p), nil)
	pages := map[string]string{"cashier": h.open(trade("L6", "1.00")), "wap cashier": wap, "cancelled": cancelled,
		"paid": paid, "error": forged, "console": console}
	for name, body := range pages {
		if m := inlineRe.FindString(body); m != "" {
			t.Errorf("%s: inline script or style %q", name, m)
		}
		if !strings.Contains(body, `<meta name="viewport" content="width=device-width, initial-scale=1">`) {
			t.Errorf("%s: no viewport", name)
		}
		if !strings.Contains(body, `href="/sandbox/static/sandbox.css"`) {
			t.Errorf("%s: no stylesheet", name)
		}
	}
	// Every table cell carries the label it shows when the table is stacked.
	tds := tdRe.FindAllStringIndex(console, -1)
	if len(tds) < 10 {
		t.Fatalf("console has %d cells", len(tds))
	}
	for _, m := range tds {
		if end := strings.IndexByte(console[m[0]:], '>'); !strings.Contains(console[m[0]:m[0]+end], "data-label=") {
			t.Errorf("cell without data-label: %.80s", console[m[0]:])
		}
	}
	_, _, css := h.do("GET", h.srv.URL+"/sandbox/static/sandbox.css", nil)
	for _, m := range pxRe.FindAllStringSubmatch(css, -1) {
		if n, _ := strconv.Atoi(m[3]); n > 358 { // 390 px less the narrowest page's padding
			t.Errorf("fixed %s %dpx is wider than a phone", m[2], n)
		}
	}
	for _, want := range []string{
		"@media (max-width: 640px)",
		".list, .list caption, .list tbody, .list tr, .list td { display: block;",
		".list thead { display: none; }",
		".list td::before { content: attr(data-label);",
		".mono, code { font-family: ui-monospace, Menlo, Consolas, monospace; overflow-wrap: anywhere; }",
		"minmax(0, 1fr)",
		".buttons { display: flex; flex-wrap: wrap;",
	} {
		if !strings.Contains(css, want) {
			t.Errorf("css lacks %q", want)
		}
	}
	// break-all splits words (and every Chinese phrase) into single characters.
	if strings.Contains(css, "break-all") {
		t.Error("css uses word-break: break-all")
	}
}

// oldSchema is the emulator database before pending cashiers (commit 93caa4f).
const oldSchema = `
CREATE TABLE trades (out_trade_no TEXT PRIMARY KEY, trade_no TEXT NOT NULL UNIQUE, app_id TEXT NOT NULL,
	subject TEXT NOT NULL, body TEXT NOT NULL DEFAULT '', total_fen INTEGER NOT NULL, refunded_fen INTEGER NOT NULL DEFAULT 0,
	status TEXT NOT NULL, notify_url TEXT NOT NULL DEFAULT '', return_url TEXT NOT NULL DEFAULT '',
	passback_params TEXT NOT NULL DEFAULT '', time_expire TEXT NOT NULL DEFAULT '', timeout_express TEXT NOT NULL DEFAULT '',
	expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL, paid_at INTEGER, closed_at INTEGER, next_fault TEXT NOT NULL DEFAULT '');
CREATE TABLE refunds (out_trade_no TEXT NOT NULL REFERENCES trades(out_trade_no), out_request_no TEXT NOT NULL,
	amount_fen INTEGER NOT NULL, refunded_at INTEGER NOT NULL, PRIMARY KEY (out_trade_no, out_request_no));
INSERT INTO trades (out_trade_no, trade_no, app_id, subject, total_fen, status, expires_at, created_at, paid_at, next_fault)
	VALUES ('OLD1', '2025030122000000000000000001', '2021000000000001', '旧交易', 1234, 'TRADE_SUCCESS', 9999999999999, 1740794400000, 1740794400000, 'drop');
INSERT INTO refunds VALUES ('OLD1', 'R1', 100, 1740794400000);
`

// TestOldDatabase: a database made by the previous emulator opens, keeps its trades and
// refunds, and its pending fault moves to the faults table.
func TestOldDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sqlx.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(oldSchema); err != nil {
		t.Fatal(err)
	}
	db.Close()
	h := newHarness(t, func(c *Config) { c.DBPath = path })
	q, err := h.client.TradeQuery(context.Background(), alipay.TradeQuery{OutTradeNo: "OLD1"})
	if err != nil || q.TradeStatus != alipay.TradeStatusSuccess || q.Subject != "旧交易" {
		t.Fatalf("old trade: %+v %v", q, err)
	}
	if fs, _ := pendingFaults(context.Background(), h.emu.db, "OLD1"); len(fs) != 1 || fs[0].Fault != faultDrop {
		t.Fatalf("old fault: %+v", fs)
	}
	if _, m := h.tradeJSON("OLD1"); len(m["refunds"].([]any)) != 1 {
		t.Fatalf("old refund: %v", m)
	}
}
