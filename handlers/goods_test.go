package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"storefront/shoptest"
	"storefront/views"
)

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]*)"`)

// The home page's goods grid is rendered once and reused: each shopper must still get
// their own token in every buy form, and a goods change must show at once.
func TestGoodsPageSharesGridNotTokens(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	gid := shop.Demo(t, "小米手环", 19900, nil)
	shop.Demo(t, "保温杯", 8990, nil)
	alice, bob := shop.Browser(), shop.Browser()
	alice.Signup(t, "ga@example.com")
	bob.Signup(t, "gb@example.com")
	for _, b := range []*shoptest.Browser{alice, bob, alice} {
		r := b.Get(t, "/")
		tokens := csrfInput.FindAllStringSubmatch(r.Body, -1)
		if len(tokens) != 3 { // logout form + two buy forms
			t.Fatalf("%d token fields", len(tokens))
		}
		for _, m := range tokens {
			if m[1] != b.CSRF(t) {
				t.Fatalf("form token %q is not this shopper's %q", m[1], b.CSRF(t))
			}
		}
		if strings.Contains(r.Body, views.CSRFPlaceholder) {
			t.Fatal("placeholder leaked into the page")
		}
	}
	if alice.CSRF(t) == bob.CSRF(t) {
		t.Fatal("two shoppers share a token")
	}
	// The token from the page works for a purchase.
	r := alice.Get(t, "/")
	tok := csrfInput.FindStringSubmatch(r.Body)[1]
	if r := alice.PostRaw(t, "/purchase/1", url.Values{"_csrf": {tok}}); r.Status != http.StatusSeeOther {
		t.Fatalf("purchase with the page's token: %d", r.Status)
	}
	if err := shop.Store.UpdateGoods(context.Background(), gid, 17900, nil, true); err != nil {
		t.Fatal(err)
	}
	if r := bob.Get(t, "/"); !strings.Contains(r.Body, "¥179.00") || strings.Contains(r.Body, "¥199.00") {
		t.Fatal("price change not shown on the home page")
	}
}
