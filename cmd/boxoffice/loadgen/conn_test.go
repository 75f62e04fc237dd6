package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

// TestBuyerAnswerDecode: the reflection-free decoder reads what
// encoding/json would.
func TestBuyerAnswerDecode(t *testing.T) {
	var p fastjson.Parser
	for _, body := range []string{
		``, `not json`, `[]`, `null`, `{"code":"seat_unavailable","detail":"x"}`,
		`{"id":"r1","status":"held","seats":["a","b\u00e9"],"expiresAt":"2026-01-01T00:00:00Z"}`,
		`{"token":"t","ticket":"k","position":3,"pollAfterSeconds":1.5,"admissionToken":"adm","status":"admitted"}`,
		`{"position":null,"counts":{"available":5,"reserved":2,"booked":1},"waitingRoom":{"enabled":true}}`,
		`{"bookingId":"b1","status":"booked","reason":"r","seats":[]}`,
		`{"code":"x","code":"y"}`, `{"seats":"not a list"}`, `{"counts":null,"waitingRoom":null}`,
	} {
		var want, got buyerAnswer
		_ = json.Unmarshal([]byte(body), &want)
		got.Code = "stale" // decode starts from the zero answer
		got.decode(&p, []byte(body))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", body, got, want)
		}
	}
}

// TestAppendHoldRequest: hold bodies are what json.Marshal writes.
func TestAppendHoldRequest(t *testing.T) {
	for _, req := range []holdRequest{
		{EventID: "e1", SeatIDs: []string{"s-1", "s-2"}},
		{EventID: "e<&>\"\\\n€", SeatIDs: []string{"ü"}},
		{EventID: "e1", BestAvailable: &bestAvailable{Quantity: 3, Category: "Front"}},
		{EventID: "e1", BestAvailable: &bestAvailable{Quantity: 1}},
	} {
		want, _ := json.Marshal(req)
		if got := appendHoldRequest(nil, &req); !bytes.Equal(got, want) {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

// TestExchange: answers, headers, Retry-After, a connection kept alive
// and one the server closed, the bound on connections, and timeouts.
func TestExchange(t *testing.T) {
	var conns atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /p/v1/hold", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		if json.NewDecoder(r.Body).Decode(&in) != nil || r.Header.Get("Authorization") != "Bearer tok" ||
			r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Admission-Token") != "adm" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"code":"seat_unavailable"}`))
	})
	mux.HandleFunc("GET /p/v1/plain", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.Header.Get("Admission-Token") != "" {
			w.WriteHeader(http.StatusBadRequest) // left over from the request before
			return
		}
		w.Write([]byte(`{"ok":true}`))
	})
	mux.HandleFunc("GET /p/v1/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte(`{}`))
	})
	mux.HandleFunc("GET /p/v1/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	api := newAPIClient(srv.URL+"/p/", 2, 100*time.Millisecond)
	defer api.close()
	x := api.newExchange(true)
	defer x.release()
	ctx := context.Background()
	a := x.do(ctx, http.MethodPost, "/v1/hold", "tok", []byte(`{"eventId":"e"}`), [][2]string{{"Admission-Token", "adm"}})
	if a.status != http.StatusConflict || a.retryAfter != 2*time.Second || string(a.body) != `{"code":"seat_unavailable"}` {
		t.Fatalf("hold: %+v %s", a, a.body)
	}
	for range 3 {
		if a = x.do(ctx, http.MethodGet, "/v1/plain", "", nil, nil); a.status != http.StatusOK {
			t.Fatalf("plain: %+v", a)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 4 requests in a row, want 1 kept alive", n)
	}
	// The server closes the connection: the next request opens another.
	if a = x.do(ctx, http.MethodGet, "/v1/close", "", nil, nil); a.status != http.StatusOK {
		t.Fatalf("close: %+v", a)
	}
	if a = x.do(ctx, http.MethodGet, "/v1/plain", "", nil, nil); a.status != http.StatusOK || conns.Load() != 2 {
		t.Fatalf("after close: %+v, %d connections", a, conns.Load())
	}
	// A kept connection the server dropped meanwhile: a GET is sent again
	// on a new one.
	srv.CloseClientConnections()
	time.Sleep(20 * time.Millisecond)
	if a = x.do(ctx, http.MethodGet, "/v1/plain", "", nil, nil); a.status != http.StatusOK {
		t.Fatalf("after the server dropped the connection: %+v", a)
	}
	// Timeout: no answer within RequestTimeout is a transport error.
	if a = x.do(ctx, http.MethodGet, "/v1/slow", "", nil, nil); a.code != codeTransport {
		t.Fatalf("slow: %+v", a)
	}
	// The bound: with both connections taken, a third request waits and
	// times out.
	if a = x.do(ctx, http.MethodGet, "/v1/plain", "", nil, nil); a.status != http.StatusOK {
		t.Fatalf("x: %+v", a)
	}
	y, z := api.newExchange(true), api.newExchange(true)
	defer y.release()
	defer z.release()
	if a = y.do(ctx, http.MethodGet, "/v1/plain", "", nil, nil); a.status != http.StatusOK {
		t.Fatalf("y: %+v", a)
	}
	start := time.Now()
	if a = z.do(ctx, http.MethodGet, "/v1/plain", "", nil, nil); a.code != codeTransport || time.Since(start) < 90*time.Millisecond {
		t.Fatalf("a third connection: %+v after %s", a, time.Since(start))
	}
	// Cancelling the context ends a request at once.
	y.release()
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, cancel)
	api.timeout = 5 * time.Second
	start = time.Now()
	if a = z.do(cctx, http.MethodGet, "/v1/slow", "", nil, nil); a.code != codeTransport || time.Since(start) > 250*time.Millisecond {
		t.Fatalf("cancelled: %+v after %s", a, time.Since(start))
	}
}
