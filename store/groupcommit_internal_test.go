package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A write whose caller's context ends while it runs (a shopper who closed the page
// mid-purchase) runs to its end and is committed with its batch, whose other writes are
// untouched: the writer's statements don't watch their callers' contexts.
func TestStartedWriteRunsToItsEnd(t *testing.T) {
	st := scratchStore(t)
	bg := context.Background()
	// The writer is held by a first job while A, then B, queue behind it: they run
	// together, A first, when it lets go.
	started, release := make(chan struct{}), make(chan struct{})
	submit(bg, st, func(tx txn) error {
		close(started)
		<-release
		return nil
	})
	<-started
	errA := submit(bg, st, insertScratch("A"))
	time.Sleep(50 * time.Millisecond)
	ctxB, cancelB := context.WithCancel(bg)
	errB := submit(ctxB, st, func(tx txn) error {
		cancelB() // the shopper leaves as B's long statement starts
		_, err := tx.ExecContext(ctxB, `WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 300000)
			INSERT INTO scratch SELECT 'B', n FROM c`)
		return err
	})
	time.Sleep(50 * time.Millisecond)
	close(release)
	if err := <-errA; err != nil {
		t.Fatalf("A, batched with a cancelled caller: %v", err)
	}
	if a := scratchRows(t, st, "A"); a != 1 {
		t.Fatalf("A's rows: %d", a)
	}
	// B had started: it runs to its end and its caller hears how it went.
	if err := <-errB; err != nil {
		t.Fatalf("B: %v", err)
	}
	if b := scratchRows(t, st, "B"); b != 300000 {
		t.Fatalf("B's rows: %d", b)
	}
}

// A job that leaves the Rows of a query open doesn't hold the writer's connection: the
// next write goes through.
func TestRowsLeftOpenDoNotHoldTheWriter(t *testing.T) {
	st := scratchStore(t)
	bg := context.Background()
	for _, who := range []string{"a", "b"} {
		if err := st.batchedTx(bg, insertScratch(who)); err != nil {
			t.Fatal(err)
		}
	}
	err := st.batchedTx(bg, func(tx txn) error {
		rows, err := tx.QueryxContext(bg, `SELECT who FROM scratch`)
		if err != nil {
			return err
		}
		rows.Next() // one of two read, and never closed
		return insertScratch("c")(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-submit(bg, st, insertScratch("d")):
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the next write was never answered: the writer is stuck")
	}
	if c, d := scratchRows(t, st, "c"), scratchRows(t, st, "d"); c != 1 || d != 1 {
		t.Fatalf("c %d, d %d rows", c, d)
	}
}

// A first job whose transaction ended under it (SQLite rolls back by itself on a full
// disk or an I/O error) and that went on anyway is told it failed, and no job joins it:
// one that waited is answered by what became of its own writes.
func TestAJobOutOfItsTransactionIsAlone(t *testing.T) {
	st := scratchStore(t)
	bg := context.Background()
	started, release := make(chan struct{}), make(chan struct{})
	errF := submit(bg, st, func(tx txn) error {
		close(started)
		<-release
		if _, err := tx.ExecContext(bg, `ROLLBACK`); err != nil { // as SQLite would, itself
			return err
		}
		return insertScratch("F")(tx) // and the job goes on
	})
	<-started
	errG := submit(bg, st, insertScratch("G"))
	time.Sleep(50 * time.Millisecond) // G waits behind F
	close(release)
	if err := <-errF; !errors.Is(err, errOutOfTx) {
		t.Fatalf("F: %v", err)
	}
	if err, g := <-errG, scratchRows(t, st, "G"); err != nil || g != 1 {
		t.Fatalf("G answered %v with %d of its rows in the database", err, g)
	}
}
