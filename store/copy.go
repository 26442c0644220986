package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"
)

// Moving a shop from its SQLite file to PostgreSQL (go run . migrate-to): the PostgreSQL
// database gets the schema by the usual migration, then every table's rows arrive in one
// PostgreSQL transaction through COPY, parents before children so every foreign key
// holds as rows arrive. They are read in one SQLite transaction that holds the file's
// write lock (BEGIN IMMEDIATE, see DSN) until the copy is committed, so nothing can be
// written between reading a table and committing it: a shop still running would wait,
// and fail after the busy timeout. The generated ids then continue after the highest
// copied, and the copy is committed only if every table's count matches. Rows keep their
// ids, sessions and installation token: shoppers and operators stay logged in.

// TableCopy is what was copied of one table.
type TableCopy struct {
	Table string
	Rows  int64
	Took  time.Duration
}

// ErrNotEmpty is returned when the destination already holds a shop's data.
var ErrNotEmpty = errors.New("the destination database already has data")

// CopyTo copies every row of s (an SQLite store) into the empty PostgreSQL database at
// dst, reporting each table as it is done (progress may be nil).
func (s *Store) CopyTo(ctx context.Context, dst, schema string, progress func(TableCopy)) ([]TableCopy, error) {
	if s.dl.name != sqlite.name || !IsPostgres(dst) {
		return nil, errors.New("store: copying goes from an SQLite file to a postgres:// database")
	}
	d, err := Open(dst, schema, s.now) // the schema, by the same migration as any start
	if err != nil {
		return nil, err
	}
	d.Close()
	conn, err := pgx.Connect(ctx, dst)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())

	src, err := s.wdb.BeginTxx(ctx, nil) // BEGIN IMMEDIATE: the write lock, held to the end
	if err != nil {
		return nil, err
	}
	defer src.Rollback()
	stx := txn{q: src}
	tables, err := copyOrder(ctx, stx)
	if err != nil {
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	var done []TableCopy
	for _, table := range tables {
		start := time.Now()
		var have int64
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM `+table).Scan(&have); err != nil {
			return done, fmt.Errorf("%s: %w", table, err)
		}
		if have > 0 && table != "installation" {
			return done, fmt.Errorf("%w: table %s has %d rows (copy into a new, empty database)", ErrNotEmpty, table, have)
		}
		if table == "installation" {
			// The migration made the destination a token of its own: the shop's replaces
			// it, so the sessions it issued carry on.
			if _, err := tx.Exec(ctx, `DELETE FROM installation`); err != nil {
				return done, err
			}
		}
		n, err := copyTable(ctx, stx, tx, table)
		if err != nil {
			return done, fmt.Errorf("copying %s: %w", table, err)
		}
		var want int64
		if err := stx.GetContext(ctx, &want, `SELECT COUNT(*) FROM `+table); err != nil {
			return done, err
		}
		var got int64
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM `+table).Scan(&got); err != nil {
			return done, err
		}
		if n != want || got != want {
			return done, fmt.Errorf("%s: %d rows in SQLite, %d copied, %d in PostgreSQL", table, want, n, got)
		}
		if err := resetIdentity(ctx, tx, table); err != nil {
			return done, fmt.Errorf("%s: next id: %w", table, err)
		}
		c := TableCopy{Table: table, Rows: n, Took: time.Since(start)}
		done = append(done, c)
		if progress != nil {
			progress(c)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return done, err
	}
	_ = src.Rollback() // the copy is in: the SQLite file is free again
	// Freshly copied tables have no statistics and no visibility map: until autovacuum
	// comes by, the planner guesses (1 row where there are 5,000) and counts read the
	// table as well as the index (4 ms instead of 0.7 ms for the dashboard's at 100,000
	// orders). VACUUM can't run in a transaction, hence after the commit.
	for _, c := range done {
		if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) `+c.Table); err != nil {
			return done, fmt.Errorf("the copy is committed, but VACUUM ANALYZE %s failed (run it by hand): %w", c.Table, err)
		}
	}
	return done, nil
}

// copyOrder lists the SQLite tables parents first (a table after every table its
// foreign keys name).
func copyOrder(ctx context.Context, tx txn) ([]string, error) {
	var tables []string
	if err := tx.SelectContext(ctx, &tables, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`); err != nil {
		return nil, err
	}
	parents := map[string][]string{}
	for _, t := range tables {
		var refs []string
		if err := tx.SelectContext(ctx, &refs, fmt.Sprintf(`SELECT "table" FROM pragma_foreign_key_list(%q)`, t)); err != nil {
			return nil, err
		}
		parents[t] = refs
	}
	var order []string
	placed := map[string]bool{}
	var place func(t string, depth int) error
	place = func(t string, depth int) error {
		if placed[t] {
			return nil
		}
		if depth > len(tables) {
			return fmt.Errorf("store: foreign keys of %s form a cycle", t)
		}
		ps := parents[t]
		sort.Strings(ps)
		for _, p := range ps {
			if p != t {
				if err := place(p, depth+1); err != nil {
					return err
				}
			}
		}
		placed[t] = true
		order = append(order, t)
		return nil
	}
	for _, t := range tables {
		if err := place(t, 0); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// copyTable streams table's rows from SQLite into PostgreSQL with COPY, converting
// SQLite's 0/1 to booleans and its text and blobs to the column's kind where PostgreSQL
// is strict about them, and returns how many it copied.
func copyTable(ctx context.Context, src txn, dst pgx.Tx, table string) (int64, error) {
	var cols []struct {
		Name string `db:"column_name"`
		Type string `db:"data_type"`
	}
	rows, err := dst.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var c struct {
			Name string `db:"column_name"`
			Type string `db:"data_type"`
		}
		if err := rows.Scan(&c.Name, &c.Type); err != nil {
			rows.Close()
			return 0, err
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	names := make([]string, len(cols))
	quoted := ""
	for i, c := range cols {
		names[i] = c.Name
		if i > 0 {
			quoted += ", "
		}
		quoted += `"` + c.Name + `"`
	}
	r, err := src.QueryxContext(ctx, `SELECT `+quoted+` FROM `+table)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	types := make([]string, len(cols))
	for i, c := range cols {
		types[i] = c.Type
	}
	return dst.CopyFrom(ctx, pgx.Identifier{table}, names, &sqliteRows{rows: r, types: types})
}

// sqliteRows feeds COPY from an SQLite query; types are the PostgreSQL columns'.
type sqliteRows struct {
	rows  *sqlx.Rows
	types []string
	vals  []any
	err   error
}

func (r *sqliteRows) Next() bool {
	if !r.rows.Next() {
		return false
	}
	r.vals, r.err = r.rows.SliceScan()
	if r.err != nil {
		return false
	}
	for i, v := range r.vals {
		switch x := v.(type) {
		case []byte:
			if r.types[i] == "text" {
				r.vals[i] = string(x)
			}
		case string:
			if r.types[i] == "bytea" {
				r.vals[i] = []byte(x)
			}
		case int64:
			if r.types[i] == "boolean" {
				r.vals[i] = x != 0
			}
		}
	}
	return true
}

func (r *sqliteRows) Values() ([]any, error) { return r.vals, r.err }

func (r *sqliteRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Err()
}

// resetIdentity makes PostgreSQL's next generated id of table follow the highest copied.
func resetIdentity(ctx context.Context, tx pgx.Tx, table string) error {
	var identity bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
		AND table_name = $1 AND column_name = 'id' AND is_identity = 'YES')`, table).Scan(&identity); err != nil || !identity {
		return err // keyed otherwise: nothing generated
	}
	var seq string
	if err := tx.QueryRow(ctx, `SELECT pg_get_serial_sequence($1, 'id')`, table).Scan(&seq); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT setval($1, COALESCE((SELECT MAX(id) FROM `+pgx.Identifier{table}.Sanitize()+`), 0) + 1, false)`, seq)
	return err
}
