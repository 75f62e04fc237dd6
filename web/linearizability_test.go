package web

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine/enginetest"
)

// Linearizability (issue 8): concurrent customers hold, cancel, pay and read
// reservations over real HTTP against the in-process server (real chi
// router, real event actors, real Pebble journal), while the clock moves
// and the actor system restarts under them. Each run's history is checked
// with porcupine against the model in linearizability_model_test.go. After
// each run the seat map, eventually consistent by design, must converge to
// what reading every reservation implies within 1 s.

var (
	linRunsFlag = flag.Int("linearizability.runs", 200, "randomized histories TestLinearizability checks")
	linSeedFlag = flag.Uint64("linearizability.seed", 0, "seed of TestLinearizability's first run (0: from the time); run i uses seed+i")
)

const (
	linClients        = 4
	linOpsPerClient   = 7
	linRequestTimeout = 3 * time.Second
	// linRunsPerEnv histories share one server and journal (each on an
	// event of its own): setting up a server costs as much as a history.
	linRunsPerEnv = 10
)

func newLinEnv(t *testing.T) *env {
	return newEnvWith(t, func(c *actors.Config) { c.RequestTimeout = linRequestTimeout })
}

func TestLinearizability(t *testing.T) {
	seed := *linSeedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	runs := *linRunsFlag
	start := time.Now()
	var ops, unknown, restarts int
	for first := 0; first < runs; first += linRunsPerEnv {
		n := min(linRunsPerEnv, runs-first)
		ok := t.Run(fmt.Sprintf("seeds=%d+%d", seed+uint64(first), n), func(t *testing.T) {
			e := newLinEnv(t)
			for i := first; i < first+n; i++ {
				s := seed + uint64(i)
				r := runLinearizability(t, e, fmt.Sprintf("lin%d", i), s, false)
				if r.result != porcupine.Ok {
					r.report(t, s)
				}
				ops, unknown, restarts = ops+r.ops, unknown+r.unknown, restarts+r.restarts
			}
		})
		if !ok {
			t.Fatalf("a history failed (its seed is above); the operations each client chooses are reproduced with -run 'TestLinearizability$' -linearizability.seed=N -linearizability.runs=1, the interleaving is not")
		}
	}
	t.Logf("%d histories (seeds %d…%d), %d operations, %d with unknown outcome, %d restarts, in %s",
		runs, seed, seed+uint64(runs)-1, ops, unknown, restarts, time.Since(start).Round(time.Millisecond))
}

// TestLinearizabilityBrokenEngine runs only in a child process built with
// the tag boxoffice_unsafe_double_sell, in which the engine skips its
// availability check (engine/unsafe_double_sell_on.go): the checker must
// then find a history that is not linearizable. TestLinearizabilityCanFail
// starts it.
func TestLinearizabilityBrokenEngine(t *testing.T) {
	if !linUnsafeDoubleSell {
		t.Skip("child-only test: TestLinearizabilityCanFail runs it with -tags boxoffice_unsafe_double_sell")
	}
	e := newLinEnv(t)
	for i := range 20 {
		seed := uint64(1000 + i)
		r := runLinearizability(t, e, fmt.Sprintf("broken%d", i), seed, true)
		if r.result == porcupine.Illegal {
			t.Logf("%s: seed %d, a history with the availability check skipped is not linearizable, as it must not be", linViolationMarker, seed)
			return
		}
	}
	t.Fatal("20 histories with the availability check skipped all passed the checker: it cannot catch a double sale")
}

const linViolationMarker = "LINEARIZABILITY VIOLATION FOUND"

