package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file holds what every engine test shares: small inline plans, event
// definitions, the real venue plans, and the invariant-checking harness that
// wraps an *Event so that every command is followed by CheckInvariants.

// t0 is the on-sale moment of the test events; scenario times are seconds
// after it.
var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// at returns t0 plus seconds (fractions allowed).
func at(seconds float64) time.Time {
	return t0.Add(time.Duration(seconds * float64(time.Second)))
}

// knownCodes is every Code the engine may return.
var knownCodes = map[Code]bool{
	CodeBookingNotFound: true, CodeAdmissionBudgetExceeded: true, CodeAdmissionRequired: true, CodeTicketNotFound: true, CodeQueueFull: true,
	CodeInvalidRequest: true, CodeInvalidPlan: true, CodeEventNotFound: true, CodeEventExists: true,
	CodeEventCancelled: true, CodeSalesNotOpen: true, CodeSalesClosed: true, CodeSeatNotFound: true,
	CodeLimitExceeded: true, CodeSeatUnavailable: true, CodeSeatHeld: true,
	CodeReservationNotFound: true, CodeReservationExpired: true, CodeReservationReleased: true,
	CodePaymentInProgress: true, CodePaymentDeclined: true, CodeAlreadyBooked: true,
	CodeNotPaying: true, CodeCorruptRecord: true, CodeOrphanSeat: true, CodeNoAdjacentSeats: true,
}

// planSpec describes a small grid plan: rows named by Rows, each with
// SeatsPerRow seats "<row>-<n>", row i in category Cats[i%len(Cats)].
type planSpec struct {
	Rows        []string
	SeatsPerRow int
	Cats        []string
}

