package walvfs_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"storefront/store/walvfs"
	"storefront/store/walvfs/internal/walfault"

	_ "github.com/mattn/go-sqlite3"
)

// open opens path in WAL mode, through the VFS if gather, on at most conns connections.
func open(t *testing.T, path string, gather bool, conns int, pragmas ...string) *sql.DB {
	t.Helper()
	if err := walvfs.Register(); err != nil {
		t.Fatal(err)
	}
	dsn := "file:" + path + "?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=10000"
	if gather {
		dsn += "&vfs=" + walvfs.Name
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(conns)
	t.Cleanup(func() { db.Close() })
	for _, p := range pragmas {
		if _, err := db.Exec(p); err != nil {
			t.Fatal(p, err)
		}
	}
	return db
}

func mustExec(t *testing.T, db interface {
	Exec(string, ...any) (sql.Result, error)
}, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatal(q, err)
	}
}

// A commit of several frames reaches the file as one write, and another connection
// (on the default VFS) reads every row.
func TestACommitIsOneWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "one.db")
	w := open(t, path, true, 1)
	mustExec(t, w, `CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, c TEXT)`)
	for _, ix := range []string{"a", "b", "c"} {
		mustExec(t, w, fmt.Sprintf(`CREATE INDEX t_%s ON t (%s)`, ix, ix))
	}
	const commits = 200
	g0, w0 := walvfs.Counts()
	for i := range commits {
		mustExec(t, w, `INSERT INTO t (a, b, c) VALUES (?, ?, ?)`, fmt.Sprint("a", i), i, strings.Repeat("c", i))
	}
	g1, w1 := walvfs.Counts()
	gathered, written := g1-g0, w1-w0
	t.Logf("%d commits: %d WAL writes gathered into %d", commits, gathered, written)
	// Each commit changes the table and its three indexes: at least 4 frames, 8 writes.
	if gathered < 8*commits {
		t.Fatalf("%d writes gathered for %d commits: the WAL did not go through the VFS", gathered, commits)
	}
	if written > commits+2 {
		t.Fatalf("%d commits were %d writes to the file, want one each", commits, written)
	}
	r := open(t, path, false, 1)
	var n int
	var sum int64
	if err := r.QueryRow(`SELECT count(*), sum(b) FROM t`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != commits || sum != commits*(commits-1)/2 {
		t.Fatalf("the other connection read %d rows (sum %d), want %d", n, sum, commits)
	}
}

// Readers on other connections never see a commit before its frames are in the file,
// nor a half of one, while the writer's log grows past the gathering limit, spills
// mid-transaction, rolls back and restarts after checkpoints.
func TestReadersSeeEveryCommit(t *testing.T) { readWhileWriting(t, 1500) }

// With the commit frame unrecognised, the wal-index's locks and barriers alone still
// write out every commit before readers can find it, one write a commit.
func TestTheBarrierAloneKeepsReadersRight(t *testing.T) {
	walvfs.SetCommitRule(false)
	defer walvfs.SetCommitRule(true)
	readWhileWriting(t, 500)
	TestACommitIsOneWrite(t)
}

