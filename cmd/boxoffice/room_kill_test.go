package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/cmd/boxoffice/demo"
)

// TestWaitingRoomKill: the real binary is killed with SIGKILL while
// visitors wait; after a restart every customer has the same ticket and a
// position no larger than before, and an admission token issued before the
// kill is still honoured.
func TestWaitingRoomKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, bin, data)
	admin := &httpClient{base: srv.base, token: killAdminToken, http: http.DefaultClient}
	def := demo.Events(time.Now())[0]
	def.ID = "room-kill"
	def.WaitingRoom = nil
	body := map[string]any{}
	raw, _ := json.Marshal(def)
	_ = json.Unmarshal(raw, &body)
	body["waitingRoom"] = map[string]any{"enabled": true, "admitPerSecond": 1, "maxActive": 2}
	if code, out := admin.do("POST", "/v1/admin/events", body, nil); code != 201 {
		t.Fatalf("create: %d %s", code, out)
	}
	type ticket struct {
		Ticket         string `json:"ticket"`
		Status         string `json:"status"`
		Position       *int   `json:"position"`
		AdmissionToken string `json:"admissionToken"`
	}
	type buyer struct {
		c      *httpClient
		before ticket
	}
	buyers := make([]*buyer, 8)
	for i := range buyers {
		c := &httpClient{base: srv.base, http: http.DefaultClient}
		var s struct{ Token string }
		c.do("POST", "/v1/sessions", nil, &s)
		c.token = s.Token
		b := &buyer{c: c}
		if code, out := c.do("POST", "/v1/events/room-kill/queue", nil, &b.before); code != 201 {
			t.Fatalf("join: %d %s", code, out)
		}
		buyers[i] = b
	}
	var admitted *buyer
	deadline := time.Now().Add(15 * time.Second)
	for admitted == nil && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		for _, b := range buyers {
			b.c.do("GET", "/v1/events/room-kill/queue/"+b.before.Ticket, nil, &b.before)
			if b.before.Status == "admitted" && admitted == nil {
				admitted = b
			}
		}
	}
	if admitted == nil {
		t.Fatalf("nobody admitted within 15 s; logs:\n%s", srv.logs)
	}
	srv.kill(t)
	srv = startServer(t, bin, data)
	for i, b := range buyers {
		b.c.base = srv.base
		var now ticket
		if code, out := b.c.do("GET", "/v1/events/room-kill/queue/"+b.before.Ticket, nil, &now); code != 200 {
			t.Fatalf("buyer %d after the restart: %d %s", i, code, out)
		}
		if now.Ticket != b.before.Ticket {
			t.Errorf("buyer %d: ticket %s, before %s", i, now.Ticket, b.before.Ticket)
		}
		if b.before.Position != nil && now.Position != nil && *now.Position > *b.before.Position {
			t.Errorf("buyer %d moved back from %d to %d", i, *b.before.Position, *now.Position)
		}
	}
	var seats struct{ Seats []struct{ ID string } }
	admitted.c.do("GET", "/v1/events/room-kill/seats", nil, &seats)
	req, _ := http.NewRequest("POST", srv.base+"/v1/reservations", jsonBody(map[string]any{"eventId": "room-kill", "seatIds": []string{seats.Seats[0].ID}}))
	req.Header.Set("Authorization", "Bearer "+admitted.c.token)
	req.Header.Set("Admission-Token", admitted.before.AdmissionToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("hold with the admission token issued before the kill: %d", resp.StatusCode)
	}
}

func jsonBody(v any) *bytes.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}
