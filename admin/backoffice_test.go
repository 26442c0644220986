package admin_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"storefront/money"
	"storefront/shoptest"
	"storefront/store"
)

// The order list: filters by status, fulfilment, search and dates, keyset paging; the
// detail page's timeline merges payment events and operator actions; ship and notes.
func TestOrdersListShipAndTimeline(t *testing.T) {
	shop, buyer, op, gid := setup(t, shoptest.Options{})
	paid := shop.PaidOrder(t, buyer, gid, 1)
	unpaid, _ := buyer.Buy(t, gid, 1)
	list := func(q string) string { return op.Get(t, "/admin/orders?"+q).Body }
	if s := list("status=paid"); !strings.Contains(s, paid.OutTradeNo) || strings.Contains(s, unpaid.OutTradeNo) {
		t.Fatal("status filter")
	}
	if s := list("fulfilment=unshipped"); !strings.Contains(s, paid.OutTradeNo) || strings.Contains(s, unpaid.OutTradeNo) {
		t.Fatal("fulfilment filter")
	}
	for _, q := range []string{paid.OutTradeNo, shop.Order(t, paid.OutTradeNo).TradeNo, "buyer@example.com", "13800138000"} {
		if s := list("q=" + url.QueryEscape(q)); !strings.Contains(s, paid.OutTradeNo) {
			t.Errorf("search by %q finds nothing", q)
		}
	}
	if s := list("q=nobody%40example.com"); strings.Contains(s, paid.OutTradeNo) {
		t.Fatal("search matches the wrong shopper")
	}
	today := time.Now().In(time.FixedZone("CST", 8*3600))
	_ = today
	day := shop.Clock.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01-02")
	if s := list("from=" + day + "&to=" + day); !strings.Contains(s, paid.OutTradeNo) {
		t.Fatal("date range of the order's own day finds nothing")
	}
	next := shop.Clock.Now().Add(48 * time.Hour).In(time.FixedZone("CST", 8*3600)).Format("2006-01-02")
	if s := list("from=" + next); strings.Contains(s, paid.OutTradeNo) {
		t.Fatal("a later date range finds the order")
	}
	if r := op.Get(t, "/admin/orders?from=yesterday"); r.Status != 200 || !strings.Contains(r.Body, "日期格式不正确") {
		t.Fatalf("a bad date: %d", r.Status)
	}
	// Ship: carrier and tracking number checked; only a paid, unshipped order ships.
	if r := op.Post(t, "/admin/orders/"+paid.OutTradeNo+"/ship", url.Values{"carrier": {"顺丰速运"}, "tracking_no": {"<b>"}}); r.Status != http.StatusBadRequest {
		t.Fatalf("bad tracking number: %d", r.Status)
	}
	if r := op.Post(t, "/admin/orders/"+unpaid.OutTradeNo+"/ship", url.Values{"carrier": {"顺丰速运"}, "tracking_no": {"SF1234567890"}}); r.Status != http.StatusConflict {
		t.Fatalf("ship an unpaid order: %d", r.Status)
	}
	if r := op.Post(t, "/admin/orders/"+paid.OutTradeNo+"/ship", url.Values{"carrier": {"顺丰速运"}, "tracking_no": {"SF1234567890"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("ship: %d", r.Status)
	}
	op.Post(t, "/admin/orders/"+paid.OutTradeNo+"/notes", url.Values{"note": {"顾客要求周末送达"}})
	page := op.Get(t, "/admin/orders/"+paid.OutTradeNo).Body
	tl := page[strings.Index(page, `id="timeline"`):]
	for _, want := range []string{"异步通知", "TRADE_SUCCESS", "发货", "顺丰速运 SF1234567890", "备注", "顾客要求周末送达", "op@example.com"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	if i, j := strings.Index(tl, "TRADE_SUCCESS"), strings.Index(tl, "SF1234567890"); i < 0 || j < i {
		t.Error("timeline is not in time order")
	}
	if s := buyer.Get(t, "/orders/"+paid.OutTradeNo).Body; !strings.Contains(s, "已发货") || !strings.Contains(s, "SF1234567890") {
		t.Fatal("the shopper doesn't see the shipment")
	}
	if s := op.Get(t, "/admin/audit").Body; !strings.Contains(s, "顾客要求周末送达") || !strings.Contains(s, "发货") {
		t.Fatal("the actions log lacks the ship and the note")
	}
	// Cancel an unpaid order: the trade is closed at Alipay first.
	shop.OpenCashier(t, mustGateway(t, buyer, unpaid))
	shop.Scan(t, unpaid.OutTradeNo)
	if r := op.Post(t, "/admin/orders/"+unpaid.OutTradeNo+"/cancel", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("cancel: %d", r.Status)
	}
	if got, emu := shop.Order(t, unpaid.OutTradeNo), shop.EmuTradeOf(t, unpaid.OutTradeNo); got.Status != store.StatusCancelled || emu.Status != "TRADE_CLOSED" {
		t.Fatalf("after the operator's cancel: shop %s, Alipay %s", got.Status, emu.Status)
	}
}

// mustGateway signs a fresh gateway URL for an unpaid order (pay again).
func mustGateway(t *testing.T, b *shoptest.Browser, o store.Order) string {
	t.Helper()
	r := b.Post(t, "/orders/"+o.OutTradeNo+"/pay", nil)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("pay again: %d", r.Status)
	}
	return r.Location
}

// Keyset paging: 120 orders, 50 a page, every order on exactly one page.
func TestOrdersPaging(t *testing.T) {
	shop, buyer, op, _ := setup(t, shoptest.Options{})
	gid := shop.Demo(t, "帆布包", 5900, nil)
	want := map[string]bool{}
	for range 120 {
		o, _ := buyer.Buy(t, gid, 1)
		want[o.OutTradeNo] = true
	}
	seen := map[string]int{}
	re := regexp.MustCompile(`href="/admin/orders/([0-9]+)"`)
	next := "/admin/orders"
	pages := 0
	for next != "" {
		pages++
		body := op.Get(t, next).Body
		for _, m := range re.FindAllStringSubmatch(body, -1) {
			seen[m[1]]++
		}
		next = ""
		if m := regexp.MustCompile(`href="(/admin/orders\?before=[0-9]+)"`).FindStringSubmatch(body); m != nil {
			next = m[1]
		}
	}
	if pages != 3 {
		t.Fatalf("%d pages for 120 orders", pages)
	}
	for no := range want {
		if seen[no] != 1 {
			t.Fatalf("order %s seen %d times", no, seen[no])
		}
	}
}

func pngBytes(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, x%h, color.RGBA{200, 30, 30, 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// postGoods submits the goods form (multipart) with an optional picture.
func postGoods(t *testing.T, op *shoptest.Browser, path string, fields map[string]string, file []byte, name string) shoptest.Response {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("_csrf", op.CSRF(t))
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if file != nil {
		w, _ := mw.CreateFormFile("image", name)
		w.Write(file)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, op.Base()+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := op.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return shoptest.Response{Status: resp.StatusCode, Body: string(b), Header: resp.Header, Location: resp.Header.Get("Location")}
}

// Goods: create and edit with a checked picture; uploads that lie are refused; a price
// change never touches an order; the shop's pages follow at once; names are escaped.
func TestGoodsManagement(t *testing.T) {
	shop, buyer, op, gid := setup(t, shoptest.Options{})
	o := shop.PaidOrder(t, buyer, gid, 1)
	fields := map[string]string{"name": `<script>alert("x")</script>台灯`, "description": "=HYPERLINK(\"http://evil\")", "price": "159",
		"stock": "", "category": "家居", "active": "1"}
	r := postGoods(t, op, "/admin/goods", fields, pngBytes(t, 40, 30), "lamp.png")
	if r.Status != http.StatusSeeOther {
		t.Fatalf("create: %d %.400s", r.Status, r.Body)
	}
	gs, _, _ := shop.Store.AllGoods(context.Background(), 0, 10)
	g := gs[0]
	if g.Price != 15900 || g.Stock != nil || !strings.HasPrefix(g.Image, "/media/") || g.Category != "家居" {
		t.Fatalf("created %+v", g)
	}
	img := buyer.Get(t, g.Image)
	if img.Status != 200 || img.Header.Get("Content-Type") != "image/png" || img.Header.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(img.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("image served %d %v", img.Status, img.Header)
	}
	// The picture is kept in the database: an instance without the file (another
	// machine, a cleared cache) serves the same bytes, and caches them again.
	cached := filepath.Join(shop.MediaDir, strings.TrimPrefix(g.Image, "/media/"))
	if err := os.Remove(cached); err != nil {
		t.Fatalf("the upload was not cached in MEDIA_DIR: %v", err)
	}
	if again := buyer.Get(t, g.Image); again.Status != 200 || again.Body != img.Body || again.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("without the cached file: %d, %d bytes (want %d)", again.Status, len(again.Body), len(img.Body))
	}
	if _, err := os.Stat(cached); err != nil {
		t.Fatalf("not cached again: %v", err)
	}
	if missing := buyer.Get(t, "/media/0123456789abcdef0123456789abcdef.png"); missing.Status != http.StatusNotFound {
		t.Fatalf("an unknown picture: %d", missing.Status)
	}
	for where, page := range map[string]string{"home": buyer.Get(t, "/").Body, "goods page": buyer.Get(t, fmt.Sprintf("/goods/%d", g.ID)).Body,
		"admin list": op.Get(t, "/admin/goods").Body, "admin edit": op.Get(t, fmt.Sprintf("/admin/goods/%d", g.ID)).Body} {
		if strings.Contains(page, "<script>alert") {
			t.Errorf("%s renders the goods name as markup", where)
		}
		if !strings.Contains(page, "&lt;script&gt;") {
			t.Errorf("%s doesn't show the escaped name", where)
		}
	}
	// Lies about the type, and too big.
	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
	polyglot := append(pngBytes(t, 10, 10), []byte("<html><script>alert(1)</script></html>")...)
	big := append([]byte{}, pngBytes(t, 10, 10)...)
	big = append(big, make([]byte, 2<<20)...)
	gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
	// A few hundred bytes that claim 5000×5000: refused before anything is decoded.
	bomb := pngBytes(t, 10, 10)
	binary.BigEndian.PutUint32(bomb[16:], 5000)
	binary.BigEndian.PutUint32(bomb[20:], 5000)
	binary.BigEndian.PutUint32(bomb[29:], crc32.ChecksumIEEE(bomb[12:29]))
	for name, file := range map[string][]byte{"an SVG with script": svg, "a PNG with HTML after it": polyglot,
		"over 2 MiB": big, "a GIF": gif, "not an image": []byte("hello"), "25 million pixels": bomb} {
		r := postGoods(t, op, fmt.Sprintf("/admin/goods/%d", g.ID), map[string]string{"name": "台灯", "price": "159.00", "active": "1"}, file, "x.png")
		if r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, r.Status)
		}
		if name == "25 million pixels" && !strings.Contains(r.Body, "尺寸太大") {
			t.Errorf("%s: not refused for its size: %.300s", name, r.Body)
		}
	}
	if got, _ := shop.Store.AnyGoods(context.Background(), g.ID); got.Image != g.Image {
		t.Fatal("a refused upload replaced the picture")
	}
	// A price change: the order keeps its price; the shop shows the new one at once.
	r = postGoods(t, op, fmt.Sprintf("/admin/goods/%d", gid), map[string]string{"name": "机械键盘", "price": "349.00", "stock": "5", "active": "1"}, nil, "")
	if r.Status != http.StatusSeeOther {
		t.Fatalf("update: %d %.300s", r.Status, r.Body)
	}
	items, _ := shop.Store.OrderItems(context.Background(), o.ID)
	if shop.Order(t, o.OutTradeNo).Total != 39900 || items[0].UnitFen != 39900 {
		t.Fatal("a price change touched an existing order")
	}
	if s := buyer.Get(t, "/").Body; !strings.Contains(s, "¥349.00") || strings.Contains(s, "¥399.00") {
		t.Fatal("the shop's goods page didn't follow the price change")
	}
	// Off the shelf: gone from the shop, kept in the back office.
	postGoods(t, op, fmt.Sprintf("/admin/goods/%d", gid), map[string]string{"name": "机械键盘", "price": "349.00", "stock": "5"}, nil, "")
	if s := buyer.Get(t, "/").Body; strings.Contains(s, "机械键盘") {
		t.Fatal("goods taken off the shelf still on sale")
	}
	if r := buyer.Get(t, fmt.Sprintf("/goods/%d", gid)); r.Status != http.StatusNotFound {
		t.Fatalf("withdrawn goods page: %d", r.Status)
	}
	if s := op.Get(t, "/admin/audit").Body; !strings.Contains(s, "¥399.00") || !strings.Contains(s, "¥349.00") {
		t.Fatal("the log lacks the price before and after")
	}
	// Bad forms are 400 with the reason.
	for name, f := range map[string]map[string]string{"no name": {"name": "", "price": "1"}, "bad price": {"name": "x", "price": "1.234"},
		"zero price": {"name": "x", "price": "0"}, "negative stock": {"name": "x", "price": "1", "stock": "-1"}} {
		if r := postGoods(t, op, "/admin/goods", f, nil, ""); r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d", name, r.Status)
		}
	}
}

// The CSV export: UTF-8 with a BOM, amounts in yuan, cells that would be formulas
// guarded, and every order of the range.
func TestExportCSV(t *testing.T) {
	shop, buyer, op, _ := setup(t, shoptest.Options{})
	evil := shop.Demo(t, "=cmd|' /C calc'!A0", 1234, nil)
	o := shop.PaidOrder(t, buyer, evil, 2)
	refundVia(t, op, o, "1.00", nil)
	r := op.Get(t, "/admin/export/orders.csv")
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") || !strings.HasPrefix(r.Body, "\uFEFF") {
		t.Fatalf("export: %d %q %q", r.Status, r.Header.Get("Content-Type"), r.Body[:min(10, len(r.Body))])
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(r.Body, "\uFEFF"))).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %d: %v", len(rows), err)
	}
	row := rows[1]
	// Order and trade numbers behind a tab, as text: Excel would show a 26-digit number
	// as 2.02612E+25 and keep 15 of its digits.
	if row[0] != "\t"+o.OutTradeNo || row[9] != "\t"+o.TradeNo || row[7] != "24.68" || row[8] != "1.00" || !strings.HasPrefix(row[6], "'=cmd") {
		t.Fatalf("row %q", row)
	}
	r = op.Get(t, "/admin/export/refunds.csv")
	rows, _ = csv.NewReader(strings.NewReader(strings.TrimPrefix(r.Body, "\uFEFF"))).ReadAll()
	if len(rows) != 2 || rows[1][1] != "\t"+o.OutTradeNo || rows[1][3] != "1.00" || rows[1][5] != "已退款" {
		t.Fatalf("refunds export %q", rows)
	}
	// An order nobody paid for is not 待发货.
	buyer.Buy(t, evil, 1)
	rows, _ = csv.NewReader(strings.NewReader(strings.TrimPrefix(op.Get(t, "/admin/export/orders.csv").Body, "\uFEFF"))).ReadAll()
	unpaid := 0
	for _, row := range rows[1:] {
		if row[3] == "待支付" {
			unpaid++
			if row[4] != "" {
				t.Fatalf("an unpaid order exported with fulfilment %q", row[4])
			}
		}
	}
	if len(rows) != 3 || unpaid != 1 {
		t.Fatalf("%d rows, %d of them unpaid, after a second, unpaid order; want 3 and 1", len(rows), unpaid)
	}
	if r := op.Get(t, "/admin/export/orders.csv?from=2026-13-01"); r.Status != http.StatusBadRequest {
		t.Fatalf("bad date: %d", r.Status)
	}
}

