package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestOpenAPICoversRoutes holds the embedded OpenAPI document and the router
// in step: every route is documented and every documented operation routed.
func TestOpenAPICoversRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	srv, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var routed []string
	err = chi.Walk(srv.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if route == "/" || strings.HasPrefix(route, "/ui/") {
			return nil // the browser UI's page and assets are not API
		}
		routed = append(routed, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(documented)
	slices.Sort(routed)
	if !slices.Equal(documented, routed) {
		t.Errorf("routes and OpenAPI differ\nrouted:     %v\ndocumented: %v", routed, documented)
	}
	// Every $ref resolves.
	var whole map[string]any
	_ = json.Unmarshal(openAPIDocument, &whole)
	for _, ref := range findRefs(whole) {
		parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		var node any = whole
		for _, p := range parts {
			m, _ := node.(map[string]any)
			node = m[p]
		}
		if node == nil {
			t.Errorf("dangling $ref %s", ref)
		}
	}
}

func findRefs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, findRefs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, findRefs(x)...)
		}
	}
	return out
}

// TestRouterProblems: unknown paths, wrong methods and a not-yet-ready
// system all answer problem+json.
func TestRouterProblems(t *testing.T) {
	srv, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}
	for _, tt := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/nope", 404, "not_found"},
		{"GET", "/v1/nope", 404, "not_found"},
		{"PUT", "/v1/reservations", 405, "method_not_allowed"},
		{"DELETE", "/v1/events", 405, "method_not_allowed"},
		{"GET", "/readyz", 503, "not_ready"},
		{"GET", "/v1/events/x", 503, "not_ready"},
	} {
		w := call(tt.method, tt.path)
		var p problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != tt.status || p.Code != tt.code ||
			w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d %s %s", tt.method, tt.path, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
	}
	if allow := call("PUT", "/v1/reservations").Header().Get("Allow"); allow != "GET, POST" {
		t.Errorf("Allow = %q, want GET, POST", allow)
	}
	if w := call("GET", "/healthz"); w.Code != 200 {
		t.Errorf("healthz: %d", w.Code)
	}
	if w := call("GET", "/v1/events"); w.Code != 200 || !strings.Contains(w.Body.String(), `"events":[]`) {
		t.Errorf("events: %d %s", w.Code, w.Body)
	}
}

// TestRecoverer: a panicking handler answers a problem+json 500.
func TestRecoverer(t *testing.T) {
	srv, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 500 || w.Header().Get("Content-Type") != "application/problem+json" || strings.Contains(w.Body.String(), "boom") {
		t.Errorf("%d %v %s", w.Code, w.Header(), w.Body)
	}
}

// TestRateLimit: past the limit a customer gets 429 problem+json with
// Retry-After; another customer is unaffected.
func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimitPerSecond = 3 })
	u1, _ := e.session()
	u2, _ := e.session()
	limited := 0
	for range 10 {
		res := e.do(http.MethodGet, "/v1/reservations", u1, nil)
		if res.status == http.StatusTooManyRequests {
			res.wantProblem(t, 429, codeRateLimited)
			if res.header.Get("Retry-After") == "" {
				t.Fatalf("429 without Retry-After: %v", res.header)
			}
			limited++
		}
	}
	if limited < 5 {
		t.Errorf("%d of 10 requests limited at 3/s, want at least 5", limited)
	}
	e.do(http.MethodGet, "/v1/reservations", u2, nil).want(t, 200)
	for range 5 { // operators are not limited
		e.do(http.MethodGet, "/v1/admin/events/none/bookings", testAdminToken, nil).wantProblem(t, 404, "event_not_found")
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.createEvent("metrics-ev", nil)
	e.do(http.MethodGet, "/v1/events/metrics-ev", "", nil).want(t, 200)
	res := e.do(http.MethodGet, "/metrics", "", nil)
	res.want(t, 200)
	for _, want := range []string{
		`boxoffice_http_requests_total{method="GET",route="/v1/events/{eventId}",status="200"} 1`,
		`boxoffice_event_seats{event="metrics-ev",status="available"} 1244`,
		`boxoffice_http_request_duration_seconds_bucket{method="POST",route="/v1/admin/events"`,
		"go_goroutines",
	} {
		if !strings.Contains(string(res.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		fmt.Println(string(res.body))
	}
}
