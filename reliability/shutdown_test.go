package reliability

// Graceful shutdown: go test -race -run TestGracefulShutdown -v ./reliability/

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"storefront/payment"
	"storefront/shoptest"
	"storefront/store/storetest"
)

// slowBody trickles a body in pieces, so the request is being served (headers read,
// handler reading) for a while.
type slowBody struct {
	data  []byte
	piece int
	gap   time.Duration
	first bool
}

func (s *slowBody) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	if s.first {
		time.Sleep(s.gap)
	}
	s.first = true
	n := min(len(p), s.piece, len(s.data))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

type order struct{ no, amount string }

// TestGracefulShutdown: SIGTERM in the middle of concurrent notifies and purchases. The
// shop exits 0 within its drain timeout, every request it had started serving gets a
// complete answer, and no notify is half-applied.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary; skipped with -short")
	}
	bin := shopBinary(t)
	dir := t.TempDir()
	addr := shoptest.FreeAddr(t)
	base := "http://" + addr
	dbPath := storetest.DSN(t)
	keys := filepath.Join(dir, "keys")
	shop := startProc(t, bin, nil, []string{"ADDR=" + addr, "DB=" + dbPath, "KEYS_DIR=" + keys,
		"SANDBOX_DB=" + filepath.Join(dir, "sandbox.db")}, filepath.Join(dir, "shop.log"))
	waitHTTP(t, shop, base+"/healthz", 20*time.Second)
	pemKey, err := os.ReadFile(filepath.Join(keys, payment.SandboxPrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	alipayKey, err := payment.ParsePrivateKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	notifyBody := func(o order) string {
		v := url.Values{"notify_time": {"2026-11-22 10:05:00"}, "notify_type": {"trade_status_sync"},
			"notify_id": {"n" + o.no}, "app_id": {shoptest.AppID}, "charset": {"utf-8"}, "version": {"1.0"},
			"sign_type": {"RSA2"}, "trade_no": {"2026112222001" + o.no[len(o.no)-15:]}, "out_trade_no": {o.no},
			"seller_id": {shoptest.SellerID}, "trade_status": {"TRADE_SUCCESS"}, "total_amount": {o.amount},
			"gmt_payment": {"2026-11-22 10:04:30"}}
		v.Set("sign", shoptest.SignAlipay(alipayKey, v))
		return v.Encode()
	}

	// Orders to notify about.
	var orders []order
	for i := range 2 {
		s := newShopper(base, fmt.Sprintf("drain%d@example.com", i))
		if err := s.login(context.Background()); err != nil {
			t.Fatal(err)
		}
		for range 30 {
			code, loc, err := s.post("/purchase/1", nil)
			if err != nil || code != http.StatusSeeOther {
				t.Fatalf("purchase: %d %v", code, err)
			}
			u, _ := url.Parse(loc)
			var biz struct {
				No     string `json:"out_trade_no"`
				Amount string `json:"total_amount"`
			}
			if err := json.Unmarshal([]byte(u.Query().Get("biz_content")), &biz); err != nil {
				t.Fatal(err)
			}
			orders = append(orders, order{biz.No, biz.Amount})
		}
	}

	var (
		sigAt                     atomic.Int64 // unix nanos of SIGTERM
		complete, refused, broken atomic.Int64
		slowOK                    atomic.Int64
		mu                        sync.Mutex
		succeeded                 = map[string]bool{}
		failures                  []string
	)
	fail := func(format string, a ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, a...))
		mu.Unlock()
	}
	// do sends one request; an error is acceptable only if the request began after
	// SIGTERM (the listener is closed then) and nothing of a response arrived.
	client := newClient(30 * time.Second)
	do := func(name string, req *http.Request, startedBeforeTerm bool) (int, string, bool) {
		resp, err := client.Do(req)
		if err != nil {
			if startedBeforeTerm {
				broken.Add(1)
				fail("%s started before SIGTERM got no answer: %v", name, err)
			} else {
				refused.Add(1)
			}
			return 0, "", false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || (resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength) {
			broken.Add(1)
			fail("%s: truncated answer (%d of %d bytes): %v", name, len(b), resp.ContentLength, err)
			return 0, "", false
		}
		complete.Add(1)
		return resp.StatusCode, string(b), true
	}
	before := func() bool { return sigAt.Load() == 0 }

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// Fast notifies (with duplicates) and purchases, in a loop until the shop is gone.
	for w := range 6 {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i += 6 {
				o := orders[i%len(orders)]
				req, _ := http.NewRequest(http.MethodPost, base+"/check_order", strings.NewReader(notifyBody(o)))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				pre := before()
				code, body, ok := do("notify "+o.no, req, false)
				if !ok {
					if !pre {
						time.Sleep(5 * time.Millisecond)
					}
					continue
				}
				if code != http.StatusOK || (body != "success" && body != "fail") {
					fail("notify %s answered %d %q", o.no, code, body)
				}
				if body == "success" {
					mu.Lock()
					succeeded[o.no] = true
					mu.Unlock()
				}
			}
		})
	}
	buyer := newShopper(base, "drain0@example.com")
	_ = buyer.login(context.Background())
	wg.Go(func() {
		for ctx.Err() == nil {
			code, loc, err := buyer.post("/purchase/1", nil)
			if err != nil {
				continue
			}
			complete.Add(1)
			if code != http.StatusSeeOther || !strings.Contains(loc, "gateway.do") {
				fail("purchase answered %d %q", code, loc)
			}
		}
	})

	// Slow notifies: headers and the first bytes go out before SIGTERM, the rest trickles
	// in during the drain. Each must be answered in full.
	time.Sleep(700 * time.Millisecond)
	var slow sync.WaitGroup
	slowOrders := orders[len(orders)-6:]
	for _, o := range slowOrders {
		slow.Go(func() {
			body := notifyBody(o)
			req, _ := http.NewRequest(http.MethodPost, base+"/check_order", &slowBody{data: []byte(body), piece: len(body)/8 + 1, gap: 250 * time.Millisecond})
			req.ContentLength = int64(len(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			code, got, ok := do("slow notify "+o.no, req, true)
			if ok && code == http.StatusOK && got == "success" {
				slowOK.Add(1)
				mu.Lock()
				succeeded[o.no] = true
				mu.Unlock()
			} else if ok {
				fail("slow notify %s answered %d %q", o.no, code, got)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	sigAt.Store(time.Now().UnixNano())
	if err := shop.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termAt := time.Now()
	var exitErr error
	select {
	case <-shop.done:
		exitErr = shop.err
	case <-time.After(25 * time.Second):
		t.Fatal("shop still running 25s after SIGTERM (drain timeout is 20s)")
	}
	exited := time.Since(termAt)
	stop()
	wg.Wait()
	slow.Wait()
	var ee *exec.ExitError
	if exitErr != nil {
		if errors.As(exitErr, &ee) {
			t.Errorf("shop exited with %v, want 0", exitErr)
		} else {
			t.Errorf("shop exit: %v", exitErr)
		}
	}
	for _, f := range failures {
		t.Error(f)
	}

	// No notify half-applied: paid ⇔ exactly one applied paid event.
	db := shopDB(t, dbPath)
	states, err := orderStates(db)
	if err != nil {
		t.Fatal(err)
	}
	paid := 0
	for no, st := range states {
		if (st.Status == "paid") != (st.Applied == 1) || st.Applied > 1 {
			t.Errorf("order %s: status %s with %d applied paid events", no, st.Status, st.Applied)
		}
		if st.Status == "paid" {
			paid++
		}
	}
	for no := range succeeded {
		if states[no].Status != "paid" {
			t.Errorf("order %s: notify answered success, order is %s", no, states[no].Status)
		}
	}
	if slowOK.Load() != int64(len(slowOrders)) {
		t.Errorf("%d of %d slow notifies in flight at SIGTERM were answered success", slowOK.Load(), len(slowOrders))
	}
	if res := integrity(t, dbPath); res != "ok" {
		t.Errorf("integrity_check: %s", res)
	}
	t.Logf("shutdown: SIGTERM mid-load; exited %v after it (code 0: %v); %d responses complete, %d requests refused after the listener closed, %d broken",
		exited.Round(time.Millisecond), exitErr == nil, complete.Load(), refused.Load(), broken.Load())
	t.Logf("shutdown: %d/%d slow notifies in flight at SIGTERM answered success during the drain; %d orders, %d paid, each with exactly one applied event",
		slowOK.Load(), len(slowOrders), len(states), paid)
}
