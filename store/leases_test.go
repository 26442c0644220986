package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"storefront/shoptest"
	"storefront/store"
	"storefront/store/storetest"
)

// instances opens n stores on one database, sharing clock, as n shop processes would.
func instances(t *testing.T, n int, clock *shoptest.Clock) []*store.Store {
	t.Helper()
	dsn := storetest.DSN(t)
	var sts []*store.Store
	for range n {
		sts = append(sts, openWithClock(t, dsn, clock.Now))
	}
	return sts
}

// dueOrders makes n unpaid orders that expire (and are due a query) at once.
func dueOrders(t *testing.T, st *store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	u, err := st.CreateUser(ctx, "lease@example.com", "x")
	if err != nil {
		t.Fatal(err)
	}
	g, err := st.AddGoods(ctx, store.Goods{Name: "g", Price: 100, Virtual: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, _, err := st.CreateOrder(ctx, store.NewOrder{OutTradeNo: fmt.Sprintf("L%04d", i), UserID: u.ID,
			Lines: []store.Line{{GoodsID: g.ID, Qty: 1}}, TTL: time.Minute, ReconcileAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

// Instances claiming due orders at the same moment, batch after batch (each closing
// what it claimed), never get the same order, and between them get every one.
func TestClaimsAreDisjointUnderConcurrency(t *testing.T) {
	clock := shoptest.NewClock(time.Now())
	sts := instances(t, 4, clock)
	dueOrders(t, sts[0], 300)
	clock.Advance(2 * time.Minute)
	ctx := context.Background()
	var mu sync.Mutex
	owner := map[string]int{}
	var wg sync.WaitGroup
	for i, st := range sts {
		wg.Go(func() {
			for {
				os, _, err := st.ClaimExpiry(ctx, clock.Now(), 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(os) == 0 {
					return
				}
				mu.Lock()
				for _, o := range os {
					if prev, ok := owner[o.OutTradeNo]; ok {
						t.Errorf("%s claimed by instance %d and %d", o.OutTradeNo, prev, i)
					}
					owner[o.OutTradeNo] = i
				}
				mu.Unlock()
				// Work them: closed, they leave the due set.
				for _, o := range os {
					if _, err := st.ApplyClosed(ctx, store.Event{OutTradeNo: o.OutTradeNo, Source: store.SourceClose, Raw: "{}"}, store.StatusClosed); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if len(owner) != 300 {
		t.Fatalf("%d of 300 due orders claimed", len(owner))
	}
	per := map[int]int{}
	for _, i := range owner {
		per[i]++
	}
	t.Logf("orders claimed per instance: %v", per)
}

// A lease keeps others off until it runs out (a dead instance's), or until it is given
// back; an order's claim covers expiry and reconciliation alike.
func TestLeaseRunsOutAndIsReleased(t *testing.T) {
	clock := shoptest.NewClock(time.Now())
	sts := instances(t, 2, clock)
	a, b := sts[0], sts[1]
	dueOrders(t, a, 3)
	clock.Advance(2 * time.Minute)
	ctx := context.Background()
	got, _, err := a.ClaimExpiry(ctx, clock.Now(), 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("a claimed %d, %v", len(got), err)
	}
	if os, _, _ := b.ClaimExpiry(ctx, clock.Now(), 10); len(os) != 0 {
		t.Fatalf("b claimed %d orders a holds", len(os))
	}
	if os, _, _ := b.ClaimReconcile(ctx, clock.Now(), 10); len(os) != 0 {
		t.Fatalf("b claimed %d orders a holds, for a query", len(os))
	}
	// a gives one back: b gets that one only.
	if err := a.ReleaseOrders(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	if os, _, _ := b.ClaimExpiry(ctx, clock.Now(), 10); len(os) != 1 || os[0].ID != got[0].ID {
		t.Fatalf("after a released one, b claimed %+v", os)
	}
	// b releasing what a holds changes nothing.
	if err := b.ReleaseOrders(ctx, got[1].ID); err != nil {
		t.Fatal(err)
	}
	for _, o := range mustClaim(t, b, clock) {
		if o.ID != got[0].ID {
			t.Fatalf("b released a's lease on %s and claimed it", o.OutTradeNo)
		}
	}
	// a dies holding two: once its leases have run out, b takes them (and still has
	// its own).
	clock.Advance(b.LeaseTTL() - time.Second)
	for _, o := range mustClaim(t, b, clock) {
		if o.ID != got[0].ID {
			t.Fatalf("b took over a's lease on %s before it ran out", o.OutTradeNo)
		}
	}
	clock.Advance(2 * time.Second)
	if os, _, _ := b.ClaimExpiry(ctx, clock.Now(), 10); len(os) != 3 {
		t.Fatalf("b took over %d of 3 lapsed leases", len(os))
	}
}

func mustClaim(t *testing.T, st *store.Store, clock *shoptest.Clock) []store.Order {
	t.Helper()
	os, _, err := st.ClaimExpiry(context.Background(), clock.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	return os
}

// A job's lease has one holder at a time and is not taken again while it runs, by its
// holder either; released by its holder or lapsed, it goes to whoever asks next.
func TestJobLease(t *testing.T) {
	clock := shoptest.NewClock(time.Now())
	sts := instances(t, 3, clock)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	holders := 0
	for _, st := range sts {
		wg.Go(func() {
			ok, err := st.TakeLease(ctx, store.JobDailyReconciliation, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				holders++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if holders != 1 {
		t.Fatalf("%d instances got the lease at once", holders)
	}
	// Nobody takes it again while it runs, its holder included (a janitor's lease is
	// its period).
	var holder, other *store.Store
	for _, st := range sts {
		if ok, _ := st.TakeLease(ctx, store.JobDailyReconciliation, time.Minute); ok {
			t.Fatal("a held lease was taken again")
		}
	}
	for _, st := range sts {
		if err := st.ReleaseLease(ctx, store.JobDailyReconciliation); err != nil {
			t.Fatal(err)
		}
	}
	// Released by whoever held it (the others' releases change nothing): the next to ask gets it.
	if ok, _ := sts[0].TakeLease(ctx, store.JobDailyReconciliation, time.Minute); !ok {
		t.Fatal("a released lease could not be taken")
	}
	holder, other = sts[0], sts[1]
	if err := holder.ReleaseLease(ctx, store.JobDailyReconciliation); err != nil {
		t.Fatal(err)
	}
	if ok, _ := other.TakeLease(ctx, store.JobDailyReconciliation, time.Minute); !ok {
		t.Fatal("a released lease was not handed on")
	}
	if ok, _ := holder.TakeLease(ctx, store.JobDailyReconciliation, time.Minute); ok {
		t.Fatal("two holders after a hand-on")
	}
	if err := holder.ReleaseLease(ctx, store.JobDailyReconciliation); err != nil {
		t.Fatal(err)
	}
	if ok, _ := holder.TakeLease(ctx, store.JobDailyReconciliation, time.Minute); ok {
		t.Fatal("a lease released by someone who doesn't hold it was taken")
	}
	clock.Advance(time.Minute)
	if ok, _ := holder.TakeLease(ctx, store.JobDailyReconciliation, time.Minute); !ok {
		t.Fatal("a lapsed lease was not taken over")
	}
	// Another job is another lease.
	if ok, _ := other.TakeLease(ctx, store.JobPurgeSessions, time.Minute); !ok {
		t.Fatal("one job's lease blocked another's")
	}
}

// An instance restarted under the same name (host and address) takes back its
// predecessor's leases at once; another name waits for them to run out.
func TestRestartedInstanceTakesBackItsLeases(t *testing.T) {
	clock := shoptest.NewClock(time.Now())
	sts := instances(t, 3, clock)
	old, restarted, other := sts[0], sts[1], sts[2]
	old.SetInstance("host/127.0.0.1:8080")
	restarted.SetInstance("host/127.0.0.1:8080")
	other.SetInstance("host/127.0.0.1:8081")
	dueOrders(t, old, 4)
	clock.Advance(2 * time.Minute)
	ctx := context.Background()
	if os, _, _ := old.ClaimReconcile(ctx, clock.Now(), 10); len(os) != 4 {
		t.Fatalf("claimed %d of 4", len(os))
	}
	// old is killed here, mid-batch.
	if os, _, _ := other.ClaimReconcile(ctx, clock.Now(), 10); len(os) != 0 {
		t.Fatalf("another instance took %d live leases", len(os))
	}
	if os, _, _ := restarted.ClaimReconcile(ctx, clock.Now(), 10); len(os) != 4 {
		t.Fatalf("the restarted instance took back %d of its 4 leases", len(os))
	}
}