// TestLinearizabilityCanFail proves the checks can fail: a child `go test`
// built with the tag boxoffice_unsafe_double_sell (the engine then sells a
// seat that is taken) must report that porcupine found a violation here,
// and that the deterministic simulation (actors.TestSimulation) found a
// seat in two reservations; one build serves both.
func TestLinearizabilityCanFail(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the packages again with another tag; skipped with -short")
	}
	if linUnsafeDoubleSell {
		t.Skip("this is the child build")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the child test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "test", "-tags", "boxoffice_unsafe_double_sell", "-count=1", "-v",
		"-run", "^(TestLinearizabilityBrokenEngine|TestSimulationBrokenEngine)$", ".", "../actors")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("child `go test -tags boxoffice_unsafe_double_sell` took %s", time.Since(start).Round(time.Millisecond))
	for _, want := range []string{
		linViolationMarker, "--- PASS: TestLinearizabilityBrokenEngine",
		"SIMULATION VIOLATION FOUND", "--- PASS: TestSimulationBrokenEngine",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Fatalf("with the availability check skipped the child test did not report %q (err %v): is engine.Event.Hold consulting unsafeSkipAvailabilityCheck? Child output:\n%s",
				want, err, lastLines(out, 60))
		}
	}
	if err != nil {
		t.Fatalf("child test: %v\n%s", err, lastLines(out, 60))
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// linRun is one checked history.
type linRun struct {
	result   porcupine.CheckResult
	info     porcupine.LinearizationInfo
	model    porcupine.Model
	history  []porcupine.Operation
	ops      int
	unknown  int
	restarts int
}

// report fails t with the history's visualization written to a file.
func (r linRun) report(t *testing.T, seed uint64) {
	t.Helper()
	path := "(not written)"
	if f, err := os.CreateTemp("", fmt.Sprintf("boxoffice-linearizability-%d-*.html", seed)); err == nil {
		if err := porcupine.Visualize(r.model, r.info, f); err == nil {
			path = f.Name()
		}
		f.Close()
	}
	var b strings.Builder
	for _, op := range r.history {
		ret := fmt.Sprint(op.Return)
		if op.Return == math.MaxInt64 {
			ret = "∞"
		}
		fmt.Fprintf(&b, "  [%d, %s] %s\n", op.Call, ret, r.model.DescribeOperation(op.Input, op.Output))
	}
	t.Fatalf("seed %d: porcupine says %s; visualization: %s; history:\n%s", seed, r.result, path, b.String())
}

// linHarness is the state of one run shared by its clients.
type linHarness struct {
	t       *testing.T
	e       *env
	eventID string
	tokens  []string

	tick atomic.Int64 // logical time of calls and returns
	opID atomic.Int64

	mu      sync.Mutex
	history []porcupine.Operation
	errs    []error
	unknown int

	// gate keeps new operations from starting while the actor system
	// restarts; the calls already in flight run into the restart.
	gate sync.RWMutex
	// gen is the context of the calls of the current actor system; a
	// restart cancels the previous one's, so that a call stuck on a
	// stopped actor ends (with an unknown outcome) instead of waiting
	// for its timeout.
	gen       context.Context
	cancelGen context.CancelFunc
	restarts  int

	clockMu sync.Mutex
}

func (h *linHarness) fail(err error) {
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
}

// runLinearizability runs one randomized history and checks it. lenient
// (the child build) skips the checks that a broken engine may fail in
// other ways than the one being proved.
func runLinearizability(t *testing.T, e *env, eventID string, seed uint64, lenient bool) linRun {
	// Whole seconds: expiries then fall exactly on clock steps at times.
	e.clock.Set(e.clock.Now().Truncate(time.Second).Add(time.Second))
	start := e.clock.Now().UnixMilli()
	h := &linHarness{t: t, e: e, eventID: eventID}
	h.gen, h.cancelGen = context.WithCancel(context.Background())
	defer func() { h.cancelGen() }()
	e.createEvent(h.eventID, func(b map[string]any) {
		b["seatingPlan"] = enginetest.GridPlan(1, linSeats)
		b["prices"] = map[string]int64{"Standard": 5000}
		b["holdTtlSeconds"] = linHoldTTLSeconds
		b["maxSeatsPerCustomer"] = linMaxPerCustomer
		b["paymentGraceSeconds"] = linGraceSeconds
	})
	for range linClients {
		tok, _ := e.session()
		h.tokens = append(h.tokens, tok)
	}

	rng := rand.New(rand.NewPCG(seed, 0x11ea))
	restartBy, restartAt := -1, -1
	if rng.IntN(2) == 0 { // half the runs restart mid-run
		restartBy, restartAt = rng.IntN(linClients), 1+rng.IntN(linOpsPerClient-1)
	}
	var wg sync.WaitGroup
	for c := range linClients {
		crng := rand.New(rand.NewPCG(seed, uint64(c)))
		at := -1
		if c == restartBy {
			at = restartAt
		}
		wg.Go(func() { h.client(c, crng, at) })
	}
	wg.Wait()
	if restartBy >= 0 {
		h.restarts++
	}

	// Everything acknowledged survives a restart: the final reads come
	// after one.
	if err := linRestart(e); err != nil {
		t.Fatalf("seed %d: final restart: %v", seed, err)
	}
	h.restarts++
	h.cancelGen()
	h.gen, h.cancelGen = context.WithCancel(context.Background())
	statuses := h.finalReads(lenient)
	if !lenient {
		for _, err := range h.errs {
			t.Errorf("seed %d: %v", seed, err)
		}
		if t.Failed() {
			t.FailNow()
		}
		h.checkSeatMap(seed, statuses)
	}

	model := linModel(start)
	res, info := porcupine.CheckOperationsVerbose(model, h.history, 30*time.Second)
	return linRun{result: res, info: info, model: model, history: h.history, ops: len(h.history), unknown: h.unknown, restarts: h.restarts}
}

// client runs one customer's operations, one after another.
func (h *linHarness) client(c int, rng *rand.Rand, restartAt int) {
	var known []string // reservations this customer heard of
	for i := range linOpsPerClient {
		if i == restartAt {
			h.restart()
		}
		h.gate.RLock()
		ctx := h.gen
		h.gate.RUnlock()
		pick := rng.IntN(100)
		switch {
		case pick < 8:
			h.advanceClock(c, time.Duration(5*(1+rng.IntN(9)))*time.Second)
		case pick < 45 || len(known) == 0:
			var seats uint8
			for seats == 0 || (rng.IntN(3) == 0 && bitsIn(seats) < 2) {
				seats |= 1 << rng.IntN(linSeats)
			}
			out := h.do(ctx, c, linInput{Kind: linHold, Client: c, Seats: seats})
			if out.Status == http.StatusCreated && !slices.Contains(known, out.ID) {
				known = append(known, out.ID)
			}
		case pick < 62:
			h.do(ctx, c, linInput{Kind: linRead, Client: c, ID: known[rng.IntN(len(known))]})
		case pick < 82:
			token := tokVisa
			if rng.IntN(5) == 0 {
				token = tokDeclined
			}
			h.do(ctx, c, linInput{Kind: linPay, Client: c, ID: known[rng.IntN(len(known))], Token: token})
		default:
			h.do(ctx, c, linInput{Kind: linCancel, Client: c, ID: known[rng.IntN(len(known))]})
		}
	}
}

func bitsIn(m uint8) int {
	n := 0
	for ; m != 0; m &= m - 1 {
		n++
	}
	return n
}

// advanceClock moves the shared clock forward, as an operation of the
// history: every decision reads the clock, so the checker places each
// operation before or after each clock step.
func (h *linHarness) advanceClock(c int, d time.Duration) {
	h.clockMu.Lock()
	defer h.clockMu.Unlock()
	at := h.e.clock.Now().Add(d)
	in := linInput{Kind: linClock, Client: c, At: at.UnixMilli()}
	call := h.tick.Add(1)
	h.e.clock.Set(at)
	h.record(c, in, call, linOutput{})
}

// restart closes the actor system while the other clients' calls are in
// flight and starts a new one on the same journal.
func (h *linHarness) restart() {
	h.gate.Lock()
	defer h.gate.Unlock()
	if err := linRestart(h.e); err != nil {
		h.fail(fmt.Errorf("restart: %w", err))
	}
	h.cancelGen()
	h.gen, h.cancelGen = context.WithCancel(context.Background())
}

// linRestart replaces the actor system by a new one recovering from the
// same journal, as a process restart would (env.restart with this test's
// request timeout; callable from any goroutine).
func linRestart(e *env) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.sys.Close(ctx); err != nil {
		return fmt.Errorf("close actors: %w", err)
	}
	sys, err := actors.Start(ctx, actors.Config{
		Journal: e.store, Clock: e.clock, Logger: testLogger(e.t), Feed: e.srv.Hub(), Payments: e.provider,
		RequestTimeout: linRequestTimeout,
	})
	if err != nil {
		return fmt.Errorf("restart actors: %w", err)
	}
	e.sys = sys
	e.srv.SetSystem(sys)
	return nil
}

