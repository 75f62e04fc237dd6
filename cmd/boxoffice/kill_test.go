package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/boxoffice/boxoffice/actors/payment"
)

// These tests build and run the real binary: they are what an operator
// sees, including a SIGKILL in the middle of a sale.

const killAdminToken = "kill-test-admin-token-0123456789abcdef"

// built is the binary the tests run, built once per test process (into a
// directory removed when TestMain ends).
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

func buildBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "boxoffice-test-bin-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "boxoffice")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type server struct {
	cmd  *exec.Cmd
	base string
	logs *bytes.Buffer
}

// startServer runs `boxoffice serve --demo` on dataDir and waits until it
// is ready.
func startServer(t *testing.T, bin, dataDir string) *server {
	t.Helper()
	addr := freeAddr(t)
	s := &server{base: "http://" + addr, logs: &bytes.Buffer{}}
	s.cmd = exec.Command(bin, "serve", "--demo", "--data", dataDir, "--addr", addr,
		"--admin-token", killAdminToken, "--rate-limit-per-second", "0", "--log-format", "json",
		"--simulated-payment-delay", "300ms")
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server not ready within 60 s; logs:\n%s", s.logs)
	return nil
}

func (s *server) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait()
}

type httpClient struct {
	base  string
	token string
	http  *http.Client
}

func (c *httpClient) do(method, path string, body any, out any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return resp.StatusCode, b
}

type reservationView struct {
	ID            string    `json:"id"`
	Status        string    `json:"status"`
	Seats         []string  `json:"seats"`
	ExpiresAt     time.Time `json:"expiresAt"`
	BookingID     string    `json:"bookingId"`
	ReleaseReason string    `json:"releaseReason"`
}

type ack struct {
	token     string
	res       reservationView
	paid      bool // a payment was accepted (200 booked or 202 paying)
	booked    bool // the payment was acknowledged (200 booked)
	cancelled bool // the cancel was acknowledged (204)
}

