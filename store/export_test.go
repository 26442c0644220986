package store

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Describe lists the database's tables, columns, constraints and indexes (for tests
// comparing a fresh schema with an upgraded one).
func (s *Store) Describe(ctx context.Context) ([]string, error) { return s.dl.describe(ctx, s.db) }

// MigrateTo brings the database at dsn to version v of schema only, as a release that
// ended at v left it.
func MigrateTo(dsn, schema string, v int) error {
	ms, err := parseMigrations(schema)
	if err != nil {
		return err
	}
	cut := len(schema)
	if v < len(ms) {
		cut = strings.Index(schema, "-- migrate "+strconv.Itoa(v+1))
	}
	st := &Store{dl: dialectOf(dsn), now: time.Now, origin: newInstanceID()}
	if st.dl.name == postgres.name {
		err = st.openPostgres(dsn, schema[:cut])
	} else {
		err = st.openSQLite(dsn, schema[:cut])
	}
	if err != nil {
		return err
	}
	return st.Close()
}

// SetSessionCacheMaxAge shortens how long sessions are served from memory.
func (s *Store) SetSessionCacheMaxAge(d time.Duration) { s.sessionMaxAge = d }
