package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// countingCodec counts the cookie values it is asked to decode.
type countingCodec struct {
	securecookie.Codec
	n *int
}

func (c countingCodec) Decode(name, value string, dst any) error {
	*c.n++
	return c.Codec.Decode(name, value, dst)
}

func TestSessionStoreDecodesACookieOnce(t *testing.T) {
	st := NewSessionStore([]byte(strings.Repeat("h", 32)), []byte(strings.Repeat("b", 32)), false, "/")
	decodes := 0
	for i, c := range st.Codecs {
		st.Codecs[i] = countingCodec{c, &decodes}
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st.now = func() time.Time { return now }

	// cookieOf is the cookie a response saving values sets.
	cookieOf := func(values map[any]any) *http.Cookie {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		s, _ := st.New(r, "s")
		s.Values = values
		w := httptest.NewRecorder()
		if err := st.Save(r, w, s); err != nil {
			t.Fatal(err)
		}
		return w.Result().Cookies()[0]
	}
	get := func(c *http.Cookie) (*sessions.Session, error) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(c)
		return st.Get(r, "s")
	}
	c := cookieOf(map[any]any{"uid": int64(7), "email": "a@example.com", "_flash": []any{"已保存。"}})

	first, err := get(c)
	if err != nil || first.IsNew || first.Values["uid"] != int64(7) {
		t.Fatalf("first: %v %+v", err, first)
	}
	first.AddFlash("第二条")
	first.Values["uid"] = int64(8)
	second, err := get(c)
	if err != nil || second.IsNew || second.Values["uid"] != int64(7) || second.Values["email"] != "a@example.com" {
		t.Fatalf("second: %v %+v", err, second)
	}
	if fl := second.Flashes(); len(fl) != 1 || fl[0] != "已保存。" {
		t.Fatalf("flashes read back %v: changing one request's session changed the next one's", fl)
	}
	if third, _ := get(c); len(third.Flashes()) != 1 {
		t.Fatal("taking the flashes of one request's session took them from the next one's")
	}
	if decodes != 1 {
		t.Fatalf("%d decodes of one cookie value", decodes)
	}

	// A cookie that doesn't decode is refused every time it is asked.
	bad := &http.Cookie{Name: "s", Value: c.Value[:len(c.Value)-4] + "AAAA"}
	for range 2 {
		if s, err := get(bad); err == nil || !s.IsNew {
			t.Fatalf("tampered cookie: %v", err)
		}
	}
	if decodes != 3 {
		t.Fatalf("%d decodes after two tampered cookies", decodes)
	}

	// After a minute the value is decoded again (its age is checked then).
	now = now.Add(sessionCacheFor + time.Second)
	if s, err := get(c); err != nil || s.Values["uid"] != int64(7) || decodes != 4 {
		t.Fatalf("after a minute: %v, %d decodes", err, decodes)
	}

	// However many visitors, the decodings kept stay bounded.
	for i := range sessionCacheSize + 50 {
		if _, err := get(cookieOf(map[any]any{"uid": int64(i)})); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(st.decoded); n > sessionCacheSize {
		t.Fatalf("%d decodings kept", n)
	}
	if s, err := get(cookieOf(map[any]any{"uid": int64(-1), "n": fmt.Sprint(1)})); err != nil || s.Values["uid"] != int64(-1) {
		t.Fatalf("after the bound: %v", err)
	}
}

// A full cache makes room from the decodings that have expired before any other.
func TestSessionStoreEvictsTheExpiredFirst(t *testing.T) {
	st := NewSessionStore([]byte(strings.Repeat("h", 32)), []byte(strings.Repeat("b", 32)), false, "/")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st.now = func() time.Time { return now }
	for i := range sessionCacheSize {
		until := now.Add(sessionCacheFor)
		if i%2 == 0 {
			until = now.Add(-time.Second)
		}
		st.decoded[fmt.Sprint("s=old", i)] = decodedCookie{until: until}
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	s, _ := st.New(r, "s")
	s.Values["uid"] = int64(1)
	w := httptest.NewRecorder()
	if err := st.Save(r, w, s); err != nil {
		t.Fatal(err)
	}
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(w.Result().Cookies()[0])
	if _, err := st.Get(r, "s"); err != nil {
		t.Fatal(err)
	}
	live := 0
	for k, d := range st.decoded {
		if strings.HasPrefix(k, "s=old") && now.Before(d.until) {
			live++
		}
	}
	if live != sessionCacheSize/2 || len(st.decoded) != sessionCacheSize/2+1 {
		t.Fatalf("%d of %d live decodings kept, %d in all", live, sessionCacheSize/2, len(st.decoded))
	}
}
