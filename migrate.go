package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"storefront/store"
)

// runMigrateTo is `go run . migrate-to postgres://…`: it moves the shop's data from its
// SQLite file (DB) into an empty PostgreSQL database, checking every table's count, so
// the shop can then run there (DB=postgres://…). Stop the shop first: if it writes
// during the copy, nothing is committed and the command says so.
func runMigrateTo(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	if len(args) != 1 || !store.IsPostgres(args[0]) {
		return errors.New("usage: go run . migrate-to postgres://user:password@host/db (DB names the SQLite file to move, as for the shop)")
	}
	src := strings.TrimSpace(getenv("DB"))
	if src == "" {
		src = defaultOf("DB")
	}
	if store.IsPostgres(src) {
		return errors.New("DB is already a PostgreSQL database: migrate-to moves an SQLite file (set DB to its path)")
	}
	st, err := store.Open(src, schemaSQL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(out, "copying %s into %s\n", src, redactURL(args[0]))
	start := time.Now()
	var rows int64
	_, err = st.CopyTo(ctx, args[0], schemaSQL, func(c store.TableCopy) {
		rows += c.Rows
		fmt.Fprintf(out, "  %-22s %9d rows  %v\n", c.Table, c.Rows, c.Took.Round(time.Millisecond))
	})
	if err != nil {
		return fmt.Errorf("nothing was committed to PostgreSQL: %w", err)
	}
	took := time.Since(start)
	fmt.Fprintf(out, "done: %d rows in %v (%.0f rows/s), every table's count checked\n", rows, took.Round(time.Millisecond), float64(rows)/took.Seconds())
	fmt.Fprintf(out, "now start the shop with DB=%s; keep %s as the last SQLite copy until you are happy\n", redactURL(args[0]), src)
	return nil
}

// redactURL hides the password of a database URL for printing.
func redactURL(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 {
		return dsn
	}
	cred := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(cred, ":"); ok {
		return dsn[:scheme+3] + user + ":***" + dsn[at:]
	}
	return dsn
}
