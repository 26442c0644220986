package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// migration is one "-- migrate N" section of schema.sql.
type migration struct {
	version int
	sql     string
}

var migrateHeader = regexp.MustCompile(`(?m)^-- migrate ([0-9]+)\b.*$`)

// parseMigrations splits schema.sql into its numbered sections, which must run 1, 2, 3…
func parseMigrations(schema string) ([]migration, error) {
	locs := migrateHeader.FindAllStringSubmatchIndex(schema, -1)
	if len(locs) == 0 {
		return nil, fmt.Errorf("store: schema has no \"-- migrate N\" sections")
	}
	var ms []migration
	for i, loc := range locs {
		v, _ := strconv.Atoi(schema[loc[2]:loc[3]])
		if v != i+1 {
			return nil, fmt.Errorf("store: schema section %d is numbered %d", i+1, v)
		}
		end := len(schema)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		ms = append(ms, migration{version: v, sql: schema[loc[1]:end]})
	}
	return ms, nil
}

// latestVersion is the number of the last section of schema.
func latestVersion(schema string) int {
	ms, err := parseMigrations(schema)
	if err != nil {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrate brings the database to the schema's latest version, one section per
// transaction, so a failure leaves it at the last complete version. Each transaction
// first takes the engine's schema lock and reads the version under it, so instances
// starting together apply every section once between them.
func migrate(ctx context.Context, d db, dl dialect, schema string) error {
	ms, err := parseMigrations(schema)
	if err != nil {
		return err
	}
	for {
		done, err := migrateStep(ctx, d, dl, ms)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the section after the database's version, reporting done when
// there is none.
func migrateStep(ctx context.Context, d db, dl dialect, ms []migration) (done bool, err error) {
	sqlTx, err := d.BeginTxx(ctx, nil)
	if err != nil {
		return false, err
	}
	tx := txn{q: sqlTx}
	defer func() {
		if err != nil || done {
			sqlTx.Rollback()
		}
	}()
	if err := dl.lockSchema(ctx, tx); err != nil {
		return false, fmt.Errorf("store: locking the schema: %w", err)
	}
	if err := dl.prepareVersion(ctx, tx); err != nil {
		return false, fmt.Errorf("store: schema version table: %w", err)
	}
	v, err := dl.version(ctx, tx)
	if err != nil {
		return false, fmt.Errorf("store: reading schema version: %w", err)
	}
	latest := ms[len(ms)-1].version
	if v > latest {
		return false, fmt.Errorf("%w: database %d, program %d", ErrSchemaTooNew, v, latest)
	}
	if v == latest {
		return true, nil
	}
	m := ms[v] // sections are numbered 1, 2, 3… in order
	if _, err := tx.ExecContext(ctx, dl.schemaSQL(expandTokens(m.sql))); err != nil {
		return false, fmt.Errorf("store: applying schema version %d: %w", m.version, err)
	}
	if hook := afterMigration[m.version]; hook != nil {
		if err := hook(ctx, tx); err != nil {
			return false, fmt.Errorf("store: migrating data to version %d: %w", m.version, err)
		}
	}
	if err := dl.setVersion(ctx, tx, m.version); err != nil {
		return false, fmt.Errorf("store: recording schema version %d: %w", m.version, err)
	}
	if err := sqlTx.Commit(); err != nil {
		return false, fmt.Errorf("store: committing schema version %d: %w", m.version, err)
	}
	return false, nil
}

// afterMigration holds the data steps that SQL alone can't write portably, run in the
// same transaction as their section.
var afterMigration = map[int]func(ctx context.Context, tx txn) error{
	3: backfillEventTradeNo,
}

// backfillEventTradeNo copies trade_no out of the raw params of the events recorded
// before it had a column of its own.
func backfillEventTradeNo(ctx context.Context, tx txn) error {
	var rows []struct {
		ID  int64  `db:"id"`
		Raw string `db:"raw"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT id, raw FROM payment_events WHERE raw LIKE '%"trade_no"%'`); err != nil {
		return err
	}
	for _, r := range rows {
		var v struct {
			TradeNo string `json:"trade_no"`
		}
		if json.Unmarshal([]byte(r.Raw), &v) != nil || v.TradeNo == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE payment_events SET trade_no = ? WHERE id = ?`, v.TradeNo, r.ID); err != nil {
			return err
		}
	}
	return nil
}

// expandTokens fills the values schema.sql leaves to the program: {{random_token}} is
// a fresh random hex string literal (the same on both engines, unlike their functions).
func expandTokens(s string) string {
	for strings.Contains(s, "{{random_token}}") {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		s = strings.Replace(s, "{{random_token}}", "'"+hex.EncodeToString(b)+"'", 1)
	}
	return s
}
