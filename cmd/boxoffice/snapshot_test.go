package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/cmd/boxoffice/demo"
)

// TestSnapshotRestoreRoundTrip: sell, snapshot, sell more, restore into a
// new directory, start from it, and find exactly the state at the snapshot
// — except a hold that lapsed since, which reads released/expired.
func TestSnapshotRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a := startMain(t, Options{Data: dirA, Demo: true})
	c := client{t, a.Addr()}
	admin := a.AdminToken()

	// A short-lived event for the hold that lapses after the snapshot.
	def := demo.Events(time.Now())[0]
	def.ID, def.HoldTTLSeconds, def.MaxHoldSeconds = "short-holds", 2, 0
	body, _ := json.Marshal(def)
	if code, out := c.do("POST", "/v1/admin/events", admin, string(body)); code != 201 {
		t.Fatalf("create event: %d %s", code, out)
	}
	token := session(t, c)
	hold := func(event, seat string) string {
		t.Helper()
		code, out := c.do("POST", "/v1/reservations", token, `{"eventId":"`+event+`","seatIds":["`+seat+`"]}`)
		if code != 201 {
			t.Fatalf("hold %s: %d %s", seat, code, out)
		}
		var r struct{ ID string }
		_ = json.Unmarshal(out, &r)
		return r.ID
	}
	const hall = "riverside-concert-hall"
	seats := seatIDs(t, c, hall)
	booked := hold(hall, seats[0])
	if code, out := c.do("POST", "/v1/reservations/"+booked+"/pay", token, `{"paymentToken":"tok_visa"}`); code != 200 {
		t.Fatalf("pay: %d %s", code, out)
	}
	held := hold(hall, seats[1])
	lapsing := hold("short-holds", seats[2])

	archive := filepath.Join(t.TempDir(), "snap.tar")
	var out bytes.Buffer
	if err := (&snapshotCmd{Target: "http://" + a.Addr(), Out: archive, AdminToken: admin, Timeout: time.Minute}).Run(ctx, &out); err != nil {
		t.Fatalf("snapshot: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "snapshot written") {
		t.Fatalf("snapshot output: %s", out.String())
	}
	// After the snapshot: more sales, and the held reservation cancelled.
	later := hold(hall, seats[3])
	if code, out := c.do("DELETE", "/v1/reservations/"+held, token, ""); code != 204 {
		t.Fatalf("cancel: %d %s", code, out)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	if err := restore(archive, dirB, &out, discardLogger()); err != nil {
		t.Fatalf("restore: %v\n%s", err, out.String())
	}
	if err := restore(archive, dirB, &out, discardLogger()); err == nil || !strings.Contains(err.Error(), "already has a journal") {
		t.Fatalf("restore over a journal: %v", err)
	}
	time.Sleep(2100 * time.Millisecond) // the short hold lapses while the copy is down
	b := startMain(t, Options{Data: dirB})
	cb := client{t, b.Addr()}
	state := func(id string) (status, reason string) {
		t.Helper()
		code, out := cb.do("GET", "/v1/admin/reservations/"+id, b.AdminToken(), "")
		if code == 404 {
			return "missing", ""
		}
		var v struct{ Status, ReleaseReason string }
		if err := json.Unmarshal(out, &v); err != nil || code != 200 {
			t.Fatalf("reservation %s: %d %s", id, code, out)
		}
		return v.Status, v.ReleaseReason
	}
	for id, want := range map[string]string{booked: "booked/", held: "held/", lapsing: "released/expired", later: "missing/"} {
		st, reason := state(id)
		if st+"/"+reason != want {
			t.Errorf("reservation %s after restore: %s/%s, want %s", id, st, reason, want)
		}
	}
	var m struct{ Seats []struct{ ID, Status string } }
	_, raw := cb.do("GET", "/v1/events/"+hall+"/seats", "", "")
	_ = json.Unmarshal(raw, &m)
	status := map[string]string{}
	for _, s := range m.Seats {
		status[s.ID] = s.Status
	}
	if status[seats[0]] != "booked" || status[seats[1]] != "reserved" || status[seats[3]] != "available" {
		t.Errorf("seat map after restore: %s %s %s", status[seats[0]], status[seats[1]], status[seats[3]])
	}
}

// TestRestoreRefusesBadArchives: an archive with an entry outside journal/,
// a link, or no journal at all restores nothing.
func TestRestoreRefusesBadArchives(t *testing.T) {
	for name, entries := range map[string][]tar.Header{
		"escape":   {{Name: "journal/../../evil", Typeflag: tar.TypeReg, Size: 1}},
		"absolute": {{Name: "/etc/evil", Typeflag: tar.TypeReg, Size: 1}},
		"other":    {{Name: "secrets/admin-token", Typeflag: tar.TypeReg, Size: 1}},
		"symlink":  {{Name: "journal/x", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}},
		"empty":    {{Name: "journal/", Typeflag: tar.TypeDir}},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range entries {
				h.Mode = 0o600
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
				if h.Size > 0 {
					_, _ = tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
				}
			}
			_ = tw.Close()
			archive := filepath.Join(t.TempDir(), "bad.tar")
			if err := os.WriteFile(archive, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(t.TempDir(), "data")
			var out bytes.Buffer
			if err := restore(archive, data, &out, discardLogger()); err == nil {
				t.Fatal("a bad archive was restored")
			}
			if _, err := os.Stat(filepath.Join(data, "journal")); !os.IsNotExist(err) {
				t.Fatalf("a journal appeared: %v", err)
			}
			if _, err := os.Stat(filepath.Join(data, "journal.restoring")); !os.IsNotExist(err) {
				t.Fatalf("the staging copy was left: %v", err)
			}
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// session returns a new anonymous customer's token.
func session(t *testing.T, c client) string {
	t.Helper()
	code, out := c.do("POST", "/v1/sessions", "", "")
	var s struct{ Token string }
	if err := json.Unmarshal(out, &s); err != nil || code != 201 {
		t.Fatalf("session: %d %s", code, out)
	}
	return s.Token
}

// seatIDs lists an event's seats in plan order.
func seatIDs(t *testing.T, c client, eventID string) []string {
	t.Helper()
	code, out := c.do("GET", "/v1/events/"+eventID+"/seats", "", "")
	var m struct{ Seats []struct{ ID string } }
	if err := json.Unmarshal(out, &m); err != nil || code != 200 {
		t.Fatalf("seats: %d %.200s", code, out)
	}
	ids := make([]string, len(m.Seats))
	for i, s := range m.Seats {
		ids[i] = s.ID
	}
	return ids
}
