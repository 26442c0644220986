package web

import (
	"bytes"
	"strconv"
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
