package reliability

// Black-box tests of what an anonymous visitor can make the real binary do: they speak
// only HTTP and read the database file, so they run unchanged against an earlier build
// (SHOP_BIN=…) to show the hole each one closes.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"storefront/payment"
	"storefront/shoptest"
	"storefront/store"
)

// v2Schema is the previous release's schema: files made with it open in any build.
func v2Schema(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(), "store", "testdata", "schema_v2.sql"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// seededDB makes a shop database with one shopper, one goods and one unpaid order of
// ¥199.00, and returns the order's number.
func seededDB(t *testing.T, path string) string {
	t.Helper()
	db := sqlx.MustOpen("sqlite3", store.DSN(path))
	defer db.Close()
	db.MustExec(v2Schema(t))
	now := time.Now().UTC()
	ts := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000Z") }
	db.MustExec(`INSERT INTO users (email, password_hash, created_at) VALUES ('buyer@example.com', 'x', ?)`, ts(now))
	db.MustExec(`INSERT INTO goods (name, price_fen, created_at) VALUES ('小米手环', 19900, ?)`, ts(now))
	no := "20261201100000" + fmt.Sprintf("%012d", now.UnixNano()%1e12)
	db.MustExec(`INSERT INTO orders (out_trade_no, user_id, subject, total_fen, status, created_at, expires_at)
		VALUES (?, 1, '小米手环', 19900, 'unpaid', ?, ?)`, no, ts(now), ts(now.Add(time.Hour)))
	db.MustExec(`INSERT INTO order_items (order_id, goods_id, name, unit_fen, qty) VALUES (1, 1, '小米手环', 19900, 1)`)
	return no
}

// prodShop starts the binary in production mode against gateway, with keys the test
// made; it returns the base URL and "Alipay's" private key.
func prodShop(t *testing.T, dir, gateway string) (string, *rsa.PrivateKey, *proc) {
	t.Helper()
	keys := filepath.Join(dir, "keys")
	app, _ := rsa.GenerateKey(rand.Reader, 2048)
	ali, _ := rsa.GenerateKey(rand.Reader, 2048)
	if err := payment.WriteFile(filepath.Join(keys, payment.AppPrivateKeyFile), payment.EncodePrivateKey(app), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := payment.WriteFile(filepath.Join(keys, payment.AlipayPublicKeyFile), payment.EncodePublicKey(&ali.PublicKey), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := shoptest.FreeAddr(t)
	env := []string{"ADDR=" + addr, "DB=" + filepath.Join(dir, "shop.db"), "KEYS_DIR=" + keys,
		"ALIPAY_MODE=production", "ALIPAY_APP_ID=" + shoptest.AppID, "ALIPAY_SELLER_ID=" + shoptest.SellerID,
		"ALIPAY_GATEWAY=" + gateway, "PUBLIC_URL=https://shop.example.com",
		"SESSION_SECRET=9b1d5f3e7a2c4b6d8e0f1a3c5e7b9d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3f"}
	p := startProc(t, shopBinary(t), nil, env, filepath.Join(dir, "shop.log"))
	waitHTTP(t, p, "http://"+addr+"/healthz", 30*time.Second)
	return "http://" + addr, ali, p
}

// In production mode a notify naming a certificate (alipay_cert_sn) made the Alipay
// library download it from the gateway — on a stranger's request, holding the lock every
// signature check needs. Now such a message is refused without any call: with four of
// them in flight against a gateway that takes 2 s, a genuine notify still takes
// milliseconds and the gateway is never called.
func TestForgedCertSNCallsNobody(t *testing.T) {
	dir := t.TempDir()
	no := seededDB(t, filepath.Join(dir, "shop.db"))
	var calls atomic.Int64
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The daily reconciliation asks for yesterday's bill from 09:00 Beijing on, on its
		// own schedule: only what a message could have caused counts.
		if r.FormValue("method") != "alipay.data.dataservice.bill.downloadurl.query" {
			calls.Add(1)
		}
		time.Sleep(2 * time.Second)
		http.Error(w, "slow gateway", http.StatusBadGateway)
	}))
	defer gw.Close()
	base, ali, _ := prodShop(t, dir, gw.URL+"/gateway.do")
	c := newClient(30 * time.Second)

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			v := url.Values{"out_trade_no": {no}, "trade_status": {"TRADE_SUCCESS"}, "total_amount": {"199.00"},
				"alipay_cert_sn": {fmt.Sprintf("%032x", i+1)}, "sign": {"AAAA"}, "sign_type": {"RSA2"}}
			resp, err := c.PostForm(base+"/check_order", v)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // the forged ones are in flight
	genuine := url.Values{"notify_id": {"g1"}, "notify_type": {"trade_status_sync"}, "app_id": {shoptest.AppID},
		"seller_id": {shoptest.SellerID}, "out_trade_no": {no}, "trade_no": {"2026120122001400001234567890"},
		"trade_status": {"TRADE_SUCCESS"}, "total_amount": {"199.00"}, "charset": {"utf-8"}, "sign_type": {"RSA2"},
		"gmt_payment": {"2026-12-01 10:00:00"}}
	genuine.Set("sign", shoptest.SignAlipay(ali, genuine))
	start := time.Now()
	resp, err := c.PostForm(base+"/check_order", genuine)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	wg.Wait()
	if string(body) != "success" {
		t.Fatalf("genuine notify answered %q", body)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("anonymous notifies made the shop call the gateway %d times", n)
	}
	if took > time.Second {
		t.Fatalf("the genuine notify took %v behind the forged ones", took)
	}
	t.Logf("4 notifies with alipay_cert_sn against a 2 s gateway: 0 gateway calls; genuine notify answered in %v", took.Round(time.Millisecond))
}

