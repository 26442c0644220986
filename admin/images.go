package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"

	_ "golang.org/x/image/webp" // WebP decoding, so a WebP upload is checked like the others

	"storefront/payment"
	"storefront/store"
	"storefront/web"
)

// maxUpload is the largest image an operator may upload.
const maxUpload = 2 << 20

// maxPixels refuses images that would take too much memory to decode (a "decompression
// bomb": a small file for a huge picture). 12 million is a phone's photo (4000×3000);
// decoded, a PNG or WebP of it is 48 MB for a moment, and 24 million was twice that,
// over the shop's whole memory budget (GOMEMLIMIT 64 MiB).
const maxPixels = 12_000_000

// errImage is an upload that is not an image the shop takes.
func errImage(msg string) error { return web.BadRequest(msg) }

// saveImage checks an uploaded picture by its content and keeps it in the database (and
// dir) under a name
// made of its hash; it returns the path the shop serves it at (/media/…). Only PNG,
// JPEG and WebP, at most 2 MiB, that decode as pictures, with nothing before or after
// the picture and no markup anywhere (an SVG with a script, an HTML/image polyglot, a
// file whose name or type header lies are all refused). What is stored is the picture
// encoded again by the shop (PNG, or JPEG for a photo), never the uploaded bytes.
func saveImage(ctx context.Context, st *store.Store, dir string, fh *multipart.FileHeader) (string, error) {
	f, err := fh.Open()
	if err != nil {
		return "", errImage("无法读取上传的图片。")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxUpload+1))
	if err != nil {
		return "", errImage("无法读取上传的图片。")
	}
	if len(data) > maxUpload {
		return "", errImage("图片不能超过 2 MiB。")
	}
	kind := http.DetectContentType(data)
	switch kind {
	case "image/png", "image/jpeg", "image/webp":
	default:
		return "", errImage("只接受 PNG、JPEG 或 WebP 图片（按文件内容判断，不看文件名）。")
	}
	lower := bytes.ToLower(data)
	for _, mark := range []string{"<script", "<svg", "<html", "<?xml", "<!doctype", "<iframe", "javascript:"} {
		if bytes.Contains(lower, []byte(mark)) {
			return "", errImage("图片里夹带了网页代码，已拒绝。")
		}
	}
	if !endsWhereTheImageEnds(kind, data) {
		return "", errImage("图片文件结尾有多余的数据，已拒绝。")
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return "", errImage("图片无法解码，可能已损坏。")
	}
	if cfg.Width*cfg.Height > maxPixels {
		return "", errImage("图片尺寸太大（最多 1200 万像素，如 4000×3000）。")
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return "", errImage("图片无法解码，可能已损坏。")
	}
	var out bytes.Buffer
	ext := ".png"
	if kind == "image/jpeg" {
		ext = ".jpg"
		err = jpeg.Encode(&out, img, &jpeg.Options{Quality: 88})
	} else {
		err = png.Encode(&out, img)
	}
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(out.Bytes())
	name := hex.EncodeToString(sum[:16]) + ext
	// The database is where it is kept (every instance serves it); the file is this
	// instance's cache of it.
	if err := st.SaveMedia(ctx, name, out.Bytes()); err != nil {
		return "", err
	}
	if dir != "" {
		_ = payment.WriteFile(filepath.Join(dir, name), out.Bytes(), 0o644)
	}
	return "/media/" + name, nil
}

// endsWhereTheImageEnds reports whether nothing follows the picture's own end marker.
func endsWhereTheImageEnds(kind string, b []byte) bool {
	switch kind {
	case "image/png":
		// The last chunk is IEND: length 0, type, CRC — 12 bytes.
		return len(b) >= 12 && bytes.Equal(b[len(b)-12:len(b)-4], []byte{0, 0, 0, 0, 'I', 'E', 'N', 'D'})
	case "image/jpeg":
		return len(b) >= 2 && b[len(b)-2] == 0xFF && b[len(b)-1] == 0xD9
	case "image/webp":
		// RIFF size counts everything after its own 8 bytes (padded to even).
		if len(b) < 12 {
			return false
		}
		size := int(binary.LittleEndian.Uint32(b[4:8]))
		return size+8 == len(b) || size+9 == len(b)
	}
	return false
}

// errNoImage says the form had no file.
var errNoImage = errors.New("no image")

// formImage returns the uploaded image of the form, or errNoImage.
func formImage(form *multipart.Form) (*multipart.FileHeader, error) {
	if form == nil || len(form.File["image"]) == 0 || form.File["image"][0].Size == 0 {
		return nil, errNoImage
	}
	return form.File["image"][0], nil
}