// readWhileWriting commits commits transactions through the VFS while readers on the
// default VFS check what they see and a checkpointer runs every kind of checkpoint.
func readWhileWriting(t *testing.T, commits int) {
	path := filepath.Join(t.TempDir(), "readers.db")
	// A page cache of 20 pages makes a large transaction write frames before its commit.
	w := open(t, path, true, 1, `PRAGMA cache_size = 20`)
	mustExec(t, w, `CREATE TABLE counter (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)`)
	mustExec(t, w, `INSERT INTO counter (id, v) VALUES (1, 0)`)
	mustExec(t, w, `CREATE TABLE log (n INTEGER PRIMARY KEY, pad BLOB)`)
	mustExec(t, w, `CREATE TABLE junk (pad BLOB)`)
	r := open(t, path, false, 4)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 3 {
		wg.Go(func() {
			last := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				v, n, mx, err := readState(ctx, r)
				if err != nil {
					errs <- err
					return
				}
				if n != v || mx != v || v < last {
					errs <- fmt.Errorf("read counter %d with %d log rows up to %d, after %d", v, n, mx, last)
					return
				}
				last = v
			}
		})
	}
	wg.Go(func() { // checkpoints of every kind beside the writer, as the store's checkpointer
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(3 * time.Millisecond):
			}
			mode := [...]string{"PASSIVE", "PASSIVE", "RESTART", "TRUNCATE"}[i%4]
			if _, err := r.ExecContext(ctx, "PRAGMA wal_checkpoint("+mode+")"); err != nil {
				errs <- fmt.Errorf("checkpoint %s: %w", mode, err)
				return
			}
		}
	})

	big := make([]byte, 300<<10) // past the gathering limit in one transaction
	for i := 1; i <= commits; i++ {
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		pad := []byte(nil)
		if i%100 == 0 {
			pad = big
		}
		if _, err := tx.Exec(`INSERT INTO log (n, pad) VALUES (?, ?)`, i, pad); err != nil {
			t.Fatal(err)
		}
		if i%70 == 0 { // a transaction that spills frames and is then abandoned
			if _, err := tx.Exec(`INSERT INTO junk (pad) VALUES (?)`, big); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			if tx, err = w.BeginTx(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(`INSERT INTO log (n, pad) VALUES (?, ?)`, i, pad); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tx.Exec(`UPDATE counter SET v = ? WHERE id = 1`, i); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		select {
		case err := <-errs:
			t.Fatalf("after commit %d: %v", i, err)
		default:
		}
	}
	close(done)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	v, n, _, err := readState(ctx, r)
	if err != nil || v != commits || n != commits {
		t.Fatalf("at the end the readers see counter %d and %d log rows (%v), want %d", v, n, err, commits)
	}
	var junk int
	if err := r.QueryRow(`SELECT count(*) FROM junk`).Scan(&junk); err != nil || junk != 0 {
		t.Fatalf("%d rows of rolled-back transactions (%v)", junk, err)
	}
	var check string
	if err := r.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
}

// readState reads the counter and the log in one read transaction.
func readState(ctx context.Context, db *sql.DB) (v, n, mx int, err error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, 0, 0, err
	}
	defer tx.Rollback()
	if err := tx.QueryRow(`SELECT v FROM counter WHERE id = 1`).Scan(&v); err != nil {
		return 0, 0, 0, err
	}
	if err := tx.QueryRow(`SELECT count(*), coalesce(max(n), 0) FROM log`).Scan(&n, &mx); err != nil {
		return 0, 0, 0, err
	}
	return v, n, mx, nil
}

// A transaction larger than its page cache writes frames before it commits, and reads
// them back: it finds what it wrote, gathered or not.
func TestATransactionReadsWhatItSpilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spill.db")
	w := open(t, path, true, 1, `PRAGMA cache_size = 10`)
	mustExec(t, w, `CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER, pad BLOB)`)
	mustExec(t, w, `CREATE INDEX t_k ON t (k)`)
	for round := range 3 {
		tx, err := w.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			if _, err := tx.Exec(`INSERT INTO t (k, pad) VALUES (?, ?)`, round*1000+i, strings.Repeat("x", 1500+i)); err != nil {
				t.Fatal(err)
			}
		}
		var n, sum int
		// Every row, by the index and by the table: pages that left the cache for the WAL.
		if err := tx.QueryRow(`SELECT count(*), sum(length(pad)) FROM t WHERE k >= ?`, round*1000).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		if want := 300*1500 + 299*300/2; n != 300 || sum != want {
			t.Fatalf("round %d: the transaction reads %d rows, %d bytes; wrote 300, %d", round, n, sum, want)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	var check string
	if err := open(t, path, false, 1).QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
}

// A commit the writer is told succeeded is one readers see and one that is there after
// a crash and after closing and reopening; one it is told failed is one nobody sees,
// whichever of its writes to the WAL the disk refuses, once or from then on. The
// transactions: one frame; many; one that spills and then changes what it spilled
// (SQLite rewrites those frames and, at the commit, their checksums in place); one
// frame right after such a commit.
func TestACommitIsWhatItsWritesWere(t *testing.T) {
	oneFrame, manyFrames, rewrite := transactions()
	cases := []struct {
		name          string
		before, write func(tx *sql.Tx) error
	}{
		{"one frame", nil, oneFrame},
		{"many frames", nil, manyFrames},
		{"checksums rewritten", nil, rewrite},
		{"one frame after checksums rewritten", func(tx *sql.Tx) error {
			if err := rewrite(tx); err != nil {
				return err
			}
			_, err := tx.Exec(`UPDATE counter SET v = 0`)
			return err
		}, oneFrame},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { refuseEachWrite(t, c.before, c.write, 1, math.MaxInt32) })
	}
}

// With the commit frame unrecognised, a barrier that can't write what was gathered
// keeps it, and the next call on the WAL writes it: a disk that refuses once loses
// nothing SQLite has published. (One that refuses from then on loses what the barrier
// held: rule 1 is what gives a commit its error.)
func TestTheBarrierKeepsWhatItCouldNotWrite(t *testing.T) {
	walvfs.SetCommitRule(false)
	defer walvfs.SetCommitRule(true)
	oneFrame, manyFrames, _ := transactions()
	t.Run("one frame", func(t *testing.T) { refuseEachWrite(t, nil, oneFrame, 1) })
	t.Run("many frames", func(t *testing.T) { refuseEachWrite(t, nil, manyFrames, 1) })
}

