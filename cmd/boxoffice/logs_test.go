package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNoSecretsInLogs: at debug level, through requests with good, forged
// and expired-looking tokens, failing requests and a payment, the logs
// never show the admin token, a session token, the session secret or the
// webhook secret.
func TestNoSecretsInLogs(t *testing.T) {
	data := t.TempDir()
	var logs lockedBuffer
	m := &Main{
		Options: Options{Addr: "127.0.0.1:0", Data: data, AnonymousSessions: true, LogFormat: "json"},
		Logger:  slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := client{t, m.Addr()}
	admin := m.AdminToken()
	token := session(t, c)
	body := `{"id":"logs","name":"Logs","startsAt":"2030-01-01T20:00:00Z","onSaleAt":"2020-01-01T00:00:00Z","holdTtlSeconds":60,"maxSeatsPerCustomer":4,"currency":"EUR","prices":{"A":100},"seatingPlan":{"name":"p","categories":[{"name":"A","color":"#000"}],"zones":[{"name":"z","position":{"x":0,"y":0},"rows":[{"row_number":"1","position":{"x":0,"y":0},"seats":[{"seat_guid":"s1","seat_number":"1","position":{"x":0,"y":0},"category":"A"},{"seat_guid":"s2","seat_number":"2","position":{"x":10,"y":0},"category":"A"}]}]}]}}`
	if code, out := c.do("POST", "/v1/admin/events", admin, body); code != 201 {
		t.Fatalf("create event: %d %s", code, out)
	}
	code, out := c.do("POST", "/v1/reservations", token, `{"eventId":"logs","seatIds":["s1"]}`)
	if code != 201 {
		t.Fatalf("hold: %d %s", code, out)
	}
	for _, req := range []struct{ method, path, token, body string }{
		{"GET", "/v1/admin/events/logs/bookings", token, ""},                         // customer on the admin API: 403
		{"GET", "/v1/admin/events/logs/bookings", admin + "x", ""},                   // forged admin token: 401
		{"GET", "/v1/reservations", token[:len(token)-2] + "xx", ""},                 // forged signature: 401
		{"POST", "/v1/reservations", token, `{"eventId":"logs","seatIds":["nope"]}`}, // 404
		{"POST", "/v1/reservations", token, `{"eventId":`},                           // 400
		{"POST", "/v1/payments/webhooks/simulated", "", `{"id":"evt_1"}`},            // unsigned: 400
	} {
		c.do(req.method, req.path, req.token, req.body)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"admin token": admin, "session token": token}
	for _, name := range []string{"session-secret", "webhook-secret", "admin-token"} {
		b, err := os.ReadFile(filepath.Join(data, "secrets", name))
		if err != nil {
			t.Fatal(err)
		}
		secrets[name] = strings.TrimSpace(string(b))
	}
	text := logs.String()
	if !strings.Contains(text, "boxoffice is serving") {
		t.Fatalf("the logs were not captured:\n%s", text)
	}
	for name, secret := range secrets {
		if len(secret) < 16 {
			t.Fatalf("%s %q is too short to look for", name, secret)
		}
		if strings.Contains(text, secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
}
