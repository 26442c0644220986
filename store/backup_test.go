package store_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"storefront/store"
)

// A backup taken while orders keep being written is a sound file holding every order
// whose creation had returned before the backup started.
func TestBackupUnderWriteLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shop.db")
	st := open(t, path)
	ctx := context.Background()
	u, err := st.CreateUser(ctx, "b@example.com", "x")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := st.AddGoods(ctx, store.Goods{Name: "g", Price: 100, Virtual: true})
	sid, err := st.StartSession(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked []string
		seq   atomic.Int64
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for !stop.Load() {
				no := "BK" + string(rune('A'+w)) + strconv.FormatInt(seq.Add(1), 10)
				if _, _, err := st.CreateOrder(ctx, store.NewOrder{OutTradeNo: no, UserID: u.ID,
					Lines: []store.Line{{GoodsID: g.ID, Qty: 1}}, TTL: time.Hour}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, no)
				mu.Unlock()
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	dest := filepath.Join(dir, "backup.db")
	if err := store.Backup(ctx, path, dest); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if err := store.Backup(ctx, path, dest); err == nil {
		t.Fatal("a second backup overwrote the first")
	}

	cp := sqlx.MustOpen("sqlite3", "file:"+dest+"?mode=ro")
	defer cp.Close()
	var res string
	if err := cp.Get(&res, "PRAGMA integrity_check"); err != nil || res != "ok" {
		t.Fatalf("integrity_check %q %v", res, err)
	}
	have := map[string]bool{}
	var nos []string
	if err := cp.Select(&nos, `SELECT out_trade_no FROM orders`); err != nil {
		t.Fatal(err)
	}
	for _, no := range nos {
		have[no] = true
	}
	for _, no := range before {
		if !have[no] {
			t.Fatalf("order %s, acknowledged before the backup started, is missing from it", no)
		}
	}
	var sessions int
	var token string
	cp.Get(&sessions, `SELECT COUNT(*) FROM sessions`)
	cp.Get(&token, `SELECT token FROM installation`)
	if sessions != 0 || token == st.Installation() || len(token) != 32 {
		t.Fatalf("the copy keeps %d sessions and token %q (live %q): restoring it would revive old cookies", sessions, token, st.Installation())
	}
	if _, err := st.SessionUser(ctx, sid); err != nil {
		t.Fatal("the backup touched the live database's sessions")
	}
	if len(before) == 0 || len(acked) <= len(before) {
		t.Fatalf("no write load around the backup: %d before, %d in all", len(before), len(acked))
	}
	t.Logf("backup under load: %d orders acknowledged before it started, all in it; %d in it; %d written in all", len(before), len(nos), len(acked))
}
