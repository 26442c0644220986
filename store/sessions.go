package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// SessionTTL is how long a login lasts; the cookie's MaxAge is the same.
const SessionTTL = 7 * 24 * time.Hour

// maxCachedSessions bounds the in-memory table of sessions known to be live.
const maxCachedSessions = 100_000

// sessionCacheMaxAge bounds how long a session is served from memory before it is read
// again: the bound on a change this process can't be told of — another process on the
// same SQLite file (go run . operator add), or a PostgreSQL announcement lost between
// two of the listener's checks.
const sessionCacheMaxAge = 30 * time.Second

// sessionCache remembers which sessions were live when last read from the database, so
// a logged-in request costs a map lookup instead of a query. Every way a session ends
// goes through this store, which drops it here in the same call and announces it to
// other instances in the transaction that deletes it (see changes.go), so an ended
// session is never served from here.
type sessionCache struct {
	mu sync.RWMutex
	m  map[string]cachedSession
	// gen counts removals: a session read from the database is cached only if nothing
	// was removed while it was being read, so a read that raced a logout can't put the
	// ended session back.
	gen uint64
}

type cachedSession struct {
	userID  int64
	expires time.Time
	read    time.Time // when read from the database, by this process's clock
}

func (c *sessionCache) get(id string) (cachedSession, bool) {
	c.mu.RLock()
	v, ok := c.m[id]
	c.mu.RUnlock()
	return v, ok
}

// generation is the removal count to pass to put.
func (c *sessionCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches v unless something was removed since generation returned gen.
func (c *sessionCache) put(id string, v cachedSession, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.m == nil {
		c.m = map[string]cachedSession{}
	}
	if len(c.m) >= maxCachedSessions {
		// Forget a tenth, chosen by map order (random): they are re-read when next used.
		n := 0
		for k := range c.m {
			delete(c.m, k)
			if n++; n >= maxCachedSessions/10 {
				break
			}
		}
	}
	c.m[id] = v
}

func (c *sessionCache) drop(ids ...string) {
	c.mu.Lock()
	c.gen++
	for _, id := range ids {
		delete(c.m, id)
	}
	c.mu.Unlock()
}

func (c *sessionCache) dropUser(userID int64, keep string) {
	c.mu.Lock()
	c.gen++
	for k, v := range c.m {
		if v.userID == userID && k != keep {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

func (c *sessionCache) clear() {
	c.mu.Lock()
	c.gen++
	c.m = nil
	c.mu.Unlock()
}

// sessionKey is what the database keeps of a session id: its hash, so a copy of the
// database doesn't hand out live sessions.
func sessionKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// sessionTable is where one kind of login lives: shoppers' in sessions, operators' in
// operator_sessions. Each has its own cache, so one kind's id never opens the other.
type sessionTable struct {
	table, owner string
	cache        *sessionCache
}

func (s *Store) shopperSessions() sessionTable {
	return sessionTable{"sessions", "user_id", &s.sessions}
}

func (s *Store) operatorSessions() sessionTable {
	return sessionTable{"operator_sessions", "operator_id", &s.opSessions}
}

func (s *Store) startSession(ctx context.Context, t sessionTable, ownerID int64) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b)
	now := s.now()
	gen := t.cache.generation()
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO `+t.table+` (id, `+t.owner+`, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		sessionKey(id), ownerID, At(now), At(now.Add(SessionTTL)))
	if err != nil {
		return "", err
	}
	t.cache.put(id, cachedSession{userID: ownerID, expires: now.Add(SessionTTL), read: time.Now()}, gen)
	return id, nil
}

func (s *Store) sessionOwner(ctx context.Context, t sessionTable, id string) (int64, error) {
	if id == "" {
		return 0, ErrNotFound
	}
	now := s.now()
	trusted := s.cachesTrusted()
	gen := t.cache.generation()
	if v, ok := t.cache.get(id); ok && trusted && time.Since(v.read) < s.sessionMaxAge {
		if now.Before(v.expires) {
			return v.userID, nil
		}
		t.cache.drop(id)
		return 0, ErrNotFound
	}
	var row struct {
		Owner   int64 `db:"owner"`
		Expires Time  `db:"expires_at"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT `+t.owner+` AS owner, expires_at FROM `+t.table+` WHERE id = ?`, sessionKey(id))
	if err != nil {
		return 0, notFound(err)
	}
	if !now.Before(row.Expires.Time) {
		return 0, ErrNotFound
	}
	if trusted {
		t.cache.put(id, cachedSession{userID: row.Owner, expires: row.Expires.Time, read: time.Now()}, gen)
	}
	return row.Owner, nil
}

func (s *Store) endSession(ctx context.Context, t sessionTable, id string) error {
	if id == "" {
		return nil
	}
	t.cache.drop(id)
	defer t.cache.drop(id) // and again once deleted (see sessionCache.gen)
	return s.inTx(ctx, func(tx txn) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t.table+` WHERE id = ?`, sessionKey(id)); err != nil {
			return err
		}
		return s.announce(ctx, tx, changeSessions)
	})
}

// StartSession records a new login of userID and returns its id for the cookie.
func (s *Store) StartSession(ctx context.Context, userID int64) (string, error) {
	return s.startSession(ctx, s.shopperSessions(), userID)
}

// SessionUser returns the user whose live session id is; ErrNotFound if it ended,
// expired or never existed.
func (s *Store) SessionUser(ctx context.Context, id string) (int64, error) {
	return s.sessionOwner(ctx, s.shopperSessions(), id)
}

// EndSession ends one session (logout). Ending one that is already gone is not an error.
func (s *Store) EndSession(ctx context.Context, id string) error {
	return s.endSession(ctx, s.shopperSessions(), id)
}

// EndOtherSessions ends every session of userID but keep (a password change).
func (s *Store) EndOtherSessions(ctx context.Context, userID int64, keep string) error {
	s.sessions.dropUser(userID, keep)
	defer s.sessions.dropUser(userID, keep)
	return s.inTx(ctx, func(tx txn) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, userID, sessionKey(keep)); err != nil {
			return err
		}
		return s.announce(ctx, tx, changeSessions)
	})
}

// StartOperatorSession records a new back-office login of operatorID.
func (s *Store) StartOperatorSession(ctx context.Context, operatorID int64) (string, error) {
	return s.startSession(ctx, s.operatorSessions(), operatorID)
}

// SessionOperator returns the operator whose live back-office session id is.
func (s *Store) SessionOperator(ctx context.Context, id string) (int64, error) {
	return s.sessionOwner(ctx, s.operatorSessions(), id)
}

// EndOperatorSession ends one back-office session (logout).
func (s *Store) EndOperatorSession(ctx context.Context, id string) error {
	return s.endSession(ctx, s.operatorSessions(), id)
}

// PurgeSessions deletes sessions of both kinds that expired before now.
func (s *Store) PurgeSessions(ctx context.Context) (int64, error) {
	var n int64
	for _, t := range []string{"sessions", "operator_sessions"} {
		res, err := s.wdb.ExecContext(ctx, `DELETE FROM `+t+` WHERE expires_at <= ?`, At(s.now()))
		if err != nil {
			return n, err
		}
		n += affected(res)
	}
	return n, nil
}
