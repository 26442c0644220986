package handlers

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"storefront/payment"
	"storefront/web"
)

// mediaName is what the back office names an image it stored: a hash and its type.
var mediaName = regexp.MustCompile(`^[0-9a-f]{32}\.(png|jpg)$`)

// media serves an uploaded goods image with the headers that keep it an image: its
// exact type, no sniffing, a sandboxing CSP (nothing in it could run even if opened as
// a page) and a name that never changes (the file is named by its content). The file in
// MEDIA_DIR is served if this instance has it, else the database's copy.
func (h *Handler) media(c echo.Context) error {
	name := c.Param("name")
	m := mediaName.FindStringSubmatch(name)
	if m == nil {
		return web.ErrNotFound
	}
	var content io.ReadSeeker
	var modified time.Time
	if f, err := os.Open(filepath.Join(h.cfg.MediaDir, name)); err == nil && h.cfg.MediaDir != "" {
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			content, modified = f, st.ModTime()
		}
	}
	if content == nil {
		// Not cached here (uploaded through another instance, or the cache was cleared):
		// from the database, and cached for next time.
		data, err := h.st.Media(c.Request().Context(), name)
		if err != nil {
			return err
		}
		if h.cfg.MediaDir != "" {
			_ = payment.WriteFile(filepath.Join(h.cfg.MediaDir, name), data, 0o644)
		}
		content = bytes.NewReader(data)
	}
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentType, map[string]string{"png": "image/png", "jpg": "image/jpeg"}[m[1]])
	hd.Set(echo.HeaderContentSecurityPolicy, "default-src 'none'; sandbox")
	hd.Set(echo.HeaderContentDisposition, "inline")
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(c.Response(), c.Request(), "", modified, content)
	return nil
}