// procStatus reads a field (VmRSS, in kB) of /proc/<pid>/status.
func procRSS(t *testing.T, p *proc) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// heapAfterGC reads the shop's live heap, after a collection, from its profiler.
func heapAfterGC(t *testing.T, pprofAddr string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			return n
		}
	}
	t.Fatal("no HeapAlloc in the heap profile")
	return 0
}

// localShop starts the binary in local mode (keys generated) with extra env.
func localShop(t *testing.T, dir string, extra ...string) (string, *proc) {
	t.Helper()
	addr := shoptest.FreeAddr(t)
	env := append([]string{"ADDR=" + addr, "DB=" + filepath.Join(dir, "shop.db"), "KEYS_DIR=" + filepath.Join(dir, "keys")}, extra...)
	p := startProc(t, shopBinary(t), nil, env, filepath.Join(dir, "shop.log"))
	waitHTTP(t, p, "http://"+addr+"/healthz", 30*time.Second)
	return "http://" + addr, p
}

// 1,500 refused logins with unique 60 KB e-mails used to leave 90 MB behind in the
// per-account limiter (keyed by whatever was sent, even when the per-address limit had
// refused the attempt). Now the shop's live heap after a collection hardly moves.
func TestRefusedLoginsLeaveNoMemory(t *testing.T) {
	dir := t.TempDir()
	pprof := shoptest.FreeAddr(t)
	base, p := localShop(t, dir, "PPROF_ADDR="+pprof)
	s := newShopper(base, "x@example.com")
	tok, err := s.csrf()
	if err != nil {
		t.Fatal(err)
	}
	heap0, rss0 := heapAfterGC(t, pprof), procRSS(t, p)
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range 1500 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			email := fmt.Sprintf("%d%s@example.com", i, strings.Repeat("x", 60<<10))
			form := url.Values{"_csrf": {tok}, "email": {email}, "password": {"wrong password"}}
			resp, err := s.client.PostForm(base+"/login", form)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	heap1, rss1 := heapAfterGC(t, pprof), procRSS(t, p)
	growth := heap1 - heap0
	t.Logf("1,500 refused logins with unique 60 KB e-mails (%v): live heap %+.1f MB after GC (%.1f → %.1f MB), RSS %+.1f MB (%.1f → %.1f MB)",
		codes, float64(growth)/(1<<20), float64(heap0)/(1<<20), float64(heap1)/(1<<20),
		float64(rss1-rss0)/(1<<20), float64(rss0)/(1<<20), float64(rss1)/(1<<20))
	if codes[http.StatusOK]+codes[http.StatusSeeOther] > 0 {
		t.Fatalf("a login with a 60 KB e-mail was let in: %v", codes)
	}
	if growth > 4<<20 {
		t.Fatalf("the shop kept %.1f MB of 1,500 refused logins", float64(growth)/(1<<20))
	}
}

