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

// A job that leaves the Rows of a query open doesn't hold the writer's connection: the
// next write goes through.
func TestRowsLeftOpenDoNotHoldTheWriter(t *testing.T) {
	st := openSQLite(t)
	bg := context.Background()
	if _, err := st.wdb.ExecContext(bg, `CREATE TABLE scratch (who TEXT); INSERT INTO scratch VALUES ('a'), ('b')`); err != nil {
		t.Fatal(err)
	}
	err := st.batchedTx(bg, func(tx txn) error {
		rows, err := tx.QueryxContext(bg, `SELECT who FROM scratch`)
		if err != nil {
			return err
		}
		rows.Next() // one of two read, and never closed
		_, err = tx.ExecContext(bg, `INSERT INTO scratch VALUES ('c')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	next := make(chan error, 1)
	go func() {
		next <- st.batchedTx(bg, func(tx txn) error {
			_, err := tx.ExecContext(bg, `INSERT INTO scratch VALUES ('d')`)
			return err
		})
	}()
	select {
	case err := <-next:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the next write was never answered: the writer is stuck")
	}
	var n int
	if err := st.db.GetContext(bg, &n, `SELECT COUNT(*) FROM scratch`); err != nil || n != 4 {
		t.Fatalf("%d rows (%v)", n, err)
	}
}

// A first job whose transaction ended under it (SQLite rolls back by itself on a full
// disk or an I/O error) and that went on anyway is told it failed, and no job joins it:
// one that waited is answered by what became of its own writes.
func TestAJobOutOfItsTransactionIsAlone(t *testing.T) {
	st := openSQLite(t)
	bg := context.Background()
	if _, err := st.wdb.ExecContext(bg, `CREATE TABLE scratch (who TEXT)`); err != nil {
		t.Fatal(err)
	}
	insert := func(who string) func(tx txn) error {
		return func(tx txn) error {
			_, err := tx.ExecContext(bg, `INSERT INTO scratch VALUES (?)`, who)
			return err
		}
	}
	started, release := make(chan struct{}), make(chan struct{})
	errF := make(chan error, 1)
	go func() {
		errF <- st.batchedTx(bg, func(tx txn) error {
			close(started)
			<-release
			if _, err := tx.ExecContext(bg, `ROLLBACK`); err != nil { // as SQLite would, itself
				return err
			}
			return insert("F")(tx) // and the job goes on
		})
	}()
	<-started
	errG := make(chan error, 1)
	go func() { errG <- st.batchedTx(bg, insert("G")) }()
	time.Sleep(50 * time.Millisecond) // G waits behind F
	close(release)
	if err := <-errF; !errors.Is(err, errOutOfTx) {
		t.Fatalf("F: %v", err)
	}
	errg := <-errG
	var g int
	if err := st.db.GetContext(bg, &g, `SELECT COUNT(*) FROM scratch WHERE who = 'G'`); err != nil {
		t.Fatal(err)
	}
	if errg != nil || g != 1 {
		t.Fatalf("G answered %v with %d of its rows in the database", errg, g)
	}
}