func (p planSpec) json() json.RawMessage {
	type pos struct {
		X int `json:"x"`
		Y int `json:"y"`
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
	type cat struct {
		Name  string `json:"name"`
		Color string `json:"color"`
	}
	var rows []row
	for ri, name := range p.Rows {
		r := row{Number: name}
		for n := 1; n <= p.SeatsPerRow; n++ {
			r.Seats = append(r.Seats, seat{
				GUID: fmt.Sprintf("%s-%d", name, n), Number: fmt.Sprint(n),
				Position: pos{X: 30 * n, Y: 100 + 40*ri}, Category: p.Cats[ri%len(p.Cats)],
			})
		}
		rows = append(rows, r)
	}
	var cats []cat
	for i, c := range p.Cats {
		cats = append(cats, cat{Name: c, Color: fmt.Sprintf("#%06x", 0x102030*(i+1))})
	}
	plan := map[string]any{
		"name":       "Test Hall",
		"categories": cats,
		"size":       map[string]int{"width": 40 * (p.SeatsPerRow + 2), "height": 100 + 40*len(p.Rows)},
		"zones": []any{
			map[string]any{"name": "Stage", "position": pos{}, "rows": []any{},
				"areas": []any{map[string]any{"text": "STAGE", "width": 200, "height": 40, "position": pos{X: 20, Y: 10}}}},
			map[string]any{"name": "Stalls", "position": pos{}, "rows": rows},
		},
	}
	b, err := json.Marshal(plan)
	if err != nil {
		panic(err)
	}
	return b
}

// smallPlan is the plan most tests use: rows A (Premium) and B (Standard),
// ten seats each, A-1 … A-10, B-1 … B-10.
var smallPlan = planSpec{Rows: []string{"A", "B"}, SeatsPerRow: 10, Cats: []string{"Premium", "Standard"}}

// testDef returns an event definition on plan: on sale at t0, starting 30
// days later, TTL 60 s, 4 seats per customer, grace 600 s.
func testDef(plan json.RawMessage, prices map[string]int64) EventDefinition {
	return EventDefinition{
		ID: "ev-1", Name: "Test Night", StartsAt: t0.Add(30 * 24 * time.Hour), OnSaleAt: t0,
		HoldTTLSeconds: 60, MaxSeatsPerCustomer: 4, Currency: "EUR", Prices: prices, SeatingPlan: plan,
	}
}

func smallDef() EventDefinition {
	return testDef(smallPlan.json(), map[string]int64{"Premium": 5000, "Standard": 3000})
}

// venueJSON reads a real venue plan from the top-level testdata, once.
var venueCache sync.Map

func venueJSON(t testing.TB, name string) json.RawMessage {
	t.Helper()
	if b, ok := venueCache.Load(name); ok {
		return b.([]byte)
	}
	b, err := os.ReadFile(filepath.Join("..", "testdata", "venues", name))
	if err != nil {
		t.Fatalf("read venue %s: %v", name, err)
	}
	venueCache.Store(name, b)
	return b
}

// venueDef returns an event definition on a real venue with a price for
// every category of its plan.
func venueDef(t testing.TB, name string, maxSeats, ttlSeconds int) EventDefinition {
	t.Helper()
	plan := venueJSON(t, name)
	p, err := ParsePlan(plan)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	prices := make(map[string]int64)
	for i, c := range p.Categories {
		prices[c.Name] = int64(1000 * (i + 2))
	}
	def := testDef(plan, prices)
	def.ID, def.MaxSeatsPerCustomer, def.HoldTTLSeconds = strings.TrimSuffix(name, ".json"), maxSeats, ttlSeconds
	return def
}

// tb is what the harness needs from *testing.T, *testing.B and *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

// harness wraps an event and checks it after every command: invariants
// (CheckInvariants(zero) after a command, CheckInvariants(now) after Tick),
// contiguous sequence numbers, known error codes, records stamped with the
// command's now, and, when checkRejects is set, that a rejected command
// changed nothing beyond the expiries it returned.
type harness struct {
	t            tb
	ev           *Event
	recs         []Record // every record returned so far, from EventCreated on
	checkRejects bool
	// plan, when set, is the decoded plan of recs[0], shared by replays
	// (the stadium's takes milliseconds to decode).
	plan *Plan
}

func newHarness(t tb, def EventDefinition) *harness {
	t.Helper()
	ev, recs, err := CreateEvent(def, t0.Add(-time.Hour))
	if err != nil {
		t.Fatalf("CreateEvent: %v", err)
	}
	h := &harness{t: t, ev: ev, checkRejects: true}
	h.absorb("create", t0.Add(-time.Hour), recs, nil, nil, false)
	return h
}

func newSmall(t tb) *harness { return newHarness(t, smallDef()) }

// do runs one command, then checks what it returned.
func (h *harness) do(name string, now time.Time, cmd func() ([]Record, error)) ([]Record, error) {
	h.t.Helper()
	var before []byte
	if h.checkRejects {
		before = h.ev.MarshalSnapshot()
	}
	recs, err := cmd()
	h.absorb(name, now, recs, err, before, false)
	return recs, err
}

func (h *harness) absorb(name string, now time.Time, recs []Record, err error, before []byte, tick bool) {
	h.t.Helper()
	for i, r := range recs {
		want := uint64(len(h.recs) + 1)
		if r.Seq != want {
			h.t.Fatalf("%s: record %d of %d has seq %d, want %d", name, i, len(recs), r.Seq, want)
		}
		if r.AtUnixMilli != now.UnixMilli() {
			h.t.Fatalf("%s: record %d (%s) at %d, command at %d", name, r.Seq, r.Type, r.AtUnixMilli, now.UnixMilli())
		}
		h.recs = append(h.recs, r)
	}
	if got := h.ev.Seq(); got != uint64(len(h.recs)) {
		h.t.Fatalf("%s: event at seq %d, %d records returned so far", name, got, len(h.recs))
	}
	var checkAt time.Time
	if tick {
		checkAt = now
	}
	if ierr := h.ev.CheckInvariants(checkAt); ierr != nil {
		h.t.Fatalf("%s: invariant broken: %v", name, ierr)
	}
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) || !knownCodes[e.Code] {
		h.t.Fatalf("%s: error %v (%T) has no known code", name, err, err)
	}
	// A rejected command's own effect is nothing: only expiries found due
	// — but for a success that came too late, whose money must go back
	// (ConfirmPayment journals the refund it owes).
	for i, r := range recs {
		if r.Type == RecordRefundRequested && i == len(recs)-1 && strings.HasPrefix(name, "confirm ") {
			continue
		}
		if r.Type != RecordHoldReleased || r.Reason != ReasonExpired {
			h.t.Fatalf("%s rejected (%v) but returned %s %s reason %s", name, err, r.Type, r.ReservationID, r.Reason)
		}
	}
	if before != nil {
		replica, rerr := RestoreEvent(h.recs[0], before)
		if rerr != nil {
			h.t.Fatalf("%s: restore the state before: %v", name, rerr)
		}
		for _, r := range recs {
			if aerr := replica.Apply(r); aerr != nil {
				h.t.Fatalf("%s: apply %s to the state before: %v", name, r.Type, aerr)
			}
		}
		if got, want := h.ev.MarshalSnapshot(), replica.MarshalSnapshot(); !bytes.Equal(got, want) {
			h.t.Fatalf("%s rejected (%v) but changed more than its %d expiry records", name, err, len(recs))
		}
	}
}

func (h *harness) hold(now time.Time, cust, res string, seats ...string) ([]Record, error) {
	h.t.Helper()
	recs, _, err := h.holdID(now, cust, res, seats...)
	return recs, err
}

