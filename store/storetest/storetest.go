// Package storetest gives each test a database of its own on the engine the run is for:
// an SQLite file in the test's temporary directory, or, with TEST_DB=postgres, a fresh
// schema on the PostgreSQL server at TEST_POSTGRES_URL. Tests only; the shop never
// imports it.
//
//	go test ./...                                    SQLite; PostgreSQL-only tests skipped
//	TEST_POSTGRES_URL=postgres://… go test ./...     SQLite, and the PostgreSQL-only tests
//	TEST_DB=postgres TEST_POSTGRES_URL=… go test …   the suites themselves on PostgreSQL
//
// With CI=true a missing TEST_POSTGRES_URL fails the PostgreSQL-only tests instead.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	"github.com/jmoiron/sqlx"

	"storefront/store"
)

// Postgres reports whether this run's suites run on PostgreSQL (TEST_DB=postgres).
func Postgres() bool { return os.Getenv("TEST_DB") == "postgres" }

// PostgresURL returns the server for tests that need PostgreSQL whatever the suite's
// engine. Without one the test is skipped (and the run says so once), or, under CI,
// fails: CI must run both engines.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TEST_POSTGRES_URL")
	if u != "" {
		return u
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but TEST_POSTGRES_URL is not set: start a throwaway cluster (bash .ci/postgres start)")
	}
	sayOnce()
	t.Skip("needs PostgreSQL: set TEST_POSTGRES_URL")
	return ""
}

// DSN returns a new, empty database for t on this run's engine; it is dropped when t
// ends.
func DSN(t testing.TB) string {
	t.Helper()
	if !Postgres() {
		if os.Getenv("TEST_POSTGRES_URL") == "" {
			sayOnce()
		}
		return filepath.Join(t.TempDir(), "shop.db")
	}
	return Schema(t, PostgresURL(t))
}

// Schema creates a fresh schema on the server at base for t and returns a URL whose
// connections use it (search_path), so tests share one server without seeing each
// other's tables. It is dropped when t ends.
func Schema(t testing.TB, base string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`CREATE SCHEMA ` + name); err != nil {
		admin.Close()
		t.Fatalf("creating a schema on %s: %v", base, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+name+` CASCADE`); err != nil {
			t.Logf("dropping schema %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// Raw is direct SQL access to a test's database, for arranging what the store's API
// can't (a corrupted row, a failing table); queries use "?" placeholders on both engines.
type Raw struct {
	*sqlx.DB
	Postgres bool
}

// Open opens dsn (a store.Open DSN) for raw access until t ends.
func Open(t testing.TB, dsn string) *Raw {
	t.Helper()
	driver, src := "sqlite3", store.DSN(dsn)
	if store.IsPostgres(dsn) {
		driver, src = "pgx", dsn
	}
	db, err := sqlx.Open(driver, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &Raw{DB: db, Postgres: store.IsPostgres(dsn)}
}

// MustExec runs q, failing the test on error.
func (r *Raw) MustExec(t testing.TB, q string, args ...any) sql.Result {
	t.Helper()
	res, err := r.DB.Exec(r.Rebind(q), args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res
}

// Get scans one row of q into dest.
func (r *Raw) Get(dest any, q string, args ...any) error {
	return r.DB.Get(dest, r.Rebind(q), args...)
}

// Select scans every row of q into dest.
func (r *Raw) Select(dest any, q string, args ...any) error {
	return r.DB.Select(dest, r.Rebind(q), args...)
}

// Exec runs q.
func (r *Raw) Exec(q string, args ...any) (sql.Result, error) {
	return r.DB.Exec(r.Rebind(q), args...)
}

// FailInserts makes every INSERT into table fail with message until the returned
// function is called: a disk that fills up, a constraint added by hand.
func (r *Raw) FailInserts(t testing.TB, table, message string) (restore func()) {
	t.Helper()
	name := "fail_" + table
	if r.Postgres {
		r.MustExec(t, fmt.Sprintf(`CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '%s'; END $$`, name, message))
		r.MustExec(t, fmt.Sprintf(`CREATE TRIGGER %s BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION %s()`, name, table, name))
		return func() {
			r.MustExec(t, fmt.Sprintf(`DROP TRIGGER %s ON %s`, name, table))
			r.MustExec(t, fmt.Sprintf(`DROP FUNCTION %s()`, name))
		}
	}
	r.MustExec(t, fmt.Sprintf(`CREATE TRIGGER %s BEFORE INSERT ON %s BEGIN SELECT RAISE(ABORT, '%s'); END`, name, table, message))
	return func() { r.MustExec(t, `DROP TRIGGER `+name) }
}

// FailCommits makes every transaction that inserts into table fail at COMMIT — each
// statement succeeds, only the commit refuses (a deferred foreign key that can't hold) —
// until the returned function is called.
func (r *Raw) FailCommits(t testing.TB, table string) (restore func()) {
	t.Helper()
	r.MustExec(t, `CREATE TABLE nowhere (id INTEGER PRIMARY KEY)`)
	r.MustExec(t, `CREATE TABLE dangling (parent INTEGER REFERENCES nowhere (id) DEFERRABLE INITIALLY DEFERRED)`)
	if r.Postgres {
		r.MustExec(t, `CREATE FUNCTION commit_fails() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO dangling VALUES (1); RETURN NEW; END $$`)
		r.MustExec(t, `CREATE TRIGGER commit_fails AFTER INSERT ON `+table+` FOR EACH ROW EXECUTE FUNCTION commit_fails()`)
		return func() {
			r.MustExec(t, `DROP TRIGGER commit_fails ON `+table)
			r.MustExec(t, `DROP FUNCTION commit_fails()`)
		}
	}
	r.MustExec(t, `CREATE TRIGGER commit_fails AFTER INSERT ON `+table+` BEGIN INSERT INTO dangling VALUES (1); END`)
	return func() { r.MustExec(t, `DROP TRIGGER commit_fails`) }
}

var noteOnce sync.Once

// sayOnce tells the person running the tests, once per go test run (not once per
// package), that PostgreSQL was left out. A passing package's output is hidden by go
// test, so the note goes to the go command's own stderr (its pid is our parent's), and
// a marker file named after that pid keeps the other packages quiet.
func sayOnce() {
	noteOnce.Do(func() {
		const note = "storefront: tests ran on SQLite only; set TEST_POSTGRES_URL (bash .ci/postgres start) to run the PostgreSQL tests too\n"
		marker := filepath.Join(os.TempDir(), fmt.Sprintf("storefront-sqlite-only-%d", os.Getppid()))
		f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return // another package of this run said it
		}
		f.Close()
		if tty, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/2", os.Getppid()), os.O_WRONLY|os.O_APPEND, 0); err == nil {
			tty.WriteString(note)
			tty.Close()
			return
		}
		fmt.Fprint(os.Stderr, note)
	})
}
