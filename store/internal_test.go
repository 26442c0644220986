package store

import (
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
