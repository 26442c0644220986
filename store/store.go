// Package store keeps the shop's data in SQLite through sqlx. It knows orders, goods,
// users and payment events, and the rules of their state; it knows no HTTP and no pages.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3" // also registers the "sqlite3" driver

	"storefront/store/stableplan"
	"storefront/store/walvfs"
)

// SchemaVersion is the number of schema.sql's last section: the version Open migrates to.
const SchemaVersion = 4

// Named errors; handlers map them to HTTP statuses in one place.
var (
	ErrNotFound      = errors.New("not found")
	ErrEmailTaken    = errors.New("email already registered")
	ErrOutOfStock    = errors.New("out of stock")
	ErrGoodsGone     = errors.New("goods no longer on sale")
	ErrEmptyOrder    = errors.New("order has no lines")
	ErrNotUnpaid     = errors.New("order is not unpaid")
	ErrBadQuantity   = errors.New("quantity must be 1 to 99")
	ErrSchemaTooNew  = errors.New("database schema is newer than this program")
	ErrTooManyInCart = errors.New("too many lines in cart")
	ErrAmountTooBig  = errors.New("order total above Alipay's limit for one trade")
	ErrPriceChanged  = errors.New("cart total changed since the shopper saw it")
)

// Store is the shop's database, on SQLite or PostgreSQL. On SQLite reads go through a
// pool and writes through a single connection, because SQLite has one writer anyway:
// queuing in Go is cheaper and fairer than many connections spinning on SQLITE_BUSY.
// On PostgreSQL one pool does both.
type Store struct {
	db  db // readers
	wdb db // the one writer (on SQLite; the same pool as db on PostgreSQL)
	dl  dialect
	now func() time.Time

	// installation is this database's random token (table installation).
	installation string
	// instance names this process in the leases it takes on due work and in request
	// ids, so two instances sharing a database never work the same item at once.
	instance string
	// origin signs this process's change announcements, so it ignores its own. Unlike
	// instance (which SetInstance may change, and a restart may reuse) it is fixed at
	// Open and unique to the process: the listener reads it while the shop starts up.
	origin   string
	leaseTTL time.Duration
	// listener hears other instances' changes (PostgreSQL; nil on SQLite).
	listener *listener
	// The SQLite checkpointer's stop signal and its end (nil on PostgreSQL).
	stopCheckpoints chan struct{}
	checkpointsDone chan struct{}
	stopOnce        sync.Once
	// SQLite's write transactions, run in batches by the writer (nil on PostgreSQL).
	writes     chan *writeJob
	stopWrites chan struct{}
	writesDone chan struct{}

	// The goods list is read on every home page view and changes rarely: it is kept in
	// memory, dropped by every write of this process that touches goods (goodsGen), and
	// re-read at least every goodsCacheTTL for writes by other processes.
	goodsGen  atomic.Uint64
	goodsSnap atomic.Pointer[goodsSnapshot]
	snapSeq   atomic.Uint64 // the last snapshot's id
	goodsMu   sync.Mutex    // held by the one caller re-reading the goods
	goodsTTL  time.Duration

	sessions      sessionCache // shoppers'
	sessionMaxAge time.Duration
	opSessions    sessionCache // operators'
	junk          junkBuffer

	// refundDue is told of a refund created by the store itself (the automatic refund
	// of a late payment), so the refund worker starts on it at once.
	refundDue func(id int64)
}

// OnRefundDue sets who is told when the store creates a refund on its own.
func (s *Store) OnRefundDue(f func(id int64)) { s.refundDue = f }

// Kinds of change other instances are told about (see changes.go).
const (
	changeGoods    = "goods"
	changeSessions = "sessions"
)

// DSN returns the go-sqlite3 DSN for path with the pragmas every connection needs:
// WAL (readers never block the writer), a busy timeout, foreign keys, and BEGIN
// IMMEDIATE so a transaction takes the write lock up front instead of failing to
// upgrade mid-way. synchronous=NORMAL in WAL mode survives a killed process (the WAL is
// in the OS page cache); only a power loss can drop the last commits, and reconciliation
// with alipay.trade.query repairs those.
func DSN(path string) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate")
	// Each connection keeps its prepared statements: preparing cost a sixth of a
	// notify's CPU (bench, POST /check_order distinct). The cache only keeps what
	// SQLite doesn't expire, hence stableplan (see openSQLite).
	q.Set("_stmt_cache_size", "64")
	return "file:" + path + "?" + q.Encode()
}

