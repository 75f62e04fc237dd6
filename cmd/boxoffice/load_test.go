package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/boxoffice/boxoffice/cmd/boxoffice/loadgen"
)

const loadHallPlan = "../../testdata/venues/riverside-concert-hall.json"

// runLoadCLI runs the boxoffice command line in this process, as main
// does, and returns what it printed.
func runLoadCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	var c cli
	parser, err := kong.New(&c, kong.Name("boxoffice"),
		kong.BindTo(context.Background(), (*context.Context)(nil)),
		kong.BindTo(io.Writer(&out), (*io.Writer)(nil)))
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	err = kctx.Run()
	return out.String(), err
}

// TestLoadConcertHallSellsOut: `boxoffice load` sells a fresh concert hall
// (1,244 seats) to 20,000 buyers against a real server: it sells out, the
// oversell audit passes and agrees with the server, and the JSON, text and
// HTML reports carry every figure of the issue.
//
// The scenario keeps the test short under the race detector: the buyers
// are 1,000 customers with sessions made before the sale (a new session
// per buyer is tested in TestLoadAuditFailsOnDoubleSale); they look at the
// live seat map instead of loading the event page, so those who come
// after the sell-out leave without a request; nobody abandons a hold (an
// abandoned hold would keep the sale open until it expires), and holds
// last 60 s so that slow answers do not expire them before payment.
func TestLoadConcertHallSellsOut(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	m := startMain(t, Options{Data: t.TempDir(), Demo: true, RateLimitPerSecond: 0})
	dir := t.TempDir()
	jsonPath, htmlPath := filepath.Join(dir, "report.json"), filepath.Join(dir, "report.html")
	const buyers = 20_000
	out, err := runLoadCLI(t, "load", "--target", "http://"+m.Addr(), "--admin-token", m.AdminToken(),
		"--create-event-from", loadHallPlan, "--event", "load-test-hall", "--hold-ttl", "60s",
		"--buyers", strconv.Itoa(buyers), "--arrival", "steady", "--arrival-over", "8s", "--think", "100ms",
		"--pay-share", "0.9", "--cancel-share", "0.1", "--abandon-share", "0", "--no-event-page", "--customers", "1000",
		"--progress", "off", "--json", jsonPath, "--report", htmlPath)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep loadgen.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}

	if !rep.Audit.OK || len(rep.Audit.Problems) != 0 {
		t.Errorf("audit %+v", rep.Audit)
	}
	if !rep.SoldOut || rep.TimeToSellOutSeconds == nil || *rep.TimeToSellOutSeconds <= 0 || rep.SeatsSold != 1244 {
		t.Errorf("sold out %v after %v s, %d seats sold", rep.SoldOut, rep.TimeToSellOutSeconds, rep.SeatsSold)
	}
	sum := 0
	for _, n := range rep.Buyers.Outcomes {
		sum += n
	}
	if rep.Buyers.Planned != buyers || rep.Buyers.Arrived != buyers || sum != buyers {
		t.Errorf("buyers %+v (outcomes add up to %d)", rep.Buyers, sum)
	}
	if rep.HoldDecisionsPerSecond <= 0 || rep.GrantedHoldsPerSecond <= 0 || rep.BookingsPerSecond <= 0 || rep.PeakHoldDecisionsPerSecond <= 0 ||
		rep.HoldDecisions != rep.GrantedHolds+rep.RefusedHolds || rep.RefusedHolds == 0 {
		t.Errorf("rates: %g decisions/s, %g granted/s, %g bookings/s, peak %g; decisions %d = granted %d + refused %d",
			rep.HoldDecisionsPerSecond, rep.GrantedHoldsPerSecond, rep.BookingsPerSecond, rep.PeakHoldDecisionsPerSecond,
			rep.HoldDecisions, rep.GrantedHolds, rep.RefusedHolds)
	}
	for _, ep := range []string{"hold", "pay", "cancel"} {
		l := rep.Latency[ep]
		if l.Count == 0 || l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
			t.Errorf("latency of %s: %+v", ep, l)
		}
	}
	if rep.ErrorsByCode["no_adjacent_seats"]+rep.ErrorsByCode["seat_unavailable"] == 0 || rep.UnexpectedErrors != 0 {
		t.Errorf("errors by code %v, %d unexpected", rep.ErrorsByCode, rep.UnexpectedErrors)
	}
	if len(rep.Timeline) == 0 {
		t.Error("no timeline")
	}

	// The server agrees: every booking the report counts, every seat booked.
	c := client{t, m.Addr()}
	status, body := c.do("GET", "/v1/admin/events/load-test-hall/bookings", m.AdminToken(), "")
	var list struct{ Bookings []struct{ Seats []string } }
	if err := json.Unmarshal(body, &list); status != 200 || err != nil {
		t.Fatalf("bookings: %d %v", status, err)
	}
	if int64(len(list.Bookings)) != rep.Bookings || rep.Audit.Bookings != len(list.Bookings) {
		t.Errorf("server has %d bookings, the report %d (audit %d)", len(list.Bookings), rep.Bookings, rep.Audit.Bookings)
	}
	_, body = c.do("GET", "/v1/events/load-test-hall", "", "")
	if !strings.Contains(string(body), `"booked":1244`) {
		t.Errorf("event after the sale: %s", body)
	}

	for _, want := range []string{"decisions/s", "granted/s", "bookings/s", "p99.9", "sold out      after", "audit         OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	page, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(page, []byte("<svg")); n != 4 || bytes.Contains(page, []byte("<script")) {
		t.Errorf("HTML report: %d charts, script %v", n, bytes.Contains(page, []byte("<script")))
	}
}

