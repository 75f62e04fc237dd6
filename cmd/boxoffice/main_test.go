package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/goleak"

	"github.com/boxoffice/boxoffice/web"
)

func TestMain(m *testing.M) {
	// The one goroutine ignored, by name: protoactor's dead-letter log
	// throttle, which outlives an actor system by up to one second after a
	// dead letter and then ends by itself (see actors/actors_test.go).
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir) // the binary the end-to-end tests built once
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewThrottleWithLogger.func1")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// startMain runs a Main on port 0 with the data directory.
func startMain(t *testing.T, o Options) *Main {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	if o.LogFormat == "" {
		o.LogFormat = "text"
	}
	m := &Main{Options: o, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path, token, body string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, "http://"+c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

// TestServeDemoRestart: --demo creates both demo events once, generates its
// secrets once (0600) and reuses them, so an admin token and a session token
// issued before a restart work after it, and an acknowledged hold survives.
func TestServeDemoRestart(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	data := t.TempDir()
	m := startMain(t, Options{Data: data, Demo: true, RateLimitPerSecond: 50})
	c := client{t, m.Addr()}

	status, body := c.do("GET", "/readyz", "", "")
	if status != 200 {
		t.Fatalf("readyz %d %s", status, body)
	}
	var list struct {
		Events []struct {
			ID, Name, Venue string
			Capacity        int
		}
	}
	_, body = c.do("GET", "/v1/events", "", "")
	if err := json.Unmarshal(body, &list); err != nil || len(list.Events) != 2 {
		t.Fatalf("events %s", body)
	}
	for _, ev := range list.Events {
		if !strings.Contains(ev.Name, ev.Venue) {
			t.Errorf("event %s: name %q lacks venue %q", ev.ID, ev.Name, ev.Venue)
		}
	}
	admin := m.AdminToken()
	for _, name := range []string{"admin-token", "session-secret"} {
		fi, err := os.Stat(filepath.Join(data, "secrets", name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("secret %s: %v %v", name, fi.Mode(), err)
		}
	}
	if status, body := c.do("GET", "/v1/admin/events/harbour-stadium/bookings", admin, ""); status != 200 {
		t.Fatalf("admin: %d %s", status, body)
	}
	_, body = c.do("POST", "/v1/sessions", "", "")
	var session struct{ Token string }
	_ = json.Unmarshal(body, &session)
	status, body = c.do("POST", "/v1/reservations", session.Token, `{"eventId":"riverside-concert-hall","seatIds":["stalls-A-1"]}`)
	if status != 201 {
		t.Fatalf("hold: %d %s", status, body)
	}
	var held struct{ ID string }
	_ = json.Unmarshal(body, &held)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m = startMain(t, Options{Data: data, Demo: true})
	c = client{t, m.Addr()}
	if m.AdminToken() != admin {
		t.Fatal("the admin token changed across a restart")
	}
	status, body = c.do("GET", "/v1/reservations/"+held.ID, session.Token, "")
	if status != 200 || !strings.Contains(string(body), `"status":"held"`) {
		t.Fatalf("after restart: %d %s", status, body)
	}
	_, body = c.do("GET", "/v1/events/riverside-concert-hall", "", "")
	if !strings.Contains(string(body), `"reserved":1`) {
		t.Fatalf("event after restart: %s", body)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := verify(data, &out, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("verify: %v\n%s", err, &out)
	}
	for _, want := range []string{
		"event riverside-concert-hall: ok: records 2, seq 2, seats available 1243 reserved 1 booked 0 blocked 0, reservations 1, bookings 0",
		"event harbour-stadium: ok: records 1, seq 1, seats available 48568",
		"2 events, 2 clean, 0 corrupt",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("verify output lacks %q:\n%s", want, &out)
		}
	}
}

// TestVerifyCorrupt: a damaged record makes verify fail naming the event,
// sequence and key; the other events still verify.
func TestVerifyCorrupt(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	data := t.TempDir()
	m := startMain(t, Options{Data: data, AdminToken: "admin-token-for-the-verify-test-0123"})
	c := client{t, m.Addr()}
	plan, err := os.ReadFile("../../testdata/venues/riverside-concert-hall.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"good", "bad"} {
		body := `{"id":"` + id + `","name":"N","startsAt":"2030-01-01T00:00:00Z","onSaleAt":"2020-01-01T00:00:00Z","holdTtlSeconds":60,` +
			`"maxSeatsPerCustomer":4,"currency":"EUR","prices":{"Premium":1,"Standard":1,"Restricted View":1,"Wheelchair":1},"seatingPlan":` + string(plan) + `}`
		if status, out := c.do("POST", "/v1/admin/events", m.AdminToken(), body); status != 201 {
			t.Fatalf("create %s: %d %s", id, status, out)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := pebble.Open(filepath.Join(data, "journal"), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := binary.BigEndian.AppendUint64([]byte("ev/bad/log/"), 1)
	val, closer, err := db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(val)
	closer.Close()
	damaged[len(damaged)/2] ^= 0xff
	if err := db.Set(key, damaged, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	err = verify(data, &out, slog.New(slog.DiscardHandler))
	if !errors.Is(err, errUnclean) {
		t.Fatalf("verify = %v, want errUnclean\n%s", err, &out)
	}
	for _, want := range []string{"event bad: CORRUPT: sequence 1, key ev/bad/log/0000000000000001", "event good: ok", "1 clean, 1 corrupt"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("verify output lacks %q:\n%s", want, &out)
		}
	}
}

// TestSecrets: a secret is created once with mode 0600 and reused.
func TestSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets", "s")
	a, err := loadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadOrCreateSecret(path)
	if err != nil || a != b || len(a) < secretBytes {
		t.Fatalf("%q %q %v", a, b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", fi.Mode())
	}
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateSecret(path); err == nil {
		t.Fatal("a short secret was accepted")
	}
}

// TestSecretsPassAsFlagValues: a generated secret never begins with "-", so
// `--admin-token $(cat data/secrets/admin-token)` always parses (with
// base64url, 1 secret in 64 did and was taken for a short flag).
func TestSecretsPassAsFlagValues(t *testing.T) {
	dir := t.TempDir()
	for i := range 1000 {
		s, err := loadOrCreateSecret(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(s, "-") || strings.TrimLeft(s, "0123456789abcdef") != "" {
			t.Fatalf("secret %q is not lowercase hex", s)
		}
	}
}

// TestFlagsFromEnv: every serve flag reads its BOXOFFICE_* variable.
func TestFlagsFromEnv(t *testing.T) {
	t.Setenv("BOXOFFICE_ADDR", ":9999")
	t.Setenv("BOXOFFICE_DEMO", "true")
	t.Setenv("BOXOFFICE_RATE_LIMIT_PER_SECOND", "0")
	t.Setenv("BOXOFFICE_LOG_FORMAT", "json")
	t.Setenv("BOXOFFICE_SNAPSHOT_EVERY", "500")
	t.Setenv("BOXOFFICE_JWT_HS256_SECRET", "hs")
	var args cli
	k, err := kong.New(&args)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Parse([]string{"serve", "--data", "/d"}); err != nil {
		t.Fatal(err)
	}
	o := args.Serve.Options
	if o.Addr != ":9999" || !o.Demo || o.RateLimitPerSecond != 0 || o.LogFormat != "json" || o.SnapshotEvery != 500 || o.Data != "/d" || o.JWTHS256Secret != "hs" {
		t.Fatalf("options %+v", o)
	}
	if _, err := k.Parse([]string{"serve", "--log-format", "xml"}); err == nil {
		t.Fatal("--log-format xml accepted")
	}
}

// TestServeGCPercentDefault: serve's --gc-percent default is the target the
// fan-out benchmark measures with (web.ServeGCPercent), and is read from
// BOXOFFICE_GC_PERCENT.
func TestServeGCPercentDefault(t *testing.T) {
	var args cli
	k, err := kong.New(&args)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Parse([]string{"serve"}); err != nil {
		t.Fatal(err)
	}
	if args.Serve.GCPercent != web.ServeGCPercent {
		t.Fatalf("--gc-percent default %d, web.ServeGCPercent %d", args.Serve.GCPercent, web.ServeGCPercent)
	}
	t.Setenv("BOXOFFICE_GC_PERCENT", "150")
	if _, err := k.Parse([]string{"serve"}); err != nil || args.Serve.GCPercent != 150 {
		t.Fatalf("BOXOFFICE_GC_PERCENT=150: %d %v", args.Serve.GCPercent, err)
	}
	err = (&serveCmd{GCPercent: 0}).Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "--gc-percent must be a percentage from 1 to 2147483647, not 0") {
		t.Fatalf("--gc-percent 0: %v", err)
	}
}
