package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/mattn/go-sqlite3"
)

// dialect holds every difference between the engines the store runs on, so the queries
// themselves are written once. Anything engine-specific belongs here and nowhere else;
// the rest of the package writes portable SQL with "?" placeholders (db and txn rebind
// them), INSERT … RETURNING, ON CONFLICT … DO UPDATE, and times as fixed-width UTC text,
// which both engines compare in time order.
type dialect struct {
	name   string
	driver string // database/sql driver name
	// lockSchema makes the transaction that reads and advances the schema version the
	// only one doing so, so two instances starting at once migrate once.
	lockSchema func(ctx context.Context, tx txn) error
	// prepareVersion makes sure the schema version can be read (a fresh database).
	prepareVersion func(ctx context.Context, tx txn) error
	version        func(ctx context.Context, tx txn) (int, error)
	setVersion     func(ctx context.Context, tx txn, v int) error
	// schemaSQL turns schema.sql's text into this engine's DDL.
	schemaSQL func(string) string
	// isUnique reports whether err is a unique-constraint violation.
	isUnique func(err error) bool
	// forUpdate ends a SELECT that reads a row a write transaction will change (never
	// its key): a row lock where the engine has them, which other writers of the row
	// wait for but rows referring to it (a payment event, an order) don't, as an UPDATE's
	// own lock. SQLite's single writer needs none.
	forUpdate string
	// forDelete is forUpdate for rows the transaction will delete.
	forDelete string
	// writableWith says a WITH clause may change rows (PostgreSQL): an UPDATE and the
	// INSERT that records it can then be one statement, without a transaction around.
	writableWith bool
	// skipLocked ends a SELECT that claims due work: rows another transaction is
	// claiming right now are passed over instead of waited for.
	skipLocked string
	// integrity checks the database's own consistency and returns "ok" if sound.
	integrity func(ctx context.Context, d db) (string, error)
	// describe lists the tables' columns, constraints and indexes in one line each, to
	// compare two databases' schemas (a fresh one and an upgraded one).
	describe func(ctx context.Context, d db) ([]string, error)
}

// IsPostgres reports whether dsn names a PostgreSQL database (DB=postgres://…); any other
// value is the path of an SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func dialectOf(dsn string) dialect {
	if IsPostgres(dsn) {
		return postgres
	}
	return sqlite
}