// holdID is hold that also returns the id of the reservation answering it:
// res, or an existing one a re-hold returned unchanged.
func (h *harness) holdID(now time.Time, cust, res string, seats ...string) ([]Record, string, error) {
	h.t.Helper()
	var id string
	recs, err := h.do("hold "+res, now, func() ([]Record, error) {
		recs, got, err := h.ev.Hold(now, HoldRequest{ReservationID: res, CustomerID: cust, SeatIDs: seats})
		id = got
		return recs, err
	})
	switch {
	case err == nil && id == "":
		h.t.Fatalf("hold %s: accepted without a reservation id", res)
	case err != nil && id != "":
		h.t.Fatalf("hold %s: refused (%v) with reservation id %q", res, err, id)
	case err == nil && id == res && !heldLast(recs, res):
		h.t.Fatalf("hold %s: accepted as a new reservation without its SeatsHeld record", res)
	}
	return recs, id, err
}

func (h *harness) holdBest(now time.Time, cust, res string, want BestAvailable) ([]Record, error) {
	h.t.Helper()
	return h.do("hold best "+res, now, func() ([]Record, error) {
		return h.ev.HoldBest(now, HoldBestRequest{ReservationID: res, CustomerID: cust, BestAvailable: want})
	})
}

func (h *harness) update(now time.Time, p EventPatch) ([]Record, error) {
	h.t.Helper()
	return h.do("update", now, func() ([]Record, error) { return h.ev.Update(now, p) })
}

func (h *harness) cancel(now time.Time, cust, res string) ([]Record, error) {
	h.t.Helper()
	return h.do("cancel "+res, now, func() ([]Record, error) { return h.ev.Cancel(now, cust, res) })
}

// pay begins a payment with tok_visa, or the token given.
func (h *harness) pay(now time.Time, cust, res string, token ...string) ([]Record, uint32, error) {
	h.t.Helper()
	tok := "tok_visa"
	if len(token) > 0 {
		tok = token[0]
	}
	var attempt uint32
	recs, err := h.do("pay "+res, now, func() ([]Record, error) {
		recs, a, err := h.ev.BeginPayment(now, cust, res, tok)
		attempt = a
		return recs, err
	})
	return recs, attempt, err
}

func (h *harness) confirm(now time.Time, res string, attempt uint32, booking string) ([]Record, error) {
	h.t.Helper()
	return h.do("confirm "+res, now, func() ([]Record, error) { return h.ev.ConfirmPayment(now, res, attempt, booking, PaymentEvidence{}) })
}

func (h *harness) fail(now time.Time, res string, attempt uint32) ([]Record, error) {
	h.t.Helper()
	return h.do("fail "+res, now, func() ([]Record, error) { return h.ev.FailPayment(now, res, attempt, PaymentEvidence{}) })
}

func (h *harness) void(now time.Time, res string, attempt uint32) ([]Record, error) {
	h.t.Helper()
	return h.do("void "+res, now, func() ([]Record, error) { return h.ev.VoidPayment(now, res, attempt) })
}

func (h *harness) refundBooking(now time.Time, booking string) ([]Record, error) {
	h.t.Helper()
	return h.do("refund "+booking, now, func() ([]Record, error) {
		recs, _, err := h.ev.RefundBooking(now, booking)
		return recs, err
	})
}

func (h *harness) completeRefund(now time.Time, res string, attempt uint32) ([]Record, error) {
	h.t.Helper()
	return h.do("refunded "+res, now, func() ([]Record, error) { return h.ev.CompleteRefund(now, res, attempt, "re_"+res) })
}

func (h *harness) block(now time.Time, seats ...string) ([]Record, error) {
	h.t.Helper()
	return h.do("block", now, func() ([]Record, error) { return h.ev.Block(now, seats) })
}

func (h *harness) unblock(now time.Time, seats ...string) ([]Record, error) {
	h.t.Helper()
	return h.do("unblock", now, func() ([]Record, error) { return h.ev.Unblock(now, seats) })
}

func (h *harness) tick(now time.Time) []Record {
	h.t.Helper()
	recs := h.ev.Tick(now)
	for _, r := range recs {
		if r.Type != RecordHoldReleased || r.Reason != ReasonExpired {
			h.t.Fatalf("tick returned %s reason %s", r.Type, r.Reason)
		}
	}
	h.absorb("tick", now, recs, nil, nil, true)
	return recs
}

// mustHold holds and fails the test on error.
func (h *harness) mustHold(now time.Time, cust, res string, seats ...string) []Record {
	h.t.Helper()
	recs, err := h.hold(now, cust, res, seats...)
	if err != nil {
		h.t.Fatalf("hold %s %v by %s: %v", res, seats, cust, err)
	}
	return recs
}

