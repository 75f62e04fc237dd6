package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// contentSecurityPolicy lets the page load only its own scripts, styles and
// API (including the WebSocket live feed), and no one frame it.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// contentTypes are fixed here rather than read from the system's MIME
// database, which differs between machines (a module script must be served
// as JavaScript).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

type handler struct {
	assets   map[string]asset // by request path: "/" and "/ui/<name>"
	notFound http.Handler
}

// Handler serves the UI: index.html at "/", and every other embedded file at
// /ui/<name> (app.js, app.css, ...). Files carry a strong ETag (a hash of
// their content) and Cache-Control no-cache, so browsers revalidate and a
// new binary's UI is picked up at once. Any other path goes to notFound
// (the API's problem+json 404).
func Handler(notFound http.Handler) http.Handler {
	h := &handler{assets: make(map[string]asset), notFound: notFound}
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(name)
		if err != nil {
			return err
		}
		ctype, ok := contentTypes[path.Ext(name)]
		if !ok {
			ctype = http.DetectContentType(body)
		}
		sum := sha256.Sum256(body)
		a := asset{body: body, contentType: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		rel := strings.TrimPrefix(name, "static/")
		if rel == "index.html" {
			h.assets["/"] = a
		} else {
			h.assets["/ui/"+rel] = a
		}
		return nil
	})
	if err != nil {
		// The files are compiled in: failing to read them is a broken build.
		panic("ui: embedded files: " + err.Error())
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.URL.Path]
	if !ok {
		h.notFound.ServeHTTP(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", a.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	// ServeContent answers If-None-Match with 304 and handles ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
