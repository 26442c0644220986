package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"storefront/store"
	"storefront/store/storetest"
)

// A write that fails after writing (an order inserted, then its stock found short)
// leaves nothing, whether it ran alone or in a batch with others that succeed; those
// keep all of theirs.
func TestFailedWritesLeaveNothingBehind(t *testing.T) {
	path := storetest.DSN(t)
	st := open(t, path)
	raw := storetest.Open(t, path)
	ctx := context.Background()
	u, _ := st.CreateUser(ctx, "a@example.com", "x")
	stock := int64(10)
	g, _ := st.AddGoods(ctx, store.Goods{Name: "g", Price: 100, Stock: &stock, Virtual: true})
	buy := func(no string, qty int64) error {
		_, _, err := st.CreateOrder(ctx, store.NewOrder{OutTradeNo: no, UserID: u.ID,
			Lines: []store.Line{{GoodsID: g.ID, Qty: qty}}, TTL: time.Hour})
		return err
	}
	count := func() (orders, items int) {
		if err := raw.Get(&orders, `SELECT COUNT(*) FROM orders`); err != nil {
			t.Fatal(err)
		}
		if err := raw.Get(&items, `SELECT COUNT(*) FROM order_items`); err != nil {
			t.Fatal(err)
		}
		return orders, items
	}

	if err := buy("ALONE", 11); !errors.Is(err, store.ErrOutOfStock) {
		t.Fatalf("11 of 10: %v", err)
	}
	if o, i := count(); o != 0 || i != 0 {
		t.Fatalf("a failed order alone left %d orders, %d lines", o, i)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() { errs <- buy(fmt.Sprintf("B%02d", i), 1) })
	}
	wg.Wait()
	close(errs)
	made := 0
	for err := range errs {
		switch {
		case err == nil:
			made++
		case !errors.Is(err, store.ErrOutOfStock):
			t.Fatalf("buy: %v", err)
		}
	}
	if o, i := count(); made != 10 || o != 10 || i != 10 {
		t.Fatalf("40 buyers of 10: %d made, %d orders, %d lines in the database", made, o, i)
	}
	if got, _ := st.GoodsByID(ctx, g.ID); *got.Stock != 0 {
		t.Fatalf("stock %d", *got.Stock)
	}
}