// dbBytes is the database file and its WAL.
func dbBytes(path string) int64 {
	var n int64
	for _, f := range []string{path, path + "-wal"} {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}

// 600 anonymous junk notifies and returns (bad or missing signatures, 45 KB each) used
// to add 600 payment_events rows and 33 MB; now they are counted, a few kept truncated,
// and the database grows by at most 1 MB.
func TestJunkGrowsTheDatabaseLittle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shop.db")
	no := seededDB(t, path)
	base, p := localShop(t, dir)
	c := newClient(10 * time.Second)
	// Let start-up writes settle, then measure from a checkpointed file.
	before := dbBytes(path)
	filler := strings.Repeat("垃", 5<<10) // 15 KB of UTF-8, 45 KB URL-encoded
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range 600 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			v := url.Values{"out_trade_no": {no}, "trade_status": {"TRADE_SUCCESS"}, "total_amount": {"199.00"},
				"notify_id": {strconv.Itoa(i)}, "body": {filler}, "sign_type": {"RSA2"}}
			if i%3 != 0 {
				v.Set("sign", "Zm9yZ2Vk")
			}
			var resp *http.Response
			var err error
			if i%2 == 0 {
				resp, err = c.PostForm(base+"/check_order", v)
			} else {
				resp, err = c.Get(base + "/show_msg?" + v.Encode())
			}
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	after := dbBytes(path)
	db := shopDB(t, path)
	var events int
	db.Get(&events, `SELECT COUNT(*) FROM payment_events`)
	t.Logf("600 junk messages: database %+.2f MB (%.2f → %.2f MB with WAL), %d payment_events rows",
		float64(after-before)/(1<<20), float64(before)/(1<<20), float64(after)/(1<<20), events)
	if after-before > 1<<20 {
		t.Fatalf("600 junk messages grew the database by %.1f MB", float64(after-before)/(1<<20))
	}
	if events > 0 {
		t.Fatalf("junk was stored as %d payment events", events)
	}
	var counted int
	if err := db.Get(&counted, `SELECT COALESCE(SUM(count), 0) FROM junk_counts`); err != nil || counted != 600 {
		log, _ := os.ReadFile(filepath.Join(dir, "shop.log"))
		t.Fatalf("junk counted %d times (%v), want 600; log tail:\n%s", counted, err, tail(string(log), 3000))
	}
	_ = context.Background
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// from returns a shopper whose connections come from the loopback address ip.
func from(base, email, ip string) *shopper {
	s := newShopper(base, email)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	s.client.Transport = &http.Transport{DialContext: d.DialContext}
	return s
}

// Logging out ends the session on the server: a copy of the cookie taken before no
// longer opens the orders page or buys.
func TestLogoutEndsSessionBlackBox(t *testing.T) {
	dir := t.TempDir()
	base, _ := localShop(t, dir)
	s := newShopper(base, "bye@example.com")
	if err := s.login(context.Background()); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(base)
	thief := newShopper(base, "bye@example.com")
	thief.client.Jar.SetCookies(u, s.client.Jar.Cookies(u))
	if code, _, err := s.post("/logout", nil); err != nil || code != http.StatusSeeOther {
		t.Fatalf("logout: %d %v", code, err)
	}
	resp, err := thief.client.Get(base + "/orders")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("a cookie copied before logout still opens /orders: %d", resp.StatusCode)
	}
	if code, loc, _ := thief.post("/purchase/1", nil); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Fatalf("a cookie copied before logout still buys: %d %s", code, loc)
	}
}

