package store

import (
	"context"
	"testing"
	"time"
)

// A write whose caller's context ends while it runs (a shopper who closed the page
// mid-purchase) runs to its end and is committed with its batch, whose other writes are
// untouched: the writer's statements don't watch their callers' contexts.
func TestStartedWriteRunsToItsEnd(t *testing.T) {
	st := openSQLite(t)
	bg := context.Background()
	if _, err := st.wdb.ExecContext(bg, `CREATE TABLE scratch (who TEXT, n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	// The writer is held by a first job while A, then B, queue behind it: they run
	// together, A first, when it lets go.
	started, release := make(chan struct{}), make(chan struct{})
	go st.batchedTx(bg, func(tx txn) error {
		close(started)
		<-release
		return nil
	})
	<-started
	errA := make(chan error, 1)
	go func() {
		errA <- st.batchedTx(bg, func(tx txn) error {
			_, err := tx.ExecContext(bg, `INSERT INTO scratch VALUES ('A', 1)`)
			return err
		})
	}()
	time.Sleep(50 * time.Millisecond)
	ctxB, cancelB := context.WithCancel(bg)
	errB := make(chan error, 1)
	go func() {
		errB <- st.batchedTx(ctxB, func(tx txn) error {
			cancelB() // the shopper leaves as B's long statement starts
			_, err := tx.ExecContext(ctxB, `WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 300000)
				INSERT INTO scratch SELECT 'B', n FROM c`)
			return err
		})
	}()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if err := <-errA; err != nil {
		t.Fatalf("A, batched with a cancelled caller: %v", err)
	}
	var a, b int
	if err := st.db.GetContext(bg, &a, `SELECT COUNT(*) FROM scratch WHERE who = 'A'`); err != nil || a != 1 {
		t.Fatalf("A's row: %d (%v)", a, err)
	}
	// B had started: it runs to its end and its caller hears how it went.
	if err := <-errB; err != nil {
		t.Fatalf("B: %v", err)
	}
	if err := st.db.GetContext(bg, &b, `SELECT COUNT(*) FROM scratch WHERE who = 'B'`); err != nil || b != 300000 {
		t.Fatalf("B's rows: %d (%v)", b, err)
	}
}
