package web

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Render renders comp into a buffer first, so a render error becomes a clean error
// page instead of half a page with a 200 status.
func Render(c echo.Context, status int, comp templ.Component) error {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := comp.Render(c.Request().Context(), buf); err != nil {
		return err
	}
	return HTML(c, status, buf.Bytes())
}

// HTML sends a page rendered earlier.
func HTML(c echo.Context, status int, b []byte) error {
	// A known length spares the chunked framing and its extra write.
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(len(b)))
	return c.HTMLBlob(status, b)
}

// GzipHTML sends a page rendered and compressed earlier (Gzipper) to a client that
// accepts gzip (AcceptsGzip).
func GzipHTML(c echo.Context, status int, gz []byte) error {
	c.Response().Header().Set(echo.HeaderContentEncoding, "gzip")
	return HTML(c, status, gz)
}

// Gzipper compresses renderings that are sent many times, one at a time with one
// reused writer: a writer holds a few hundred KB of tables, and the first visitors of
// a page arrive together (32 compressing at once took the shop past its memory budget).
type Gzipper struct {
	mu sync.Mutex
	w  *gzip.Writer
}

// TryGzip compresses b, or answers nil at once if another compression is under way
// (the caller sends b as it is, and a later request compresses it).
func (z *Gzipper) TryGzip(b []byte) []byte {
	if !z.mu.TryLock() {
		return nil
	}
	defer z.mu.Unlock()
	var out bytes.Buffer
	if z.w == nil {
		z.w, _ = gzip.NewWriterLevel(&out, gzip.BestSpeed) // a quarter of the page, at a fraction of the tables
	} else {
		z.w.Reset(&out)
	}
	z.w.Write(b) // a bytes.Buffer never fails
	z.w.Close()
	return bytes.Clone(out.Bytes()) // exactly its size, not the buffer's growth
}

// AcceptsGzip says whether r's Accept-Encoding takes gzip: named (or covered by "*")
// with a q above 0; gzip named outright decides over "*".
func AcceptsGzip(r *http.Request) bool {
	gzipQ, anyQ := -1.0, -1.0
	for _, v := range r.Header.Values(echo.HeaderAcceptEncoding) {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
						q = f
					}
				}
			}
			switch coding = strings.TrimSpace(coding); {
			case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
				gzipQ = q
			case coding == "*":
				anyQ = q
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return anyQ > 0
}