// mustBook holds, pays and confirms.
func (h *harness) mustBook(now time.Time, cust, res string, seats ...string) {
	h.t.Helper()
	h.mustHold(now, cust, res, seats...)
	_, attempt, err := h.pay(now, cust, res)
	if err != nil {
		h.t.Fatalf("pay %s: %v", res, err)
	}
	if _, err := h.confirm(now, res, attempt, "bk-"+res); err != nil {
		h.t.Fatalf("confirm %s: %v", res, err)
	}
}

// status returns the status of the seat with id.
func (h *harness) status(id string) SeatStatus {
	h.t.Helper()
	i, ok := h.ev.Plan().SeatIndex(id)
	if !ok {
		h.t.Fatalf("no seat %q", id)
	}
	return h.ev.Statuses()[i]
}

func (h *harness) view(now time.Time, cust, res string) ReservationView {
	h.t.Helper()
	v, err := h.ev.Reservation(now, cust, res)
	if err != nil {
		h.t.Fatalf("reservation %s of %s: %v", res, cust, err)
	}
	return v
}

// replay rebuilds the event from every record returned so far, passing each
// through the binary codec first, and returns it.
func (h *harness) replay() *Event {
	h.t.Helper()
	return replayRecordsWith(h.t, h.recs, h.plan)
}

func replayRecords(t tb, recs []Record) *Event {
	t.Helper()
	return replayRecordsWith(t, recs, nil)
}

// replayRecordsWith replays recs; a non-nil plan stands for the one recs[0]
// carries.
func replayRecordsWith(t tb, recs []Record, plan *Plan) *Event {
	t.Helper()
	var ev *Event
	for i, r := range recs {
		d, err := DecodePayload(r.Seq, r.Type, r.AppendPayload(nil))
		if err != nil {
			t.Fatalf("decode record %d (%s): %v", r.Seq, r.Type, err)
		}
		if i == 0 && plan != nil {
			ev = sharedPlanEvent(t, d, plan)
			continue
		}
		if i == 0 {
			if ev, err = NewEvent(d); err != nil {
				t.Fatalf("NewEvent: %v", err)
			}
			continue
		}
		if err := ev.Apply(d); err != nil {
			t.Fatalf("apply record %d (%s): %v", r.Seq, r.Type, err)
		}
	}
	if err := ev.CheckInvariants(time.Time{}); err != nil {
		t.Fatalf("replayed event: %v", err)
	}
	return ev
}

// sharedPlanEvent is NewEvent(created) with its plan already decoded.
func sharedPlanEvent(t tb, created Record, plan *Plan) *Event {
	t.Helper()
	var def EventDefinition
	if err := json.Unmarshal(created.Definition, &def); err != nil {
		t.Fatalf("event definition: %v", err)
	}
	return newEvent(def, plan)
}

// checkReplay asserts that replaying every returned record gives the live
// event's snapshot byte for byte.
func (h *harness) checkReplay() {
	h.t.Helper()
	if got, want := h.replay().MarshalSnapshot(), h.ev.MarshalSnapshot(); !bytes.Equal(got, want) {
		h.t.Fatalf("replayed snapshot (%d bytes) differs from the live one (%d bytes)", len(got), len(want))
	}
}

func ptr[T any](v T) *T { return &v }

// wantCode fails unless err has code want (want "" means no error).
func wantCode(t tb, err error, want Code) {
	t.Helper()
	if got := CodeOf(err); got != want || (want == "" && err != nil) {
		t.Fatalf("got error %v (code %q), want code %q", err, got, want)
	}
}

// wantSeats fails unless err is an *Error listing exactly seats, in order.
func wantSeats(t tb, err error, seats ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an *Error listing %v", err, seats)
	}
	if !slices.Equal(e.Seats, seats) {
		t.Fatalf("got error seats %q, want %q", e.Seats, seats)
	}
}

// recordTypes renders records compactly for comparisons: "SeatsHeld r1".
func recordTypes(recs []Record) []string {
	var out []string
	for _, r := range recs {
		s := r.Type.String()
		if r.ReservationID != "" {
			s += " " + r.ReservationID
		}
		if r.Type == RecordHoldReleased {
			s += " " + r.Reason.String()
		}
		out = append(out, s)
	}
	return out
}

func wantRecords(t tb, recs []Record, want ...string) {
	t.Helper()
	if got := recordTypes(recs); !slices.Equal(got, want) {
		t.Fatalf("got records %q, want %q", got, want)
	}
}

// heldLast reports whether the last record other than the waiting room's
// (a claim follows the hold it claims with) holds reservation res.
func heldLast(recs []Record, res string) bool {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Type != RecordRoom {
			return recs[i].Type == RecordSeatsHeld && recs[i].ReservationID == res
		}
	}
	return false
}
