package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// What an instance keeps in memory — the goods on sale, which sessions are live — must
// not outlive a change made by another instance sharing the database. On PostgreSQL every
// such change is announced on one channel (NOTIFY, sent in the transaction of the change
// where it matters, so the change and its announcement commit together) and every
// instance listens on a connection of its own. While that connection is down an instance
// cannot know what it missed, so it bypasses its caches until it is listening again, and
// clears them then. On SQLite the database has one process; nothing is announced.

// changeChannel is the NOTIFY channel; a payload is "kind instance".
const changeChannel = "shop_changes"

// listenerName is the listening connection's application_name (pg_stat_activity).
const listenerName = "storefront-listener"

// listenCheck is how long the listener waits for a notification before checking that
// its connection still answers: a connection that died without a reset (a partition)
// is noticed within listenCheck plus pingTimeout, and caches bypassed from then on.
const (
	listenCheck = 10 * time.Second
	pingTimeout = 5 * time.Second
)

// newInstanceID names this process: host, pid and a random part (a restarted process
// with the same pid is another instance: its predecessor's leases are not its own).
func newInstanceID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	if len(host) > 32 {
		host = host[:32]
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// announce tells the other instances that kind changed, in q's transaction if q is one.
func (s *Store) announce(ctx context.Context, q querier, kind string) error {
	if s.listener == nil {
		return nil
	}
	_, err := q.ExecContext(ctx, `SELECT pg_notify(?, ?)`, changeChannel, kind+" "+s.origin)
	return err
}

// cachesTrusted reports whether what this process cached can be served: always on
// SQLite, and on PostgreSQL while it is listening for other instances' changes.
func (s *Store) cachesTrusted() bool {
	return s.listener == nil || s.listener.listening.Load()
}

// dropCaches forgets everything cached from the database.
func (s *Store) dropCaches() {
	s.goodsGen.Add(1)
	s.sessions.clear()
	s.opSessions.clear()
}

// heard applies one announcement from another instance.
func (s *Store) heard(payload string) {
	kind, from, _ := strings.Cut(payload, " ")
	if from == s.origin {
		return // this process dropped its own cache when it made the change
	}
	switch kind {
	case changeGoods:
		s.goodsGen.Add(1)
	case changeSessions:
		s.sessions.clear()
		s.opSessions.clear()
	default:
		s.dropCaches() // a kind this version doesn't know: be safe
	}
}

// listener is the connection that hears other instances' announcements.
type listener struct {
	listening atomic.Bool
	cancel    context.CancelFunc
	done      chan struct{}
}

// listen connects the listener (failing if PostgreSQL can't be reached now) and keeps
// it connected in the background until Close.
func (s *Store) listen(dsn string) error {
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{cancel: cancel, done: make(chan struct{})}
	conn, err := connectListener(ctx, dsn)
	if err != nil {
		cancel()
		return fmt.Errorf("store: listening for other instances' changes: %w", err)
	}
	l.listening.Store(true)
	s.listener = l
	go func() {
		defer close(l.done)
		s.keepListening(ctx, dsn, conn)
	}()
	return nil
}

func (l *listener) stop() {
	l.cancel()
	<-l.done
}

func connectListener(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = listenerName
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, "LISTEN "+changeChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// keepListening applies announcements as they come and, when the connection fails,
// bypasses the caches and reconnects (backing off to 5 s), clearing them once it
// listens again.
func (s *Store) keepListening(ctx context.Context, dsn string, conn *pgx.Conn) {
	l := s.listener
	wait := 100 * time.Millisecond
	for {
		if conn == nil {
			c, err := connectListener(ctx, dsn)
			if err != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = min(wait*2, 5*time.Second)
				continue
			}
			conn, wait = c, 100*time.Millisecond
			s.dropCaches() // whatever was announced while deaf is unknown
			l.listening.Store(true)
		}
		err := s.hearUntilFailure(ctx, conn)
		l.listening.Store(false)
		conn.Close(context.Background())
		conn = nil
		if ctx.Err() != nil || err == nil {
			return
		}
	}
}

// hearUntilFailure applies announcements on conn until it fails (an error) or ctx ends.
func (s *Store) hearUntilFailure(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			s.heard(n.Payload)
		case errors.Is(err, context.DeadlineExceeded) || pgconnTimeout(err):
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// pgconnTimeout reports a wait that ended by its deadline (the connection is still good).
func pgconnTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
