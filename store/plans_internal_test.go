package store

import (
	"context"
	"strings"
	"testing"
)

// planOf is SQLite's plan for q with args on conn's pool, its lines joined.
func planOf(t *testing.T, pool db, q string, args ...any) string {
	t.Helper()
	rows, err := pool.QueryxContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "; ")
}

// TestPlansIgnoreBoundValues checks that the store's connections, readers and writer,
// plan a statement without looking at the values bound to it (see stableplan). The
// probe: "status = ?" bound to 'pending' matches the partial index refunds_due (WHERE
// status = 'pending') only if the planner reads the bound value, and a plan that read
// it is one SQLite prepares again whenever a cached statement is reused.
func TestPlansIgnoreBoundValues(t *testing.T) {
	st := openSQLite(t)
	const q = `SELECT id FROM refunds WHERE status = ? AND next_try_at <= ?`
	// The same query with the value written in: the partial index is the plan, so a
	// plan without it below is the guarantee's doing, not the index's absence.
	if p := planOf(t, st.db, strings.Replace(q, "status = ?", "status = 'pending'", 1), "2026-01-01"); !strings.Contains(p, "refunds_due") {
		t.Fatalf("with the value written in, the plan is %q; want the partial index refunds_due", p)
	}
	for name, pool := range map[string]db{"reader": st.db, "writer": st.wdb} {
		if p := planOf(t, pool, q, "pending", "2026-01-01"); strings.Contains(p, "refunds_due") {
			t.Errorf("%s: with 'pending' bound, the plan %q uses the partial index: the planner read the bound value", name, p)
		}
	}
}
