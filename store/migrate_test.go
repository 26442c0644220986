package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"storefront/store"
	"storefront/store/storetest"
)

// oldFile makes a database file as the release with schema version v (1 or 2) left it:
// testdata/schema_v2.sql is that release's schema.sql, byte for byte. Those releases ran
// on SQLite only.
func oldFile(t *testing.T, v int) string {
	t.Helper()
	if storetest.Postgres() {
		t.Skip("the releases before this one had SQLite files only")
	}
	b, err := os.ReadFile("testdata/schema_v2.sql")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "shop.db")
	db := sqlx.MustOpen("sqlite3", store.DSN(path))
	defer db.Close()
	db.MustExec(string(b))
	db.MustExec(`INSERT INTO users (email, password_hash, created_at) VALUES ('old@example.com', 'h', '2026-11-01T00:00:00.000Z')`)
	db.MustExec(`INSERT INTO goods (name, price_fen, created_at) VALUES ('旧商品', 100, '2026-11-01T00:00:00.000Z')`)
	db.MustExec(`INSERT INTO orders (out_trade_no, user_id, subject, total_fen, status, created_at, expires_at)
		VALUES ('OLD1', 1, '旧商品', 100, 'cancelled', '2026-11-01T00:00:00.000Z', '2026-11-01T00:30:00.000Z')`)
	db.MustExec(`INSERT INTO payment_events (order_id, out_trade_no, source, trade_status, verdict, raw, created_at)
		VALUES (1, 'OLD1', 'notify', 'TRADE_SUCCESS', 'flagged', '{"out_trade_no":"OLD1","trade_no":"2026110122001400000000000001"}', '2026-11-01T00:40:00.000Z')`)
	if v == 1 {
		db.MustExec("DROP TABLE installation")
		db.MustExec("PRAGMA user_version = 1")
	}
	return path
}

// schemaOf describes every table's columns and every index of the file at path, the
// parts of the schema that must not depend on how the file got to its version.
func schemaOf(t *testing.T, path string) map[string]string {
	t.Helper()
	db := sqlx.MustOpen("sqlite3", store.DSN(path))
	defer db.Close()
	var objs []struct {
		Type string `db:"type"`
		Name string `db:"name"`
		SQL  string `db:"sql"`
	}
	if err := db.Select(&objs, `SELECT type, name, COALESCE(sql, '') AS sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name`); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range objs {
		if o.Type == "index" {
			out["index "+o.Name] = strings.Join(strings.Fields(o.SQL), " ")
			continue
		}
		rows, err := db.Queryx(fmt.Sprintf("PRAGMA table_info(%q)", o.Name))
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		for rows.Next() {
			m := map[string]any{}
			rows.MapScan(m)
			cols = append(cols, fmt.Sprintf("%v %v notnull=%v default=%v pk=%v", m["name"], m["type"], m["notnull"], m["dflt_value"], m["pk"]))
		}
		rows.Close()
		out["table "+o.Name] = strings.Join(cols, "; ")
		var fks []string
		fr, _ := db.Queryx(fmt.Sprintf("PRAGMA foreign_key_list(%q)", o.Name))
		for fr.Next() {
			m := map[string]any{}
			fr.MapScan(m)
			fks = append(fks, fmt.Sprintf("%v→%v.%v", m["from"], m["table"], m["to"]))
		}
		fr.Close()
		out["fk "+o.Name] = strings.Join(fks, "; ")
	}
	var v int
	db.Get(&v, "PRAGMA user_version")
	out["version"] = fmt.Sprint(v)
	return out
}

// A fresh database and one upgraded from each earlier release end with the same schema,
// keep their data, and the upgrade fills the columns this release added.
func TestFreshAndUpgradedSchemasMatch(t *testing.T) {
	if storetest.Postgres() {
		t.Skip("the releases before this one had SQLite files only")
	}
	fresh := filepath.Join(t.TempDir(), "shop.db")
	open(t, fresh).Close()
	want := schemaOf(t, fresh)
	if want["version"] != fmt.Sprint(store.SchemaVersion) {
		t.Fatalf("fresh file at version %s, want %d", want["version"], store.SchemaVersion)
	}
	for _, v := range []int{1, 2} {
		t.Run(fmt.Sprintf("from v%d", v), func(t *testing.T) {
			path := oldFile(t, v)
			st := open(t, path)
			ctx := context.Background()
			if len(st.Installation()) != 32 {
				t.Fatalf("installation token %q", st.Installation())
			}
			if _, err := st.UserByEmail(ctx, "old@example.com"); err != nil {
				t.Fatalf("old user lost: %v", err)
			}
			evs, err := st.EventsForOrder(ctx, "OLD1")
			if err != nil || len(evs) != 1 || evs[0].TradeNo != "2026110122001400000000000001" {
				t.Fatalf("old event after upgrade: %+v %v", evs, err)
			}
			st.Close()
			got := schemaOf(t, path)
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s:\n fresh    %s\n upgraded %s", k, w, got[k])
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("upgraded file has %s, a fresh one doesn't", k)
				}
			}
		})
	}
}

