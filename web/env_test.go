package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/persistence"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The one goroutine ignored, by name: protoactor's dead-letter log
	// throttle, which outlives an actor system by up to one second after a
	// dead letter and then ends by itself (see actors/actors_test.go).
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewThrottleWithLogger.func1"))
}

const testAdminToken = "test-admin-token-0123456789abcdef"

var testSessionSecret = []byte("test-session-secret-0123456789abcdef")

// env is a real server on a port-0 listener in front of real actors over a
// real Pebble journal in a temporary directory. Time is an actors.ManualClock
// shared by the actors and the web layer (token expiry, seat-map ageing).
type env struct {
	t      testing.TB
	clock  *actors.ManualClock
	store  *persistence.Store
	sys    *actors.System
	srv    *Server
	http   *httptest.Server
	client *http.Client
	// pay is the simulated payment provider in manual mode: a charge that
	// answers "processing" settles, and its webhook is delivered to this
	// server, only when a test calls pay.Settle.
	provider *payment.Simulated
	// webhooksDown makes the provider's webhook deliveries fail (the
	// server is unreachable for them).
	webhooksDown atomic.Bool
}

// testWebhookSecret signs the simulated provider's webhooks in tests.
const testWebhookSecret = "whsec_test_0123456789abcdef0123456789abcdef"

type envOption func(*Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newEnvWith(t, nil, opts...)
}

// newEnvWith is newEnv with a hook that may change the actor system's
// configuration (its journal, its request timeout) before it starts.
func newEnvWith(t testing.TB, actorsOpt func(*actors.Config), opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, clock: actors.NewManualClock(time.Now().UTC().Truncate(time.Millisecond))}
	log := testLogger(t)
	cfg := Config{
		Logger:            log,
		AdminToken:        testAdminToken,
		AnonymousSessions: true,
		SessionSecret:     testSessionSecret,
		Now:               e.clock.Now,
		PaymentProvider:   "simulated",
		WebhookSecret:     testWebhookSecret,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.store, err = persistence.Open(t.TempDir(), persistence.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.provider, err = payment.OpenSimulated(payment.SimulatedConfig{
		LedgerPath: filepath.Join(t.TempDir(), "ledger.jsonl"), WebhookSecret: testWebhookSecret,
		WebhookURL: func() string {
			if e.webhooksDown.Load() {
				return "http://127.0.0.1:1"
			}
			return e.http.URL
		},
		Manual: true, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	acfg := actors.Config{Journal: e.store, Clock: e.clock, Logger: log, Feed: srv.Hub(), Payments: e.provider}
	if actorsOpt != nil {
		actorsOpt(&acfg)
	}
	e.sys, err = actors.Start(context.Background(), acfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetSystem(e.sys)
	e.http = httptest.NewServer(srv.Handler())
	e.client = e.http.Client()
	t.Cleanup(func() {
		e.http.Close()
		e.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.sys.Close(ctx); err != nil {
			t.Errorf("close actors: %v", err)
		}
		if err := e.provider.Close(); err != nil {
			t.Errorf("close the payment provider: %v", err)
		}
		if err := e.store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return e
}

// testLogger logs warnings and worse to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; body is a string (sent as is), []byte, or anything
// else (sent as JSON); nil sends no body. headers are name, value pairs.
func (e *env) do(method, path, token string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// decode decodes the body into v.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem decodes a problem+json body.
func (r response) problem(t testing.TB) problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (status %d, body %s)", ct, r.status, r.body)
	}
	var p problem
	r.decode(t, &p)
	if p.Status != r.status || p.Code == "" || p.Title == "" || p.Type == "" {
		t.Fatalf("problem %+v does not match status %d", p, r.status)
	}
	return p
}

// wantProblem checks status and code.
func (r response) wantProblem(t testing.TB, status int, code engine.Code) problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	p := r.problem(t)
	if p.Code != string(code) {
		t.Fatalf("code = %q, want %q; body %s", p.Code, code, r.body)
	}
	return p
}

func (r response) want(t testing.TB, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
}

// session returns a fresh anonymous customer token.
func (e *env) session() (token, customerID string) {
	e.t.Helper()
	res := e.do(http.MethodPost, "/v1/sessions", "", nil)
	res.want(e.t, http.StatusCreated)
	var s sessionView
	res.decode(e.t, &s)
	return s.Token, s.CustomerID
}

var riversidePlan = func() []byte {
	data, err := os.ReadFile("../testdata/venues/riverside-concert-hall.json")
	if err != nil {
		panic(err)
	}
	return data
}()

var riversidePrices = map[string]int64{"Premium": 12000, "Standard": 6500, "Restricted View": 3500, "Wheelchair": 6500}

// eventBody is an admin event body for the Riverside plan, on sale now.
func (e *env) eventBody(id string) map[string]any {
	now := e.clock.Now()
	return map[string]any{
		"id": id, "name": "Test night at Riverside Concert Hall",
		"startsAt": now.Add(30 * 24 * time.Hour), "onSaleAt": now.Add(-time.Minute),
		"holdTtlSeconds": 60, "maxSeatsPerCustomer": 4, "currency": "EUR",
		"prices": riversidePrices, "seatingPlan": json.RawMessage(riversidePlan),
	}
}

// createEvent creates an event through the admin API; edit may change the body.
func (e *env) createEvent(id string, edit func(map[string]any)) engine.EventInfo {
	e.t.Helper()
	body := e.eventBody(id)
	if edit != nil {
		edit(body)
	}
	res := e.do(http.MethodPost, "/v1/admin/events", testAdminToken, body)
	res.want(e.t, http.StatusCreated)
	var info engine.EventInfo
	res.decode(e.t, &info)
	return info
}

// hold asks for seats and returns the response.
func (e *env) hold(token, eventID string, seats ...string) response {
	e.t.Helper()
	return e.do(http.MethodPost, "/v1/reservations", token, map[string]any{"eventId": eventID, "seatIds": seats})
}

// mustHold holds seats and returns the reservation.
func (e *env) mustHold(token, eventID string, seats ...string) reservationView {
	e.t.Helper()
	res := e.hold(token, eventID, seats...)
	res.want(e.t, http.StatusCreated)
	var v reservationView
	res.decode(e.t, &v)
	return v
}

// seatStatus reads the seat map (from the hub) and returns each seat's status.
func (e *env) seatStatuses(eventID string) (map[string]string, string) {
	e.t.Helper()
	res := e.do(http.MethodGet, "/v1/events/"+eventID+"/seats", "", nil)
	res.want(e.t, http.StatusOK)
	var m struct {
		EventID string `json:"eventId"`
		Version uint64 `json:"version"`
		Seats   []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"seats"`
	}
	res.decode(e.t, &m)
	out := make(map[string]string, len(m.Seats))
	for _, s := range m.Seats {
		out[s.ID] = s.Status
	}
	return out, res.header.Get("ETag")
}

// waitSeat polls the seat map until seat has status, for at most 1 s: the
// contract is that a durable change shows within a second.
func (e *env) waitSeat(eventID, seat, status string) {
	e.t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		got, _ := e.seatStatuses(eventID)
		if got[seat] == status {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("seat %s is %q after 1 s, want %q", seat, got[seat], status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func engineCode(s string) engine.Code { return engine.Code(s) }
