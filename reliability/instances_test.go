package reliability

// Two instances of the real binary on one PostgreSQL database:
//   TEST_POSTGRES_URL=… go test -race -run TestInstances -v ./reliability/

import (
	"bytes"
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"storefront/payment"
	"storefront/shoptest"
	"storefront/store/storetest"
)

// cluster is the standalone emulator and two shop instances sharing one database, one
// KEYS_DIR (so the same keys and session secret) and nothing else.
type cluster struct {
	t        *testing.T
	bin, dir string
	dsn      string
	emuURL   string
	ali      *rsa.PrivateKey // the emulator's key, to sign notifies as Alipay
	addrs    [2]string
	env      [2][]string
	mu       sync.Mutex
	procs    [2]*proc
	// Instance 0 reaches the emulator through a proxy of the test's that can hold its
	// trade queries: an instance stuck mid-batch, holding leases, when it is killed.
	slowQueries atomic.Bool
}

// gatewayProxy forwards to the emulator, holding alipay.trade.query for 5 s while
// slowQueries is set.
func (c *cluster) gatewayProxy(t *testing.T) string {
	target, _ := url.Parse(c.emuURL)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		if c.slowQueries.Load() && (form.Get("method") == "alipay.trade.query" || r.URL.Query().Get("method") == "alipay.trade.query") {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func newCluster(t *testing.T, extra ...string) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the real binary three times over; skipped with -short")
	}
	c := &cluster{t: t, bin: shopBinary(t), dir: t.TempDir()}
	c.dsn = storetest.Schema(t, storetest.PostgresURL(t))
	keys := filepath.Join(c.dir, "keys")
	emuAddr := shoptest.FreeAddr(t)
	c.emuURL = "http://" + emuAddr
	emu := startProc(t, c.bin, []string{"sandbox"}, []string{"SANDBOX_ADDR=" + emuAddr,
		"SANDBOX_DB=" + filepath.Join(c.dir, "sandbox.db"), "KEYS_DIR=" + keys, "SANDBOX_TIME_SCALE=3600"},
		filepath.Join(c.dir, "sandbox.log"))
	waitHTTP(t, emu, c.emuURL+"/sandbox/", 20*time.Second)
	b, err := os.ReadFile(filepath.Join(keys, payment.SandboxPrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if c.ali, err = payment.ParsePrivateKey(b); err != nil {
		t.Fatal(err)
	}
	// Both instances start at the same moment on the empty database: they migrate it,
	// seed it and make their session secret once between them.
	gateways := [2]string{c.gatewayProxy(t), c.emuURL}
	var wg sync.WaitGroup
	for i := range 2 {
		c.addrs[i] = shoptest.FreeAddr(t)
		c.env[i] = append([]string{"ADDR=" + c.addrs[i], "DB=" + c.dsn, "KEYS_DIR=" + keys,
			"ALIPAY_GATEWAY=" + gateways[i] + "/sandbox/gateway.do", "MEDIA_DIR=" + filepath.Join(c.dir, "media")}, extra...)
		wg.Go(func() { c.start(i) })
	}
	wg.Wait()
	t.Logf("dir %s (shop0.log, shop1.log, sandbox.log)", c.dir)
	return c
}

// url is instance i's base URL.
func (c *cluster) url(i int) string { return "http://" + c.addrs[i%2] }

// name is instance i's name in leases and worker request ids.
func (c *cluster) name(i int) string {
	host, _ := os.Hostname()
	return host + "/" + c.addrs[i]
}

func (c *cluster) start(i int) {
	p := startProc(c.t, c.bin, nil, c.env[i], filepath.Join(c.dir, fmt.Sprintf("shop%d.log", i)))
	waitHTTP(c.t, p, c.url(i)+"/healthz", 30*time.Second)
	c.mu.Lock()
	c.procs[i] = p
	c.mu.Unlock()
}

func (c *cluster) kill(i int) {
	c.mu.Lock()
	p := c.procs[i]
	c.mu.Unlock()
	p.kill()
}

// notify is Alipay's TRADE_SUCCESS notify for trade tr of order no, signed.
func (c *cluster) notify(no string, tr shoptest.EmuTrade) string {
	v := url.Values{"notify_time": {"2026-12-01 10:05:00"}, "notify_type": {"trade_status_sync"}, "notify_id": {"n" + no},
		"app_id": {shoptest.AppID}, "auth_app_id": {shoptest.AppID}, "charset": {"utf-8"}, "version": {"1.0"},
		"sign_type": {"RSA2"}, "trade_no": {tr.TradeNo}, "out_trade_no": {no}, "buyer_id": {"2088102177846880"},
		"seller_id": {shoptest.SellerID}, "trade_status": {"TRADE_SUCCESS"}, "total_amount": {tr.TotalAmount},
		"receipt_amount": {tr.TotalAmount}, "buyer_pay_amount": {tr.TotalAmount}, "gmt_payment": {"2026-12-01 10:04:30"}}
	v.Set("sign", shoptest.SignAlipay(c.ali, v))
	return v.Encode()
}

// buy makes one order through instance i for shopper s and opens its trade at the
// emulator; it returns the order number and the gateway URL.
func (c *cluster) buy(s *shopper, i int) (string, error) {
	s.base = c.url(i)
	code, loc, err := s.post("/purchase/1", nil)
	if err != nil {
		return "", err
	}
	if code != http.StatusSeeOther {
		return "", fmt.Errorf("purchase on instance %d: %d", i, code)
	}
	no, err := outTradeNo(loc)
	if err != nil {
		return "", err
	}
	return no, openTrade(s.client, loc)
}

// shoppers logs n shoppers in, each on one instance (their sessions then serve on both).
func (c *cluster) shoppers(n int) []*shopper {
	c.t.Helper()
	ss := make([]*shopper, n)
	for i := range ss {
		ss[i] = newShopper(c.url(i), fmt.Sprintf("inst%d@example.com", i))
		if err := ss[i].login(context.Background()); err != nil {
			c.t.Fatal(err)
		}
	}
	return ss
}

// 1,000 orders bought through both instances, each paid at the emulator with its
// notify held back; then each order's notify is sent 8 times at once, four to each
// instance, with the browser's return to one of them while both instances' reconcilers
// query. Each order is applied exactly once and every notify is answered success.
func TestInstancesApplyEachPaymentOnce(t *testing.T) {
	c := newCluster(t, "RECONCILE_AFTER=1s")
	const orders, dups, workers = 1000, 8, 8
	ss := c.shoppers(workers)
	db := shopDB(t, c.dsn)
	emu := newClient(10 * time.Second)
	var next, success, notOK, returns atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			s := ss[w]
			for k := int(next.Add(1)); k <= orders; k = int(next.Add(1)) {
				no, err := c.buy(s, k)
				if err != nil {
					t.Errorf("order %d: %v", k, err)
					return
				}
				_, returnURL, err := apiPay(emu, c.emuURL, no, "?notify=off")
				if err != nil {
					t.Errorf("paying %s: %v", no, err)
					return
				}
				tr, _, err := getTrade(emu, c.emuURL, no)
				if err != nil {
					t.Errorf("trade %s: %v", no, err)
					return
				}
				body := c.notify(no, tr)
				var msgs sync.WaitGroup
				for d := range dups {
					msgs.Go(func() {
						resp, err := s.client.Post(c.url(d)+"/check_order", "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(body))
						if err != nil {
							notOK.Add(1)
							t.Errorf("notify %s: %v", no, err)
							return
						}
						b := make([]byte, 16)
						n, _ := resp.Body.Read(b)
						resp.Body.Close()
						if string(b[:n]) == "success" {
							success.Add(1)
						} else {
							notOK.Add(1)
							t.Errorf("notify %s to instance %d answered %d %q", no, d%2, resp.StatusCode, b[:n])
						}
					})
				}
				msgs.Go(func() {
					// The browser comes back to the other instance than it bought on.
					u, _ := url.Parse(returnURL)
					u.Host = c.addrs[(k+1)%2]
					resp, err := s.client.Get(u.String())
					if err == nil {
						resp.Body.Close()
						returns.Add(1)
					}
				})
				msgs.Wait()
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if t.Failed() {
		t.FailNow()
	}
	time.Sleep(3 * time.Second) // the reconcilers' last queries
	states, err := orderStates(db)
	if err != nil {
		t.Fatal(err)
	}
	paid := 0
	for no, st := range states {
		if st.Status == "paid" {
			paid++
		}
		if st.Applied != 1 || st.Status != "paid" {
			t.Errorf("order %s: %s with %d applied payments", no, st.Status, st.Applied)
		}
	}
	if len(states) != orders || paid != orders {
		t.Errorf("%d orders in the database, %d paid; want %d each", len(states), paid, orders)
	}
	if n := success.Load(); n != orders*dups {
		t.Errorf("%d of %d notifies answered success", n, orders*dups)
	}
	by := appliedBySource(db)
	var workerIDs []string
	if err := db.Select(&workerIDs, `SELECT request_id FROM payment_events WHERE source = 'query' AND request_id LIKE 'worker:%'`); err != nil {
		t.Fatal(err)
	}
	perInstance := map[string]int{}
	for _, id := range workerIDs {
		perInstance[id[strings.LastIndex(id, "@")+1:]]++
	}
	t.Logf("instances: %d orders bought and paid through 2 instances in %v; %d notifies (%d success), %d returns",
		orders, took.Round(time.Millisecond), orders*dups, success.Load(), returns.Load())
	t.Logf("instances: applied exactly once per order — by notify %d, by return %d, by query %d; reconciliation queries by instance: %v",
		by["notify"], by["return"], by["query"], perInstance)
}

// kill -9 of one instance under load, several times, with the other serving on; the
// last time it stays dead, so the other must take over its leases once LEASE_TTL has
// passed. Every order answered 303 exists, every notify answered success is applied,
// every trade paid at the emulator ends paid, and what the dead instance had leased was
// done by the survivor.
func TestInstancesSurviveKills(t *testing.T) {
	c := newCluster(t, "RECONCILE_AFTER=1s", "LEASE_TTL=3s", "ORDER_TTL=10m")
	const workers, kills = 4, 4 // kills alternate 1, 0, 1, 0: instance 0 stays dead
	ss := c.shoppers(workers)
	db := shopDB(t, c.dsn)
	emu := newClient(10 * time.Second)
	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	answered, paidAtEmu := map[string]bool{}, map[string]bool{}
	var refused atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			s := ss[w]
			for k := w; ctx.Err() == nil; k++ {
				no, err := c.buy(s, k)
				if no == "" || err != nil {
					refused.Add(1) // that instance is down, or was killed mid-request
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				answered[no] = true
				mu.Unlock()
				// A fifth of the notifies are lost: reconciliation must find those.
				q := ""
				if k%5 == 0 {
					q = "?notify=off"
				}
				if _, _, err := apiPay(emu, c.emuURL, no, q); err != nil {
					t.Errorf("paying %s: %v", no, err)
					continue
				}
				mu.Lock()
				paidAtEmu[no] = true
				mu.Unlock()
			}
		})
	}
	type leased struct {
		No    string `db:"out_trade_no"`
		Owner string `db:"lease_owner"`
	}
	var orphans []leased // leased by the instance that stayed dead, when it died
	for k := 1; k <= kills; k++ {
		time.Sleep(2 * time.Second)
		victim := k % 2
		if k == kills {
			// The last victim is stuck in its trade queries when it dies.
			c.slowQueries.Store(true)
			time.Sleep(2 * time.Second)
		}
		c.kill(victim)
		if k == kills {
			if err := db.Select(&orphans, `SELECT out_trade_no, lease_owner FROM orders
				WHERE lease_owner = ? AND status = 'unpaid'`, c.name(victim)); err != nil {
				t.Fatal(err)
			}
			t.Logf("kill %d: instance %d SIGKILLed and left dead, holding %d leases", k, victim, len(orphans))
			break
		}
		time.Sleep(300 * time.Millisecond)
		c.start(victim)
		t.Logf("kill %d: instance %d SIGKILLed and restarted", k, victim)
	}
	time.Sleep(time.Second)
	stop()
	wg.Wait()

	// The emulator resends what the dead instance missed to its address, where nobody
	// answers: those orders are found by the survivor's reconciliation.
	settle := time.Now()
	var problems []string
	for {
		problems, _, _, _ = crashCheck(db, emu, c.emuURL, answered, paidAtEmu)
		if len(problems) == 0 || time.Since(settle) > 40*time.Second {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if len(orphans) == 0 {
		t.Error("the instance killed mid-query held no leases: the takeover was not exercised")
	}
	survivor := c.name((kills + 1) % 2)
	dead := c.name(kills % 2)
	neverPaid := 0
	for _, o := range orphans {
		var status, by string
		if err := db.Get(&status, `SELECT status FROM orders WHERE out_trade_no = ?`, o.No); err != nil {
			t.Fatal(err)
		}
		_ = db.Get(&by, `SELECT COALESCE(MAX(request_id), '') FROM payment_events e JOIN orders o ON o.id = e.order_id
			WHERE o.out_trade_no = ? AND e.verdict = 'applied'`, o.No)
		mu.Lock()
		paidThere := paidAtEmu[o.No]
		mu.Unlock()
		switch {
		case paidThere && status == "unpaid":
			t.Errorf("order %s leased by the dead instance, paid at the emulator, is still unpaid", o.No)
		case !paidThere:
			neverPaid++
			// Made by the dead instance just before the kill, its 303 lost with it, so
			// never paid: the survivor must still have taken it over and queried it
			// (its lease then no longer the dead instance's).
			deadline := time.Now().Add(20 * time.Second)
			for {
				var owner string
				if err := db.Get(&owner, `SELECT lease_owner FROM orders WHERE out_trade_no = ?`, o.No); err != nil {
					t.Fatal(err)
				}
				if owner != dead {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("order %s (never paid) is still leased by the dead instance", o.No)
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		if strings.HasPrefix(by, "worker:") && !strings.HasSuffix(by, "@"+survivor) {
			t.Errorf("order %s leased by the dead instance was worked by %s", o.No, by)
		}
	}
	states, _ := orderStates(db)
	paid := 0
	for _, s := range states {
		if s.Status == "paid" {
			paid++
		}
	}
	t.Logf("instances: %d kills; %d orders answered 303 (all in the database), %d refused while an instance was down; %d paid at the emulator, %d paid in the shop, none twice; settled in %v; the dead instance's %d leases taken over (%d of orders never paid, their 303 lost in the kill)",
		kills, len(answered), refused.Load(), len(paidAtEmu), paid, time.Since(settle).Round(time.Millisecond), len(orphans), neverPaid)
}

// Unpaid orders on two instances: each order's expiry is done by one instance (one
// close), and no reconciliation round queries an order twice; both instances work.
func TestInstancesShareExpiryAndReconciliation(t *testing.T) {
	c := newCluster(t, "RECONCILE_AFTER=1s", "ORDER_TTL=12s")
	const orders = 200
	ss := c.shoppers(4)
	db := shopDB(t, c.dsn)
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := range ss {
		wg.Go(func() {
			for k := int(next.Add(1)); k <= orders; k = int(next.Add(1)) {
				if _, err := c.buy(ss[w], k); err != nil {
					t.Errorf("order %d: %v", k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Wait until every order is closed (12 s of life, then a worker pass).
	deadline := time.Now().Add(45 * time.Second)
	for {
		var open int
		if err := db.Get(&open, `SELECT COUNT(*) FROM orders WHERE status = 'unpaid'`); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d orders still unpaid past their expiry", open)
		}
		time.Sleep(300 * time.Millisecond)
	}
	var evs []struct {
		No        string `db:"out_trade_no"`
		Source    string `db:"source"`
		Verdict   string `db:"verdict"`
		RequestID string `db:"request_id"`
		At        string `db:"created_at"`
	}
	if err := db.Select(&evs, `SELECT out_trade_no, source, verdict, request_id, created_at FROM payment_events
		WHERE source IN ('close', 'query') ORDER BY out_trade_no, created_at`); err != nil {
		t.Fatal(err)
	}
	closes := map[string]int{}
	lastQuery := map[string]time.Time{}
	byInstance := map[string]int{}
	queries := 0
	for _, e := range evs {
		who := e.RequestID[strings.LastIndex(e.RequestID, "@")+1:]
		byInstance[e.Source+" by "+who]++
		switch e.Source {
		case "close":
			if e.Verdict == "applied" {
				closes[e.No]++
			}
		case "query":
			queries++
			at, _ := time.Parse("2006-01-02T15:04:05.000Z", e.At)
			if prev, ok := lastQuery[e.No]; ok && at.Sub(prev) < 900*time.Millisecond {
				t.Errorf("order %s queried twice in one round (%v apart)", e.No, at.Sub(prev))
			}
			lastQuery[e.No] = at
		}
	}
	if len(closes) != orders {
		t.Errorf("%d of %d orders closed by a worker", len(closes), orders)
	}
	for no, n := range closes {
		if n != 1 {
			t.Errorf("order %s closed %d times", no, n)
		}
	}
	keys := make([]string, 0, len(byInstance))
	for k := range byInstance {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, byInstance[k]))
	}
	workers := map[string]bool{}
	for k := range byInstance {
		workers[k[strings.LastIndex(k, " ")+1:]] = true
	}
	if len(workers) < 2 {
		t.Errorf("only %v did the work", workers)
	}
	t.Logf("instances: %d orders expired, each closed once; %d reconciliation queries, none twice in a round; %s",
		orders, queries, strings.Join(parts, ", "))
}
