package reliability

// The concurrency storm: go test -race -run TestStorm -v ./reliability/

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"storefront/payment"
	"storefront/shoptest"
	"storefront/store"
)

// TestStorm: 1,000 paid orders; for each, 8 concurrent duplicate signed notifies, the
// browser return and a reconciliation query race each other. Every order ends paid
// exactly once, every message is an event, every notify is answered "success".
func TestStorm(t *testing.T) {
	const (
		users     = 4
		dups      = 8
		inFlight  = 64
		setupPool = 16
	)
	orders := 1000
	if testing.Short() {
		orders = 200
	}
	shop := shoptest.New(t, shoptest.Options{})
	gid := shop.Demo(t, "降噪耳机", 89900, nil)
	ctx := context.Background()
	client := newClient(30 * time.Second)

	// Shoppers, each with a logged-in browser for the return page.
	browsers := make([]*shoptest.Browser, users)
	uids := make([]int64, users)
	for i := range users {
		email := fmt.Sprintf("storm%d@example.com", i)
		browsers[i] = shop.Browser()
		browsers[i].Client.Transport = transport
		browsers[i].Signup(t, email)
		u, err := shop.Store.UserByEmail(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		uids[i] = u.ID
	}

	// Orders straight in the store, then each trade opened at the emulator through its
	// signed gateway URL and paid there with the notify held back (we send it ourselves).
	type job struct {
		o         store.Order
		user      int
		tradeNo   string
		returnURL string
	}
	jobs := make([]*job, orders)
	start := time.Now()
	for i := range jobs {
		o, _, err := shop.Store.CreateOrder(ctx, store.NewOrder{OutTradeNo: payment.NewOutTradeNo(shop.Clock.Now()),
			UserID: uids[i%users], Lines: []store.Line{{GoodsID: gid, Qty: int64(1 + i%3)}}, TTL: 30 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		jobs[i] = &job{o: o, user: i % users}
	}
	created := time.Since(start)
	start = time.Now()
	var wg sync.WaitGroup
	next := make(chan *job)
	for range setupPool {
		wg.Go(func() {
			for j := range next {
				u, err := shop.Pay.PayURL(j.o, payment.PagePay)
				if err == nil {
					err = openTrade(client, u)
				}
				if err == nil {
					j.tradeNo, j.returnURL, err = apiPay(client, shop.URL, j.o.OutTradeNo, "?notify=off")
				}
				if err != nil {
					t.Errorf("order %s: %v", j.o.OutTradeNo, err)
				}
			}
		})
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	opened := time.Since(start)

	// The storm: each order's 10 messages are queued together, so they race each other,
	// with at most inFlight requests in flight overall.
	var (
		notifies, success, notOK, returns, returnOK, queries, queryErr atomic.Int64
	)
	sem := make(chan struct{}, inFlight)
	start = time.Now()
	for _, j := range jobs {
		body := shop.NotifyFor(j.o, j.tradeNo).Encode()
		for range dups {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				notifies.Add(1)
				resp, err := client.Post(shop.URL+"/check_order", "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(body))
				if err != nil {
					notOK.Add(1)
					t.Errorf("notify %s: %v", j.o.OutTradeNo, err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && string(b) == "success" {
					success.Add(1)
				} else {
					notOK.Add(1)
					t.Errorf("notify %s answered %d %q", j.o.OutTradeNo, resp.StatusCode, b)
				}
			})
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			returns.Add(1)
			r := browsers[j.user].Get(t, j.returnURL)
			if r.Status == http.StatusOK && strings.Contains(r.Body, j.o.OutTradeNo) {
				returnOK.Add(1)
			} else {
				t.Errorf("return page %s: %d", j.o.OutTradeNo, r.Status)
			}
		})
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			queries.Add(1)
			if _, err := shop.Pay.Reconcile(ctx, j.o, "storm"); err != nil {
				queryErr.Add(1)
				t.Errorf("reconcile %s: %v", j.o.OutTradeNo, err)
			}
		})
	}
	wg.Wait()
	stormed := time.Since(start)

	// Exactly one applied event per order, every message recorded.
	var appliedBy = map[string]int{}
	verdicts := map[string]int{}
	for _, j := range jobs {
		o := shop.Order(t, j.o.OutTradeNo)
		if o.Status != store.StatusPaid || o.TradeNo != j.tradeNo {
			t.Errorf("order %s: status %s trade_no %q, want paid %q", o.OutTradeNo, o.Status, o.TradeNo, j.tradeNo)
		}
		evs, err := shop.Store.EventsForOrder(ctx, j.o.OutTradeNo)
		if err != nil {
			t.Fatal(err)
		}
		applied, bySource := 0, map[string]int{}
		for _, ev := range evs {
			bySource[ev.Source]++
			verdicts[ev.Verdict]++
			if ev.Verdict == store.VerdictApplied {
				applied++
				appliedBy[ev.Source]++
			}
			if ev.Verdict == store.VerdictFlagged || ev.Verdict == store.VerdictRejected {
				t.Errorf("order %s: %s event %s: %s", o.OutTradeNo, ev.Source, ev.Verdict, ev.Reason)
			}
		}
		if applied != 1 {
			t.Errorf("order %s: %d applied events, want exactly 1", o.OutTradeNo, applied)
		}
		// A return is recorded only when it found the order still unpaid: one for an order
		// already settled records nothing new.
		if bySource[store.SourceNotify] != dups || bySource[store.SourceReturn] > 1 || bySource[store.SourceQuery] < 1 {
			t.Errorf("order %s: events by source %v, want %d notify, at most 1 return, ≥1 query", o.OutTradeNo, bySource, dups)
		}
	}
	if res, err := shop.Store.IntegrityCheck(ctx); err != nil || res != "ok" {
		t.Errorf("integrity_check: %q %v", res, err)
	}
	total := notifies.Load() + returns.Load() + queries.Load()
	t.Logf("storm: %d orders (%d shoppers) created in %v, opened and paid at the emulator in %v",
		orders, users, created.Round(time.Millisecond), opened.Round(time.Millisecond))
	t.Logf("storm: %d messages in %v (%.0f/s, ≤%d in flight): %d notifies (%d answered success, %d not), %d returns (%d shown), %d queries (%d failed)",
		total, stormed.Round(time.Millisecond), float64(total)/stormed.Seconds(), inFlight,
		notifies.Load(), success.Load(), notOK.Load(), returns.Load(), returnOK.Load(), queries.Load(), queryErr.Load())
	t.Logf("storm: applied exactly once per order — by notify %d, by query %d, by other %d; event verdicts %v",
		appliedBy[store.SourceNotify], appliedBy[store.SourceQuery], orders-appliedBy[store.SourceNotify]-appliedBy[store.SourceQuery], verdicts)
}