// sqlite is SQLite through mattn/go-sqlite3: the version lives in PRAGMA user_version,
// and BEGIN IMMEDIATE (see DSN) already makes a migration the only writer.
var sqlite = dialect{
	name:           "sqlite",
	driver:         "sqlite3",
	lockSchema:     func(context.Context, txn) error { return nil },
	prepareVersion: func(context.Context, txn) error { return nil },
	version: func(ctx context.Context, tx txn) (int, error) {
		var v int
		err := tx.GetContext(ctx, &v, "PRAGMA user_version")
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
	integrity: func(ctx context.Context, d db) (string, error) {
		var res string
		err := d.GetContext(ctx, &res, "PRAGMA integrity_check")
		return res, err
	},
	describe: func(ctx context.Context, d db) ([]string, error) {
		var objs []struct {
			Type string `db:"type"`
			Name string `db:"name"`
			SQL  string `db:"sql"`
		}
		if err := d.SelectContext(ctx, &objs, `SELECT type, name, COALESCE(sql, '') AS sql FROM sqlite_master
			WHERE name NOT LIKE 'sqlite_%' ORDER BY name`); err != nil {
			return nil, err
		}
		var out []string
		for _, o := range objs {
			if o.Type == "index" {
				out = append(out, "index "+o.Name+": "+strings.Join(strings.Fields(o.SQL), " "))
				continue
			}
			var cols []struct {
				CID     int     `db:"cid"`
				Name    string  `db:"name"`
				Type    string  `db:"type"`
				NotNull bool    `db:"notnull"`
				Default *string `db:"dflt_value"`
				PK      int     `db:"pk"`
			}
			if err := d.SelectContext(ctx, &cols, fmt.Sprintf("PRAGMA table_info(%q)", o.Name)); err != nil {
				return nil, err
			}
			for _, c := range cols {
				def := "none"
				if c.Default != nil {
					def = *c.Default
				}
				out = append(out, fmt.Sprintf("column %s.%s %s notnull=%v default=%s pk=%d", o.Name, c.Name, c.Type, c.NotNull, def, c.PK))
			}
			var fks []struct {
				ID    int    `db:"id"`
				Seq   int    `db:"seq"`
				Table string `db:"table"`
				From  string `db:"from"`
				To    string `db:"to"`
				Upd   string `db:"on_update"`
				Del   string `db:"on_delete"`
				Match string `db:"match"`
			}
			if err := d.SelectContext(ctx, &fks, fmt.Sprintf("PRAGMA foreign_key_list(%q)", o.Name)); err != nil {
				return nil, err
			}
			for _, f := range fks {
				out = append(out, fmt.Sprintf("fk %s.%s → %s.%s on delete %s", o.Name, f.From, f.Table, f.To, f.Del))
			}
		}
		return out, nil
	},
}

// postgres is PostgreSQL through pgx's database/sql driver. The version lives in a table
// of its own; a migration holds a transaction-scoped advisory lock.
var postgres = dialect{
	name:   "postgres",
	driver: "pgx",
	lockSchema: func(ctx context.Context, tx txn) error {
		_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7305532014)`) // any fixed number: "the shop's schema"
		return err
	},
	prepareVersion: func(ctx context.Context, tx txn) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`)
		return err
	},
	version: func(ctx context.Context, tx txn) (int, error) {
		var v int
		err := tx.GetContext(ctx, &v, `SELECT COALESCE(MAX(version), 0) FROM schema_version`)
		return v, err
	},
	setVersion: func(ctx context.Context, tx txn, v int) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM schema_version`)
		if err == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, v)
		}
		return err
	},
	schemaSQL: pgSchema,
	isUnique: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505"
	},
	forUpdate:    " FOR NO KEY UPDATE",
	forDelete:    " FOR UPDATE",
	skipLocked:   " FOR UPDATE SKIP LOCKED",
	writableWith: true,
	integrity: func(ctx context.Context, d db) (string, error) {
		// PostgreSQL checks its pages itself (and amcheck is an extension a managed
		// database may not offer): the check here is that every table can be read.
		ts, err := pgTables(ctx, d)
		if err != nil {
			return "", err
		}
		for _, t := range ts {
			var n int64
			if err := d.GetContext(ctx, &n, `SELECT COUNT(*) FROM `+t); err != nil {
				return t + ": " + err.Error(), nil
			}
		}
		return "ok", nil
	},
	describe: func(ctx context.Context, d db) ([]string, error) {
		var out []string
		var cols []struct {
			Table    string  `db:"table_name"`
			Name     string  `db:"column_name"`
			Type     string  `db:"data_type"`
			Nullable string  `db:"is_nullable"`
			Default  *string `db:"column_default"`
			Identity string  `db:"is_identity"`
		}
		if err := d.SelectContext(ctx, &cols, `SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity
			FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, column_name`); err != nil {
			return nil, err
		}
		for _, c := range cols {
			def := "none"
			if c.Default != nil {
				def = *c.Default
			}
			out = append(out, fmt.Sprintf("column %s.%s %s nullable=%s default=%s identity=%s", c.Table, c.Name, c.Type, c.Nullable, def, c.Identity))
		}
		var cons []struct {
			Table string `db:"tbl"`
			Def   string `db:"def"`
		}
		if err := d.SelectContext(ctx, &cons, `SELECT conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS def
			FROM pg_constraint WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2`); err != nil {
			return nil, err
		}
		for _, c := range cons {
			out = append(out, "constraint "+c.Table+": "+c.Def)
		}
		var idx []struct {
			Name string `db:"indexname"`
			Def  string `db:"indexdef"`
		}
		if err := d.SelectContext(ctx, &idx, `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname`); err != nil {
			return nil, err
		}
		var schema string
		if err := d.GetContext(ctx, &schema, `SELECT current_schema()`); err != nil {
			return nil, err
		}
		for _, i := range idx {
			out = append(out, "index "+i.Name+": "+strings.ReplaceAll(i.Def, " "+schema+".", " "))
		}
		return out, nil
	},
}

func pgTables(ctx context.Context, d db) ([]string, error) {
	var ts []string
	err := d.SelectContext(ctx, &ts, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_version' ORDER BY table_name`)
	return ts, err
}

var (
	pgRowID   = regexp.MustCompile(`\bINTEGER PRIMARY KEY\b`)
	pgInteger = regexp.MustCompile(`\bINTEGER\b`)
	pgBlob    = regexp.MustCompile(`\bBLOB\b`)
	// goods.active was released as SQLite's INTEGER 1/0; on PostgreSQL, where the
	// queries' "WHERE active" needs a boolean, it is one from the start.
	pgGoodsActive = regexp.MustCompile(`(?m)^(\s*active\s+)INTEGER NOT NULL DEFAULT 1,`)
)

// pgSchema turns schema.sql, written for SQLite, into PostgreSQL's DDL: a rowid key
// becomes a generated identity (BY DEFAULT, so rows keep their ids when copied in),
// integers are 64-bit as in SQLite, bytes are BYTEA, and the one integer flag a boolean.
func pgSchema(s string) string {
	s = pgGoodsActive.ReplaceAllString(s, "${1}BOOLEAN NOT NULL DEFAULT TRUE,")
	s = pgBlob.ReplaceAllString(s, "BYTEA")
	s = pgRowID.ReplaceAllString(s, "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
	return pgInteger.ReplaceAllString(s, "BIGINT")
}