// sqliteConnector opens connections to the file; the writer's with automatic
// checkpoints off: the commit that crossed the WAL's threshold used to copy a thousand
// pages into the database file while every other write waited; the checkpointer (see
// checkpoints) does that beside the writer instead.
type sqliteConnector struct {
	dsn    string
	writer bool
}

// openBusyFor bounds the retries of a connection SQLite refused as busy, as the busy
// timeout bounds a statement's wait.
const openBusyFor = 10 * time.Second

// Connect opens a connection, trying again while SQLite answers "database is locked":
// setting WAL mode as a connection opens doesn't wait on the busy timeout, so processes
// opening a fresh file together (instances starting, the operator command beside a
// shop) could fail at once instead of taking turns.
func (c sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	deadline := time.Now().Add(openBusyFor)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		conn, err := c.Driver().Open(c.dsn)
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || se.Code != sqlite3.ErrBusy || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// readerCacheKiB is each reader connection's page cache. Readers find their pages in
// the OS's cache as well: eight private caches of SQLite's default 2 MiB can hold the
// same hot pages eight times over, up to 16 MiB of the shop's resident memory; at half
// that the bench's pages were as fast.
const readerCacheKiB = 1000

func (c sqliteConnector) Driver() driver.Driver {
	if !c.writer {
		return &sqlite3.SQLiteDriver{ConnectHook: func(conn *sqlite3.SQLiteConn) error {
			_, err := conn.Exec(fmt.Sprintf("PRAGMA cache_size = -%d", readerCacheKiB), nil)
			return err
		}}
	}
	// The writer's temporary files in memory: each job of a batch runs in a savepoint,
	// and a page the batch had already changed is copied, when a later job changes it
	// again, into the savepoint's sub-journal, by default a temporary file. In memory, the
	// store's CPU per purchase fell by a third (32 goroutines calling CreateOrder: 150 →
	// 100 µs each). A batch is at most maxBatch small transactions: a few hundred KiB.
	return &sqlite3.SQLiteDriver{ConnectHook: func(conn *sqlite3.SQLiteConn) error {
		_, err := conn.Exec("PRAGMA wal_autocheckpoint = 4000; PRAGMA temp_store = MEMORY", nil)
		return err
	}}
}

// checkpointEvery is how often the checkpointer moves the WAL's pages into the file.
const checkpointEvery = 500 * time.Millisecond

// checkpoints runs PASSIVE checkpoints (they never wait for, or block, the writer or
// readers) on a reader connection until stop is closed, then a last full one.
func (s *Store) checkpoints(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			_, _ = s.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
			return
		case <-t.C:
			_, _ = s.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// Open opens the shop's database and brings its schema up to date: dsn is a
// PostgreSQL URL (see IsPostgres) or the path of an SQLite file, created if needed.
// now is the clock used for created/updated times; nil means time.Now.
func Open(dsn, schema string, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	if v := latestVersion(schema); v != SchemaVersion {
		return nil, fmt.Errorf("store: schema.sql ends at version %d, the program expects %d", v, SchemaVersion)
	}
	// Every field is set before the engine's background goroutines (writer,
	// checkpointer, listener) start, since they read them.
	st := &Store{dl: dialectOf(dsn), now: now, goodsTTL: goodsCacheTTL, instance: newInstanceID(),
		origin: newInstanceID(), leaseTTL: DefaultLeaseTTL, sessionMaxAge: sessionCacheMaxAge}
	var err error
	if st.dl.name == postgres.name {
		err = st.openPostgres(dsn, schema)
	} else {
		err = st.openSQLite(dsn, schema)
	}
	if err != nil {
		return nil, err
	}
	if err := st.db.GetContext(context.Background(), &st.installation, `SELECT token FROM installation WHERE id = 1`); err != nil {
		st.Close()
		return nil, fmt.Errorf("store: reading installation token: %w", err)
	}
	return st, nil
}

// openSQLite opens a reader pool and the one writer on the file at path.
func (st *Store) openSQLite(path, schema string) error {
	// The writer's WAL writes go out one write a commit rather than two a frame (see
	// walvfs): a purchase's commit was 26 system calls. Readers append nothing to the
	// WAL (the checkpointer on their pool may truncate it, which waits for the writer).
	if err := walvfs.Register(); err != nil {
		return err
	}
	// Plans that ignore bound values, so that a connection's cached statements are
	// reused rather than prepared again on every use (see stableplan).
	if err := stableplan.Register(); err != nil {
		return err
	}
	w := sqlx.NewDb(sql.OpenDB(sqliteConnector{DSN(path) + "&vfs=" + walvfs.Name, true}), sqlite.driver)
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	wdb := db{w}
	if err := migrate(context.Background(), wdb, sqlite, schema); err != nil {
		w.Close()
		return err
	}
	r := sqlx.NewDb(sql.OpenDB(sqliteConnector{DSN(path), false}), sqlite.driver)
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	st.db, st.wdb = db{r}, wdb
	st.stopCheckpoints, st.checkpointsDone = make(chan struct{}), make(chan struct{})
	st.writes, st.stopWrites, st.writesDone = make(chan *writeJob), make(chan struct{}), make(chan struct{})
	go st.checkpoints(st.stopCheckpoints, st.checkpointsDone)
	go st.writer(st.stopWrites, st.writesDone)
	return nil
}

// pgPoolSize bounds one instance's connections to PostgreSQL: enough for the writes in
// flight on two cores, few enough that several instances fit the server's default
// max_connections (100).
const pgPoolSize = 16

// openPostgres opens one pool for reads and writes (PostgreSQL has many writers), and
// the listener that hears other instances' changes.
func (st *Store) openPostgres(dsn, schema string) error {
	p, err := sqlx.Open(postgres.driver, dsn)
	if err != nil {
		return err
	}
	p.SetMaxOpenConns(pgPoolSize)
	p.SetMaxIdleConns(pgPoolSize)
	p.SetConnMaxIdleTime(5 * time.Minute)
	d := db{p}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.PingContext(ctx); err != nil {
		p.Close()
		return fmt.Errorf("store: connecting to PostgreSQL: %w", err)
	}
	if err := migrate(ctx, d, postgres, schema); err != nil {
		p.Close()
		return err
	}
	st.db, st.wdb = d, d
	if err := st.listen(dsn); err != nil {
		p.Close()
		return err
	}
	return nil
}

// Installation returns the token of this database file: it changes only when the file
// is recreated, so a session that carries it belongs to this database's users.
func (s *Store) Installation() string { return s.installation }

// Close writes what is still buffered and closes the pools.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.FlushJunk(ctx)
	if s.writes != nil {
		s.stopOnce.Do(func() { close(s.stopWrites); close(s.stopCheckpoints) })
		<-s.writesDone
	}
	if s.listener != nil {
		s.listener.stop()
	}
	if s.stopCheckpoints != nil {
		<-s.checkpointsDone
	}
	if s.wdb.DB != s.db.DB {
		err = errors.Join(err, s.wdb.Close())
	}
	return errors.Join(err, s.db.Close())
}

// Ping checks the database answers (for /healthz).
func (s *Store) Ping(ctx context.Context) error {
	return s.db.PingContext(ctx)
}

// IntegrityCheck checks the database's consistency and returns "ok" if sound, else
// what is wrong (SQLite: integrity_check's first line).
func (s *Store) IntegrityCheck(ctx context.Context) (string, error) {
	return s.dl.integrity(ctx, s.db)
}

// Engine names the database engine: "sqlite" or "postgres".
func (s *Store) Engine() string { return s.dl.name }

// Instance names this process among those sharing the database.
func (s *Store) Instance() string { return s.instance }

// goodsChanged drops the cached goods list; call it after the commit that changed goods,
// so a reader can never cache what was there before it.
func (s *Store) goodsChanged(ctx context.Context) {
	s.goodsGen.Add(1)
	// After the commit and best effort: a missed announcement costs at most
	// goodsCacheTTL of staleness elsewhere.
	_ = s.announce(ctx, s.wdb, changeGoods)
}

// inTx runs fn in a write transaction, committing if it returns nil. On SQLite the
// transaction may be committed together with others waiting at the same moment (see
// groupcommit.go); fn must not start another write of its own.
func (s *Store) inTx(ctx context.Context, fn func(tx txn) error) error {
	if s.writes != nil {
		return s.batchedTx(ctx, fn)
	}
	sqlTx, err := s.wdb.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(txn{q: sqlTx}); err != nil {
		sqlTx.Rollback()
		return err
	}
	return sqlTx.Commit()
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
