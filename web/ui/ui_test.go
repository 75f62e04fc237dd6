package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

var notFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusNotFound)
})

// TestServesPageAndAssets: the page at "/", every asset under /ui/ with its
// content type, ETag revalidation, and anything else handed to notFound.
func TestServesPageAndAssets(t *testing.T) {
	h := Handler(notFound)

	page := serve(t, h, http.MethodGet, "/")
	if page.Code != http.StatusOK || page.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %q, want 200 text/html", page.Code, page.Header().Get("Content-Type"))
	}
	body := page.Body.String()
	if !strings.Contains(body, `src="/ui/app.js"`) {
		t.Errorf("GET / does not load the app: %s", body)
	}
	if csp := page.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy = %q, want script-src 'self'", csp)
	}

	// Every asset the page names exists, with the right type.
	wantTypes := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	for _, m := range regexp.MustCompile(`(?:src|href)="(/ui/[^"]+)"`).FindAllStringSubmatch(body, -1) {
		path := m[1]
		w := serve(t, h, http.MethodGet, path)
		ext := path[strings.LastIndex(path, "."):]
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != wantTypes[ext] {
			t.Errorf("GET %s = %d %q, want 200 %q", path, w.Code, w.Header().Get("Content-Type"), wantTypes[ext])
		}
	}

	// Modules import each other by relative path: every import resolves.
	files, err := fs.Glob(static, "static/*.js")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts embedded: %v", err)
	}
	imports := regexp.MustCompile(`from '\./([^']+)'`)
	for _, f := range files {
		src, _ := static.ReadFile(f)
		for _, m := range imports.FindAllStringSubmatch(string(src), -1) {
			if w := serve(t, h, http.MethodGet, "/ui/"+m[1]); w.Code != http.StatusOK {
				t.Errorf("%s imports %s: GET /ui/%s = %d", f, m[1], m[1], w.Code)
			}
		}
	}

	js := serve(t, h, http.MethodGet, "/ui/app.js")
	etag := js.Header().Get("ETag")
	if etag == "" || js.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("app.js: ETag %q, Cache-Control %q", etag, js.Header().Get("Cache-Control"))
	}
	if w := serve(t, h, http.MethodGet, "/ui/app.js", "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: %d, want 304", w.Code)
	}
	if w := serve(t, h, http.MethodHead, "/"); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD / = %d with %d bytes, want 200 and no body", w.Code, w.Body.Len())
	}

	for _, path := range []string{"/ui/", "/ui/nope.js", "/ui/../index.html", "/index.html", "/static/app.js"} {
		if w := serve(t, h, http.MethodGet, path); w.Code != http.StatusNotFound || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s = %d %q, want the notFound handler's 404", path, w.Code, w.Header().Get("Content-Type"))
		}
	}
}