// The dashboard: today's figures, the queues, the chart drawn as SVG.
func TestDashboard(t *testing.T) {
	shop, buyer, op, gid := setup(t, shoptest.Options{})
	shop.PaidOrder(t, buyer, gid, 1)
	shop.PaidOrder(t, buyer, gid, 2)
	page := op.Get(t, "/admin/").Body
	for _, want := range []string{`id="today-orders">2<`, `id="today-sales" class="price">¥1197.00`, `id="to-ship">2<`, "<svg", "<rect"} {
		if !strings.Contains(strings.ReplaceAll(page, `class="price" id="today-sales"`, `id="today-sales" class="price"`), want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Fatal("the dashboard uses script")
	}
	if n := strings.Count(page, "<rect"); n != 14 {
		t.Fatalf("%d bars, want 14 days", n)
	}
	// The live figures are reused for liveTTL, then read again.
	shop.PaidOrder(t, buyer, gid, 1)
	if page := op.Get(t, "/admin/").Body; !strings.Contains(page, `id="to-ship">2<`) {
		t.Fatal("the queue was counted again within liveTTL")
	}
	shop.Clock.Advance(5 * time.Second)
	if page := op.Get(t, "/admin/").Body; !strings.Contains(page, `id="to-ship">3<`) || !strings.Contains(page, `id="today-orders">3<`) {
		t.Fatal("the live figures were not read again after liveTTL")
	}
}

// The flagged-payment queue: a second payment for a paid order waits there; 立即全额退款
// refunds it and the queue says so; another is resolved with a note.
func TestFlaggedPaymentQueue(t *testing.T) {
	shop, buyer, op, gid := setup(t, shoptest.Options{})
	o := shop.PaidOrder(t, buyer, gid, 1)
	second := shop.NotifyFor(o, "2026112222001499999999999999")
	if got := shop.PostNotify(t, second.Encode(), "application/x-www-form-urlencoded"); got != "success" {
		t.Fatalf("second payment's notify: %q", got)
	}
	page := op.Get(t, "/admin/payments").Body
	if !strings.Contains(page, "2026112222001499999999999999") || !strings.Contains(page, "待处理") {
		t.Fatal("the queue lacks the second payment")
	}
	fs, _, _ := shop.Store.FlaggedPayments(context.Background(), 0, 10)
	if len(fs) != 1 {
		t.Fatalf("%d flagged", len(fs))
	}
	if r := op.Post(t, fmt.Sprintf("/admin/payments/%d/resolve", fs[0].ID), url.Values{"note": {""}}); r.Status != http.StatusBadRequest {
		t.Fatalf("resolve without a note: %d", r.Status)
	}
	if r := op.Post(t, fmt.Sprintf("/admin/payments/%d/resolve", fs[0].ID), url.Values{"note": {"线下已退"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("resolve: %d", r.Status)
	}
	if f, _ := shop.Store.FlaggedPayment(context.Background(), fs[0].ID); !f.Done() || f.ResolvedByOp.String != "op@example.com" {
		t.Fatalf("after resolve: %+v", f)
	}
	_ = money.Fen(0)
}

// The goods form was drawn at stock 8; then 3 sold. Saving it with only a new price keeps
// the 5 left (it used to put the 8 back: units sold twice); changing the stock from the
// stale 8 is refused with the stock as it is now; from the 5 shown then, it applies.
func TestGoodsFormNeverPutsBackSoldStock(t *testing.T) {
	shop, buyer, op, _ := setup(t, shoptest.Options{})
	stock := int64(8)
	gid := shop.Demo(t, "蓝牙音箱", 25900, &stock)
	path := fmt.Sprintf("/admin/goods/%d", gid)
	if !strings.Contains(op.Get(t, path).Body, `name="stock_was" value="8"`) {
		t.Fatal("the edit form doesn't carry the stock it shows")
	}
	shop.PaidOrder(t, buyer, gid, 3)
	stockNow := func() int64 {
		g, err := shop.Store.AnyGoods(context.Background(), gid)
		if err != nil || g.Stock == nil {
			t.Fatalf("goods %d: %v, stock %v", gid, err, g.Stock)
		}
		return *g.Stock
	}
	if n := stockNow(); n != 5 {
		t.Fatalf("stock %d after selling 3 of 8", n)
	}
	form := map[string]string{"name": "蓝牙音箱", "price": "239.00", "stock": "8", "stock_was": "8", "active": "1"}
	if r := postGoods(t, op, path, form, nil, ""); r.Status != http.StatusSeeOther {
		t.Fatalf("price change: %d %.300s", r.Status, r.Body)
	}
	if n := stockNow(); n != 5 {
		t.Fatalf("a price change from a stale form set the stock to %d, want the 5 left", n)
	}
	form["stock"] = "20"
	r := postGoods(t, op, path, form, nil, "")
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "库存已变化") || !strings.Contains(r.Body, `value="5"`) {
		t.Fatalf("a stock change from a stale form: %d %.300s", r.Status, r.Body)
	}
	if n := stockNow(); n != 5 {
		t.Fatalf("stock %d after a refused change", n)
	}
	form["stock_was"] = "5"
	if r := postGoods(t, op, path, form, nil, ""); r.Status != http.StatusSeeOther {
		t.Fatalf("stock change from the current stock: %d %.300s", r.Status, r.Body)
	}
	if n := stockNow(); n != 20 {
		t.Fatalf("stock %d, want 20", n)
	}
}
