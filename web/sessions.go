package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
)

// NewSessionStore returns the cookie session store: signed and encrypted with keys
// derived from the secret, HttpOnly, SameSite=Lax, Secure when the site is https.
func NewSessionStore(hashKey, blockKey []byte, secure bool, path string) *SessionStore {
	s := sessions.NewCookieStore(hashKey, blockKey)
	s.Options = &sessions.Options{
		Path:     path,
		MaxAge:   7 * 24 * 3600,
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	s.MaxAge(s.Options.MaxAge)
	for _, c := range s.Codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.SetSerializer(jsonValues{})
		}
	}
	return &SessionStore{CookieStore: s, now: time.Now, decoded: map[string]decodedCookie{}}
}

// jsonValues serializes session values as JSON instead of gob: gob sends and compiles
// its type description with every cookie, which was a tenth of a logged-in page's CPU.
// Keys are strings; integers come back as int64 (the user id), strings as strings.
type jsonValues struct{}

// Serialize implements securecookie.Serializer.
func (jsonValues) Serialize(src any) ([]byte, error) {
	vals, ok := src.(map[any]any)
	if !ok {
		return nil, fmt.Errorf("session: cannot serialize %T", src)
	}
	m := make(map[string]any, len(vals))
	for k, v := range vals {
		ks, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("session: key %v is not a string", k)
		}
		m[ks] = v
	}
	return json.Marshal(m)
}

// Deserialize implements securecookie.Serializer.
func (jsonValues) Deserialize(src []byte, dst any) error {
	out, ok := dst.(*map[any]any)
	if !ok {
		return fmt.Errorf("session: cannot deserialize into %T", dst)
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return err
	}
	if *out == nil {
		*out = make(map[any]any, len(m))
	}
	for k, v := range m {
		(*out)[k] = fromJSON(v)
	}
	return nil
}

func fromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = fromJSON(x[i])
		}
	}
	return v
}

// HasPathPrefix reports whether path is prefix or below it ("/cart", "/cart/x", "/cart?y").
func HasPathPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	rest := path[len(prefix):]
	return rest == "" || rest[0] == '/' || rest[0] == '?'
}

// WithParam adds k=v to the local path p's query.
func WithParam(p, k string, v int64) string {
	u, err := url.Parse(p)
	if err != nil {
		return p
	}
	q := u.Query()
	q.Set(k, strconv.FormatInt(v, 10))
	u.RawQuery = q.Encode()
	return u.String()
}

// SafeNext keeps next only if it is a path on this site: no scheme, no host, no
// "//evil" or "/\evil" that browsers read as another host.
func SafeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

// IDParam reads a positive integer path parameter; anything else is a 404, as an
// unknown id would be.
func IDParam(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound
	}
	return id, nil
}

// PageParam reads ?page=N leniently: a bad or missing value is page 1.
func PageParam(c echo.Context) int {
	p, err := strconv.Atoi(c.QueryParam("page"))
	if err != nil || p < 1 || p > 1_000_000 {
		return 1
	}
	return p
}