// The installation token is made once per file and kept across restarts.
func TestInstallationTokenStable(t *testing.T) {
	path := storetest.DSN(t)
	if err := store.MigrateTo(path, schema(t), 1); err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for range 2 {
		st, err := store.Open(path, schema(t), nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		tokens = append(tokens, st.Installation())
		st.Close()
	}
	if len(tokens[0]) != 32 || tokens[0] != tokens[1] {
		t.Fatalf("tokens across restarts: %q", tokens)
	}
	if other := open(t, storetest.DSN(t)); other.Installation() == tokens[0] {
		t.Fatal("two database files share an installation token")
	}
}

// On either engine, a database migrated section by section from each earlier version
// (as a release that ended there left it, with data) ends with exactly the schema of a
// fresh one.
func TestUpgradedFromEachVersionMatchesFresh(t *testing.T) {
	ctx := context.Background()
	describe := func(dsn string) []string {
		st := open(t, dsn)
		d, err := st.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		return d
	}
	want := describe(storetest.DSN(t))
	if len(want) < 100 {
		t.Fatalf("a fresh schema described in %d lines: %v", len(want), want)
	}
	for v := 1; v < store.SchemaVersion; v++ {
		t.Run(fmt.Sprintf("from v%d", v), func(t *testing.T) {
			dsn := storetest.DSN(t)
			if err := store.MigrateTo(dsn, schema(t), v); err != nil {
				t.Fatal(err)
			}
			raw := storetest.Open(t, dsn)
			raw.MustExec(t, `INSERT INTO users (email, password_hash, created_at) VALUES ('old@example.com', 'h', '2026-11-01T00:00:00.000Z')`)
			raw.MustExec(t, `INSERT INTO payment_events (out_trade_no, source, trade_status, verdict, raw, created_at)
				VALUES ('OLD1', 'notify', 'TRADE_SUCCESS', 'flagged', '{"out_trade_no":"OLD1","trade_no":"2026110122001400000000000001"}', '2026-11-01T00:40:00.000Z')`)
			got := describe(dsn)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				gs := map[string]bool{}
				for _, l := range got {
					gs[l] = true
				}
				ws := map[string]bool{}
				for _, l := range want {
					ws[l] = true
					if !gs[l] {
						t.Errorf("fresh has, upgraded lacks: %s", l)
					}
				}
				for _, l := range got {
					if !ws[l] {
						t.Errorf("upgraded has, fresh lacks: %s", l)
					}
				}
			}
			st := open(t, dsn)
			if _, err := st.UserByEmail(ctx, "old@example.com"); err != nil {
				t.Fatalf("old user lost: %v", err)
			}
			// Migrate 3's data step fills trade_no from the raw params of the events
			// written before it had the column.
			if v < 3 {
				var tradeNo string
				if err := raw.Get(&tradeNo, `SELECT trade_no FROM payment_events WHERE out_trade_no = 'OLD1'`); err != nil || tradeNo != "2026110122001400000000000001" {
					t.Fatalf("old event's trade_no after upgrade: %q %v", tradeNo, err)
				}
			}
		})
	}
}

// Instances starting together on a fresh database migrate it once between them.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	dsn := storetest.DSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	tokens := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			st, err := store.Open(dsn, schema(t), nil)
			if err != nil {
				errs <- err
				return
			}
			tokens <- st.Installation()
			st.Close()
		})
	}
	wg.Wait()
	close(errs)
	close(tokens)
	for err := range errs {
		t.Fatal(err)
	}
	first := ""
	for tok := range tokens {
		if first == "" {
			first = tok
		} else if tok != first {
			t.Fatalf("instances read different installation tokens (%s, %s): a section ran twice", first, tok)
		}
	}
}
