package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"
)

// dialect holds every difference between the engines the store runs on, so the queries
// themselves are written once. Anything engine-specific belongs here and nowhere else.
type dialect struct {
	name string
	// prepareVersion makes sure the schema version can be read (a fresh database).
	prepareVersion func(ctx context.Context, d db) error
	version        func(ctx context.Context, d db) (int, error)
	setVersion     func(ctx context.Context, tx txn, v int) error
	// schemaSQL turns schema.sql's text into this engine's DDL.
	schemaSQL func(string) string
	// isUnique reports whether err is a unique-constraint violation.
	isUnique func(err error) bool
	// forUpdate ends a SELECT that reads a row a write transaction will change: a row
	// lock where the engine has them. SQLite's single writer needs none.
	forUpdate string
}

// sqlite is SQLite through mattn/go-sqlite3: the version lives in PRAGMA user_version.
var sqlite = dialect{
	name:           "sqlite",
	prepareVersion: func(context.Context, db) error { return nil },
	version: func(ctx context.Context, d db) (int, error) {
		var v int
		err := d.GetContext(ctx, &v, "PRAGMA user_version")
		return v, err
	},
	setVersion: func(ctx context.Context, tx txn, v int) error {
		// PRAGMA takes no placeholders; v is an integer from schema.sql.
		_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
		return err
	},
	schemaSQL: func(s string) string { return s },
	isUnique: func(err error) bool {
		var se sqlite3.Error
		return errors.As(err, &se) && (se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
	},
}
