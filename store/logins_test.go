package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"storefront/shoptest"
	"storefront/store"
	"storefront/store/storetest"
)

// An account's login allowance is one for every instance sharing the database: taken
// from four at once, the burst is spent once; it refills one attempt an interval, and a
// right password gives its attempt back.
func TestLoginAllowanceIsSharedByInstances(t *testing.T) {
	clock := shoptest.NewClock(time.Now())
	sts := instances(t, 4, clock)
	ctx := context.Background()
	u, err := sts[0].CreateUser(ctx, "allow@example.com", "x")
	if err != nil {
		t.Fatal(err)
	}
	l := store.LoginLimit{Burst: 30, Per: time.Hour} // one back every 2 minutes
	// take may run on other goroutines: an error fails the test and counts as refused.
	take := func(st *store.Store) bool {
		ok, err := st.TakeLoginAttempt(ctx, store.Shoppers, u.ID, l)
		if err != nil {
			t.Error(err)
		}
		return ok
	}
	var granted atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if take(sts[i%len(sts)]) {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	if granted.Load() != 30 {
		t.Fatalf("40 attempts over 4 instances: %d granted, want the burst of 30", granted.Load())
	}
	clock.Advance(119 * time.Second)
	if take(sts[1]) {
		t.Fatal("an attempt came back before its 2 minutes")
	}
	clock.Advance(time.Second)
	if !take(sts[2]) || take(sts[3]) {
		t.Fatal("after 2 minutes, want exactly one attempt back")
	}
	if err := sts[0].GiveLoginAttempt(ctx, store.Shoppers, u.ID, l); err != nil {
		t.Fatal(err)
	}
	if !take(sts[1]) || take(sts[1]) {
		t.Fatal("a right password's attempt given back: want exactly one more")
	}
	// A whole hour later the whole burst is back, and giving back more than was spent
	// leaves it whole, not larger.
	clock.Advance(time.Hour)
	for range 3 {
		if err := sts[0].GiveLoginAttempt(ctx, store.Shoppers, u.ID, l); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for take(sts[n%len(sts)]) {
		n++
		if n > 40 {
			break
		}
	}
	if n != 30 {
		t.Fatalf("after an hour and three give-backs: %d attempts, want 30", n)
	}
	// Shoppers and operators are counted apart; an account that does not exist is an error.
	op, _, err := sts[0].SaveOperator(ctx, "allow-op@example.com", "x")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := sts[0].TakeLoginAttempt(ctx, store.Operators, op.ID, l); err != nil || !ok {
		t.Fatalf("the operator's first attempt: %v, %v", ok, err)
	}
	if _, err := sts[0].TakeLoginAttempt(ctx, store.Shoppers, u.ID+1000, l); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no such account: %v, want ErrNotFound", err)
	}
}

// An instance whose clock runs two hours ahead spends the account's allowance as of its
// own time; the others count that as spent from their now, and the account waits an
// interval, not the two hours (an hour and more, without the bound).
func TestLoginAllowanceBoundsAClockThatRunsAhead(t *testing.T) {
	clock := shoptest.NewClock(time.Now())
	ahead := shoptest.NewClock(clock.Now().Add(2 * time.Hour))
	dsn := storetest.DSN(t)
	right, fast := openWithClock(t, dsn, clock.Now), openWithClock(t, dsn, ahead.Now)
	ctx := context.Background()
	u, err := right.CreateUser(ctx, "skew@example.com", "x")
	if err != nil {
		t.Fatal(err)
	}
	l := store.LoginLimit{Burst: 30, Per: time.Hour}
	if ok, err := fast.TakeLoginAttempt(ctx, store.Shoppers, u.ID, l); err != nil || !ok {
		t.Fatalf("the fast instance's attempt: %v %v", ok, err)
	}
	if ok, err := right.TakeLoginAttempt(ctx, store.Shoppers, u.ID, l); err != nil || ok {
		t.Fatalf("just after: %v %v, want refused (the allowance looks spent)", ok, err)
	}
	clock.Advance(2 * time.Minute)
	if ok, err := right.TakeLoginAttempt(ctx, store.Shoppers, u.ID, l); err != nil || !ok {
		t.Fatalf("an interval later: %v %v, want granted", ok, err)
	}
}
