package web

import (
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/sessions"
)

// SessionStore is the cookie session store, remembering what each cookie value decoded
// to. Decoding (HMAC, AES, JSON: 66 allocations) cost a logged-in request 12 µs of CPU
// every time, for the same few cookie values asked again and again; a value decodes
// to the same session whenever it is asked, so each is decoded once, kept for a minute
// at most, and read back as a copy.
type SessionStore struct {
	*sessions.CookieStore
	now func() time.Time

	mu      sync.Mutex
	decoded map[string]decodedCookie
}

// decodedCookie is one cookie value's session values and until when they may be reused.
type decodedCookie struct {
	values map[any]any
	until  time.Time
}

const (
	// sessionCacheSize bounds the values kept. The shop's own cookies are a few
	// hundred bytes (a browser takes 4 KiB at most): a MiB or two in all.
	sessionCacheSize = 2000
	// sessionCacheFor is how long a decoding is reused. The cookie's own age is
	// checked when it is decoded (at most 7 days), so a cookie may be taken up to this
	// long after it expired.
	sessionCacheFor = time.Minute
)

// Get returns the request's session name (once per request, as CookieStore.Get).
func (s *SessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New decodes the request's cookie name into a session, or reuses its decoding.
func (s *SessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	c, err := r.Cookie(name)
	if err != nil {
		return s.CookieStore.New(r, name) // none: a new session
	}
	key := name + "=" + c.Value
	now := s.now()
	s.mu.Lock()
	d, ok := s.decoded[key]
	s.mu.Unlock()
	if ok && now.Before(d.until) {
		sess := sessions.NewSession(s, name)
		opts := *s.Options
		sess.Options, sess.Values, sess.IsNew = &opts, copyValues(d.values), false
		return sess, nil
	}
	sess, err := s.CookieStore.New(r, name)
	if err != nil || sess.IsNew {
		return sess, err // a cookie that doesn't decode is decoded (and refused) every time
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.decoded) >= sessionCacheSize {
		for k, old := range s.decoded {
			if !now.Before(old.until) {
				delete(s.decoded, k) // the expired first
			}
		}
		for k := range s.decoded {
			if len(s.decoded) < sessionCacheSize*9/10 {
				break
			}
			delete(s.decoded, k) // then any, a tenth: the next misses needn't look again
		}
	}
	s.decoded[key] = decodedCookie{values: copyValues(sess.Values), until: now.Add(sessionCacheFor)}
	return sess, nil
}

// copyValues copies session values deep enough that changing the copy (a flash added
// to a list) leaves the original as it was.
func copyValues(v map[any]any) map[any]any {
	out := maps.Clone(v)
	for k, x := range out {
		out[k] = copyValue(x)
	}
	return out
}

func copyValue(x any) any {
	switch y := x.(type) {
	case []any:
		z := slices.Clone(y)
		for i := range z {
			z[i] = copyValue(z[i])
		}
		return z
	case map[string]any:
		z := maps.Clone(y)
		for k := range z {
			z[k] = copyValue(z[k])
		}
		return z
	}
	return x
}
