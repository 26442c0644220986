package handlers

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"

	"github.com/labstack/echo/v4"

	"storefront/web"
)

// mediaName is what the back office names an image it stored: a hash and its type.
var mediaName = regexp.MustCompile(`^[0-9a-f]{32}\.(png|jpg)$`)

// media serves an uploaded goods image with the headers that keep it an image: its
// exact type, no sniffing, a sandboxing CSP (nothing in it could run even if opened as
// a page) and a name that never changes (the file is named by its content).
func (h *Handler) media(c echo.Context) error {
	name := c.Param("name")
	m := mediaName.FindStringSubmatch(name)
	if m == nil || h.cfg.MediaDir == "" {
		return web.ErrNotFound
	}
	f, err := os.Open(filepath.Join(h.cfg.MediaDir, name))
	if err != nil {
		return web.ErrNotFound
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return web.ErrNotFound
	}
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentType, map[string]string{"png": "image/png", "jpg": "image/jpeg"}[m[1]])
	hd.Set(echo.HeaderContentSecurityPolicy, "default-src 'none'; sandbox")
	hd.Set(echo.HeaderContentDisposition, "inline")
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(c.Response(), c.Request(), "", st.ModTime(), f)
	return nil
}