func (h *linHarness) record(c int, in linInput, call int64, out linOutput) {
	ret := h.tick.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if out.Unknown {
		if in.Kind == linRead {
			return // a read that was not answered constrains nothing
		}
		ret = math.MaxInt64
		h.unknown++
	}
	h.history = append(h.history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
	if in.Kind == linPay && (out.Status == http.StatusOK || out.Status == http.StatusPaymentRequired) {
		// The payment started and settled within the call: two steps.
		in.Kind = linPaySettle
		h.history = append(h.history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
	}
}

// do performs one operation over HTTP and records it.
func (h *linHarness) do(ctx context.Context, c int, in linInput) linOutput {
	in.Op = int(h.opID.Add(1))
	var method, path string
	var body any
	switch in.Kind {
	case linHold:
		method, path = http.MethodPost, "/v1/reservations"
		var seats []string
		for i := range linSeats {
			if in.Seats&(1<<i) != 0 {
				seats = append(seats, fmt.Sprintf("A%d", i+1))
			}
		}
		body = map[string]any{"eventId": h.eventID, "seatIds": seats}
	case linCancel:
		method, path = http.MethodDelete, "/v1/reservations/"+in.ID
	case linPay:
		method, path = http.MethodPost, "/v1/reservations/"+in.ID+"/pay"
		body = map[string]any{"paymentToken": in.Token}
	case linRead:
		method, path = http.MethodGet, "/v1/reservations/"+in.ID
	}
	call := h.tick.Add(1)
	status, data, err := h.send(ctx, method, path, h.tokens[c], body)
	out := linOutput{Unknown: err != nil || status >= 500, Status: status}
	if !out.Unknown {
		if perr := parseLinOutput(status, data, &out); perr != nil {
			h.fail(fmt.Errorf("%s %s → %d %s: %w", method, path, status, data, perr))
		}
	}
	h.record(c, in, call, out)
	return out
}

func (h *linHarness) send(ctx context.Context, method, path, token string, body any) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.e.http.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := h.e.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	return res.StatusCode, data, err
}

// parseLinOutput fills out from a 2xx reservation or a problem document.
func parseLinOutput(status int, data []byte, out *linOutput) error {
	if status == http.StatusNoContent {
		return nil
	}
	if status >= 300 {
		var p problem
		if err := json.Unmarshal(data, &p); err != nil {
			return err
		}
		out.Code = p.Code
		var err error
		out.Seats, err = seatMask(p.UnavailableSeats)
		return err
	}
	var v reservationView
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	seats, err := seatMask(v.Seats)
	if err != nil {
		return err
	}
	out.ID, out.ResStatus, out.Reason, out.Seats, out.ExpiresAt = v.ID, v.Status, v.ReleaseReason, seats, v.ExpiresAt.UnixMilli()
	return nil
}

func seatMask(ids []string) (uint8, error) {
	var m uint8
	for _, id := range ids {
		var n int
		if _, err := fmt.Sscanf(id, "A%d", &n); err != nil || n < 1 || n > linSeats {
			return 0, fmt.Errorf("unknown seat %q", id)
		}
		m |= 1 << (n - 1)
	}
	return m, nil
}

// finalReads waits for payments in flight to settle, then reads every
// reservation each customer heard of or lists, as operations of the
// history, and returns the seat statuses those reads imply.
func (h *linHarness) finalReads(lenient bool) map[string]string {
	ids := make([][]string, linClients)
	for c := range linClients {
		for _, op := range h.history {
			in, out := op.Input.(linInput), op.Output.(linOutput)
			if in.Client == c && in.Kind == linHold && out.Status == http.StatusCreated && !slices.Contains(ids[c], out.ID) {
				ids[c] = append(ids[c], out.ID)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for c := range linClients {
		for {
			// A payment that a restart interrupted is finished by the new
			// actor system on its own (the journal is the outbox).
			h.e.clock.Set(h.e.clock.Now()) // deliver timers due now
			list, err := h.list(c)
			if err != nil {
				h.fail(err)
				break
			}
			paying := false
			for _, v := range list {
				paying = paying || v.Status == "paying"
				if !slices.Contains(ids[c], v.ID) {
					ids[c] = append(ids[c], v.ID)
				}
			}
			if !paying {
				break
			}
			if time.Now().After(deadline) {
				if !lenient {
					h.fail(fmt.Errorf("customer %d: a payment is still in progress 10 s after the final restart", c))
				}
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	statuses := make(map[string]string, linSeats)
	for i := range linSeats {
		statuses[fmt.Sprintf("A%d", i+1)] = "available"
	}
	for c := range linClients {
		for _, id := range ids[c] {
			out := h.do(h.gen, c, linInput{Kind: linRead, Client: c, ID: id})
			if out.Unknown {
				h.fail(fmt.Errorf("final read of %s: no answer (status %d)", id, out.Status))
				continue
			}
			st := map[string]string{"held": "reserved", "paying": "reserved", "booked": "booked"}[out.ResStatus]
			for i := range linSeats {
				if st != "" && out.Seats&(1<<i) != 0 {
					seat := fmt.Sprintf("A%d", i+1)
					if statuses[seat] != "available" && !lenient {
						h.fail(fmt.Errorf("seat %s is %s in two reservations (the second %s)", seat, statuses[seat], id))
					}
					statuses[seat] = st
				}
			}
		}
	}
	return statuses
}

func (h *linHarness) list(c int) ([]reservationView, error) {
	status, data, err := h.send(h.gen, http.MethodGet, "/v1/reservations?eventId="+h.eventID, h.tokens[c], nil)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("list customer %d's reservations: %d %s %v", c, status, data, err)
	}
	var body struct {
		Reservations []reservationView `json:"reservations"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, err
	}
	return body.Reservations, nil
}

// checkSeatMap: the seat map (the hub, eventually consistent by design)
// shows within 1 s what reading every reservation implies.
func (h *linHarness) checkSeatMap(seed uint64, want map[string]string) {
	h.t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		// Expiry timers that fell due at the clock's current time are
		// delivered when it is next set (ManualClock); a real clock would
		// have fired them.
		h.e.clock.Set(h.e.clock.Now())
		got, _ := h.e.seatStatuses(h.eventID)
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("seed %d: the seat map shows %v 1 s after the last change; the reservations say %v", seed, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