// doubleSeller is a test-only proxy in front of a real server that
// double-sells one seat in the answer of GET .../bookings: it adds the
// first seat of the first booking to the second booking.
type doubleSeller struct {
	mu   sync.Mutex
	seat string // the seat it sold twice
}

func (d *doubleSeller) rewrite(res *http.Response) error {
	if res.Request.Method != http.MethodGet || !strings.HasSuffix(res.Request.URL.Path, "/bookings") || res.StatusCode != 200 {
		return nil
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return err
	}
	var list struct {
		Bookings []map[string]any `json:"bookings"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return err
	}
	if len(list.Bookings) < 2 {
		return errors.New("double seller: fewer than two bookings to put one seat into")
	}
	seat := list.Bookings[0]["seats"].([]any)[0]
	list.Bookings[1]["seats"] = append(list.Bookings[1]["seats"].([]any), seat)
	d.mu.Lock()
	d.seat = seat.(string)
	d.mu.Unlock()
	if body, err = json.Marshal(list); err != nil {
		return err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	res.ContentLength = int64(len(body))
	res.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// TestLoadAuditFailsOnDoubleSale: against a server that double-sells a
// seat (a test-only proxy rewriting the bookings answer), the boxoffice
// binary's load command fails the audit, exits 1 and names the seat.
func TestLoadAuditFailsOnDoubleSale(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	m := startMain(t, Options{Data: t.TempDir(), Demo: true, RateLimitPerSecond: 0})
	backend, err := url.Parse("http://" + m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	var seller doubleSeller
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	proxy := httputil.NewSingleHostReverseProxy(backend)
	proxy.Transport, proxy.ModifyResponse = tr, seller.rewrite
	front := httptest.NewServer(proxy)
	defer front.Close()

	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "load", "--target", front.URL, "--create-event-from", loadHallPlan,
		"--buyers", "500", "--arrival-over", "1s", "--think", "50ms", "--no-event-page", "--stop-when-sold-out", "--progress", "off")
	cmd.Env = append(os.Environ(), "BOXOFFICE_ADMIN_TOKEN="+m.AdminToken())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	seller.mu.Lock()
	seat := seller.seat
	seller.mu.Unlock()
	if seat == "" {
		t.Fatalf("the proxy never rewrote the bookings\n%s", &stderr)
	}
	want := "seat " + seat + " is in 2 bookings"
	if !strings.Contains(stderr.String(), want) || !strings.Contains(stdout.String(), want) {
		t.Errorf("the failure does not name seat %s (%q)\nstdout:\n%s\nstderr:\n%s", seat, want, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "audit         FAILED") {
		t.Errorf("the report does not say the audit failed:\n%s", &stdout)
	}
}

// loadStudioPlan writes a small venue plan (pretix seating-plan JSON):
// 8 rows of 25 seats, the front two rows "Front", the rest "Back".
func loadStudioPlan(t *testing.T) string {
	t.Helper()
	type pos struct {
		X float64 `json:"x"`
		Y float64 `json:"y"`
	}
	type seat struct {
		GUID     string `json:"seat_guid"`
		Number   string `json:"seat_number"`
		Position pos    `json:"position"`
		Category string `json:"category"`
	}
	type row struct {
		Number string `json:"row_number"`
		Seats  []seat `json:"seats"`
	}
	var rows []row
	for r := range 8 {
		name := string(rune('A' + r))
		cat := "Back"
		if r < 2 {
			cat = "Front"
		}
		var seats []seat
		for n := 1; n <= 25; n++ {
			seats = append(seats, seat{fmt.Sprintf("studio-%s-%d", name, n), strconv.Itoa(n), pos{float64(40 * n), float64(100 + 40*r)}, cat})
		}
		rows = append(rows, row{name, seats})
	}
	plan := map[string]any{
		"name":       "Load Test Studio",
		"categories": []map[string]string{{"name": "Front", "color": "#c0392b"}, {"name": "Back", "color": "#2980b9"}},
		"size":       map[string]int{"width": 1100, "height": 500},
		"zones":      []map[string]any{{"name": "Floor", "position": pos{}, "rows": rows}},
	}
	data, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "studio.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadWaitingRoom: on an event with a waiting room every buyer queues
// first, polls as told and holds with its admission token: no hold is
// refused for want of an admission, the sale (a 200-seat studio, 600
// buyers) sells out and the audit passes. The room admits by inventory, and
// admissions of buyers who ended without a booking end when they leave the
// room, so the last seats go at the pace of a poll each.
func TestLoadWaitingRoom(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	m := startMain(t, Options{Data: t.TempDir(), Demo: true, RateLimitPerSecond: 0})
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "report.json")
	out, err := runLoadCLI(t, "load", "--target", "http://"+m.Addr(), "--admin-token", m.AdminToken(),
		"--create-event-from", loadStudioPlan(t), "--event", "load-test-room", "--hold-ttl", "60s",
		"--waiting-room-admit-per-second", "200", "--buyers", "600", "--arrival-over", "2s", "--think", "100ms",
		"--pay-share", "0.9", "--cancel-share", "0.1", "--abandon-share", "0", "--no-event-page",
		"--progress", "off", "--max-duration", "100s", "--json", jsonPath)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep loadgen.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	wr := rep.WaitingRoom
	if !wr.Used || wr.Joined == 0 || wr.Admitted == 0 || rep.Latency["queueJoin"].Count == 0 {
		t.Errorf("waiting room %+v, join latency %+v", wr, rep.Latency["queueJoin"])
	}
	if n := rep.ErrorsByCode["admission_required"]; n != 0 || rep.UnexpectedErrors != 0 {
		t.Errorf("%d holds without a valid admission, %d unexpected errors: %v", n, rep.UnexpectedErrors, rep.ErrorsByCode)
	}
	if !rep.Audit.OK || !rep.SoldOut || rep.Bookings == 0 {
		t.Errorf("audit %+v, sold out %v, %d bookings", rep.Audit, rep.SoldOut, rep.Bookings)
	}
	for _, n := range rep.Notes {
		if strings.Contains(n, "waiting room") {
			t.Errorf("note %q: the server has a waiting room", n)
		}
	}
}
