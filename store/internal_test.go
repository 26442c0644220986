package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// openSQLite opens a store on a new SQLite file for the rest of the test.
func openSQLite(t *testing.T) *Store {
	t.Helper()
	schema, err := os.ReadFile("../schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(filepath.Join(t.TempDir(), "shop.db"), string(schema), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// scratchStore is openSQLite with a table scratch (who, n) for writes of the tests' own.
func scratchStore(t *testing.T) *Store {
	t.Helper()
	st := openSQLite(t)
	if _, err := st.wdb.ExecContext(context.Background(), `CREATE TABLE scratch (who TEXT, n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	return st
}

// scratchRows counts who's rows in scratch.
func scratchRows(t *testing.T, st *Store, who string) int {
	t.Helper()
	var n int
	if err := st.db.GetContext(context.Background(), &n, `SELECT COUNT(*) FROM scratch WHERE who = ?`, who); err != nil {
		t.Fatal(err)
	}
	return n
}

// insertScratch is a write job adding one row for who.
func insertScratch(who string) func(tx txn) error {
	return func(tx txn) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO scratch VALUES (?, 1)`, who)
		return err
	}
}

// submit hands fn to st's writer and answers on the channel when it is done.
func submit(ctx context.Context, st *Store, fn func(tx txn) error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- st.batchedTx(ctx, fn) }()
	return done
}
