package store

import (
	"context"
	"database/sql"

	"github.com/jmoiron/sqlx"
)

// db is a connection pool whose queries are written with "?" placeholders and rebound
// to the engine's own style on the way out, so every query in this package is written
// once for SQLite and PostgreSQL alike. (On SQLite Rebind returns the query unchanged.)
type db struct{ *sqlx.DB }

// GetContext runs q (rebound) and scans one row into dest.
func (d db) GetContext(ctx context.Context, dest any, q string, args ...any) error {
	return d.DB.GetContext(ctx, dest, d.Rebind(q), args...)
}

// SelectContext runs q (rebound) and scans every row into dest.
func (d db) SelectContext(ctx context.Context, dest any, q string, args ...any) error {
	return d.DB.SelectContext(ctx, dest, d.Rebind(q), args...)
}

// ExecContext runs q (rebound).
func (d db) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.DB.ExecContext(ctx, d.Rebind(q), args...)
}

// QueryxContext runs q (rebound) for row-by-row reading.
func (d db) QueryxContext(ctx context.Context, q string, args ...any) (*sqlx.Rows, error) {
	return d.DB.QueryxContext(ctx, d.Rebind(q), args...)
}

// txn is a write transaction with the same rebinding as db: a *sqlx.Tx, or on
// SQLite's writer its connection between BEGIN and COMMIT (see runBatch).
type txn struct {
	q txQuerier
	// detached: the statements run to the end whatever their context says. The
	// writer's transaction holds other callers' writes too; see runBatch.
	detached bool
	// opened collects, on the writer's connection, the Rows a job opened, to close them
	// when it returns: one left open would hold the connection for good (a Tx closes
	// them at its end; a Conn waits for them).
	opened *[]*sqlx.Rows
}

// txQuerier is what *sqlx.Tx and *sqlx.Conn both offer.
type txQuerier interface {
	GetContext(ctx context.Context, dest any, q string, args ...any) error
	SelectContext(ctx context.Context, dest any, q string, args ...any) error
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryxContext(ctx context.Context, q string, args ...any) (*sqlx.Rows, error)
	Rebind(q string) string
}

// ctx is the context t's statements run with.
func (t txn) ctx(ctx context.Context) context.Context {
	if t.detached {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// GetContext runs q (rebound) and scans one row into dest.
func (t txn) GetContext(ctx context.Context, dest any, q string, args ...any) error {
	return t.q.GetContext(t.ctx(ctx), dest, t.q.Rebind(q), args...)
}

// SelectContext runs q (rebound) and scans every row into dest.
func (t txn) SelectContext(ctx context.Context, dest any, q string, args ...any) error {
	return t.q.SelectContext(t.ctx(ctx), dest, t.q.Rebind(q), args...)
}

// ExecContext runs q (rebound).
func (t txn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.q.ExecContext(t.ctx(ctx), t.q.Rebind(q), args...)
}

// QueryxContext runs q (rebound) for row-by-row reading.
func (t txn) QueryxContext(ctx context.Context, q string, args ...any) (*sqlx.Rows, error) {
	rows, err := t.q.QueryxContext(t.ctx(ctx), t.q.Rebind(q), args...)
	if err == nil && t.opened != nil {
		*t.opened = append(*t.opened, rows)
	}
	return rows, err
}

// closeOpened closes the Rows collected in opened (Close may be called twice).
func (t txn) closeOpened() {
	if t.opened == nil {
		return
	}
	for _, r := range *t.opened {
		r.Close()
	}
	*t.opened = (*t.opened)[:0]
}

// querier is what both a pool and a transaction offer, for helpers used in either.
type querier interface {
	GetContext(ctx context.Context, dest any, q string, args ...any) error
	SelectContext(ctx context.Context, dest any, q string, args ...any) error
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// affected is the number of rows a statement changed (0 if the driver can't say).
func affected(res sql.Result) int64 {
	n, err := res.RowsAffected()
	if err != nil {
		return 0
	}
	return n
}
