package web

import (
	"context"
	"fmt"
	"testing"
	"time"

	"storefront/store"
)

// allowances is a fake store: it counts the attempts asked of it, and answers
// ErrNotFound for the ids in gone.
type allowances struct {
	taken map[int64]int
	gone  map[int64]bool
}

func (a *allowances) TakeLoginAttempt(_ context.Context, _ store.Accounts, id int64, l store.LoginLimit) (bool, error) {
	if a.gone[id] {
		return false, store.ErrNotFound
	}
	a.taken[id]++
	return a.taken[id] <= l.Burst, nil
}

func (a *allowances) GiveLoginAttempt(_ context.Context, _ store.Accounts, id int64, _ store.LoginLimit) error {
	if a.gone[id] {
		return store.ErrNotFound
	}
	a.taken[id]--
	return nil
}

// An account that exists spends from the shared allowance and nothing in memory; one
// nobody registered (id 0), or one deleted since it was looked up, from memory.
func TestLoginToSpendsTheAccountsAllowanceWhereItLives(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) }
	shared := &allowances{taken: map[int64]int{}, gone: map[int64]bool{9: true}}
	l := NewAuthLimits(Limits{LoginPerPair: 1000, LoginPerAccount: 3}, now, shared, store.Shoppers)
	ctx := context.Background()
	spend := func(account string, id int64) (granted int) {
		for i := range 5 {
			ok, err := l.LoginTo(ctx, fmt.Sprintf("10.0.0.%d", i+1), account, id)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				granted++
			}
		}
		return granted
	}
	if n := spend("real@example.com", 7); n != 3 || shared.taken[7] != 5 {
		t.Errorf("existing account: %d of 5 granted, %d asked of the store; want 3 and 5", n, shared.taken[7])
	}
	if err := l.LoginSucceeded(ctx, "10.0.0.1", "real@example.com", 7); err != nil || shared.taken[7] != 4 {
		t.Errorf("a right password gave back to the store: %v, %d taken; want 4", err, shared.taken[7])
	}
	for _, c := range []struct {
		account string
		id      int64
	}{{"nobody@example.com", 0}, {"deleted@example.com", 9}} {
		if n := spend(c.account, c.id); n != 3 {
			t.Errorf("%s (id %d): %d of 5 granted from memory, want 3", c.account, c.id, n)
		}
		if err := l.LoginSucceeded(ctx, "10.0.0.1", c.account, c.id); err != nil {
			t.Errorf("%s: giving back: %v", c.account, err)
		}
	}
	if len(shared.taken) != 1 {
		t.Errorf("the store was asked about %v; want the existing account only", shared.taken)
	}
}
