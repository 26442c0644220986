package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"storefront/shoptest"
	"storefront/store"
)

// One cart checked out by several instances at the same moment (a double click that
// reached two of them) makes one order; the others find the cart empty.
func TestCheckoutOnceAcrossInstances(t *testing.T) {
	clock := shoptest.NewClock(time.Now())
	sts := instances(t, 4, clock)
	ctx := context.Background()
	u, _ := sts[0].CreateUser(ctx, "cart@example.com", "x")
	stock := int64(100)
	g, _ := sts[0].AddGoods(ctx, store.Goods{Name: "g", Price: 100, Stock: &stock, Virtual: true})
	for round := range 20 {
		if err := sts[0].AddToCart(ctx, u.ID, g.ID, 2); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		made, empty := 0, 0
		for i, st := range sts {
			wg.Go(func() {
				_, _, err := st.Checkout(ctx, store.NewOrder{OutTradeNo: "C" + string(rune('A'+round)) + string(rune('a'+i)), UserID: u.ID, TTL: time.Hour})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					made++
				case errors.Is(err, store.ErrEmptyOrder):
					empty++
				default:
					t.Errorf("checkout: %v", err)
				}
			})
		}
		wg.Wait()
		if made != 1 || empty != len(sts)-1 {
			t.Fatalf("round %d: %d orders made, %d found the cart empty", round, made, empty)
		}
	}
	if got, _ := sts[0].GoodsByID(ctx, g.ID); *got.Stock != 100-2*20 {
		t.Fatalf("stock %d after 20 orders of 2", *got.Stock)
	}
}
