package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"storefront/store"
	"storefront/store/storetest"
)

// eventually polls f for up to a second.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Second); !f(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
	}
}

// pgPair opens two instances on one fresh PostgreSQL schema.
func pgPair(t *testing.T) (a, b *store.Store, dsn string) {
	t.Helper()
	dsn = storetest.Schema(t, storetest.PostgresURL(t))
	a, b = open(t, dsn), open(t, dsn)
	return a, b, dsn
}

// A logout on one instance ends the session on the other, which had it cached.
func TestSessionEndedOnOneInstanceEndsOnAll(t *testing.T) {
	a, b, _ := pgPair(t)
	ctx := context.Background()
	u, _ := a.CreateUser(ctx, "s@example.com", "x")
	id, err := a.StartSession(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := a.StartSession(ctx, u.ID)
	for _, sid := range []string{id, other} {
		if got, err := b.SessionUser(ctx, sid); err != nil || got != u.ID {
			t.Fatalf("b reads the session: %d %v", got, err)
		}
	}
	if err := a.EndSession(ctx, id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b still serves a session a ended", func() bool {
		_, err := b.SessionUser(ctx, id)
		return errors.Is(err, store.ErrNotFound)
	})
	// A password change on b ends the other sessions everywhere, a's cache included.
	if got, err := a.SessionUser(ctx, other); err != nil || got != u.ID {
		t.Fatalf("a reads the other session: %d %v", got, err)
	}
	keep, _ := b.StartSession(ctx, u.ID)
	if err := b.EndOtherSessions(ctx, u.ID, keep); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a still serves a session b's password change ended", func() bool {
		_, err := a.SessionUser(ctx, other)
		return errors.Is(err, store.ErrNotFound)
	})
	if got, err := a.SessionUser(ctx, keep); err != nil || got != u.ID {
		t.Fatalf("the session kept by the password change: %d %v", got, err)
	}
}

// A restarted instance takes its predecessor's name for its leases (SetInstance), and
// for a moment both may be up: the name must not make one deaf to the other's changes.
func TestSameInstanceNameStillHearsTheOther(t *testing.T) {
	a, b, _ := pgPair(t)
	a.SetInstance("host/127.0.0.1:8080")
	b.SetInstance("host/127.0.0.1:8080")
	ctx := context.Background()
	u, _ := a.CreateUser(ctx, "n@example.com", "x")
	id, _ := a.StartSession(ctx, u.ID)
	if got, err := b.SessionUser(ctx, id); err != nil || got != u.ID {
		t.Fatalf("b reads the session: %d %v", got, err)
	}
	if err := a.EndSession(ctx, id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b ignored a's change because they share a lease name", func() bool {
		_, err := b.SessionUser(ctx, id)
		return errors.Is(err, store.ErrNotFound)
	})
}

// While an instance can't hear the others it serves nothing from its caches, and once
// it hears again it has forgotten what it cached before.
func TestDeafInstanceBypassesCaches(t *testing.T) {
	a, b, dsn := pgPair(t)
	ctx := context.Background()
	u, _ := a.CreateUser(ctx, "d@example.com", "x")
	id, _ := a.StartSession(ctx, u.ID)
	if _, err := b.SessionUser(ctx, id); err != nil {
		t.Fatal(err)
	}
	raw := storetest.Open(t, dsn)
	// Cut every listening connection of this schema's instances (the server-side view
	// of a network failure); b must stop trusting its cache.
	raw.MustExec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'storefront-listener'
		AND pid <> pg_backend_pid()`)
	// The session is deleted behind everyone's back: no announcement at all.
	raw.MustExec(t, `DELETE FROM sessions`)
	eventually(t, "b served a cached session while it could not hear, or after it heard again", func() bool {
		_, err := b.SessionUser(ctx, id)
		return errors.Is(err, store.ErrNotFound)
	})
	// And it listens again: a change announced now reaches it.
	id2, _ := a.StartSession(ctx, u.ID)
	time.Sleep(300 * time.Millisecond) // reconnected by now (it retries from 100 ms)
	if _, err := b.SessionUser(ctx, id2); err != nil {
		t.Fatal(err)
	}
	a.EndSession(ctx, id2)
	eventually(t, "b did not hear again after reconnecting", func() bool {
		_, err := b.SessionUser(ctx, id2)
		return errors.Is(err, store.ErrNotFound)
	})
}

// A process that can't be told (another process on the same SQLite file, as the
// operator command is) serves a session it cached for at most the cache's age.
func TestCachedSessionReadAgainAfterMaxAge(t *testing.T) {
	dsn := storetest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	b.SetSessionCacheMaxAge(100 * time.Millisecond)
	ctx := context.Background()
	u, _ := a.CreateUser(ctx, "age@example.com", "x")
	id, _ := a.StartSession(ctx, u.ID)
	if _, err := b.SessionUser(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Deleted behind b's back, with no announcement at all.
	storetest.Open(t, dsn).MustExec(t, `DELETE FROM sessions`)
	time.Sleep(150 * time.Millisecond)
	if _, err := b.SessionUser(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session deleted elsewhere still served after the cache's age: %v", err)
	}
}
