package handlers_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"storefront/shoptest"
)

const pw = "correct horse battery"

func login(t *testing.T, b *shoptest.Browser, email, password string) int {
	t.Helper()
	return b.Post(t, "/login", url.Values{"email": {email}, "password": {password}}).Status
}

// stolenCookie copies b's cookies into a fresh browser: someone who kept a copy.
func stolenCookie(t *testing.T, shop *shoptest.Shop, b *shoptest.Browser) *shoptest.Browser {
	t.Helper()
	u, _ := url.Parse(shop.URL)
	thief := shop.Browser()
	thief.Client.Jar.SetCookies(u, b.Client.Jar.Cookies(u))
	return thief
}

func loggedOut(r shoptest.Response) bool {
	return r.Status == http.StatusSeeOther && strings.HasPrefix(r.Location, "/login")
}

// Logging out ends the session on the server: a copy of the cookie taken before opens
// nothing afterwards (it used to keep working for up to 7 days).
func TestLogoutEndsTheSession(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	gid := shop.Demo(t, "键盘", 39900, nil)
	b := shop.Browser()
	b.Signup(t, "out@example.com")
	copyOf := stolenCookie(t, shop, b)
	if r := copyOf.Get(t, "/orders"); r.Status != 200 {
		t.Fatalf("the copied cookie before logout: %d", r.Status)
	}
	if r := b.Post(t, "/logout", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.Status)
	}
	if r := copyOf.Get(t, "/orders"); !loggedOut(r) {
		t.Fatalf("the copied cookie after logout opened /orders: %d %q", r.Status, r.Location)
	}
	if r := copyOf.Post(t, "/purchase/"+itoa(gid), nil); !loggedOut(r) {
		t.Fatalf("the copied cookie after logout could buy: %d %q", r.Status, r.Location)
	}
	if r := copyOf.Get(t, "/"); strings.Contains(r.Body, "out@example.com") {
		t.Fatal("the home page still shows the logged-out shopper")
	}
	if login(t, b, "out@example.com", pw) != http.StatusSeeOther {
		t.Fatal("cannot log in again")
	}
	if r := b.Get(t, "/orders"); r.Status != 200 {
		t.Fatalf("new session: %d", r.Status)
	}
}

// 修改密码 ends every other session of the shopper and keeps this one.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true})
	phone := shop.Browser()
	phone.Signup(t, "pw@example.com")
	laptop := shop.Browser()
	if login(t, laptop, "pw@example.com", pw) != http.StatusSeeOther {
		t.Fatal("second login")
	}
	if r := phone.Get(t, "/account/password"); r.Status != 200 || !strings.Contains(r.Body, "修改密码") {
		t.Fatalf("password page: %d", r.Status)
	}
	for _, bad := range []url.Values{
		{"current": {"wrong one!"}, "password": {"new password 1"}, "confirm": {"new password 1"}},
		{"current": {pw}, "password": {"short"}, "confirm": {"short"}},
		{"current": {pw}, "password": {"new password 1"}, "confirm": {"new password 2"}},
	} {
		if r := phone.Post(t, "/account/password", bad); r.Status < 400 || r.Status >= 500 {
			t.Fatalf("bad change %v: %d", bad, r.Status)
		}
	}
	if r := laptop.Get(t, "/orders"); r.Status != 200 {
		t.Fatal("a refused change ended the other session")
	}
	r := phone.Post(t, "/account/password", url.Values{"current": {pw}, "password": {"new password 1"}, "confirm": {"new password 1"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	if r := laptop.Get(t, "/orders"); !loggedOut(r) {
		t.Fatalf("the other session survived the password change: %d", r.Status)
	}
	if r := phone.Get(t, "/orders"); r.Status != 200 {
		t.Fatalf("the session that changed the password was ended: %d %q", r.Status, r.Location)
	}
	if login(t, shop.Browser(), "pw@example.com", pw) != http.StatusUnauthorized {
		t.Fatal("the old password still works")
	}
	if login(t, shop.Browser(), "pw@example.com", "new password 1") != http.StatusSeeOther {
		t.Fatal("the new password doesn't work")
	}
}

// Signup is limited per client address, and the limit is decided before bcrypt: the
// refused attempts create nothing.
func TestSignupLimitedPerAddress(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true, RealLimits: true})
	b := shop.Browser()
	codes := map[int]int{}
	for i := range 8 {
		r := b.Post(t, "/signup", url.Values{"email": {"s" + itoa(int64(i)) + "@example.com"}, "password": {pw}})
		codes[r.Status]++
		b = shop.Browser()
	}
	if codes[http.StatusSeeOther] != 5 || codes[http.StatusTooManyRequests] != 3 {
		t.Fatalf("8 signups from one address: %v, want 5×303 and 3×429", codes)
	}
	for i := 5; i < 8; i++ {
		if _, err := shop.Store.UserByEmail(context.Background(), "s"+itoa(int64(i))+"@example.com"); err == nil {
			t.Fatalf("refused signup %d created its account", i)
		}
	}
	// Another address may still sign up.
	if r := shop.BrowserFrom("127.0.0.2").Post(t, "/signup", url.Values{"email": {"other@example.com"}, "password": {pw}}); r.Status != http.StatusSeeOther {
		t.Fatalf("signup from another address: %d", r.Status)
	}
}