// Signup is limited per address (every signup costs a bcrypt hash), and an attacker at
// another address cannot lock a shopper out with wrong passwords.
func TestSignupAndLockoutBlackBox(t *testing.T) {
	dir := t.TempDir()
	base, _ := localShop(t, dir)
	codes := map[int]int{}
	for i := range 10 {
		s := from(base, fmt.Sprintf("spam%d@example.com", i), "127.0.0.4")
		code, _, err := s.post("/signup", url.Values{"email": {s.email}, "password": {"correct horse battery"}})
		if err != nil {
			t.Fatal(err)
		}
		codes[code]++
	}
	if codes[http.StatusTooManyRequests] == 0 {
		t.Fatalf("10 signups from one address in a row: %v, none limited", codes)
	}
	owner := from(base, "owner@example.com", "127.0.0.2")
	if err := owner.login(context.Background()); err != nil {
		t.Fatal(err)
	}
	owner.post("/logout", nil)
	attacker := from(base, "owner@example.com", "127.0.0.3")
	for range 12 {
		attacker.post("/login", url.Values{"email": {"owner@example.com"}, "password": {"guess"}})
	}
	owner = from(base, "owner@example.com", "127.0.0.2")
	code, _, err := owner.post("/login", url.Values{"email": {"owner@example.com"}, "password": {"correct horse battery"}})
	if err != nil || code != http.StatusSeeOther {
		t.Fatalf("after 12 wrong passwords from another address the owner's login answered %d (%v): locked out", code, err)
	}
	t.Logf("10 signups from one address: %v; owner logs in after 12 wrong tries from another address", codes)
}

// The production start-ups README "Modes" lists as unsafe end with a message, not a shop.
func TestProductionRefusalsBlackBox(t *testing.T) {
	for name, mod := range map[string]func(env []string) []string{
		"http PUBLIC_URL":  func(env []string) []string { return append(env, "PUBLIC_URL=http://shop.example.com") },
		"weak secret":      func(env []string) []string { return append(env, "SESSION_SECRET="+strings.Repeat("a", 16)) },
		"no seller id":     func(env []string) []string { return append(env, "ALIPAY_SELLER_ID=") },
		"loopback address": func(env []string) []string { return append(env, "PUBLIC_URL=https://127.0.0.1") },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			keys := filepath.Join(dir, "keys")
			app, _ := rsa.GenerateKey(rand.Reader, 2048)
			ali, _ := rsa.GenerateKey(rand.Reader, 2048)
			payment.WriteFile(filepath.Join(keys, payment.AppPrivateKeyFile), payment.EncodePrivateKey(app), 0o600)
			payment.WriteFile(filepath.Join(keys, payment.AlipayPublicKeyFile), payment.EncodePublicKey(&ali.PublicKey), 0o644)
			env := mod([]string{"ADDR=" + shoptest.FreeAddr(t), "DB=" + filepath.Join(dir, "shop.db"), "KEYS_DIR=" + keys,
				"ALIPAY_MODE=production", "ALIPAY_APP_ID=" + shoptest.AppID, "ALIPAY_SELLER_ID=" + shoptest.SellerID,
				"PUBLIC_URL=https://shop.example.com", "SESSION_SECRET=9b1d5f3e7a2c4b6d8e0f1a3c5e7b9d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3f"})
			p := startProc(t, shopBinary(t), nil, env, filepath.Join(dir, "shop.log"))
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				t.Fatalf("production started with %s", name)
			}
			log, _ := os.ReadFile(filepath.Join(dir, "shop.log"))
			if p.err == nil || !strings.Contains(string(log), "cannot start") {
				t.Fatalf("exit %v, log: %s", p.err, log)
			}
		})
	}
}
