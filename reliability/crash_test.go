package reliability

// The crash test: go test -race -run TestCrash -v ./reliability/   (skipped with -short)

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"storefront/shoptest"
	"storefront/store/storetest"
)

// TestCrash runs the real binary twice over — the emulator alone (so its notifies keep
// retrying) and the shop pointed at it — while shoppers buy and pay, and SIGKILLs the
// shop at random moments. Afterwards nothing is lost: every order answered 303 exists,
// every notify answered "success" is applied, every trade paid at the emulator ends
// paid in the shop, none twice, and the database is sound.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs the real binary for ~40s; skipped with -short")
	}
	const (
		shoppers = 4
		kills    = 5
	)
	bin := shopBinary(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	emuAddr, shopAddr := shoptest.FreeAddr(t), shoptest.FreeAddr(t)
	emuURL, shopURL := "http://"+emuAddr, "http://"+shopAddr
	dbPath := storetest.DSN(t)

	emu := startProc(t, bin, []string{"sandbox"}, []string{"SANDBOX_ADDR=" + emuAddr,
		"SANDBOX_DB=" + filepath.Join(dir, "sandbox.db"), "KEYS_DIR=" + keys, "SANDBOX_TIME_SCALE=3600"},
		filepath.Join(dir, "sandbox.log"))
	waitHTTP(t, emu, emuURL+"/sandbox/", 20*time.Second)
	shopEnv := []string{"ADDR=" + shopAddr, "DB=" + dbPath, "KEYS_DIR=" + keys,
		"ALIPAY_GATEWAY=" + emuURL + "/sandbox/gateway.do", "RECONCILE_AFTER=2s", "ORDER_TTL=10m"}
	shopLog := filepath.Join(dir, "shop.log")
	var (
		mu   sync.Mutex
		shop = startProc(t, bin, nil, shopEnv, shopLog)
	)
	waitHTTP(t, shop, shopURL+"/healthz", 20*time.Second)
	t.Logf("dir %s (shop.log, sandbox.log)", dir)

	// Shoppers buy and pay until the kills are done.
	ctx, stop := context.WithCancel(context.Background())
	var (
		ordersMu                                    sync.Mutex
		answered                                    = map[string]bool{} // out_trade_no answered 303
		paidAtEmu                                   = map[string]bool{}
		buyErrs, openErrs, payErrs, purchases, pays atomic.Int64
	)
	emuClient := newClient(10 * time.Second)
	var wg sync.WaitGroup
	for i := range shoppers {
		wg.Go(func() {
			s := newShopper(shopURL, fmt.Sprintf("crash%d@example.com", i))
			if err := s.login(ctx); err != nil {
				return
			}
			for ctx.Err() == nil {
				purchases.Add(1)
				code, loc, err := s.post("/purchase/1", nil)
				if err != nil || code != http.StatusSeeOther {
					buyErrs.Add(1) // the shop is down or was killed mid-request
					time.Sleep(30 * time.Millisecond)
					continue
				}
				no, err := outTradeNo(loc)
				if err != nil {
					t.Errorf("purchase answered 303 to %q: %v", loc, err)
					continue
				}
				ordersMu.Lock()
				answered[no] = true
				ordersMu.Unlock()
				if err := openTrade(emuClient, loc); err != nil {
					openErrs.Add(1)
					t.Errorf("opening trade %s: %v", no, err)
					continue
				}
				// Some shoppers leave the notify to reconciliation (a lost notify).
				q := ""
				if rand.IntN(5) == 0 {
					q = "?notify=off"
				}
				if _, _, err := apiPay(emuClient, emuURL, no, q); err != nil {
					payErrs.Add(1)
					t.Errorf("paying %s: %v", no, err)
					continue
				}
				pays.Add(1)
				ordersMu.Lock()
				paidAtEmu[no] = true
				ordersMu.Unlock()
			}
		})
	}

	// The killer: SIGKILL at random moments, restart at once.
	start := time.Now()
	var downtime time.Duration
	for k := 1; k <= kills; k++ {
		time.Sleep(time.Duration(2000+rand.IntN(2500)) * time.Millisecond)
		mu.Lock()
		p := shop
		mu.Unlock()
		p.kill()
		down := time.Now()
		time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
		np := startProc(t, bin, nil, shopEnv, shopLog)
		waitHTTP(t, np, shopURL+"/healthz", 20*time.Second)
		downtime += time.Since(down)
		mu.Lock()
		shop = np
		mu.Unlock()
		t.Logf("kill %d at %v: shop SIGKILLed (%v), restarted, healthy after %v",
			k, time.Since(start).Round(time.Millisecond), p.err, time.Since(down).Round(time.Millisecond))
	}
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	shopping := time.Since(start)

	// Settle: the emulator resends, the shop reconciles. Bounded wait.
	db := shopDB(t, dbPath)
	settleStart := time.Now()
	var problems []string
	var successNotifies, deliveries, emuPaid int
	for {
		problems, successNotifies, deliveries, emuPaid = crashCheck(db, emuClient, emuURL, answered, paidAtEmu)
		if len(problems) == 0 || time.Since(settleStart) > 30*time.Second {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	settle := time.Since(settleStart)
	for _, p := range problems {
		t.Error(p)
	}
	by := appliedBySource(db)
	states, _ := orderStates(db)
	db.Close()

	mu.Lock()
	final := shop
	mu.Unlock()
	_ = final.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-final.done:
	case <-time.After(25 * time.Second):
		t.Error("shop did not stop on SIGTERM")
	}
	if res := integrity(t, dbPath); res != "ok" {
		t.Errorf("PRAGMA integrity_check: %s", res)
	}
	paidInShop := 0
	for _, s := range states {
		if s.Status == "paid" {
			paidInShop++
		}
	}
	t.Logf("crash: %d SIGKILLs survived over %v of shopping (shop down %v in all), %d shoppers",
		kills, shopping.Round(time.Millisecond), downtime.Round(time.Millisecond), shoppers)
	t.Logf("crash: %d purchase attempts, %d answered 303 (all %d found in the DB; %d orders in DB), %d refused/lost while the shop was down",
		purchases.Load(), len(answered), len(answered), len(states), buyErrs.Load())
	t.Logf("crash: %d trades paid at the emulator (%d paid in the shop); %d notify deliveries, %d answered success (all applied)",
		emuPaid, paidInShop, deliveries, successNotifies)
	t.Logf("crash: paid by notify %d, recovered by reconciliation query %d, by return %d; settled in %v; integrity_check ok",
		by["notify"], by["query"], by["return"], settle.Round(time.Millisecond))
}

// crashCheck lists what is still wrong, and counts notifies and emulator payments.
func crashCheck(db *storetest.Raw, c *http.Client, emuURL string, answered, paidAtEmu map[string]bool) (problems []string, success, deliveries, emuPaid int) {
	states, err := orderStates(db)
	if err != nil {
		return []string{"reading shop DB: " + err.Error()}, 0, 0, 0
	}
	nos := make([]string, 0, len(answered))
	for no := range answered {
		nos = append(nos, no)
	}
	sort.Strings(nos)
	for _, no := range nos {
		st, ok := states[no]
		if !ok {
			problems = append(problems, fmt.Sprintf("order %s was answered 303 but is not in the shop DB", no))
			continue
		}
		tr, code, err := getTrade(c, emuURL, no)
		if err != nil {
			problems = append(problems, fmt.Sprintf("emulator trade %s: %v", no, err))
			continue
		}
		if code == http.StatusNotFound {
			if paidAtEmu[no] {
				problems = append(problems, fmt.Sprintf("trade %s was paid but the emulator does not know it", no))
			}
			continue
		}
		okNotify := false
		for _, d := range tr.Deliveries {
			deliveries++
			if d.HTTPStatus == http.StatusOK && d.Body == "success" {
				success++
				okNotify = true
			}
		}
		if tr.Status == "TRADE_SUCCESS" {
			emuPaid++
		}
		if okNotify && (st.Status != "paid" || st.Applied != 1) {
			problems = append(problems, fmt.Sprintf("order %s: notify answered success but shop has %s with %d applied events", no, st.Status, st.Applied))
		}
		if tr.Status == "TRADE_SUCCESS" && st.Status != "paid" {
			problems = append(problems, fmt.Sprintf("order %s: TRADE_SUCCESS at the emulator, %s in the shop", no, st.Status))
		}
	}
	for no, st := range states {
		if st.Applied > 1 {
			problems = append(problems, fmt.Sprintf("order %s has %d applied paid events", no, st.Applied))
		}
		if (st.Status == "paid") != (st.Applied == 1) {
			problems = append(problems, fmt.Sprintf("order %s: status %s with %d applied paid events", no, st.Status, st.Applied))
		}
	}
	return problems, success, deliveries, emuPaid
}
