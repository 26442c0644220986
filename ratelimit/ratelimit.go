// Package ratelimit keeps a token bucket per key (a client address, an account) in a
// table of bounded size, so whatever keys an attacker invents, the table holds at most
// its capacity and each key at most a fixed number of bytes.
package ratelimit

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"sync"
	"time"
)

// maxKeyLen is the longest key kept as given; longer ones are kept as their SHA-256.
const maxKeyLen = 64

// Table is a set of token buckets, one per key, each holding up to burst tokens and
// refilled at burst per period. When the table is full the least recently used key is
// forgotten (its bucket starts full again if it comes back).
type Table struct {
	mu    sync.Mutex
	burst float64
	rate  float64 // tokens per second
	max   int
	now   func() time.Time
	keys  map[string]*list.Element
	lru   list.List // of *bucket, most recently used at the front
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time
}

// New returns a table allowing burst requests per key at once and burst per period
// on average, remembering at most maxKeys keys. now is the clock (nil = time.Now).
func New(burst int, period time.Duration, maxKeys int, now func() time.Time) *Table {
	if now == nil {
		now = time.Now
	}
	return &Table{burst: float64(burst), rate: float64(burst) / period.Seconds(), max: maxKeys, now: now,
		keys: map[string]*list.Element{}}
}

// Key is the form a key is kept in: as given when short, else its SHA-256 in hex.
func Key(s string) string {
	if len(s) <= maxKeyLen {
		return s
	}
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Take spends one of key's tokens and reports whether there was one.
func (t *Table) Take(key string) bool {
	key = Key(key)
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bucket(key)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Allowed reports whether key has a token, without spending it.
func (t *Table) Allowed(key string) bool {
	key = Key(key)
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.keys[key]
	if !ok {
		return true
	}
	b := e.Value.(*bucket)
	t.refill(b)
	return b.tokens >= 1
}

// Give returns one token to key (an attempt that turned out legitimate), never
// beyond the burst. A key the table doesn't hold has a full bucket already.
func (t *Table) Give(key string) {
	key = Key(key)
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.keys[key]
	if !ok {
		return
	}
	b := e.Value.(*bucket)
	t.refill(b)
	b.tokens = min(b.tokens+1, t.burst)
}

// Len is the number of keys held.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}

// bucket returns key's bucket, refilled to now, creating it (full) if needed.
func (t *Table) bucket(key string) *bucket {
	if e, ok := t.keys[key]; ok {
		t.lru.MoveToFront(e)
		b := e.Value.(*bucket)
		t.refill(b)
		return b
	}
	for len(t.keys) >= t.max {
		old := t.lru.Back()
		t.lru.Remove(old)
		delete(t.keys, old.Value.(*bucket).key)
	}
	b := &bucket{key: key, tokens: t.burst, at: t.now()}
	t.keys[key] = t.lru.PushFront(b)
	return b
}

func (t *Table) refill(b *bucket) {
	now := t.now()
	if d := now.Sub(b.at).Seconds(); d > 0 {
		b.tokens = min(b.tokens+d*t.rate, t.burst)
	}
	b.at = now
}

// ClientKey is the key for a client address: the address itself for IPv4, its /64 for
// IPv6 (one subscriber usually holds a whole /64, so single addresses are free to an
// attacker). Anything unparsable is kept as given (through Key, so still bounded).
func ClientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return Key(ip)
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
