package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"storefront/shoptest"
	"storefront/store"
	"storefront/store/storetest"
)

// runUntil runs the shop with env until stop is called, and returns its base URL.
func runUntil(t *testing.T, env map[string]string) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Go(func() {
		errc <- runShop(ctx, func(k string) string { return env[k] }, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	})
	stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stop)
	base = "http://" + env["ADDR"]
	for range 200 {
		select {
		case err := <-errc:
			t.Fatalf("runShop: %v", err)
		default:
		}
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return base, stop
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("shop did not start")
	return "", nil
}

// buyAndPay buys goods 1 as b and pays at the emulator mounted on base, until db says
// paid; it returns the order number.
func buyAndPay(t *testing.T, base string, b *shoptest.Browser, db *storetest.Raw) string {
	t.Helper()
	r := b.Post(t, "/purchase/1", nil)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("purchase: %d %.300s", r.Status, r.Body)
	}
	u, _ := url.Parse(r.Location)
	var biz struct {
		OutTradeNo string `json:"out_trade_no"`
	}
	if err := json.Unmarshal([]byte(u.Query().Get("biz_content")), &biz); err != nil {
		t.Fatal(err)
	}
	if r := b.Get(t, r.Location); r.Status != http.StatusOK { // the cashier: the emulator makes the trade
		t.Fatalf("cashier: %d", r.Status)
	}
	resp, err := http.Post(base+"/sandbox/api/trades/"+biz.OutTradeNo+"/pay", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pay: %d", resp.StatusCode)
	}
	for range 100 { // the emulator's notify arrives
		var status string
		if db.Get(&status, `SELECT status FROM orders WHERE out_trade_no = ?`, biz.OutTradeNo); status == "paid" {
			return biz.OutTradeNo
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("order %s never paid", biz.OutTradeNo)
	return ""
}

// A shop on SQLite, moved with migrate-to, runs on PostgreSQL with every row there: the
// shopper is still logged in and sees the old order, new orders continue the ids, and a
// second copy into the same database is refused.
func TestMigrateToPostgres(t *testing.T) {
	dst := storetest.Schema(t, storetest.PostgresURL(t))
	dir := t.TempDir()
	sqlitePath := filepath.Join(dir, "shop.db")
	env := map[string]string{"ADDR": shoptest.FreeAddr(t), "DB": sqlitePath, "KEYS_DIR": filepath.Join(dir, "keys"),
		"SANDBOX_DB": filepath.Join(dir, "sandbox.db"), "MEDIA_DIR": filepath.Join(dir, "media")}
	base, stop := runUntil(t, env)
	b := (&shoptest.Shop{URL: base}).Browser()
	b.Signup(t, "move@example.com")
	src, pg := storetest.Open(t, sqlitePath), storetest.Open(t, dst)
	first := buyAndPay(t, base, b, src)
	r := b.Post(t, "/cart/items", url.Values{"goods_id": {"2"}, "qty": {"2"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("cart: %d", r.Status)
	}
	getenv := func(k string) string { return env[k] }
	// Not while the shop runs.
	var refused bytes.Buffer
	if err := runMigrateTo(context.Background(), []string{dst}, getenv, &refused); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("migrate-to with the shop running: %v", err)
	}
	stop()
	// An uploaded picture (bytes, not text) moves byte for byte.
	picture := []byte{0x89, 'P', 'N', 'G', 0, 0xff, 0xfe, '\n', 0}
	st, err := store.Open(sqlitePath, schemaSQL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveMedia(context.Background(), "0123456789abcdef0123456789abcdef.png", picture); err != nil {
		t.Fatal(err)
	}
	st.Close()

	var out bytes.Buffer
	if err := runMigrateTo(context.Background(), []string{dst}, getenv, &out); err != nil {
		t.Fatalf("migrate-to: %v\n%s", err, out.String())
	}
	t.Logf("migrate-to said:\n%s", out.String())
	var tables []string
	if err := src.Select(&tables, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		var want, got int
		src.Get(&want, `SELECT COUNT(*) FROM `+table)
		if err := pg.Get(&got, `SELECT COUNT(*) FROM `+table); err != nil || got != want {
			t.Errorf("%s: %d rows in SQLite, %d in PostgreSQL (%v)", table, want, got, err)
		}
		if !strings.Contains(out.String(), table) {
			t.Errorf("migrate-to did not report %s", table)
		}
	}
	// Left analyzed: the planner knows the table's size (never analyzed, it is -1).
	var tuples float64
	if err := pg.Get(&tuples, `SELECT reltuples FROM pg_class WHERE oid = 'orders'::regclass`); err != nil || tuples < 1 {
		t.Fatalf("orders after migrate-to: reltuples %v (never analyzed) %v", tuples, err)
	}
	moved, err := store.Open(dst, schemaSQL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := moved.Media(context.Background(), "0123456789abcdef0123456789abcdef.png"); err != nil || !bytes.Equal(got, picture) {
		t.Fatalf("the picture on PostgreSQL: %q %v", got, err)
	}
	moved.Close()
	var token, pgToken string
	src.Get(&token, `SELECT token FROM installation`)
	pg.Get(&pgToken, `SELECT token FROM installation`)
	if token == "" || token != pgToken {
		t.Fatalf("installation token %q became %q", token, pgToken)
	}

	// The shop on PostgreSQL, same keys: the same browser is still logged in.
	sqliteAddr := env["ADDR"]
	env["DB"] = dst
	env["ADDR"] = shoptest.FreeAddr(t)
	base2, _ := runUntil(t, env)
	b.Client.Jar.SetCookies(mustURL(base2), b.Client.Jar.Cookies(mustURL(base)))
	shopper := (&shoptest.Shop{URL: base2}).Browser()
	shopper.Client.Jar = b.Client.Jar
	if page := shopper.Get(t, "/orders/"+first); page.Status != http.StatusOK || !strings.Contains(page.Body, first) {
		t.Fatalf("the moved order on PostgreSQL: %d %.300s", page.Status, page.Body)
	}
	if page := shopper.Get(t, "/cart"); !strings.Contains(page.Body, `name="qty" value="2"`) {
		t.Fatalf("the cart (goods 2 ×2) did not move: %.600s", page.Body)
	}
	second := buyAndPay(t, base2, shopper, pg)
	var ids []int64
	if err := pg.Select(&ids, `SELECT id FROM orders ORDER BY id`); err != nil || len(ids) != 2 {
		t.Fatalf("orders on PostgreSQL: %v %v", ids, err)
	}
	if second == first || ids[1] <= ids[0] {
		t.Fatalf("ids after the move: %v", ids)
	}

	// Into a database that has data: refused, nothing changed.
	env["DB"], env["ADDR"] = sqlitePath, sqliteAddr
	out.Reset()
	err = runMigrateTo(context.Background(), []string{dst}, getenv, &out)
	if err == nil || !errors.Is(err, store.ErrNotEmpty) {
		t.Fatalf("a second migrate-to into a used database: %v", err)
	}
	var n int
	pg.Get(&n, `SELECT COUNT(*) FROM orders`)
	if n != 2 {
		t.Fatalf("the refused copy changed the database: %d orders", n)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
