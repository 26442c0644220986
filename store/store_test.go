package store_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"storefront/money"
	"storefront/shoptest"
	"storefront/store"
	"storefront/store/storetest"
)

func schema(t *testing.T) string {
	b, err := os.ReadFile(shoptest.SchemaPath())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// open opens the store at path for the rest of the test.
func open(t *testing.T, path string) *store.Store { return openWithClock(t, path, nil) }

// openWithClock is open with the clock now (nil: time.Now).
func openWithClock(t *testing.T, path string, now func() time.Time) *store.Store {
	t.Helper()
	st, err := store.Open(path, schema(t), now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestOpenIsIdempotentAndRefusesNewerSchema(t *testing.T) {
	path := storetest.DSN(t)
	for i := 0; i < 2; i++ {
		st, err := store.Open(path, schema(t), nil)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if res, err := st.IntegrityCheck(context.Background()); err != nil || res != "ok" {
			t.Fatalf("integrity %q %v", res, err)
		}
		st.Close()
	}
	db := storetest.Open(t, path)
	if db.Postgres {
		var v int
		db.Get(&v, "SELECT version FROM schema_version")
		if v != store.SchemaVersion {
			t.Fatalf("schema_version %d", v)
		}
		db.MustExec(t, "UPDATE schema_version SET version = 99")
	} else {
		var mode string
		db.Get(&mode, "PRAGMA journal_mode")
		var v int
		db.Get(&v, "PRAGMA user_version")
		if mode != "wal" || v != store.SchemaVersion {
			t.Fatalf("journal_mode %q, user_version %d", mode, v)
		}
		db.MustExec(t, "PRAGMA user_version = 99")
	}
	db.Close()
	if _, err := store.Open(path, schema(t), nil); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("newer schema: %v", err)
	}
}

func TestApplyPaidOnceUnderConcurrency(t *testing.T) {
	st := open(t, storetest.DSN(t))
	ctx := context.Background()
	u, _ := st.CreateUser(ctx, "a@example.com", "x")
	g, _ := st.AddGoods(ctx, store.Goods{Name: "g", Price: 100, Virtual: true})
	o, _, err := st.CreateOrder(ctx, store.NewOrder{OutTradeNo: "T1", UserID: u.ID, Lines: []store.Line{{GoodsID: g.ID, Qty: 1}}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	verdicts := make(chan string, 16)
	for i := 0; i < 16; i++ {
		wg.Go(func() {
			ev, err := st.ApplyPaid(ctx, store.Event{OutTradeNo: "T1", Source: store.SourceNotify, Raw: "{}"},
				store.Payment{TradeNo: "A1", Amount: money.Fen(100), PaidAt: time.Now()})
			if err != nil {
				t.Error(err)
			}
			verdicts <- ev.Verdict
		})
	}
	wg.Wait()
	close(verdicts)
	n := map[string]int{}
	for v := range verdicts {
		n[v]++
	}
	if n[store.VerdictApplied] != 1 || n[store.VerdictDuplicate] != 15 {
		t.Fatalf("verdicts %v", n)
	}
	// The store itself refuses a wrong amount, whatever the caller checked.
	o2, _, _ := st.CreateOrder(ctx, store.NewOrder{OutTradeNo: "T2", UserID: u.ID, Lines: []store.Line{{GoodsID: g.ID, Qty: 1}}, TTL: time.Hour})
	ev, _ := st.ApplyPaid(ctx, store.Event{OutTradeNo: "T2", Source: store.SourceQuery, Raw: "{}"}, store.Payment{TradeNo: "A2", Amount: 99})
	if got, _ := st.OrderByNo(ctx, o2.OutTradeNo); ev.Verdict != store.VerdictFlagged || got.Status != store.StatusUnpaid {
		t.Fatalf("wrong amount: %s, order %s", ev.Verdict, got.Status)
	}
	// Paid after cancel: flagged for the operator, order stays cancelled.
	if _, err := st.ApplyClosed(ctx, store.Event{OutTradeNo: "T2", Source: store.SourceClose, Raw: "{}"}, store.StatusCancelled); err != nil {
		t.Fatal(err)
	}
	ev, _ = st.ApplyPaid(ctx, store.Event{OutTradeNo: "T2", Source: store.SourceNotify, Raw: "{}", TradeStatus: "TRADE_SUCCESS"},
		store.Payment{TradeNo: "A2", Amount: 100})
	if got, _ := st.OrderByNo(ctx, "T2"); ev.Verdict != store.VerdictFlagged || got.Status != store.StatusCancelled {
		t.Fatalf("paid after cancel: %s, order %s", ev.Verdict, got.Status)
	}
	if u, due, err := st.UnappliedPayment(ctx, o2.ID); !due || err != nil || u.Refunded {
		t.Fatalf("UnappliedPayment after a flagged payment: %+v %v %v", u, due, err)
	}
	if _, due, _ := st.UnappliedPayment(ctx, o.ID); due {
		t.Fatal("UnappliedPayment on a normally paid order")
	}
	// A paid order paid again under another trade_no is money taken twice: flagged, and
	// the first payment stays the order's.
	ev, _ = st.ApplyPaid(ctx, store.Event{OutTradeNo: "T1", Source: store.SourceNotify, Raw: "{}"},
		store.Payment{TradeNo: "A9", Amount: 100})
	if got, _ := st.OrderByNo(ctx, "T1"); ev.Verdict != store.VerdictFlagged || got.TradeNo != "A1" {
		t.Fatalf("second trade_no on a paid order: %s, trade_no now %q", ev.Verdict, got.TradeNo)
	}
}

// A transaction whose COMMIT fails is an error to the caller — a notify must then be
// answered fail — and leaves nothing behind; the writer works again afterwards.
func TestCommitFailureIsAnError(t *testing.T) {
	path := storetest.DSN(t)
	st := open(t, path)
	ctx := context.Background()
	u, _ := st.CreateUser(ctx, "a@example.com", "x")
	g, _ := st.AddGoods(ctx, store.Goods{Name: "g", Price: 100, Virtual: true})
	if _, _, err := st.CreateOrder(ctx, store.NewOrder{OutTradeNo: "T1", UserID: u.ID, Lines: []store.Line{{GoodsID: g.ID, Qty: 1}}, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	// Every event insert now also writes a row whose deferred foreign key fails, so the
	// statements succeed and only COMMIT refuses.
	restore := storetest.Open(t, path).FailCommits(t, "payment_events")

	pay := func() (store.Event, error) {
		return st.ApplyPaid(ctx, store.Event{OutTradeNo: "T1", Source: store.SourceNotify, Raw: "{}"},
			store.Payment{TradeNo: "A1", Amount: 100, PaidAt: time.Now()})
	}
	if _, err := pay(); err == nil {
		t.Fatal("ApplyPaid whose COMMIT failed returned no error")
	}
	if _, err := st.ApplyClosed(ctx, store.Event{OutTradeNo: "T1", Source: store.SourceClose, Raw: "{}"}, store.StatusClosed); err == nil {
		t.Fatal("ApplyClosed whose COMMIT failed returned no error")
	}
	if got, _ := st.OrderByNo(ctx, "T1"); got.Status != store.StatusUnpaid {
		t.Fatalf("order %s after failed commits", got.Status)
	}
	if evs, _ := st.EventsForOrder(ctx, "T1"); len(evs) != 0 {
		t.Fatalf("%d events left by failed commits", len(evs))
	}
	restore()
	if ev, err := pay(); err != nil || ev.Verdict != store.VerdictApplied {
		t.Fatalf("after recovery: %s %v", ev.Verdict, err)
	}
}

func TestGoodsListCacheFollowsWrites(t *testing.T) {
	path := storetest.DSN(t)
	st := open(t, path)
	ctx := context.Background()
	stock := int64(5)
	g, _ := st.AddGoods(ctx, store.Goods{Name: "g", Price: 100, Stock: &stock, Virtual: true})
	first := func() store.Goods {
		gs, err := st.ListGoods(ctx)
		if err != nil || len(gs) != 1 {
			t.Fatalf("ListGoods %v %v", gs, err)
		}
		return gs[0]
	}
	if first().Price != 100 {
		t.Fatal("new goods not listed")
	}
	st.UpdateGoods(ctx, g.ID, 200, &stock, true)
	if first().Price != 200 {
		t.Fatal("cached price survived UpdateGoods")
	}
	u, _ := st.CreateUser(ctx, "c@example.com", "x")
	o, _, err := st.CreateOrder(ctx, store.NewOrder{OutTradeNo: "C1", UserID: u.ID, Lines: []store.Line{{GoodsID: g.ID, Qty: 2}}, TTL: time.Hour})
	if err != nil || *first().Stock != 3 {
		t.Fatalf("cached stock survived an order: %v", err)
	}
	st.ApplyClosed(ctx, store.Event{OutTradeNo: o.OutTradeNo, Source: store.SourceClose, Raw: "{}"}, store.StatusClosed)
	if *first().Stock != 5 {
		t.Fatal("cached stock survived a release")
	}
	// Another instance's write is seen: on PostgreSQL at once (it is announced), on
	// SQLite within the cache's TTL.
	other := open(t, path)
	other.UpdateGoods(ctx, g.ID, 300, &stock, true)
	deadline := time.Now().Add(1100 * time.Millisecond)
	if storetest.Postgres() {
		deadline = time.Now().Add(200 * time.Millisecond)
	}
	for first().Price != 300 {
		if time.Now().After(deadline) {
			t.Fatal("another instance's price change not seen in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// On PostgreSQL a report of a payment already applied is recorded without waiting for
// the order's row lock (replays of one notify must not queue on one row), while a report
// that could change the order still waits for it.
func TestDuplicatePaymentSkipsTheRowLock(t *testing.T) {
	dsn := storetest.Schema(t, storetest.PostgresURL(t))
	st := open(t, dsn)
	ctx := context.Background()
	u, _ := st.CreateUser(ctx, "l@example.com", "x")
	g, _ := st.AddGoods(ctx, store.Goods{Name: "g", Price: 100, Virtual: true})
	if _, _, err := st.CreateOrder(ctx, store.NewOrder{OutTradeNo: "L1", UserID: u.ID, Lines: []store.Line{{GoodsID: g.ID, Qty: 1}}, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	pay := store.Payment{TradeNo: "A1", Amount: 100, PaidAt: time.Now()}
	if ev, err := st.ApplyPaid(ctx, store.Event{OutTradeNo: "L1", Source: store.SourceNotify, Raw: "{}"}, pay); err != nil || ev.Verdict != store.VerdictApplied {
		t.Fatalf("first notify: %v %v", ev.Verdict, err)
	}
	raw := storetest.Open(t, dsn)
	holder, err := raw.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	// Locked as the store's own transactions lock an order (a refund, say).
	if _, err := holder.Exec(`SELECT id FROM orders WHERE out_trade_no = 'L1' FOR NO KEY UPDATE`); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ev, err := st.ApplyPaid(short, store.Event{OutTradeNo: "L1", Source: store.SourceNotify, Raw: "{}"}, pay)
	if err != nil || ev.Verdict != store.VerdictDuplicate {
		t.Fatalf("a replay while the order is locked: %v %v", ev.Verdict, err)
	}
	// A second trade for the paid order is news: it waits for the lock.
	blocked, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if _, err := st.ApplyPaid(blocked, store.Event{OutTradeNo: "L1", Source: store.SourceNotify, Raw: "{}"},
		store.Payment{TradeNo: "A2", Amount: 100, PaidAt: time.Now()}); err == nil {
		t.Fatal("a second trade_no was decided without the order's lock")
	}
}

// An order's lines come back with the ids and values they were stored with, on either
// engine (on PostgreSQL the order and its lines are one statement).
func TestCreateOrderReturnsItsStoredLines(t *testing.T) {
	st := open(t, storetest.DSN(t))
	ctx := context.Background()
	u, _ := st.CreateUser(ctx, "lines@example.com", "x")
	a, _ := st.AddGoods(ctx, store.Goods{Name: "甲", Price: 100, Virtual: true})
	b, _ := st.AddGoods(ctx, store.Goods{Name: "乙", Price: 250, Virtual: true})
	o, items, err := st.CreateOrder(ctx, store.NewOrder{OutTradeNo: "L1", UserID: u.ID, TTL: time.Hour,
		Lines: []store.Line{{GoodsID: b.ID, Qty: 2}, {GoodsID: a.ID, Qty: 3}, {GoodsID: a.ID, Qty: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.OrderItems(ctx, o.ID)
	if err != nil || len(stored) != 3 || o.Total != 900 {
		t.Fatalf("stored %v, total %d, err %v", stored, o.Total, err)
	}
	byID := map[int64]store.OrderItem{}
	for _, it := range stored {
		byID[it.ID] = it
	}
	for _, it := range items {
		if s, ok := byID[it.ID]; !ok || s != it || it.OrderID != o.ID {
			t.Fatalf("returned line %+v, stored %+v", it, s)
		}
	}
	if got, err := st.OrderByNo(ctx, "L1"); err != nil || got.ID != o.ID {
		t.Fatalf("order %d, by number %d %v", o.ID, got.ID, err)
	}
}
