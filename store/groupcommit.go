package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"
)

// On SQLite every write transaction goes through one connection, and a commit costs a
// write of each page the transaction changed — about a dozen for a payment (the order's
// row and its indexes, the event and its) and most of a notify's time in the database
// on this project's machine (bench, POST /check_order distinct: Commit 28% of the shop's
// CPU). So the transactions that are waiting when one starts are run together in one
// transaction, each after the first in a savepoint of it, and committed once: pages
// they share (the ends of the same indexes) are written once, and the waiting writers
// don't queue one commit each. A transaction that fails rolls back to its savepoint and
// fails alone (the first, having none, takes the whole transaction down with it, which
// holds only its writes then); if the commit fails, every transaction of the batch
// fails. No caller hears success before the commit that holds its writes, exactly as
// with a transaction of its own. With nothing waiting, a batch is the one transaction:
// no added latency.

// maxBatch bounds the transactions committed together.
const maxBatch = 32

// ErrClosed is returned for writes to a store that was closed.
var ErrClosed = errors.New("store closed")

type writeJob struct {
	ctx  context.Context
	fn   func(tx txn) error
	done chan error
}

// batchedTx hands fn to the writer and waits for the commit that holds it.
func (s *Store) batchedTx(ctx context.Context, fn func(tx txn) error) error {
	j := &writeJob{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- j:
	case <-s.stopWrites:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Waited for even if ctx ends now: an error must mean nothing was committed.
	return <-j.done
}

// writer runs the batches until stop is closed.
func (s *Store) writer(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			for { // whoever queued before the stop still gets an answer
				select {
				case j := <-s.writes:
					j.done <- ErrClosed
				default:
					return
				}
			}
		case j := <-s.writes:
			s.runBatch(j)
		}
	}
}

// runBatch runs first and whatever else is waiting, up to maxBatch, in one transaction.
//
// The transaction is written out (BEGIN IMMEDIATE … COMMIT on the writer's connection)
// rather than a database/sql Tx, which starts a goroutine per transaction to watch its
// context and wakes it at the commit. Its statements run detached from their callers'
// contexts: a job that has started runs to its end (its caller waits for the commit
// either way), so the driver needn't watch each statement's context for a cancellation
// (a goroutine per Exec, a callback per query). A caller that gave up before its job's
// turn is still skipped. Together: 245 → 208 µs of CPU per CreateOrder, called one after
// another with a cancellable context as a request's.
func (s *Store) runBatch(first *writeJob) {
	bg := context.Background()
	conn, err := s.wdb.Connx(bg)
	if err != nil {
		first.done <- err
		return
	}
	defer func() {
		// Never back to the pool inside a transaction (a ROLLBACK that failed): the
		// connection is thrown away instead, and the next batch opens a new one.
		if in, err := inTransaction(conn); in || err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}()
	if _, err := conn.ExecContext(bg, "BEGIN IMMEDIATE"); err != nil {
		first.done <- err
		return
	}
	tx := txn{q: conn, detached: true, opened: new([]*sqlx.Rows)}
	rollback := func() { _, _ = conn.ExecContext(bg, "ROLLBACK") }
	// The first job runs bare: if it fails, the transaction holds its writes alone and
	// is rolled back whole. A savepoint (SAVEPOINT, RELEASE) is paid only by the jobs
	// that join it, and at a purchase every millisecond or so, most batches are one job
	// (10,000 CreateOrder calls one after another: 266 → 251 µs of CPU each).
	if err := runBare(tx, first); err != nil {
		rollback()
		first.done <- err
		return
	}
	// Without a savepoint to release, nothing else notices a transaction SQLite rolled
	// back under the job (on a full disk, an I/O error) while it went on: its later
	// statements committed one by one. No other job joins it; it is told it failed.
	if in, err := inTransaction(conn); !in || err != nil {
		first.done <- errors.Join(errOutOfTx, err)
		return
	}
	batch := []*writeJob{first}
	errs := []error{nil}
	broken := false
	for !broken && len(batch) < maxBatch {
		select {
		case j := <-s.writes:
			batch = append(batch, j)
			errs = append(errs, s.runSaved(tx, j))
			broken = errs[len(errs)-1] == errBroken
			continue
		default:
		}
		break
	}
	var commitErr error
	if broken {
		rollback()
		commitErr = errors.New("store: a write transaction failed beyond its savepoint; nothing of its batch was committed")
	} else if _, commitErr = conn.ExecContext(bg, "COMMIT"); commitErr != nil {
		// A refused COMMIT (a deferred foreign key) leaves the transaction open.
		rollback()
	}
	for i, j := range batch {
		switch {
		case errs[i] != nil && errs[i] != errBroken:
			j.done <- errs[i]
		case commitErr != nil:
			j.done <- commitErr
		default:
			j.done <- nil
		}
	}
}

// errBroken marks a job after which the transaction can't go on (a savepoint could
// not be taken, released or rolled back to: SQLite rolled the transaction back itself).
var errBroken = errors.New("store: write transaction broken")

// runBare runs j in tx as it is, without a savepoint, and closes the Rows it left open.
func runBare(tx txn, j *writeJob) error {
	if err := j.ctx.Err(); err != nil {
		return err // the caller gave up before its turn
	}
	defer tx.closeOpened()
	return j.fn(tx)
}

// errOutOfTx: the writer's transaction ended under a job that went on as if it hadn't.
var errOutOfTx = errors.New("store: the write transaction was rolled back while its job went on; its later writes may stand")

// inTransaction says whether the writer's connection is inside a transaction.
func inTransaction(conn *sqlx.Conn) (in bool, err error) {
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("store: the writer's connection is a %T", dc)
		}
		in = !c.AutoCommit()
		return nil
	})
	return in, err
}

// runSaved runs j inside a savepoint of tx: its changes stay if it succeeds and are
// undone alone if it fails.
func (s *Store) runSaved(tx txn, j *writeJob) error {
	if j.ctx.Err() != nil {
		return j.ctx.Err() // the caller gave up before its turn
	}
	if _, err := tx.ExecContext(context.Background(), "SAVEPOINT job"); err != nil {
		return errBroken
	}
	err := runBare(tx, j)
	if err != nil {
		if _, rerr := tx.ExecContext(context.Background(), "ROLLBACK TO job"); rerr != nil {
			return errBroken
		}
	}
	if _, rerr := tx.ExecContext(context.Background(), "RELEASE job"); rerr != nil {
		return errBroken
	}
	return err
}