// refuseEachWrite counts write's writes to the WAL, then refuses each in turn (in a
// long transaction, the first and last few dozen and every tenth between), for each of
// counts writes, checking what the commit answered against what readers see.
func refuseEachWrite(t *testing.T, before, write func(*sql.Tx) error, counts ...int) {
	if err := walfault.Install(); err != nil {
		t.Fatal(err)
	}
	defer walfault.Fail(0, 0)
	writes, rows := commitWithFault(t, before, write, -1, 0, 0)
	if writes < 1 {
		t.Fatalf("the transaction made %d writes to the WAL", writes)
	}
	for k := range writes {
		if k >= 30 && k < writes-40 && k%10 != 0 {
			continue
		}
		for _, n := range counts { // once, as a passing fault; or for good, as a full disk
			commitWithFault(t, before, write, k, n, rows)
		}
	}
}

// transactions returns the tests' writes: a frame, many frames, and frames spilled and
// then changed again before the commit.
func transactions() (oneFrame, manyFrames, rewrite func(*sql.Tx) error) {
	oneFrame = func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE counter SET v = 1`)
		return err
	}
	manyFrames = func(tx *sql.Tx) error {
		for i := range 50 {
			if _, err := tx.Exec(`INSERT INTO t (k, pad) VALUES (?, ?)`, i, strings.Repeat("m", 300)); err != nil {
				return err
			}
		}
		return oneFrame(tx)
	}
	rewrite = func(tx *sql.Tx) error {
		for i := range 300 {
			if _, err := tx.Exec(`INSERT INTO t (k, pad) VALUES (?, ?)`, i, strings.Repeat("r", 1500)); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(`UPDATE t SET k = k + 1`); err != nil {
			return err
		}
		return oneFrame(tx)
	}
	return oneFrame, manyFrames, rewrite
}

// commitWithFault runs before (if any) and commits it, then runs write in a transaction
// with count of its WAL writes from number fault on refused (none if fault < 0), and checks what
// readers see then and after reopening against what the commit answered: the counter
// at 1 and rows rows in t if it succeeded. It returns how many writes to the WAL the
// transaction made and the rows in t after it.
func commitWithFault(t *testing.T, before, write func(*sql.Tx) error, fault, count, rows int) (int, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fault.db")
	w := open(t, path, true, 1, `PRAGMA cache_size = 10`)
	mustExec(t, w, `CREATE TABLE counter (v INTEGER NOT NULL)`)
	mustExec(t, w, `INSERT INTO counter (v) VALUES (0)`)
	mustExec(t, w, `CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER, pad TEXT)`)
	mustExec(t, w, `CREATE INDEX t_k ON t (k)`)
	inTx := func(fn func(*sql.Tx) error) error {
		tx, err := w.Begin()
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	if before != nil {
		if err := inTx(before); err != nil {
			t.Fatal(err)
		}
	}
	var rowsBefore int
	if err := w.QueryRow(`SELECT count(*) FROM t`).Scan(&rowsBefore); err != nil {
		t.Fatal(err)
	}
	w0 := walfault.Writes()
	if fault >= 0 {
		walfault.Fail(fault, count)
	}
	err := inTx(write)
	walfault.Fail(0, 0)
	writes := walfault.Writes() - w0
	if fault >= 0 && writes <= fault {
		t.Fatalf("fault %d was never reached: the transaction made %d writes this time", fault, writes)
	}
	committed := err == nil
	if fault < 0 {
		if !committed {
			t.Fatal(err)
		}
		if err := w.QueryRow(`SELECT count(*) FROM t`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
	}
	wantV, wantRows := 0, rowsBefore
	if committed {
		wantV, wantRows = 1, rows
	}
	check := func(when string, db *sql.DB) {
		t.Helper()
		var v, n int
		if err := db.QueryRow(`SELECT v, (SELECT count(*) FROM t) FROM counter`).Scan(&v, &n); err != nil {
			t.Fatalf("fault %d (×%d), %s: %v", fault, count, when, err)
		}
		if v != wantV || n != wantRows {
			t.Fatalf("fault %d (×%d): the commit answered %v; %s, counter %d and %d rows, want %d and %d",
				fault, count, err, when, v, n, wantV, wantRows)
		}
	}
	check("a reader on the default VFS sees", open(t, path, false, 1))
	// What a process killed now would leave: the file and its WAL, no wal-index. SQLite
	// rebuilds the index from the WAL, frame by frame, checking each frame's checksum.
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crashed+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	check("after a crash", open(t, crashed, false, 1))
	// The writer goes on: its next commit works.
	if err := inTx(func(tx *sql.Tx) error { _, err := tx.Exec(`UPDATE counter SET v = v`); return err }); err != nil {
		t.Fatalf("fault %d: the commit after it: %v", fault, err)
	}
	w.Close()
	r := open(t, path, false, 1)
	check("after reopening", r)
	var ok string
	if err := r.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("fault %d: integrity_check %q %v", fault, ok, err)
	}
	return writes, rows
}
