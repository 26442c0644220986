package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"storefront/store"
)

// runBackup is `go run . backup FILE`: a consistent copy of the live database, taken
// while the shop keeps serving.
func runBackup(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return errors.New("usage: go run . backup FILE (a new file; DB names the database, as for the shop)")
	}
	db := strings.TrimSpace(getenv("DB"))
	if db == "" {
		db = defaultOf("DB")
	}
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		return errors.New("DB is a PostgreSQL database: back it up with pg_dump (docs/operations.md), not with this command")
	}
	start := time.Now()
	if err := store.Backup(ctx, db, args[0]); err != nil {
		return err
	}
	st, err := os.Stat(args[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "backed up %s to %s (%.1f MB, %s, integrity_check ok)\n", db, args[0],
		float64(st.Size())/(1<<20), time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(out, "to restore: stop the shop, delete %s-wal and %s-shm, copy %s over %s, start the shop.\n", db, db, args[0], db)
	fmt.Fprintln(out, "the copy has a new installation token and no sessions: once restored, everyone logs in again.")
	return nil
}