// Behind a reverse proxy named in TRUSTED_PROXIES, each client behind it has its own
// signup limit (the proxy's address would otherwise be everyone's); without the setting
// the header is not believed, so forging it gains nothing.
func TestSignupLimitBehindProxy(t *testing.T) {
	_, loopback, _ := net.ParseCIDR("127.0.0.1/32")
	for _, trusted := range []bool{true, false} {
		o := shoptest.Options{NoEmulator: true, RealLimits: true}
		if trusted {
			o.TrustedProxies = []*net.IPNet{loopback}
		}
		shop := shoptest.New(t, o)
		signup := func(client, email string) int {
			return shop.BrowserVia(client).Post(t, "/signup", url.Values{"email": {email}, "password": {pw}}).Status
		}
		for i := range 5 {
			if code := signup("198.51.100.1", "a"+itoa(int64(i))+"@example.com"); code != http.StatusSeeOther {
				t.Fatalf("signup %d: %d", i, code)
			}
		}
		if code := signup("198.51.100.1", "a5@example.com"); code != http.StatusTooManyRequests {
			t.Fatalf("trusted %v: the sixth signup of one client: %d", trusted, code)
		}
		code := signup("198.51.100.2", "b@example.com")
		if trusted && code != http.StatusSeeOther {
			t.Fatalf("another client behind the proxy: %d, want 303", code)
		}
		if !trusted && code != http.StatusTooManyRequests {
			t.Fatalf("a forged X-Forwarded-For without a trusted proxy: %d, want 429", code)
		}
	}
}

// An attacker at one other address, guessing all day at one every 12 s, never keeps the
// shopper from logging in at theirs (it used to take six wrong passwords); the attacker
// gets a handful of guesses an hour.
func TestAttackerElsewhereCannotLockOut(t *testing.T) {
	shop := shoptest.New(t, shoptest.Options{NoEmulator: true, RealLimits: true})
	owner := shop.BrowserFrom("127.0.0.2")
	owner.Signup(t, "owner@example.com")
	owner.Post(t, "/logout", nil)
	attacker := shop.BrowserFrom("127.0.0.3")
	guesses := 0
	for i := range 6 * 60 * 5 { // six hours, one try every 12 s
		switch st := login(t, attacker, "owner@example.com", "guess "+itoa(int64(i))); st {
		case http.StatusUnauthorized:
			guesses++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("attempt %d: %d", i, st)
		}
		shop.Clock.Advance(12 * time.Second)
		if i%300 == 299 { // every hour the owner comes back
			if st := login(t, owner, "owner@example.com", pw); st != http.StatusSeeOther {
				t.Fatalf("hour %d: the owner was locked out: %d", i/300+1, st)
			}
			owner.Post(t, "/logout", nil)
		}
	}
	if guesses > 5+6*5+1 {
		t.Fatalf("the attacker had %d guesses in six hours; want at most the burst and 5 an hour", guesses)
	}
	t.Logf("attacker at one address, 1,800 tries in 6 h: %d guesses checked, owner never locked out", guesses)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
