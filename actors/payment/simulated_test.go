package payment_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
)

// receiver is a webhook endpoint on a real HTTP server: it verifies each
// delivery with VerifyWebhook and answers from a script of status codes
// (then 200).
type receiver struct {
	srv     *httptest.Server
	arrived chan arrival

	mu      sync.Mutex
	answers []int
}

// arrival is one delivery as the receiver saw it.
type arrival struct {
	at     time.Time
	path   string
	event  payment.WebhookEvent
	err    error // VerifyWebhook's
	answer int
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	t.Helper()
	r := &receiver{arrived: make(chan arrival, 100), answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ev, err := payment.VerifyWebhook(body, req.Header.Get("Stripe-Signature"), testSecret, time.Minute)
		r.mu.Lock()
		answer := http.StatusOK
		if len(r.answers) > 0 {
			answer, r.answers = r.answers[0], r.answers[1:]
		}
		r.mu.Unlock()
		if err != nil {
			answer = http.StatusBadRequest
		}
		w.WriteHeader(answer)
		r.arrived <- arrival{at: time.Now(), path: req.URL.Path, event: ev, err: err, answer: answer}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// next waits for the next delivery.
func (r *receiver) next(t *testing.T) arrival {
	t.Helper()
	select {
	case a := <-r.arrived:
		if a.err != nil {
			t.Fatalf("delivery to %s does not verify: %v", a.path, a.err)
		}
		if a.path != payment.SimulatedWebhookPath {
			t.Fatalf("delivery to %s, want %s", a.path, payment.SimulatedWebhookPath)
		}
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook arrived within 10 s")
	}
	panic("unreachable")
}

// openSim opens a simulated provider on ledger path (a fresh one when
// empty) sending its webhooks to rcv; it is closed at the end of the test.
func openSim(t *testing.T, path string, rcv *receiver, edit func(*payment.SimulatedConfig)) *payment.Simulated {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "ledger.jsonl")
	}
	cfg := payment.SimulatedConfig{
		LedgerPath:    path,
		WebhookSecret: testSecret,
		WebhookURL:    func() string { return "" },
		Manual:        true,
	}
	if rcv != nil {
		cfg.WebhookURL = func() string { return rcv.srv.URL }
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := payment.OpenSimulated(cfg)
	if err != nil {
		t.Fatalf("OpenSimulated: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func chargeReq(res string, attempt uint32, token string) payment.ChargeRequest {
	return payment.ChargeRequest{EventID: "ev1", ReservationID: res, Attempt: attempt, AmountCents: 4200, Currency: "EUR", Token: token}
}

// eventually waits up to 10 s for cond, for state changed by the
// provider's own goroutines.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func entry(t *testing.T, s *payment.Simulated, key string) payment.LedgerEntry {
	t.Helper()
	for _, e := range s.Charges() {
		if e.Key == key {
			return e
		}
	}
	t.Fatalf("no ledger entry %s", key)
	return payment.LedgerEntry{}
}

func TestSimulatedTokens(t *testing.T) {
	s := openSim(t, "", nil, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		token   string
		want    payment.Status
		decline string
	}{
		{"tok_visa", payment.StatusSucceeded, ""},
		{"tok_mastercard", payment.StatusSucceeded, ""},
		{"tok_chargeDeclined", payment.StatusFailed, "card_declined"},
		{"tok_delayed", payment.StatusProcessing, ""},
		{"tok_delayed_fail", payment.StatusProcessing, ""},
	} {
		if err := s.CheckToken(tc.token); err != nil {
			t.Errorf("CheckToken(%s): %v", tc.token, err)
		}
		got, err := s.Charge(ctx, chargeReq("r-"+tc.token, 1, tc.token))
		if err != nil {
			t.Fatalf("Charge %s: %v", tc.token, err)
		}
		if got.Status != tc.want || got.DeclineCode != tc.decline || !strings.HasPrefix(got.Ref, "pi_sim_") {
			t.Errorf("Charge %s: got %+v, want %s %q with a pi_sim_ ref", tc.token, got, tc.want, tc.decline)
		}
	}

	err := s.CheckToken("tok_amex")
	if engine.CodeOf(err) != engine.CodeInvalidRequest {
		t.Fatalf("CheckToken(tok_amex): got %v, want code invalid_request", err)
	}
	for _, known := range payment.SimulatedTokens() {
		if !strings.Contains(err.Error(), known) {
			t.Errorf("CheckToken's error %q does not name %s", err, known)
		}
	}
	if _, err := s.Charge(ctx, chargeReq("r-x", 1, "tok_amex")); engine.CodeOf(err) != engine.CodeInvalidRequest {
		t.Errorf("Charge with an unknown token: got %v, want invalid_request", err)
	}
	bad := chargeReq("r-y", 1, "tok_visa")
	bad.AmountCents = 0
	if _, err := s.Charge(ctx, bad); engine.CodeOf(err) != engine.CodeInvalidRequest {
		t.Errorf("Charge of 0 cents: got %v, want invalid_request", err)
	}
	if n := len(s.Charges()); n != 5 {
		t.Errorf("%d ledger entries, want 5 (rejected requests leave none)", n)
	}
}

func TestSimulatedIdempotency(t *testing.T) {
	s := openSim(t, "", nil, nil)
	ctx := context.Background()
	req := chargeReq("r1", 1, "tok_visa")
	first, err := s.Charge(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	refs := make([]string, 16)
	for i := range refs {
		wg.Go(func() {
			r, err := s.Charge(ctx, req)
			if err != nil {
				t.Errorf("repeat %d: %v", i, err)
			}
			refs[i] = r.Ref
		})
	}
	wg.Wait()
	for i, ref := range refs {
		if ref != first.Ref {
			t.Errorf("repeat %d: ref %s, want %s", i, ref, first.Ref)
		}
	}
	// A concurrent first charge of a new key is made once, too.
	other := chargeReq("r2", 1, "tok_delayed")
	for range 16 {
		wg.Go(func() {
			if _, err := s.Charge(ctx, other); err != nil {
				t.Errorf("concurrent charge: %v", err)
			}
		})
	}
	wg.Wait()
	if got := s.Charges(); len(got) != 2 {
		t.Fatalf("%d ledger entries, want 2: %+v", len(got), got)
	}
	changed := req
	changed.AmountCents++
	if _, err := s.Charge(ctx, changed); engine.CodeOf(err) != engine.CodeInvalidRequest {
		t.Errorf("same key, other amount: got %v, want invalid_request", err)
	}
	// A new attempt is a new charge.
	next, err := s.Charge(ctx, chargeReq("r1", 2, "tok_visa"))
	if err != nil || next.Ref == first.Ref {
		t.Errorf("attempt 2: got %+v, %v; want a charge other than %s", next, err, first.Ref)
	}
}

// TestSimulatedCrashDurability: what a call acknowledged is in the file
// before Close (a crash loses nothing), a torn last line is ignored, and a
// repeated Charge after reopening answers with the same charge.
func TestSimulatedCrashDurability(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.jsonl")
	s := openSim(t, path, nil, nil)
	ctx := context.Background()
	reqs := []payment.ChargeRequest{
		chargeReq("r1", 1, "tok_visa"), chargeReq("r2", 1, "tok_chargeDeclined"),
		chargeReq("r3", 1, "tok_delayed"), chargeReq("r4", 1, "tok_delayed"),
	}
	results := make([]payment.Result, len(reqs))
	for i, req := range reqs {
		var err error
		if results[i], err = s.Charge(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	refund, err := s.Refund(ctx, reqs[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Void(ctx, reqs[3]); err != nil {
		t.Fatal(err)
	}
	before := s.Charges()

	// The "crash": the bytes on disk now, without Close, plus the start of
	// a line a dying process was writing.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(dir, "crashed.jsonl")
	torn := append(data, `{"v":1,"key":"boxoffice-ev1-r9-1","ref":"pi_sim_0`...)
	if err := os.WriteFile(crashed, torn, 0o600); err != nil {
		t.Fatal(err)
	}

	r := openSim(t, crashed, nil, nil)
	if got, want := ledgerJSON(t, r.Charges()), ledgerJSON(t, before); got != want {
		t.Fatalf("after reopening:\ngot  %s\nwant %s", got, want)
	}
	for i, req := range reqs[:3] {
		got, err := r.Charge(ctx, req)
		if err != nil || got != results[i] {
			t.Errorf("Charge %s after reopening: got %+v, %v; want %+v", req.IdempotencyKey(), got, err, results[i])
		}
	}
	if got, err := r.Charge(ctx, reqs[3]); err != nil || got.Status != payment.StatusCanceled {
		t.Errorf("voided charge after reopening: got %+v, %v; want canceled", got, err)
	}
	if got, err := r.Refund(ctx, reqs[0]); err != nil || got != refund {
		t.Errorf("Refund after reopening: got %+v, %v; want %+v", got, err, refund)
	}
	// New writes go after the whole lines: the torn one was cut off.
	if _, err := r.Charge(ctx, chargeReq("r5", 1, "tok_visa")); err != nil {
		t.Fatal(err)
	}
	after := r.Charges()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	again := openSim(t, crashed, nil, nil)
	if got, want := ledgerJSON(t, again.Charges()), ledgerJSON(t, after); got != want {
		t.Fatalf("after a second reopening:\ngot  %s\nwant %s", got, want)
	}
}

func ledgerJSON(t *testing.T, entries []payment.LedgerEntry) string {
	t.Helper()
	b, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSimulatedLedgerFormat replays a ledger written in format v1 (golden
// file): the on-disk format stays readable.
func TestSimulatedLedgerFormat(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "ledger-v1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openSim(t, path, nil, nil)
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	md := func(res string) map[string]string {
		return map[string]string{"boxoffice_event": "ev1", "boxoffice_reservation": res, "boxoffice_attempt": "1"}
	}
	want := []payment.LedgerEntry{
		{Key: "boxoffice-ev1-r1-1", Ref: "pi_sim_000000000000000000000001", Status: payment.StatusSucceeded, AmountCents: 4200, Currency: "EUR",
			Token: "tok_visa", Metadata: md("r1"), CreatedAt: created, RefundRef: "re_sim_000000000000000000000001"},
		{Key: "boxoffice-ev1-r2-1", Ref: "pi_sim_000000000000000000000002", Status: payment.StatusFailed, AmountCents: 4200, Currency: "EUR",
			Token: "tok_delayed_fail", Metadata: md("r2"), CreatedAt: created.Add(time.Second), DeclineCode: "card_declined",
			WebhookEventID: "evt_sim_000000000000000000000002", WebhookCreated: 1772366404, WebhookAcked: true},
	}
	if got, want := ledgerJSON(t, s.Charges()), ledgerJSON(t, want); got != want {
		t.Fatalf("replayed:\ngot  %s\nwant %s", got, want)
	}
}

func TestSimulatedCorruptLedger(t *testing.T) {
	for name, content := range map[string]string{
		"bad line in the middle": "{\"v\":1,\"key\":\"k\",\"ref\":\"pi_sim_1\",\"status\":\"succeeded\"}\nnot json\n{\"v\":1,\"key\":\"k2\",\"ref\":\"pi_sim_2\",\"status\":\"succeeded\"}\n",
		"unknown version":        "{\"v\":2,\"key\":\"k\",\"ref\":\"pi_sim_1\",\"status\":\"succeeded\"}\n{\"v\":1,\"key\":\"k2\",\"ref\":\"pi_sim_2\",\"status\":\"succeeded\"}\n",
		"bad status":             "{\"v\":1,\"key\":\"k\",\"ref\":\"pi_sim_1\",\"status\":\"won\"}\n{\"v\":1,\"key\":\"k2\",\"ref\":\"pi_sim_2\",\"status\":\"succeeded\"}\n",
	} {
		path := filepath.Join(t.TempDir(), "ledger.jsonl")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := payment.OpenSimulated(payment.SimulatedConfig{LedgerPath: path, WebhookSecret: testSecret, WebhookURL: func() string { return "" }, Manual: true})
		if err == nil {
			s.Close()
			t.Errorf("%s: opened, want an error", name)
		}
	}
}

// TestSimulatedDelayedWebhook: a processing charge settles after the delay
// and its webhook reaches a real server and verifies.
func TestSimulatedDelayedWebhook(t *testing.T) {
	rcv := newReceiver(t)
	s := openSim(t, "", rcv, func(c *payment.SimulatedConfig) { c.Manual, c.Delay = false, 50*time.Millisecond })
	ctx := context.Background()
	start := time.Now()
	ok, err := s.Charge(ctx, chargeReq("r1", 1, "tok_delayed"))
	if err != nil || ok.Status != payment.StatusProcessing {
		t.Fatalf("Charge tok_delayed: %+v, %v", ok, err)
	}
	bad, err := s.Charge(ctx, chargeReq("r2", 3, "tok_delayed_fail"))
	if err != nil || bad.Status != payment.StatusProcessing {
		t.Fatalf("Charge tok_delayed_fail: %+v, %v", bad, err)
	}
	got := map[string]arrival{}
	for range 2 {
		a := rcv.next(t)
		got[a.event.Ref] = a
	}
	want := map[string]payment.WebhookEvent{
		ok.Ref:  {Type: "payment_intent.succeeded", Status: payment.StatusSucceeded, Ref: ok.Ref, EventID: "ev1", ReservationID: "r1", Attempt: 1},
		bad.Ref: {Type: "payment_intent.payment_failed", Status: payment.StatusFailed, Ref: bad.Ref, EventID: "ev1", ReservationID: "r2", Attempt: 3, DeclineCode: "card_declined"},
	}
	for ref, w := range want {
		a, found := got[ref]
		if !found {
			t.Fatalf("no webhook about %s; got %+v", ref, got)
		}
		if !strings.HasPrefix(a.event.ID, "evt_sim_") {
			t.Errorf("event id %q, want evt_sim_...", a.event.ID)
		}
		w.ID = a.event.ID
		if a.event != w {
			t.Errorf("got %+v, want %+v", a.event, w)
		}
		if wait := a.at.Sub(start); wait < 50*time.Millisecond {
			t.Errorf("webhook about %s after %s, before the 50ms delay", ref, wait)
		}
	}
	eventually(t, "both webhooks acknowledged in the ledger", func() bool {
		a, b := entry(t, s, chargeReq("r1", 1, "").IdempotencyKey()), entry(t, s, chargeReq("r2", 3, "").IdempotencyKey())
		return a.WebhookAcked && b.WebhookAcked
	})
	if r, err := s.Charge(ctx, chargeReq("r1", 1, "tok_delayed")); err != nil || r.Status != payment.StatusSucceeded || r.Ref != ok.Ref {
		t.Errorf("Charge repeated after settling: %+v, %v; want succeeded %s", r, err, ok.Ref)
	}
}

// TestSimulatedWebhookRetry: a 404 (the server does not know the
// reservation yet) or 500 is retried with backoff, with the same event id.
func TestSimulatedWebhookRetry(t *testing.T) {
	rcv := newReceiver(t, http.StatusNotFound, http.StatusInternalServerError, http.StatusNotFound)
	s := openSim(t, "", rcv, func(c *payment.SimulatedConfig) { c.Manual, c.Delay = false, time.Millisecond })
	if _, err := s.Charge(context.Background(), chargeReq("r1", 1, "tok_delayed")); err != nil {
		t.Fatal(err)
	}
	var as []arrival
	for range 4 {
		as = append(as, rcv.next(t))
	}
	for i, a := range as {
		if a.event.ID != as[0].event.ID {
			t.Errorf("delivery %d carries event %s, want the first's %s", i, a.event.ID, as[0].event.ID)
		}
	}
	for i, min := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		if gap := as[i+1].at.Sub(as[i].at); gap < min {
			t.Errorf("retry %d after %s, want at least %s", i+1, gap, min)
		}
	}
	eventually(t, "the webhook acknowledged", func() bool {
		return entry(t, s, chargeReq("r1", 1, "").IdempotencyKey()).WebhookAcked
	})
	select {
	case a := <-rcv.arrived:
		t.Errorf("delivered again after a 200: %+v", a)
	default:
	}
}

// TestSimulatedReopenResumes: after a restart, a charge still processing
// settles (at once when its time has passed) and an unacknowledged
// webhook is sent again with its event id.
func TestSimulatedReopenResumes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.jsonl")
	ctx := context.Background()

	down := newReceiver(t, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503)
	s := openSim(t, path, down, func(c *payment.SimulatedConfig) { c.Manual, c.Delay = false, time.Millisecond })
	if _, err := s.Charge(ctx, chargeReq("r1", 1, "tok_delayed")); err != nil {
		t.Fatal(err)
	}
	first := down.next(t)
	if first.answer != 503 {
		t.Fatalf("answer %d, want 503", first.answer)
	}
	slow := openSim(t, filepath.Join(dir, "slow.jsonl"), down, func(c *payment.SimulatedConfig) { c.Manual, c.Delay = false, time.Hour })
	if _, err := slow.Charge(ctx, chargeReq("r2", 1, "tok_delayed_fail")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := slow.Close(); err != nil {
		t.Fatal(err)
	}
	if e := entry(t, s, chargeReq("r1", 1, "").IdempotencyKey()); e.WebhookAcked || e.Status != payment.StatusSucceeded {
		t.Fatalf("before reopening: %+v, want succeeded and not acknowledged", e)
	}

	up := newReceiver(t)
	openSim(t, path, up, func(c *payment.SimulatedConfig) { c.Manual, c.Delay = false, time.Millisecond })
	if again := up.next(t); again.event.ID != first.event.ID {
		t.Errorf("resent event %s, want the same id %s", again.event.ID, first.event.ID)
	}
	// The processing charge made with a 1 h delay is due at once with 1 ms.
	openSim(t, filepath.Join(dir, "slow.jsonl"), up, func(c *payment.SimulatedConfig) { c.Manual, c.Delay = false, time.Millisecond })
	if a := up.next(t); a.event.Status != payment.StatusFailed || a.event.ReservationID != "r2" {
		t.Errorf("after reopening: %+v, want r2 failed", a.event)
	}
}

// TestSimulatedManualSettle: in Manual mode nothing settles on its own;
// Settle settles and delivers once, returning the delivery's error.
func TestSimulatedManualSettle(t *testing.T) {
	rcv := newReceiver(t, http.StatusNotFound)
	s := openSim(t, "", rcv, nil)
	ctx := context.Background()
	req := chargeReq("r1", 1, "tok_delayed")
	if _, err := s.Charge(ctx, req); err != nil {
		t.Fatal(err)
	}
	if e := entry(t, s, req.IdempotencyKey()); e.Status != payment.StatusProcessing {
		t.Fatalf("before Settle: %s, want processing", e.Status)
	}
	err := s.Settle(ctx, req.IdempotencyKey())
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Settle against a 404: got %v, want the 404", err)
	}
	first := rcv.next(t)
	if err := s.Settle(ctx, req.IdempotencyKey()); err != nil {
		t.Fatalf("Settle again: %v", err)
	}
	second := rcv.next(t)
	if second.event.ID != first.event.ID || second.event.Status != payment.StatusSucceeded {
		t.Errorf("second delivery %+v, want the first's event %s, succeeded", second.event, first.event.ID)
	}
	if e := entry(t, s, req.IdempotencyKey()); !e.WebhookAcked || e.Status != payment.StatusSucceeded {
		t.Errorf("after Settle: %+v, want succeeded and acknowledged", e)
	}
	if err := s.Settle(ctx, req.IdempotencyKey()); !errors.Is(err, payment.ErrUnknownCharge) {
		t.Errorf("Settle with nothing to send: got %v, want ErrUnknownCharge", err)
	}
	if err := s.Settle(ctx, "boxoffice-nope-1"); !errors.Is(err, payment.ErrUnknownCharge) {
		t.Errorf("Settle of an unknown key: got %v, want ErrUnknownCharge", err)
	}
}

func TestSimulatedVoid(t *testing.T) {
	rcv := newReceiver(t)
	s := openSim(t, "", rcv, nil)
	ctx := context.Background()

	delayed := chargeReq("r1", 1, "tok_delayed")
	charged, err := s.Charge(ctx, delayed)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Void(ctx, delayed); err != nil || got.Status != payment.StatusCanceled || got.Ref != charged.Ref {
		t.Fatalf("Void of a processing charge: %+v, %v; want canceled %s", got, err, charged.Ref)
	}
	if got, err := s.Void(ctx, delayed); err != nil || got.Status != payment.StatusCanceled {
		t.Errorf("Void repeated: %+v, %v; want canceled", got, err)
	}
	if got, err := s.Charge(ctx, delayed); err != nil || got.Status != payment.StatusCanceled {
		t.Errorf("Charge after Void: %+v, %v; want canceled (no later success)", got, err)
	}
	if err := s.Settle(ctx, delayed.IdempotencyKey()); err != nil {
		t.Fatal(err)
	}
	if a := rcv.next(t); a.event.Type != "payment_intent.canceled" || a.event.Status != payment.StatusCanceled || a.event.Ref != charged.Ref {
		t.Errorf("webhook after Void: %+v, want payment_intent.canceled about %s", a.event, charged.Ref)
	}

	visa := chargeReq("r2", 1, "tok_visa")
	if _, err := s.Charge(ctx, visa); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Void(ctx, visa); err != nil || got.Status != payment.StatusSucceeded {
		t.Errorf("Void of a succeeded charge: %+v, %v; want succeeded", got, err)
	}
	declined := chargeReq("r3", 1, "tok_chargeDeclined")
	if _, err := s.Charge(ctx, declined); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Void(ctx, declined); err != nil || got.Status != payment.StatusCanceled {
		t.Errorf("Void of a failed charge: %+v, %v; want canceled", got, err)
	}
	unseen := chargeReq("r4", 1, "tok_visa")
	if got, err := s.Void(ctx, unseen); err != nil || got.Status != payment.StatusCanceled {
		t.Errorf("Void of an attempt never charged: %+v, %v; want canceled", got, err)
	}
	if got, err := s.Charge(ctx, unseen); err != nil || got.Status != payment.StatusCanceled {
		t.Errorf("Charge after its Void: %+v, %v; want canceled, no money taken", got, err)
	}
}

func TestSimulatedRefund(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	s := openSim(t, path, nil, nil)
	ctx := context.Background()
	visa := chargeReq("r1", 1, "tok_visa")
	if _, err := s.Charge(ctx, visa); err != nil {
		t.Fatal(err)
	}
	first, err := s.Refund(ctx, visa)
	if err != nil || !strings.HasPrefix(first.Ref, "re_sim_") {
		t.Fatalf("Refund: %+v, %v; want a re_sim_ ref", first, err)
	}
	if again, err := s.Refund(ctx, visa); err != nil || again != first {
		t.Errorf("Refund repeated: %+v, %v; want %+v", again, err, first)
	}
	if got := entry(t, s, visa.IdempotencyKey()).RefundRef; got != first.Ref {
		t.Errorf("ledger refund ref %q, want %q", got, first.Ref)
	}
	declined := chargeReq("r2", 1, "tok_chargeDeclined")
	if _, err := s.Charge(ctx, declined); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refund(ctx, declined); !errors.Is(err, payment.ErrUnknownCharge) {
		t.Errorf("Refund of a declined charge: %v, want ErrUnknownCharge", err)
	}
	if _, err := s.Refund(ctx, chargeReq("r3", 1, "tok_visa")); !errors.Is(err, payment.ErrUnknownCharge) {
		t.Errorf("Refund of an unknown charge: %v, want ErrUnknownCharge", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := openSim(t, path, nil, nil)
	if again, err := r.Refund(ctx, visa); err != nil || again != first {
		t.Errorf("Refund after reopening: %+v, %v; want %+v", again, err, first)
	}
}

// TestSimulatedClose: Close ends a delivery that never succeeds (goleak
// in TestMain checks that no goroutine is left) and later calls fail.
func TestSimulatedClose(t *testing.T) {
	rcv := newReceiver(t, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404)
	s := openSim(t, "", rcv, func(c *payment.SimulatedConfig) { c.Manual, c.Delay = false, time.Millisecond })
	ctx := context.Background()
	req := chargeReq("r1", 1, "tok_delayed")
	if _, err := s.Charge(ctx, req); err != nil {
		t.Fatal(err)
	}
	rcv.next(t)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %s while a delivery was being retried", took)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Charge(ctx, req); !errors.Is(err, payment.ErrClosed) {
		t.Errorf("Charge after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Void(ctx, req); !errors.Is(err, payment.ErrClosed) {
		t.Errorf("Void after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Refund(ctx, req); !errors.Is(err, payment.ErrClosed) {
		t.Errorf("Refund after Close: %v, want ErrClosed", err)
	}
}

func TestOpenSimulatedConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	url := func() string { return "" }
	for name, cfg := range map[string]payment.SimulatedConfig{
		"no path":        {WebhookSecret: testSecret, WebhookURL: url},
		"no secret":      {LedgerPath: path, WebhookURL: url},
		"no url":         {LedgerPath: path, WebhookSecret: testSecret},
		"negative delay": {LedgerPath: path, WebhookSecret: testSecret, WebhookURL: url, Delay: -time.Second},
		"no directory":   {LedgerPath: filepath.Join(path, "missing", "ledger.jsonl"), WebhookSecret: testSecret, WebhookURL: url},
	} {
		if s, err := payment.OpenSimulated(cfg); err == nil {
			s.Close()
			t.Errorf("%s: opened, want an error", name)
		}
	}
}
