package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"storefront/store"
)

// runMigrateTo is `go run . migrate-to postgres://…`: it moves the shop's data from its
// SQLite file (DB) into an empty PostgreSQL database, checking every table's count, so
// the shop can then run there (DB=postgres://…). The shop must be stopped: the command
// refuses while one answers at ADDR, and holds the SQLite file's write lock while it
// copies.
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
	addr := strings.TrimSpace(getenv("ADDR"))
	if addr == "" {
		addr = defaultOf("ADDR")
	}
	if shopAnswers(addr) {
		return fmt.Errorf("a shop answers at %s: stop it first (during the copy its writes would wait and fail, and those after it would stay in %s only)", addr, src)
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

// shopAnswers reports whether a shop is serving at addr (its /healthz answers 200).
func shopAnswers(addr string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
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
