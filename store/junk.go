package store

import (
	"context"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Anonymous junk — a notify or return that fails its signature, or can't even be read —
// must not grow the database (or memory) with every message: it is counted per reason
// and the latest few are kept, truncated, in a fixed ring of junkSlots rows. Counting
// happens in memory and reaches the database at most once per junkFlushEvery, so a
// flood of junk costs no write per message and never queues behind genuine ones.
const (
	junkSlots      = 50
	junkRawMax     = 1024
	junkReasons    = 64 // distinct (source, reason) pairs kept apart; the rest count as "other"
	junkFlushEvery = time.Second
)

// Junk is one message that failed before its content could count.
type Junk struct {
	Source    string `db:"source"`
	Reason    string `db:"reason"`
	Raw       string `db:"raw"`
	RequestID string `db:"request_id"`
	CreatedAt Time   `db:"created_at"`
}

// JunkCount is how many junk messages had one source and reason.
type JunkCount struct {
	Source  string `db:"source"`
	Reason  string `db:"reason"`
	Count   int64  `db:"count"`
	FirstAt Time   `db:"first_at"`
	LastAt  Time   `db:"last_at"`
}

type junkKey struct{ source, reason string }

type junkBuffer struct {
	mu        sync.Mutex
	counts    map[junkKey]*JunkCount
	samples   []Junk // newest last, at most junkSlots
	lastFlush time.Time
	flushing  sync.Mutex
}

// RecordJunk counts j and keeps it as a sample (truncated).
func (s *Store) RecordJunk(ctx context.Context, j Junk) {
	now := s.now()
	j.CreatedAt = At(now)
	// Quoted, so any bytes at all (invalid UTF-8, NUL) are stored as readable text.
	j.Raw = strconv.Quote(truncateUTF8(j.Raw, junkRawMax))
	j.Reason = truncateUTF8(j.Reason, 120)
	b := &s.junk
	b.mu.Lock()
	if b.counts == nil {
		b.counts = map[junkKey]*JunkCount{}
		b.lastFlush = now
	}
	k := junkKey{j.Source, j.Reason}
	c, ok := b.counts[k]
	if !ok {
		if len(b.counts) >= junkReasons {
			k = junkKey{j.Source, "other"}
			c = b.counts[k]
		}
		if c == nil {
			c = &JunkCount{Source: k.source, Reason: k.reason, FirstAt: At(now)}
			b.counts[k] = c
		}
	}
	c.Count++
	c.LastAt = At(now)
	if len(b.samples) >= junkSlots {
		b.samples = append(b.samples[:0], b.samples[1:]...)
	}
	b.samples = append(b.samples, j)
	due := now.Sub(b.lastFlush) >= junkFlushEvery
	b.mu.Unlock()
	if due {
		if err := s.flushJunk(ctx, false); err != nil {
			// Counting junk is best effort: it is kept in memory for the next flush.
			_ = err
		}
	}
}

// FlushJunk writes the junk counted in memory to the database now.
func (s *Store) FlushJunk(ctx context.Context) error { return s.flushJunk(ctx, true) }

func (s *Store) flushJunk(ctx context.Context, wait bool) error {
	b := &s.junk
	if wait {
		b.flushing.Lock()
	} else if !b.flushing.TryLock() {
		return nil // another goroutine is flushing
	}
	defer b.flushing.Unlock()
	b.mu.Lock()
	counts, samples := b.counts, b.samples
	b.counts, b.samples, b.lastFlush = nil, nil, s.now()
	b.mu.Unlock()
	if len(counts) == 0 && len(samples) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx txn) error {
		var total int64
		if err := tx.GetContext(ctx, &total, `SELECT COALESCE(SUM(count), 0) FROM junk_counts`); err != nil {
			return err
		}
		var added int64
		for _, c := range counts {
			added += c.Count
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO junk_counts (source, reason, count, first_at, last_at) VALUES (?, ?, ?, ?, ?)
				 ON CONFLICT (source, reason) DO UPDATE SET count = junk_counts.count + excluded.count, last_at = excluded.last_at`,
				c.Source, c.Reason, c.Count, c.FirstAt, c.LastAt); err != nil {
				return err
			}
		}
		// The samples are the newest of the added messages: they take the ring's slots
		// that the last of those messages would have had.
		first := total + added - int64(len(samples))
		for i, j := range samples {
			slot := (first + int64(i)) % junkSlots
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO junk_samples (slot, source, reason, raw, request_id, created_at) VALUES (?, ?, ?, ?, ?, ?)
				 ON CONFLICT (slot) DO UPDATE SET source = excluded.source, reason = excluded.reason, raw = excluded.raw,
				     request_id = excluded.request_id, created_at = excluded.created_at`,
				slot, j.Source, j.Reason, j.Raw, j.RequestID, j.CreatedAt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Put the counts back so nothing is lost to a failed write.
		b.mu.Lock()
		if b.counts == nil {
			b.counts = map[junkKey]*JunkCount{}
		}
		for k, c := range counts {
			if have, ok := b.counts[k]; ok {
				have.Count += c.Count
				have.FirstAt = c.FirstAt
			} else {
				b.counts[k] = c
			}
		}
		b.mu.Unlock()
	}
	return err
}

// JunkCounts returns the counts per source and reason, most frequent first.
func (s *Store) JunkCounts(ctx context.Context) ([]JunkCount, error) {
	if err := s.FlushJunk(ctx); err != nil {
		return nil, err
	}
	var cs []JunkCount
	err := s.db.SelectContext(ctx, &cs,
		`SELECT source, reason, count, first_at, last_at FROM junk_counts ORDER BY count DESC, source, reason`)
	return cs, err
}

// JunkSamples returns the kept junk messages, newest first.
func (s *Store) JunkSamples(ctx context.Context) ([]Junk, error) {
	if err := s.FlushJunk(ctx); err != nil {
		return nil, err
	}
	var js []Junk
	err := s.db.SelectContext(ctx, &js,
		`SELECT source, reason, raw, request_id, created_at FROM junk_samples ORDER BY created_at DESC, slot DESC`)
	return js, err
}

// truncateUTF8 cuts s to at most n bytes without splitting a character (bytes that are
// not UTF-8 count as they are).
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > n-utf8.UTFMax && cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