// TestCaseC17 (killed mid-sale): 32 concurrent clients hold and pay on the concert hall
// while the server is killed with SIGKILL; after a restart on the same data
// every acknowledged hold and booking is there and no seat is sold twice.
// Then `boxoffice verify` passes, and after one byte of one journal record is
// flipped it names the event and sequence, and the server refuses to serve
// that event (503 event_unavailable) while serving the other.
func TestCaseC17(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, bin, data)

	var seats []string
	{
		c := &httpClient{base: srv.base, http: http.DefaultClient}
		var m struct {
			Seats []struct{ ID string } `json:"seats"`
		}
		if code, body := c.do("GET", "/v1/events/riverside-concert-hall/seats", nil, &m); code != 200 || len(m.Seats) != 1244 {
			t.Fatalf("seat map: %d %d seats: %s", code, len(m.Seats), body)
		}
		for _, s := range m.Seats {
			seats = append(seats, s.ID)
		}
	}

	var mu sync.Mutex
	var acks []*ack
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := &httpClient{base: srv.base, http: &http.Client{Timeout: 10 * time.Second}}
			newSession := func() bool {
				var sess struct{ Token string }
				if code, body := c.do("POST", "/v1/sessions", nil, &sess); code != 201 {
					if code != 0 {
						t.Errorf("session: %d %s", code, body)
					}
					return false
				}
				c.token = sess.Token
				return true
			}
			if !newSession() {
				return
			}
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := 1 + rng.IntN(2)
				pick := make([]string, 0, n)
				for len(pick) < n {
					s := seats[rng.IntN(len(seats))]
					if len(pick) == 0 || pick[0] != s {
						pick = append(pick, s)
					}
				}
				var r reservationView
				code, _ := c.do("POST", "/v1/reservations", map[string]any{"eventId": "riverside-concert-hall", "seatIds": pick}, &r)
				if code == 0 {
					return // the server is gone
				}
				if code == 422 && !newSession() { // this buyer reached the per-customer limit
					return
				}
				if code != 201 {
					continue
				}
				a := &ack{token: c.token, res: r}
				mu.Lock()
				acks = append(acks, a)
				mu.Unlock()
				switch rng.IntN(3) {
				case 0, 1:
					// Some payments confirm by webhook 300 ms later: the
					// kill finds payments in flight.
					token := []string{"tok_visa", "tok_delayed", "tok_delayed_fail"}[rng.IntN(3)]
					var paid reservationView
					code, _ := c.do("POST", "/v1/reservations/"+r.ID+"/pay", map[string]any{"paymentToken": token}, &paid)
					mu.Lock()
					a.paid = code == 200 || code == 202
					a.booked = code == 200 && paid.Status == "booked"
					mu.Unlock()
				case 2:
					if code, _ := c.do("DELETE", "/v1/reservations/"+r.ID, nil, nil); code == 204 {
						mu.Lock()
						a.cancelled = true
						mu.Unlock()
					}
				}
			}
		}(i)
	}
	// Let the sale run, then kill the server in the middle of it.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acks)
		mu.Unlock()
		if n >= 600 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.kill(t)
	close(stop)
	wg.Wait()
	if len(acks) < 50 {
		t.Fatalf("only %d holds acknowledged before the kill; logs:\n%s", len(acks), srv.logs)
	}

	srv = startServer(t, bin, data)
	now := time.Now()
	// Payments in flight at the kill settle: the journal's pending attempts
	// are asked again, the simulated provider's undelivered webhooks come.
	admin := &httpClient{base: srv.base, token: killAdminToken, http: http.DefaultClient}
	attempts := map[string]adminView{} // reservation → its admin view, once settled
	settleBy := time.Now().Add(30 * time.Second)
	for _, a := range acks {
		if !a.paid {
			continue
		}
		for {
			var v adminView
			if code, body := admin.do("GET", "/v1/admin/reservations/"+a.res.ID, nil, &v); code != 200 {
				t.Fatalf("admin reservation %s: %d %s", a.res.ID, code, body)
			}
			if v.settled() {
				attempts[a.res.ID] = v
				break
			}
			if time.Now().After(settleBy) {
				t.Fatalf("reservation %s still owes provider work 30 s after the restart: %+v", a.res.ID, v)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	held := map[string]string{} // seat → reservation, over live and booked reservations
	booked := 0
	for _, a := range acks {
		c := &httpClient{base: srv.base, token: a.token, http: http.DefaultClient}
		var got reservationView
		code, body := c.do("GET", "/v1/reservations/"+a.res.ID, nil, &got)
		if code != 200 {
			t.Errorf("acknowledged reservation %s: %d %s", a.res.ID, code, body)
			continue
		}
		switch {
		case a.booked && got.Status != "booked":
			t.Errorf("acknowledged booking %s reads %s", a.res.ID, got.Status)
		case a.cancelled && got.Status != "released":
			t.Errorf("acknowledged cancel of %s reads %s", a.res.ID, got.Status)
		case !a.booked && !a.cancelled && got.Status == "released" && got.ReleaseReason != "cancelled" && a.res.ExpiresAt.After(now):
			// An unacknowledged cancel may have landed; an expiry may not.
			t.Errorf("acknowledged hold %s released (%s) before its expiry %s", a.res.ID, got.ReleaseReason, a.res.ExpiresAt)
		}
		if got.Status == "booked" {
			booked++
		}
		if got.Status == "held" || got.Status == "paying" || got.Status == "booked" {
			for _, s := range got.Seats {
				if prev, dup := held[s]; dup {
					t.Errorf("seat %s in reservations %s and %s", s, prev, a.res.ID)
				}
				held[s] = a.res.ID
			}
		}
	}
	var bookings struct {
		Bookings []struct {
			ID    string   `json:"id"`
			Seats []string `json:"seats"`
		} `json:"bookings"`
	}
	if code, body := admin.do("GET", "/v1/admin/events/riverside-concert-hall/bookings", nil, &bookings); code != 200 {
		t.Fatalf("bookings: %d %s", code, body)
	}
	soldSeat := map[string]string{}
	for _, b := range bookings.Bookings {
		for _, s := range b.Seats {
			if prev, dup := soldSeat[s]; dup {
				t.Errorf("seat %s sold in bookings %s and %s", s, prev, b.ID)
			}
			soldSeat[s] = b.ID
		}
	}
	if len(bookings.Bookings) < booked {
		t.Errorf("%d bookings listed, %d acknowledged reservations read booked", len(bookings.Bookings), booked)
	}
	t.Logf("%d holds acknowledged, %d read booked after the restart", len(acks), booked)
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Wait(); err != nil {
		t.Fatalf("graceful shutdown: %v\n%s", err, srv.logs)
	}
	checkMoney(t, filepath.Join(data, "payments", "ledger.jsonl"), attempts)

	// verify: clean journals pass.
	out, err := exec.Command(bin, "verify", "--data", data).CombinedOutput()
	if err != nil {
		t.Fatalf("verify on a clean journal: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "riverside-concert-hall") || !strings.Contains(string(out), "harbour-stadium") {
		t.Fatalf("verify output names no events:\n%s", out)
	}

	// Flip one byte of record 3 of the concert hall.
	flipJournalByte(t, filepath.Join(data, "journal"), "riverside-concert-hall", 3)
	out, err = exec.Command(bin, "verify", "--data", data).CombinedOutput()
	if err == nil {
		t.Fatalf("verify passed a corrupt journal:\n%s", out)
	}
	if !strings.Contains(string(out), "riverside-concert-hall") || !strings.Contains(string(out), "3") {
		t.Fatalf("verify does not name the event and sequence:\n%s", out)
	}

	srv = startServer(t, bin, data)
	c := &httpClient{base: srv.base, http: http.DefaultClient}
	var sess struct{ Token string }
	c.do("POST", "/v1/sessions", nil, &sess)
	c.token = sess.Token
	var problem struct{ Code string }
	if code, body := c.do("POST", "/v1/reservations", map[string]any{"eventId": "riverside-concert-hall", "seatIds": []string{seats[0]}}, &problem); code != 503 || problem.Code != "event_unavailable" {
		t.Errorf("hold on the corrupt event: %d %s, want 503 event_unavailable", code, body)
	}
	if code, body := c.do("GET", "/v1/events/riverside-concert-hall/seats", nil, &problem); code != 503 || problem.Code != "event_unavailable" {
		t.Errorf("seat map of the corrupt event: %d %s, want 503 event_unavailable", code, body)
	}
	if code, body := c.do("POST", "/v1/reservations", map[string]any{"eventId": "harbour-stadium", "seatIds": []string{"F1-1-1"}}, nil); code != 201 {
		t.Errorf("hold on the healthy event: %d %s", code, body)
	}
}

// flipJournalByte flips one byte in the middle of journal record seq of an
// event, the way a bad disk would.
func flipJournalByte(t *testing.T, dir, eventID string, seq uint64) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer db.Close()
	key := fmt.Appendf(nil, "ev/%s/log/", eventID)
	key = append(key, byte(seq>>56), byte(seq>>48), byte(seq>>40), byte(seq>>32), byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq))
	val, closer, err := db.Get(key)
	if err != nil {
		t.Fatalf("record %d of %s: %v", seq, eventID, err)
	}
	v := bytes.Clone(val)
	closer.Close()
	v[len(v)/2] ^= 0x40
	if err := db.Set(key, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// adminView is what the money check reads of GET /v1/admin/reservations/{id}.
type adminView struct {
	Status   string `json:"status"`
	Attempts []struct {
		Attempt   uint32 `json:"attempt"`
		State     string `json:"state"`
		RefundRef string `json:"refundRef"`
	} `json:"paymentAttempts"`
}

// settled: no attempt still owes provider work.
func (v adminView) settled() bool {
	for _, a := range v.Attempts {
		if a.State == "pending" || a.State == "refund_pending" {
			return false
		}
	}
	return true
}

// checkMoney holds the provider's ledger against the journal's attempts: a
// charge that took money paid for a booking, or was refunded — never
// charged without a seat — and every attempt the journal calls succeeded
// took money at the provider.
func checkMoney(t *testing.T, ledger string, attempts map[string]adminView) {
	t.Helper()
	sim, err := payment.OpenSimulated(payment.SimulatedConfig{
		LedgerPath: ledger, WebhookSecret: "unused-for-reading", WebhookURL: func() string { return "" }, Manual: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	charged := map[string]payment.LedgerEntry{}
	refunded, booked := 0, 0
	for _, c := range sim.Charges() {
		res, attempt := c.Metadata[payment.MetadataReservation], c.Metadata[payment.MetadataAttempt]
		charged[res+"/"+attempt] = c
		if c.Status != payment.StatusSucceeded {
			continue
		}
		v, ok := attempts[res]
		if !ok {
			continue // a payment whose answer the kill cut off: not acknowledged, not checked here
		}
		state := ""
		for _, a := range v.Attempts {
			if fmt.Sprint(a.Attempt) == attempt {
				state = a.State
			}
		}
		switch {
		case c.RefundRef != "" && state == "refunded":
			refunded++
		case c.RefundRef == "" && state == "succeeded" && v.Status == "booked":
			booked++
		default:
			t.Errorf("charge %s took money: reservation %s is %s, attempt %s %q, refund %q", c.Ref, res, v.Status, attempt, state, c.RefundRef)
		}
	}
	for res, v := range attempts {
		for _, a := range v.Attempts {
			if c := charged[res+"/"+fmt.Sprint(a.Attempt)]; a.State == "succeeded" && c.Status != payment.StatusSucceeded {
				t.Errorf("reservation %s attempt %d is succeeded, the provider's charge is %q", res, a.Attempt, c.Status)
			}
		}
	}
	t.Logf("money: %d charges booked, %d refunded, %d payments checked", booked, refunded, len(attempts))
}
