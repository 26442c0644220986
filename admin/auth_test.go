package admin_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"storefront/shoptest"
)

// An operator account's login allowance is the shop's default 30 an hour however many
// addresses guess, and it is kept with the account in the database (where every
// instance sharing it spends from it), not in this instance's memory.
func TestOperatorLoginAllowanceIsKeptWithTheAccount(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true, RealLimits: true})
	shop.Operator(t, "guarded-op@example.com")
	codes := map[int]int{}
	for i := range 31 {
		b := shop.BrowserFrom(fmt.Sprintf("127.0.1.%d", i+1))
		codes[b.Post(t, "/admin/login", url.Values{"email": {"guarded-op@example.com"}, "password": {"wrong"}}).Status]++
	}
	if codes[http.StatusTooManyRequests] != 1 || codes[http.StatusUnauthorized] != 30 {
		t.Errorf("31 wrong operator logins from 31 addresses: %v, want 30×401 and 1×429", codes)
	}
	var full *string
	if err := shop.Raw(t).Get(&full, `SELECT login_full_at FROM operators WHERE email = 'guarded-op@example.com'`); err != nil {
		t.Fatal(err)
	}
	if full == nil {
		t.Error("the operator's allowance is not in the database")
	}
}
