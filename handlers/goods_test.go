package handlers_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"storefront/money"
	"storefront/shoptest"
	"storefront/store"
)

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]*)"`)

var cardRE = regexp.MustCompile(`<li class="card goods">`)

// The catalogue is paged (a page never grows with the catalogue), filtered by category,
// searched by name and description (two-character Chinese words too) and sorted; its
// grid is shared by every visitor and carries no one's token.
func TestCataloguePagesFiltersSearchesSorts(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	ctx := context.Background()
	cats := []string{"数码", "家居", "课程"}
	for i := range 5000 {
		g := store.Goods{Name: fmt.Sprintf("商品%04d", i), Description: "普通的描述", Price: money.Fen(100 + i),
			Category: cats[i%3], Image: "/static/img/cup.svg"}
		if i == 4321 {
			g.Name, g.Description = "降噪耳机 Pro", "主动降噪"
		}
		if i == 77 {
			g.Description = "附赠一副入耳式耳机"
		}
		if _, err := shop.Store.AddGoods(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	b := shop.Browser()
	home := b.Get(t, "/")
	if home.Status != 200 || len(cardRE.FindAllString(home.Body, -1)) != 20 {
		t.Fatalf("home page: %d, %d cards, want 20", home.Status, len(cardRE.FindAllString(home.Body, -1)))
	}
	if len(home.Body) > 60<<10 {
		t.Fatalf("home page with 5,000 goods is %d bytes", len(home.Body))
	}
	if !strings.Contains(home.Body, "共 5000 件") || !strings.Contains(home.Body, "第 1 / 250 页") {
		t.Fatal("home page doesn't say how many goods and pages")
	}
	if strings.Contains(home.Body, `name="_csrf"`) && len(csrfInput.FindAllString(home.Body, -1)) > 0 {
		t.Fatal("the shared grid carries a CSRF token")
	}
	last := b.Get(t, "/?page=250")
	if n := len(cardRE.FindAllString(last.Body, -1)); n != 20 || !strings.Contains(last.Body, "商品4999") || strings.Contains(last.Body, "下一页") {
		t.Fatalf("last page: %d cards", n)
	}
	if r := b.Get(t, "/?page=251"); r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/?page=250" {
		t.Fatalf("a page past the end: %d to %q, want 303 to the last page", r.Status, r.Header.Get("Location"))
	}
	// Category.
	r := b.Get(t, "/?category=%E5%AE%B6%E5%B1%85") // 家居
	if !strings.Contains(r.Body, "共 1667 件") || strings.Contains(r.Body, "商品0000<") {
		t.Fatalf("category filter: %.200s", between(r.Body, "共 ", "件"))
	}
	// Search: a two-character word, in a name and in a description.
	r = b.Get(t, "/?q=%E8%80%B3%E6%9C%BA") // 耳机
	if !strings.Contains(r.Body, "共 2 件") || !strings.Contains(r.Body, "降噪耳机 Pro") || !strings.Contains(r.Body, "商品0077") {
		t.Fatalf("search 耳机: %s", between(r.Body, "共 ", "件"))
	}
	if r := b.Get(t, "/?q=pro"); !strings.Contains(r.Body, "降噪耳机 Pro") {
		t.Fatal("search is case sensitive")
	}
	if r := b.Get(t, "/?q=%E6%B2%A1%E6%9C%89%E8%BF%99%E7%A7%8D"); !strings.Contains(r.Body, "没有找到") {
		t.Fatal("an empty search says nothing")
	}
	if r := b.Get(t, "/?q="+strings.Repeat("x", 5000)); r.Status != 200 {
		t.Fatalf("a 5,000-character search: %d", r.Status)
	}
	// Sort by price, dearest first; and newest first.
	r = b.Get(t, "/?sort=price_desc")
	if i := strings.Index(r.Body, "¥50.99"); i < 0 || i > strings.Index(r.Body, "¥50.98") {
		t.Fatal("price_desc is not dearest first")
	}
	if r := b.Get(t, "/?sort=new"); strings.Index(r.Body, "商品4999") < 0 {
		t.Fatal("new is not newest first")
	}
	// A price change shows at once.
	if err := shop.Store.UpdateGoods(ctx, 1, 17900, nil, true); err != nil {
		t.Fatal(err)
	}
	if r := b.Get(t, "/"); !strings.Contains(r.Body, "¥179.00") {
		t.Fatal("price change not shown on the home page")
	}
	// Filters survive paging.
	r = b.Get(t, "/?category=%E6%95%B0%E7%A0%81&sort=price")
	if !strings.Contains(r.Body, `category=%E6%95%B0%E7%A0%81&amp;page=2&amp;sort=price`) && !strings.Contains(r.Body, "page=2") {
		t.Fatal("the pager drops the filters")
	}
	if !strings.Contains(r.Body, "category=") || !strings.Contains(between(r.Body, `class="pager"`, "</nav>"), "sort=price") {
		t.Fatalf("the pager link loses the sort: %s", between(r.Body, `class="pager"`, "</nav>"))
	}
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	j := strings.Index(s[i:], to)
	if j < 0 {
		return s[i:]
	}
	return s[i : i+j+len(to)]
}

// The goods page shows stock (仅剩 N 件 when low, 已售罄 with the buttons disabled) and
// has one quantity box for 加入购物车 and 立即购买 (which goes to 确认订单).
func TestGoodsDetailStock(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	three, none, many := int64(3), int64(0), int64(500)
	low := shop.Demo(t, "限量杯", 4900, &three)
	gone := shop.Demo(t, "售罄杯", 4900, &none)
	plenty := shop.Demo(t, "普通杯", 4900, &many)
	b := shop.Browser()
	r := b.Get(t, fmt.Sprintf("/goods/%d", low))
	if !strings.Contains(r.Body, "仅剩 3 件") || strings.Count(r.Body, `name="qty"`) != 1 || strings.Contains(r.Body, "disabled") {
		t.Fatalf("low stock page: 仅剩 %v, %d qty boxes", strings.Contains(r.Body, "仅剩 3 件"), strings.Count(r.Body, `name="qty"`))
	}
	r = b.Get(t, fmt.Sprintf("/goods/%d", gone))
	if !strings.Contains(r.Body, "已售罄") || strings.Count(r.Body, "disabled") < 3 {
		t.Fatal("sold-out page: buttons not disabled")
	}
	if r := b.Get(t, fmt.Sprintf("/goods/%d", plenty)); strings.Contains(r.Body, "仅剩") || !strings.Contains(r.Body, "有货") {
		t.Fatal("plenty of stock shown as low")
	}
	// 立即购买 posts the one form with buy_now and lands on 确认订单, adding nothing.
	r = b.Post(t, "/cart/items", map[string][]string{"goods_id": {fmt.Sprint(low)}, "qty": {"2"}, "buy_now": {"1"}})
	if r.Status != http.StatusSeeOther || r.Location != fmt.Sprintf("/checkout?goods_id=%d&qty=2", low) {
		t.Fatalf("立即购买: %d %q", r.Status, r.Location)
	}
	if r := b.Get(t, "/cart"); !strings.Contains(r.Body, "购物车是空的") {
		t.Fatal("立即购买 added to the cart")
	}
	// More than is left: refused, with the way back to the goods.
	r = b.Post(t, "/cart/items", map[string][]string{"goods_id": {fmt.Sprint(low)}, "qty": {"4"}, "buy_now": {"1"}})
	if r.Status != http.StatusConflict || !strings.Contains(r.Body, fmt.Sprintf(`href="/goods/%d"`, low)) {
		t.Fatalf("立即购买 beyond stock: %d", r.Status)
	}
}

// The goods list a plain visitor sees is rendered once and shared; it must never be
// what a logged-in shopper, a visitor with a cart or one with a notice sees, nor carry
// anyone's token, nor outlive a change of goods, nor show another's search text.
func TestSharedGoodsPageIsOnlyForPlainVisitors(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	cup := shop.Demo(t, "杯子", 1200, nil)
	plain := shop.Browser()
	first := plain.Get(t, "/")
	if first.Status != 200 || !strings.Contains(first.Body, "杯子") {
		t.Fatalf("home page: %d", first.Status)
	}
	// A visitor with a cart: the badge counts it.
	visitor := shop.Browser()
	if r := visitor.Post(t, "/cart/items", url.Values{"goods_id": {fmt.Sprint(cup)}, "qty": {"2"}}); r.Status >= 400 {
		t.Fatalf("add to cart: %d", r.Status)
	}
	for range 2 { // the first view may show the cart's notice
		if r := visitor.Get(t, "/"); !strings.Contains(between(r.Body, `id="nav-cart"`, "</a>"), "2") {
			t.Fatalf("a visitor with 2 in the cart sees the shared page: %s", between(r.Body, `id="nav-cart"`, "</a>"))
		}
	}
	// A shopper: their e-mail and their own token in the logout form.
	shopper := shop.Browser()
	shopper.Signup(t, "cache@example.com")
	shopper.Get(t, "/") // past any notice of the signup
	r := shopper.Get(t, "/")
	if !strings.Contains(r.Body, "cache@example.com") {
		t.Fatal("a logged-in shopper sees the shared page")
	}
	if m := csrfInput.FindStringSubmatch(r.Body); m == nil || m[1] != shopper.CSRF(t) {
		t.Fatal("the shopper's page doesn't carry their own token")
	}
	// The plain page after them: no one's e-mail, no token, the same bytes as before.
	again := shop.Browser().Get(t, "/")
	if strings.Contains(again.Body, "cache@example.com") || csrfInput.MatchString(again.Body) || again.Body != first.Body {
		t.Fatal("the plain page changed after a shopper's visit")
	}
	// Searches typed differently find the same goods but each shows its own text.
	a, b := plain.Get(t, "/?q=%E6%9D%AF"), plain.Get(t, "/?q=+%E6%9D%AF+") // 杯, " 杯 "
	if !strings.Contains(a.Body, `value="杯"`) || !strings.Contains(b.Body, `value=" 杯 "`) {
		t.Fatalf("search box text: %q / %q", between(a.Body, `type="search"`, ">"), between(b.Body, `type="search"`, ">"))
	}
	// A change of goods shows at once.
	if err := shop.Store.UpdateGoods(context.Background(), cup, 1500, nil, true); err != nil {
		t.Fatal(err)
	}
	if r := plain.Get(t, "/"); !strings.Contains(r.Body, "¥15.00") {
		t.Fatal("the shared page outlived a price change")
	}
	if r := plain.Get(t, "/?q=%E6%9D%AF"); !strings.Contains(r.Body, "¥15.00") {
		t.Fatal("a search's shared page outlived a price change")
	}
}

// The goods list a new visitor lands on goes out compressed to a client that takes
// gzip (the same page, a quarter of the bytes), plain to one that doesn't or refuses it;
// it mints no CSRF token (it has no form that posts), and a POST still needs one.
func TestNewVisitorsGoodsListIsGzippedAndTokenless(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	for i := range 20 { // a full page
		shop.Demo(t, fmt.Sprintf("杯子%d", i), money.Fen(1200+i), nil)
	}
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}} // no cookie jar: always a new visitor
	get := func(accept string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, shop.URL+"/", nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		res, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		for _, ck := range res.Cookies() {
			if ck.Name == "_csrf" {
				t.Errorf("GET / with no cookie set a CSRF cookie")
			}
		}
		return res, b
	}
	_, page := get("") // the first asking renders it
	// The second asking of the same rendering compresses it. On PostgreSQL the goods
	// snapshot may be read again once meanwhile (another process could have changed
	// goods), and its new rendering is asked for anew.
	var res *http.Response
	var gz []byte
	for range 5 {
		if res, gz = get("br, gzip, deflate"); res.Header.Get("Content-Encoding") == "gzip" {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("Content-Length") != strconv.Itoa(len(gz)) {
		t.Fatalf("a client taking gzip got Content-Encoding %q, Content-Length %q for %d bytes",
			res.Header.Get("Content-Encoding"), res.Header.Get("Content-Length"), len(gz))
	}
	if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Accept-Encoding") {
		t.Errorf("Vary: %q, want Accept-Encoding in it", res.Header.Values("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	inflated, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(inflated, page) {
		t.Fatalf("the gzip page is not the page (%v)", err)
	}
	if len(gz)*2 > len(page) {
		t.Errorf("gzip %d bytes of a %d-byte page", len(gz), len(page))
	}
	for _, accept := range []string{"", "identity", "gzip;q=0", "deflate, br", "*;q=0"} {
		res, b := get(accept)
		if res.Header.Get("Content-Encoding") != "" || !bytes.Equal(b, page) {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want the plain page", accept, res.Header.Get("Content-Encoding"))
		}
	}
	// The token comes with the first page that has a form, and a POST needs it.
	b := shop.Browser()
	if r := b.Post(t, "/cart/items", url.Values{"goods_id": {"1"}, "qty": {"1"}}); r.Status >= 400 {
		t.Fatalf("add to cart with the token from the login page: %d", r.Status)
	}
	req, _ := http.NewRequest(http.MethodPost, shop.URL+"/cart/items", strings.NewReader("goods_id=1&qty=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, err := raw.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("a POST with no token: %v %v, want 403", res.StatusCode, err)
	}
}
