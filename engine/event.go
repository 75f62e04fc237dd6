package engine

import (
	"bytes"
	"cmp"
	"container/heap"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Event is the seat inventory of one event: a pure, deterministic state
// machine. Commands take the current time from the caller, decide against the
// in-memory state, apply their own records and return them; Apply replays a
// record. The same state, command and now always give the same records.
//
// An Event is not safe for concurrent use: its owner (the event actor)
// serialises every call.
type Event struct {
	def        EventDefinition // SeatingPlan is dropped after parsing
	plan       *Plan
	categories []Category
	seq        uint64

	status []SeatStatus
	holder []*reservation // per seat: the live or booked reservation holding it

	reservations map[string]*reservation
	customers    map[string]*customer
	expiries     expiryHeap
	released     []*reservation // released reservations still retained, oldest first
	order        []*reservation // every retained reservation in creation order; nil where one was forgotten
	orderHoles   int            // nils in order
	bookings     map[string]*reservation
	counts       Counts

	// The waiting room (event_room.go), once enabled, and its
	// RoomRecordCreated record (snapshots carry both).
	room        *Room
	roomCreated RoomRecord

	// Best available (bestavailable.go): available seats per plan segment,
	// kept on every status change, and the segments ranked for the focal
	// point. Both derive from the state and the definition; neither is
	// journaled or snapshotted.
	segFree   []int32
	runCount  []int32 // per segment (from its runBase): how many runs of available seats of each length
	maxRun    []int32 // per segment: its longest run of available seats
	runsStale []bool  // per segment: runCount and maxRun need recounting (see runs)
	rank      rankIndex
}

type reservation struct {
	id         string
	customer   string
	seats      []int32
	status     ReservationStatus
	createdSeq uint64     // seq of its SeatsHeld record: a total creation order
	createdAt  int64      // Unix ms
	holdStart  int64      // Unix ms: since when the customer holds these seats (a replacement keeps its predecessor's)
	expiresAt  int64      // Unix ms; while paying, the end of the grace period
	heldUntil  int64      // Unix ms; the hold's own expiry, restored if a payment fails
	attempts   uint32     // payment attempts started (or learned of from the provider)
	payments   []*payment // the attempts that were journaled, in attempt order
	bookingID  string
	bookedAt   int64
	reason     ReleaseReason
	totalCents int64
	heapIndex  int // index in expiries while live
	orderIndex int // index in Event.order
	snapPos    int // scratch: position in the snapshot being written
}

type customer struct {
	seats        int            // seats held, paying or booked
	reservations []*reservation // retained reservations, creation order
}

// ReleasedRetainMax bounds how many released reservations an event keeps
// readable (GET returns them with their releaseReason); older ones are
// forgotten, oldest release first.
const ReleasedRetainMax = 100_000

// HoldRequest asks for an all-or-nothing hold of explicit seats.
type HoldRequest struct {
	ReservationID string   // chosen by the caller, unique per event
	CustomerID    string   // the customer who will own the hold
	SeatIDs       []string // seat_guid values, no duplicates, 1..MaxSeatsPerCustomer
}

// CreateEvent validates def (including its pretix seating plan) and returns
// the new event with its EventCreated record (Seq 1). Errors are *Error with
// code invalid_request or invalid_plan naming the offending field or seat.
func CreateEvent(def EventDefinition, now time.Time) (*Event, []Record, error) {
	plan, err := validateDefinition(&def)
	if err != nil {
		return nil, nil, err
	}
	def.SeatingPlan = nil // journaled compactly in Record.Plan
	blob, err := json.Marshal(def)
	if err != nil {
		return nil, nil, Errorf(CodeInvalidRequest, "event definition: %v", err)
	}
	rec := Record{Seq: 1, Type: RecordEventCreated, AtUnixMilli: now.UnixMilli(), Definition: blob, Plan: plan.AppendBinary(nil)}
	e := newEvent(def, plan)
	return e, e.syncRoom([]Record{rec}, now), nil
}

// NewEvent rebuilds an event from its EventCreated record (the first record
// of its journal), at Seq 1.
func NewEvent(created Record) (*Event, error) {
	if created.Type != RecordEventCreated || created.Seq != 1 {
		return nil, Errorf(CodeCorruptRecord, "first record is %s at seq %d, want EventCreated at seq 1", created.Type, created.Seq)
	}
	var def EventDefinition
	if err := json.Unmarshal(created.Definition, &def); err != nil {
		return nil, Errorf(CodeCorruptRecord, "event definition: %v", err)
	}
	plan, err := DecodePlanBinary(created.Plan)
	if err != nil {
		return nil, err
	}
	return newEvent(def, plan), nil
}

func newEvent(def EventDefinition, plan *Plan) *Event {
	def.SeatingPlan = nil
	e := &Event{
		def:          def,
		plan:         plan,
		seq:          1,
		status:       make([]SeatStatus, len(plan.Seats)),
		holder:       make([]*reservation, len(plan.Seats)),
		reservations: make(map[string]*reservation),
		customers:    make(map[string]*customer),
		bookings:     make(map[string]*reservation),
		counts:       Counts{Available: len(plan.Seats)},
		segFree:      make([]int32, len(plan.segments)),
		maxRun:       make([]int32, len(plan.segments)),
		runsStale:    make([]bool, len(plan.segments)),
	}
	if n := len(plan.segments); n > 0 {
		last := plan.segments[n-1]
		e.runCount = make([]int32, last.runBase+last.count+1)
	}
	for i, sg := range plan.segments {
		e.segFree[i], e.maxRun[i] = sg.count, sg.count
		e.runCount[sg.runBase+sg.count] = 1 // one run: the whole segment
	}
	for _, c := range plan.Categories {
		e.categories = append(e.categories, Category{Name: c.Name, Color: c.Color, PriceCents: def.Prices[c.Name]})
	}
	e.rank = newRankIndex(plan, e.focalPoint())
	return e
}

// setDefinition replaces the definition (an operator's change), re-ranking
// the segments when the focal point moved.
func (e *Event) setDefinition(def EventDefinition) {
	def.SeatingPlan = nil
	moved := !equalFocal(def.FocalPoint, e.def.FocalPoint)
	e.def = def
	if moved {
		e.rank = newRankIndex(e.plan, e.focalPoint())
	}
}

func equalFocal(a, b *FocalPoint) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// focalPoint is the focal point in effect.
func (e *Event) focalPoint() FocalPoint {
	if e.def.FocalPoint != nil {
		return *e.def.FocalPoint
	}
	return e.plan.DefaultFocalPoint()
}

func (e *Event) cancelled() bool { return e.def.Status == EventCancelled }

func validID(s string, maxBytes int) bool {
	if s == "" || len(s) > maxBytes {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// firstDuplicate returns the first id that appears twice in ids. Requests
// are small (at most MaxSeatsPerCustomerMax seats for holds), so a quadratic
// scan beats a map; long operator lists use a map.
func firstDuplicate(ids []string) (string, bool) {
	if len(ids) <= 16 {
		for i, id := range ids {
			if slices.Contains(ids[:i], id) {
				return id, true
			}
		}
		return "", false
	}
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			return id, true
		}
		seen[id] = struct{}{}
	}
	return "", false
}

// firstDuplicateSeat is firstDuplicate for seat indexes.
func firstDuplicateSeat(seats []int32) (int32, bool) {
	if len(seats) <= 16 {
		for i, s := range seats {
			if slices.Contains(seats[:i], s) {
				return s, true
			}
		}
		return 0, false
	}
	seen := make(map[int32]struct{}, len(seats))
	for _, s := range seats {
		if _, dup := seen[s]; dup {
			return s, true
		}
		seen[s] = struct{}{}
	}
	return 0, false
}

// ValidEventID reports whether id is 1–64 bytes of [A-Za-z0-9._-] starting
// with a letter or digit (so "." and ".." can never be an event: clients
// normalise them out of URLs).
func ValidEventID(id string) bool {
	return validID(id, eventIDBytesMax) && id[0] != '.' && id[0] != '-' && id[0] != '_'
}

func validateDefinition(d *EventDefinition) (*Plan, error) {
	bad := func(format string, args ...any) (*Plan, error) {
		return nil, Errorf(CodeInvalidRequest, format, args...)
	}
	if !ValidEventID(d.ID) {
		return bad("id must be 1–%d characters of letters, digits, '.', '_' or '-', starting with a letter or digit", eventIDBytesMax)
	}
	if d.Status != "" {
		return bad("status: a new event cannot be %q", d.Status)
	}
	if err := validateSettings(d); err != nil {
		return nil, err
	}
	if len(d.SeatingPlan) == 0 {
		return nil, Errorf(CodeInvalidPlan, "seatingPlan is required")
	}
	plan, err := ParsePlan(d.SeatingPlan)
	if err != nil {
		return nil, err
	}
	used := make(map[int16]bool)
	for _, s := range plan.Seats {
		used[s.Category] = true
	}
	for name, price := range d.Prices {
		if slices.IndexFunc(plan.Categories, func(c PlanCategory) bool { return c.Name == name }) < 0 {
			return bad("prices: category %q is not in the seating plan", name)
		}
		if price < 0 || price > priceCentsMax {
			return bad("prices: %q must be 0–%d", name, int64(priceCentsMax))
		}
	}
	for i, c := range plan.Categories {
		if _, ok := d.Prices[c.Name]; !ok && used[int16(i)] {
			return bad("prices: no price for category %q", c.Name)
		}
	}
	return plan, nil
}

// validateSettings checks everything of a definition but its id and plan:
// what an operator may change later (EventPatch) is checked by it again. It
// normalises times to UTC.
func validateSettings(d *EventDefinition) error {
	bad := func(format string, args ...any) error {
		return Errorf(CodeInvalidRequest, format, args...)
	}
	switch {
	case strings.TrimSpace(d.Name) == "" || len(d.Name) > eventNameBytesMax:
		return bad("name must be 1–%d bytes", eventNameBytesMax)
	case d.StartsAt.IsZero():
		return bad("startsAt is required")
	case d.OnSaleAt.IsZero():
		return bad("onSaleAt is required")
	case !d.SalesEndAt.IsZero() && !d.SalesEndAt.After(d.OnSaleAt):
		return bad("salesEndAt must be after onSaleAt")
	case d.SalesEndAt.IsZero() && !d.StartsAt.After(d.OnSaleAt):
		// Sales then end at startsAt: the event could never sell a seat.
		return bad("startsAt must be after onSaleAt when salesEndAt is not set")
	case d.HoldTTLSeconds < 1 || d.HoldTTLSeconds > HoldTTLSecondsMax:
		return bad("holdTtlSeconds must be 1–%d", HoldTTLSecondsMax)
	case d.MaxSeatsPerCustomer < 1 || d.MaxSeatsPerCustomer > MaxSeatsPerCustomerMax:
		return bad("maxSeatsPerCustomer must be 1–%d", MaxSeatsPerCustomerMax)
	case d.MaxHoldSeconds != 0 && (d.MaxHoldSeconds < d.HoldTTLSeconds || d.MaxHoldSeconds > 10*HoldTTLSecondsMax):
		return bad("maxHoldSeconds must be from holdTtlSeconds (%d) to %d", d.HoldTTLSeconds, 10*HoldTTLSecondsMax)
	case d.PaymentGraceSeconds < 0 || d.PaymentGraceSeconds > HoldTTLSecondsMax:
		return bad("paymentGraceSeconds must be 0–%d", HoldTTLSecondsMax)
	case len(d.Currency) != 3 || strings.ToUpper(d.Currency) != d.Currency || strings.ContainsFunc(d.Currency, func(r rune) bool { return r < 'A' || r > 'Z' }):
		return bad("currency must be an ISO 4217 code such as EUR")
	case d.OrphanSeats != "" && d.OrphanSeats != OrphanAllow && d.OrphanSeats != OrphanPrevent:
		return bad("orphanSeats must be %q or %q", OrphanAllow, OrphanPrevent)
	case d.FocalPoint != nil && !validCoord(d.FocalPoint.X):
		return bad("focalPoint.x must be a number within ±%d", planCoordMax)
	case d.FocalPoint != nil && !validCoord(d.FocalPoint.Y):
		return bad("focalPoint.y must be a number within ±%d", planCoordMax)
	case d.Status != "" && d.Status != EventCancelled:
		return bad("status must be %q", EventCancelled)
	}
	d.StartsAt, d.OnSaleAt, d.SalesEndAt = d.StartsAt.UTC(), d.OnSaleAt.UTC(), d.SalesEndAt.UTC()
	return validateWaitingRoom(d)
}

func validCoord(v float64) bool { return !math.IsNaN(v) && math.Abs(v) <= planCoordMax }

// ID is the event id.
func (e *Event) ID() string { return e.def.ID }

// Plan is the event's venue plan (immutable, shareable).
func (e *Event) Plan() *Plan { return e.plan }

// Seq is the sequence number of the last record applied.
func (e *Event) Seq() uint64 { return e.seq }

// Definition returns the event definition without its seating plan.
func (e *Event) Definition() EventDefinition {
	d := e.def
	d.Prices = maps.Clone(d.Prices) // the caller's copy, like the rest of d
	return d
}

// Statuses returns a copy of every seat's status, indexed like Plan.Seats.
func (e *Event) Statuses() []SeatStatus { return slices.Clone(e.status) }

// Counts returns the number of seats in each status.
func (e *Event) Counts() Counts { return e.counts }

func (e *Event) salesEnd() time.Time {
	if !e.def.SalesEndAt.IsZero() {
		return e.def.SalesEndAt
	}
	return e.def.StartsAt
}

// Info returns the event's read model.
func (e *Event) Info() EventInfo {
	return EventInfo{
		ID: e.def.ID, Name: e.def.Name, Venue: e.plan.Name,
		StartsAt: e.def.StartsAt, OnSaleAt: e.def.OnSaleAt, SalesEndAt: e.salesEnd(),
		HoldTTLSeconds: e.def.HoldTTLSeconds, MaxSeatsPerCustomer: e.def.MaxSeatsPerCustomer,
		MaxHoldSeconds: e.maxHoldSeconds(), PaymentGraceSeconds: e.paymentGraceSeconds(),
		Currency: e.def.Currency, Categories: slices.Clone(e.categories),
		Capacity: len(e.plan.Seats), Counts: e.counts, Version: e.seq,
		OrphanSeats: e.orphanRule(), FocalPoint: e.focalPoint(), Status: e.statusName(),
		WaitingRoom: e.waitingRoomInfo(),
	}
}

func (e *Event) waitingRoomInfo() *WaitingRoom {
	if e.def.WaitingRoom == nil {
		return nil
	}
	wr := *e.def.WaitingRoom
	return &wr
}

func (e *Event) orphanRule() string {
	if e.def.OrphanSeats == OrphanPrevent {
		return OrphanPrevent
	}
	return OrphanAllow
}

func (e *Event) statusName() string {
	if e.cancelled() {
		return EventCancelled
	}
	return EventActive
}

func (e *Event) maxHoldSeconds() int {
	if e.def.MaxHoldSeconds > 0 {
		return e.def.MaxHoldSeconds
	}
	return 3 * e.def.HoldTTLSeconds
}

func (e *Event) paymentGraceSeconds() int {
	if e.def.PaymentGraceSeconds > 0 {
		return e.def.PaymentGraceSeconds
	}
	return DefaultPaymentGraceSeconds
}

// emit gives rec the next sequence number, applies it and appends it to out.
// The engine's own decisions must always apply: failure is a programming
// error, so it panics. Records own their Seats (callers clone r.seats): the
// caller may keep or reuse a returned record without touching the state.
func (e *Event) emit(out []Record, rec Record) []Record {
	rec.Seq = e.seq + 1
	if err := e.Apply(rec); err != nil {
		panic(fmt.Sprintf("engine: own record does not apply: %v", err))
	}
	return append(out, rec)
}

// expireDue releases every live reservation whose expiry is at or before now.
func (e *Event) expireDue(out []Record, now int64) []Record {
	for len(e.expiries) > 0 && e.expiries[0].expiresAt <= now {
		r := e.expiries[0]
		out = e.emit(out, Record{
			Type: RecordHoldReleased, AtUnixMilli: now, ReservationID: r.id,
			CustomerID: r.customer, Seats: slices.Clone(r.seats), Reason: ReasonExpired,
		})
	}
	return out
}

// Tick expires every reservation whose expiry is at or before now and
// returns the HoldReleased records (nil when nothing was due).
func (e *Event) Tick(now time.Time) []Record {
	return e.expireDue(nil, now.UnixMilli())
}

// NextExpiry returns the earliest expiry of a live reservation.
func (e *Event) NextExpiry() (time.Time, bool) {
	if len(e.expiries) == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(e.expiries[0].expiresAt).UTC(), true
}

// Hold reserves every seat of req for req.CustomerID, or none, and returns
// the id of the reservation that answers the request.
//
// Asking again for seats the customer already holds (held, not paying) is a
// re-hold, never "taken": the customer's held reservations that share a seat
// with the request are released (reason cancelled) and a new one holds the
// requested seats, in one command, so no one else can take a seat in
// between and no seat is ever held twice. The replacement keeps its
// predecessors' hold start: it expires at min(now + holdTtlSeconds, hold
// start + maxHoldSeconds). Asking again for exactly the seats of one held
// reservation that the cap keeps from lasting longer returns that
// reservation unchanged (its id, no records).
//
// Records returned with a nil error end with one SeatsHeld (after the
// HoldReleased of the replaced reservations), or are only expiries when an
// existing reservation is returned. Whatever the error, the returned records
// (expiries found due at now) were applied and must be journaled. Errors, in
// API.md precedence: invalid_request (bad ids, empty, duplicates, more than
// MaxSeatsPerCustomer), event_cancelled, sales_not_open, sales_closed,
// seat_not_found (Seats: the unknown ids), limit_exceeded, seat_unavailable
// (Seats: the ids not available now), orphan_seat (with orphanSeats
// "prevent"; Seats: the seats the hold would strand).
func (e *Event) Hold(now time.Time, req HoldRequest) ([]Record, string, error) {
	if err := e.admit(now, req.CustomerID); err != nil {
		return nil, "", err
	}
	out, id, err := e.holdSeats(now, req)
	out, err = e.afterHold(out, now, req.CustomerID, err)
	return out, id, err
}

// holdSeats is Hold without the waiting room.
func (e *Event) holdSeats(now time.Time, req HoldRequest) ([]Record, string, error) {
	switch {
	case !validID(req.ReservationID, reservationIDBytesMax):
		return nil, "", Errorf(CodeInvalidRequest, "reservation id is invalid")
	case req.CustomerID == "" || len(req.CustomerID) > customerIDBytesMax:
		return nil, "", Errorf(CodeInvalidRequest, "customer id is invalid")
	case len(req.SeatIDs) == 0:
		return nil, "", Errorf(CodeInvalidRequest, "seatIds must not be empty")
	case len(req.SeatIDs) > e.def.MaxSeatsPerCustomer:
		return nil, "", Errorf(CodeInvalidRequest, "at most %d seats per request", e.def.MaxSeatsPerCustomer)
	}
	if _, dup := e.reservations[req.ReservationID]; dup {
		return nil, "", Errorf(CodeInvalidRequest, "reservation id %q is already used", req.ReservationID)
	}
	if id, dup := firstDuplicate(req.SeatIDs); dup {
		return nil, "", &Error{Code: CodeInvalidRequest, Message: "duplicate seat id", Seats: []string{id}}
	}
	if err := e.checkOnSale(now); err != nil {
		return nil, "", err
	}
	seats, err := e.lookupSeats(req.SeatIDs)
	if err != nil {
		return nil, "", err
	}
	nowMs := now.UnixMilli()
	out := e.expireDue(nil, nowMs)
	// The customer's own held reservations sharing a seat with the request:
	// the request replaces them.
	var replaced []*reservation
	for _, s := range seats {
		if r := e.holder[s]; r != nil && r.customer == req.CustomerID && r.status == StatusHeld && !slices.Contains(replaced, r) {
			replaced = append(replaced, r)
		}
	}
	expires, holdStart, freed := nowMs+int64(e.def.HoldTTLSeconds)*1000, int64(0), 0
	if len(replaced) > 0 {
		soonest := replaced[0].expiresAt
		holdStart = replaced[0].holdStart
		for _, r := range replaced {
			holdStart, soonest = min(holdStart, r.holdStart), min(soonest, r.expiresAt)
			freed += len(r.seats)
		}
		expires = e.renewedExpiry(nowMs, holdStart, soonest)
		if r := replaced[0]; len(replaced) == 1 && sameSeatSet(r.seats, seats) && expires <= r.expiresAt {
			return out, r.id, nil // the cap is reached: the reservation as it is
		}
	}
	if c := e.customers[req.CustomerID]; c != nil && c.seats-freed+len(seats) > e.def.MaxSeatsPerCustomer {
		return out, "", Errorf(CodeLimitExceeded, "%d seats held or booked, at most %d per customer", c.seats, e.def.MaxSeatsPerCustomer)
	}
	var taken []string
	for _, s := range seats {
		if e.status[s] != SeatAvailable && !slices.Contains(replaced, e.holder[s]) && !unsafeSkipAvailabilityCheck {
			taken = append(taken, e.plan.Seats[s].ID)
		}
	}
	if len(taken) > 0 {
		return out, "", &Error{Code: CodeSeatUnavailable, Message: "seats are not available", Seats: taken}
	}
	if e.def.OrphanSeats == OrphanPrevent {
		if stranded := e.avoidableOrphans(seats, replaced); len(stranded) > 0 {
			ids := make([]string, len(stranded))
			for i, s := range stranded {
				ids[i] = e.plan.Seats[s].ID
			}
			return out, "", &Error{Code: CodeOrphanSeat, Message: "this choice would leave single seats that cannot be sold; another choice of as many seats in the row would not", Seats: ids}
		}
	}
	for _, r := range replaced {
		out = e.emit(out, Record{
			Type: RecordHoldReleased, AtUnixMilli: nowMs, ReservationID: r.id,
			CustomerID: r.customer, Seats: slices.Clone(r.seats), Reason: ReasonCancelled,
		})
	}
	out = e.emit(out, Record{
		Type: RecordSeatsHeld, AtUnixMilli: nowMs, ReservationID: req.ReservationID,
		CustomerID: req.CustomerID, Seats: seats, ExpiresAtUnixMilli: expires, HoldStartUnixMilli: holdStart,
	})
	return out, req.ReservationID, nil
}

// renewedExpiry is the expiry of a replacement whose seats the customer has
// held since holdStart: now + holdTtlSeconds, capped at holdStart +
// maxHoldSeconds. Should an operator have lowered the cap below the expiry
// of a replaced reservation (soonest, the earliest of them), the
// replacement keeps that expiry rather than lapse at once.
func (e *Event) renewedExpiry(nowMs, holdStart, soonest int64) int64 {
	ttl := nowMs + int64(e.def.HoldTTLSeconds)*1000
	capMs := holdStart + int64(e.maxHoldSeconds())*1000
	if capMs < soonest {
		return min(ttl, soonest)
	}
	return min(ttl, capMs)
}

func sameSeatSet(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range b {
		if !slices.Contains(a, s) {
			return false
		}
	}
	return true
}

// checkOnSale refuses a hold on a cancelled event or outside its sale
// window, judged by now (the server's clock, UTC).
func (e *Event) checkOnSale(now time.Time) error {
	switch {
	case e.cancelled():
		return Errorf(CodeEventCancelled, "event %q was cancelled", e.def.ID)
	case now.Before(e.def.OnSaleAt):
		return Errorf(CodeSalesNotOpen, "sales open at %s", e.def.OnSaleAt.Format(time.RFC3339))
	case !now.Before(e.salesEnd()):
		return Errorf(CodeSalesClosed, "sales closed at %s", e.salesEnd().Format(time.RFC3339))
	}
	return nil
}

// owned returns the reservation if it exists and belongs to customerID;
// existence is not revealed to anyone else.
func (e *Event) owned(customerID, id string) (*reservation, error) {
	r := e.reservations[id]
	if r == nil || r.customer != customerID {
		return nil, Errorf(CodeReservationNotFound, "no reservation %q", id)
	}
	return r, nil
}

// Cancel releases a held reservation of customerID. Cancelling a released
// reservation changes nothing and is not an error. Errors:
// reservation_not_found, already_booked, payment_in_progress.
func (e *Event) Cancel(now time.Time, customerID, reservationID string) ([]Record, error) {
	out := e.expireDue(nil, now.UnixMilli())
	r, err := e.owned(customerID, reservationID)
	if err != nil {
		return out, err
	}
	switch r.status {
	case StatusBooked:
		return out, Errorf(CodeAlreadyBooked, "reservation %q is booked", r.id)
	case StatusPaying:
		return out, Errorf(CodePaymentInProgress, "a payment for reservation %q is in progress", r.id)
	case StatusReleased:
		return out, nil
	}
	return e.emit(out, Record{
		Type: RecordHoldReleased, AtUnixMilli: now.UnixMilli(), ReservationID: r.id,
		CustomerID: r.customer, Seats: slices.Clone(r.seats), Reason: ReasonCancelled,
	}), nil
}

// Update applies an operator's change to the event (API.md, PATCH
// /v1/admin/events/{id}) and journals it as one EventUpdated record. New
// settings apply to what is decided from then on: live holds keep their
// expiry. Cancelling the event (Status EventCancelled) also releases every
// held reservation with reason cancelled, in the same command; paying ones
// finish (a late success books, for a refund; a failure releases), and
// bookings stay. A change that changes nothing journals nothing. Errors:
// invalid_request naming the field (the changed definition must be valid as
// a new one would be; a cancelled event cannot be reopened).
func (e *Event) Update(now time.Time, p EventPatch) ([]Record, error) {
	def, err := e.patched(p)
	if err != nil {
		return nil, err
	}
	nowMs := now.UnixMilli()
	out := e.expireDue(nil, nowMs)
	before, _ := json.Marshal(e.def)
	after, _ := json.Marshal(def)
	if bytes.Equal(before, after) {
		return out, nil
	}
	blob, err := json.Marshal(normalPatch(p))
	if err != nil {
		return out, Errorf(CodeInvalidRequest, "event patch: %v", err)
	}
	wasCancelled := e.cancelled()
	out = e.emit(out, Record{Type: RecordEventUpdated, AtUnixMilli: nowMs, Definition: blob})
	out = e.syncRoom(out, now)
	if e.cancelled() && !wasCancelled {
		var held []*reservation
		for _, r := range e.order {
			if r != nil && r.status == StatusHeld {
				held = append(held, r)
			}
		}
		for _, r := range held {
			out = e.emit(out, Record{
				Type: RecordHoldReleased, AtUnixMilli: nowMs, ReservationID: r.id,
				CustomerID: r.customer, Seats: slices.Clone(r.seats), Reason: ReasonCancelled,
			})
		}
	}
	return out, nil
}

// patchResettable are the fields EventPatch.Reset may name.
var patchResettable = []string{"salesEndAt", "maxHoldSeconds", "focalPoint"}

// patched returns the definition with p applied, checked as a new one would
// be. The command (Update) and the replay (Apply) share it.
func (e *Event) patched(p EventPatch) (EventDefinition, error) {
	d := e.def
	reset := func(field string) bool { return slices.Contains(p.Reset, field) }
	for i, f := range p.Reset {
		switch {
		case !slices.Contains(patchResettable, f):
			return d, Errorf(CodeInvalidRequest, "reset: %q cannot be reset (only %s)", f, strings.Join(patchResettable, ", "))
		case slices.Contains(p.Reset[:i], f):
			return d, Errorf(CodeInvalidRequest, "reset: %q is given twice", f)
		}
	}
	switch {
	case reset("salesEndAt") && p.SalesEndAt != nil:
		return d, Errorf(CodeInvalidRequest, "salesEndAt is both set and reset")
	case reset("maxHoldSeconds") && p.MaxHoldSeconds != nil:
		return d, Errorf(CodeInvalidRequest, "maxHoldSeconds is both set and reset")
	case reset("focalPoint") && p.FocalPoint != nil:
		return d, Errorf(CodeInvalidRequest, "focalPoint is both set and reset")
	case p.Status != nil && *p.Status != EventCancelled:
		return d, Errorf(CodeInvalidRequest, "status: only %q can be set (cancelling is final)", EventCancelled)
	case p.SalesEndAt != nil && p.SalesEndAt.IsZero():
		return d, Errorf(CodeInvalidRequest, "salesEndAt must be a time; reset it to sell until startsAt")
	case p.MaxHoldSeconds != nil && *p.MaxHoldSeconds == 0:
		return d, Errorf(CodeInvalidRequest, "maxHoldSeconds must be from holdTtlSeconds to %d; reset it for the default", 10*HoldTTLSecondsMax)
	case p.OrphanSeats != nil && *p.OrphanSeats == "":
		return d, Errorf(CodeInvalidRequest, "orphanSeats must be %q or %q", OrphanAllow, OrphanPrevent)
	}
	if p.Name != nil {
		d.Name = *p.Name
	}
	if p.OnSaleAt != nil {
		d.OnSaleAt = *p.OnSaleAt
	}
	if p.SalesEndAt != nil {
		d.SalesEndAt = *p.SalesEndAt
	} else if reset("salesEndAt") {
		d.SalesEndAt = time.Time{}
	}
	if p.HoldTTLSeconds != nil {
		d.HoldTTLSeconds = *p.HoldTTLSeconds
	}
	if p.MaxSeatsPerCustomer != nil {
		d.MaxSeatsPerCustomer = *p.MaxSeatsPerCustomer
	}
	if p.MaxHoldSeconds != nil {
		d.MaxHoldSeconds = *p.MaxHoldSeconds
	} else if reset("maxHoldSeconds") {
		d.MaxHoldSeconds = 0
	}
	if p.OrphanSeats != nil {
		d.OrphanSeats = *p.OrphanSeats
	}
	if p.FocalPoint != nil {
		fp := *p.FocalPoint
		d.FocalPoint = &fp
	} else if reset("focalPoint") {
		d.FocalPoint = nil
	}
	if p.Status != nil {
		d.Status = *p.Status
	}
	if p.WaitingRoom != nil {
		wr := *p.WaitingRoom
		d.WaitingRoom = &wr
	}
	if err := validateSettings(&d); err != nil {
		return d, err
	}
	return d, nil
}

// normalPatch is p as journaled: times in UTC.
func normalPatch(p EventPatch) EventPatch {
	for _, t := range []**time.Time{&p.OnSaleAt, &p.SalesEndAt} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	return p
}

func (e *Event) resolveSeats(seatIDs []string) ([]int32, error) {
	if len(seatIDs) == 0 {
		return nil, Errorf(CodeInvalidRequest, "seatIds must not be empty")
	}
	if len(seatIDs) > len(e.plan.Seats) {
		return nil, Errorf(CodeInvalidRequest, "more seat ids than seats")
	}
	// Duplicates are a malformed request (400), which API.md ranks before
	// unknown seats (404): check them first, unknown ids included.
	if id, dup := firstDuplicate(seatIDs); dup {
		return nil, &Error{Code: CodeInvalidRequest, Message: "duplicate seat id", Seats: []string{id}}
	}
	return e.lookupSeats(seatIDs)
}

// lookupSeats returns the plan indexes of seat ids; unknown ids are a
// seat_not_found error listing every one of them.
func (e *Event) lookupSeats(ids []string) ([]int32, error) {
	seats := make([]int32, 0, len(ids))
	var unknown []string
	for _, id := range ids {
		i, ok := e.plan.index[id]
		if !ok {
			unknown = append(unknown, id)
			continue
		}
		seats = append(seats, i)
	}
	if len(unknown) > 0 {
		return nil, &Error{Code: CodeSeatNotFound, Message: "no such seat in this event", Seats: unknown}
	}
	return seats, nil
}

// Block withholds seats from sale (operator). Seats already blocked are left
// as they are. Errors: invalid_request, seat_not_found, seat_held (a live
// reservation holds one: Seats), seat_unavailable (one is booked: Seats).
func (e *Event) Block(now time.Time, seatIDs []string) ([]Record, error) {
	return e.setBlocked(now, seatIDs, true)
}

// Unblock returns blocked seats to sale; seats not blocked are left as they
// are. Errors: invalid_request, seat_not_found, seat_held.
func (e *Event) Unblock(now time.Time, seatIDs []string) ([]Record, error) {
	return e.setBlocked(now, seatIDs, false)
}

func (e *Event) setBlocked(now time.Time, seatIDs []string, block bool) ([]Record, error) {
	seats, err := e.resolveSeats(seatIDs)
	if err != nil {
		return nil, err
	}
	nowMs := now.UnixMilli()
	out := e.expireDue(nil, nowMs)
	var held, booked []string
	change := make([]int32, 0, len(seats))
	for _, s := range seats {
		switch st := e.status[s]; {
		case st == SeatReserved:
			held = append(held, e.plan.Seats[s].ID)
		case st == SeatBooked && block:
			booked = append(booked, e.plan.Seats[s].ID)
		case block && st == SeatAvailable, !block && st == SeatBlocked:
			change = append(change, s)
		}
	}
	if len(held) > 0 {
		return out, &Error{Code: CodeSeatHeld, Message: "a live reservation holds these seats", Seats: held}
	}
	if len(booked) > 0 {
		return out, &Error{Code: CodeSeatUnavailable, Message: "these seats are booked", Seats: booked}
	}
	if len(change) == 0 {
		return out, nil
	}
	typ := RecordSeatsUnblocked
	if block {
		typ = RecordSeatsBlocked
	}
	return e.emit(out, Record{Type: typ, AtUnixMilli: nowMs, Seats: change}), nil
}

// Apply replays one journal record. It checks the record against the state
// first (sequence, reservation and seat statuses) and changes nothing when it
// does not fit, returning an *Error with code corrupt_record.
func (e *Event) Apply(rec Record) error {
	if rec.Seq != e.seq+1 {
		return Errorf(CodeCorruptRecord, "record %d (%s) after %d: sequence gap", rec.Seq, rec.Type, e.seq)
	}
	bad := func(format string, args ...any) error {
		return Errorf(CodeCorruptRecord, "record %d (%s): %s", rec.Seq, rec.Type, fmt.Sprintf(format, args...))
	}
	for _, s := range rec.Seats {
		if s < 0 || int(s) >= len(e.status) {
			return bad("seat index %d out of range", s)
		}
	}
	r := e.reservations[rec.ReservationID]
	switch rec.Type {
	case RecordSeatsHeld:
		if r != nil || rec.ReservationID == "" || rec.CustomerID == "" || len(rec.Seats) == 0 {
			return bad("reservation %q exists or is incomplete", rec.ReservationID)
		}
		for i, s := range rec.Seats {
			if e.status[s] != SeatAvailable && !unsafeSkipAvailabilityCheck || slices.Contains(rec.Seats[:i], s) {
				return bad("seat %s is not available", e.plan.Seats[s].ID)
			}
		}
		if rec.HoldStartUnixMilli > rec.AtUnixMilli {
			return bad("hold start %d is after the hold at %d", rec.HoldStartUnixMilli, rec.AtUnixMilli)
		}
		e.applyHeld(rec)
	case RecordHoldReleased:
		if r == nil || !r.status.Live() {
			return bad("reservation %q is not live", rec.ReservationID)
		}
		if rec.Reason == ReasonNone || rec.Reason > ReasonPaymentFailed {
			return bad("release reason %d is unknown", rec.Reason)
		}
		// The seats travel to seat-map readers (SeatChanges): they must be
		// the reservation's own.
		if rec.CustomerID != r.customer || !slices.Equal(rec.Seats, r.seats) {
			return bad("customer or seats do not match reservation %q", r.id)
		}
		e.release(r, rec.Reason)
	case RecordPaymentStarted, RecordSeatsBooked, RecordPaymentFailed, RecordPaymentVoided, RecordRefundRequested, RecordPaymentRefunded:
		if r == nil {
			return bad("no reservation %q", rec.ReservationID)
		}
		if msg := e.applyPayment(r, rec); msg != "" {
			return bad("reservation %q, attempt %d: %s", rec.ReservationID, rec.Attempt, msg)
		}
	case RecordSeatsBlocked, RecordSeatsUnblocked:
		if len(rec.Seats) == 0 {
			return bad("no seats")
		}
		from, to := SeatAvailable, SeatBlocked
		if rec.Type == RecordSeatsUnblocked {
			from, to = SeatBlocked, SeatAvailable
		}
		for _, s := range rec.Seats {
			if e.status[s] != from {
				return bad("seat %s is %s", e.plan.Seats[s].ID, e.status[s])
			}
		}
		// An operator may block a whole stand in one record: no quadratic
		// scan for duplicates.
		if s, dup := firstDuplicateSeat(rec.Seats); dup {
			return bad("seat %s is listed twice", e.plan.Seats[s].ID)
		}
		for _, s := range rec.Seats {
			e.setStatus(s, to)
		}
	case RecordRoom:
		if msg := e.applyRoom(rec); msg != "" {
			return bad("waiting room: %s", msg)
		}
	case RecordEventUpdated:
		var p EventPatch
		dec := json.NewDecoder(bytes.NewReader(rec.Definition))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return bad("event patch: %v", err)
		}
		def, err := e.patched(p)
		if err != nil {
			return bad("event patch: %v", err)
		}
		e.setDefinition(def)
	default:
		return bad("unexpected record type")
	}
	e.seq = rec.Seq
	return nil
}

func (e *Event) setStatus(s int32, to SeatStatus) {
	from := e.status[s]
	e.counts.add(from, -1)
	e.counts.add(to, 1)
	e.status[s] = to
	if (from == SeatAvailable) != (to == SeatAvailable) {
		si := e.plan.seatSegment[s]
		if to == SeatAvailable {
			e.segFree[si]++
		} else {
			e.segFree[si]--
		}
		e.runsStale[si] = true
	}
}

// runs returns segment si's histogram of runs of available seats (how
// many runs of each length, index 0 unused) and its longest run. They are
// recounted from the seats, O(segment), only when a seat of the segment
// changed since they were last asked for: replay and hand-picked holds pay
// nothing for them, best available only for the segments it looks at.
func (e *Event) runs(si int32) (runs []int32, longest int32) {
	sg := &e.plan.segments[si]
	runs = e.runCount[sg.runBase : sg.runBase+sg.count+1]
	if !e.runsStale[si] {
		return runs, e.maxRun[si]
	}
	_, longest = countRuns(e.status[sg.first:sg.first+sg.count], runs)
	e.maxRun[si], e.runsStale[si] = longest, false
	return runs, longest
}

// countRuns fills runs (len(seats)+1 long) with the histogram of runs of
// available seats in seats, and returns the number available and the
// longest run.
func countRuns(seats []SeatStatus, runs []int32) (free, longest int32) {
	clear(runs)
	run := int32(0)
	for i := 0; i <= len(seats); i++ {
		if i < len(seats) && seats[i] == SeatAvailable {
			free++
			run++
			continue
		}
		if run > 0 {
			runs[run]++
			longest = max(longest, run)
		}
		run = 0
	}
	return free, longest
}

func (c *Counts) add(s SeatStatus, n int) {
	switch s {
	case SeatAvailable:
		c.Available += n
	case SeatReserved:
		c.Reserved += n
	case SeatBooked:
		c.Booked += n
	case SeatBlocked:
		c.Blocked += n
	}
}

func (e *Event) applyHeld(rec Record) {
	r := &reservation{
		id: rec.ReservationID, customer: rec.CustomerID, seats: slices.Clone(rec.Seats),
		status: StatusHeld, createdSeq: rec.Seq, createdAt: rec.AtUnixMilli, holdStart: rec.AtUnixMilli,
		expiresAt: rec.ExpiresAtUnixMilli, heldUntil: rec.ExpiresAtUnixMilli,
	}
	if rec.HoldStartUnixMilli != 0 {
		r.holdStart = rec.HoldStartUnixMilli
	}
	for _, s := range r.seats {
		r.totalCents += e.categories[e.plan.Seats[s].Category].PriceCents
		e.setStatus(s, SeatReserved)
		e.holder[s] = r
	}
	e.reservations[r.id] = r
	r.orderIndex = len(e.order)
	e.order = append(e.order, r)
	c := e.customers[r.customer]
	if c == nil {
		c = &customer{}
		e.customers[r.customer] = c
	}
	c.seats += len(r.seats)
	c.reservations = append(c.reservations, r)
	heap.Push(&e.expiries, r)
}

func (e *Event) release(r *reservation, reason ReleaseReason) {
	e.expiries.remove(r)
	r.status, r.reason = StatusReleased, reason
	for _, s := range r.seats {
		e.setStatus(s, SeatAvailable)
		e.holder[s] = nil
	}
	e.customers[r.customer].seats -= len(r.seats)
	e.retainReleased(r)
}

// retainReleased keeps r readable, forgetting the oldest released
// reservation past ReleasedRetainMax — but never one that still owes the
// provider work (a pending attempt to void, a refund): it stays until that
// is settled, and the next oldest goes instead.
func (e *Event) retainReleased(r *reservation) {
	e.released = append(e.released, r)
	if len(e.released) <= ReleasedRetainMax {
		return
	}
	i := 0
	for i < len(e.released) && owesProviderWork(e.released[i]) {
		i++
	}
	if i == len(e.released) {
		return // every one owes the provider: keep them all for now
	}
	old := e.released[i]
	if i == 0 {
		e.released[0] = nil
		e.released = e.released[1:]
	} else {
		e.released = slices.Delete(e.released, i, i+1)
	}
	delete(e.reservations, old.id)
	e.forgetOrder(old)
	c := e.customers[old.customer]
	// The oldest release is usually among the customer's oldest
	// reservations: find it from the front rather than scanning them all.
	if i := slices.Index(c.reservations, old); i >= 0 {
		c.reservations = slices.Delete(c.reservations, i, i+1)
	}
	if len(c.reservations) == 0 {
		delete(e.customers, old.customer)
	}
}

// owesProviderWork reports whether one of r's payment attempts still waits
// for the provider (pending, or its refund pending).
func owesProviderWork(r *reservation) bool {
	for _, p := range r.payments {
		if p.state == PaymentPending || p.state == PaymentRefundPending {
			return true
		}
	}
	return false
}

// forgetOrder takes r out of the creation order, compacting the order once
// half of it is holes (amortised O(1)).
func (e *Event) forgetOrder(r *reservation) {
	e.order[r.orderIndex] = nil
	e.orderHoles++
	if e.orderHoles <= len(e.order)/2 {
		return
	}
	j := 0
	for _, x := range e.order {
		if x != nil {
			x.orderIndex = j
			e.order[j] = x
			j++
		}
	}
	clear(e.order[j:])
	e.order, e.orderHoles = e.order[:j], 0
}

func (e *Event) view(r *reservation, nowMs int64) ReservationView {
	v := ReservationView{
		ID: r.id, EventID: e.def.ID, CustomerID: r.customer, Status: r.status,
		Seats: make([]string, len(r.seats)), ExpiresAt: time.UnixMilli(r.expiresAt).UTC(),
		CreatedAt: time.UnixMilli(r.createdAt).UTC(), TotalCents: r.totalCents, Currency: e.def.Currency,
		BookingID: r.bookingID, ReleaseReason: r.reason, Attempts: r.attempts,
		Payments: e.paymentViews(r),
	}
	for i, s := range r.seats {
		v.Seats[i] = e.plan.Seats[s].ID
	}
	if r.status.Live() && r.expiresAt <= nowMs {
		v.Status, v.ReleaseReason = StatusReleased, ReasonExpired // lapsed, timer not run yet
	}
	return v
}

// Reservation returns customerID's reservation. One whose expiry has passed
// reads as released/expired even before Tick runs. Error:
// reservation_not_found (also for another customer's reservation).
func (e *Event) Reservation(now time.Time, customerID, reservationID string) (ReservationView, error) {
	r, err := e.owned(customerID, reservationID)
	if err != nil {
		return ReservationView{}, err
	}
	return e.view(r, now.UnixMilli()), nil
}

// ReservationByID returns any reservation, for operators.
func (e *Event) ReservationByID(now time.Time, reservationID string) (ReservationView, error) {
	r := e.reservations[reservationID]
	if r == nil {
		return ReservationView{}, Errorf(CodeReservationNotFound, "no reservation %q", reservationID)
	}
	return e.view(r, now.UnixMilli()), nil
}

// Reservations returns customerID's retained reservations, newest first.
func (e *Event) Reservations(now time.Time, customerID string) []ReservationView {
	c := e.customers[customerID]
	if c == nil {
		return nil
	}
	out := make([]ReservationView, 0, len(c.reservations))
	for i := len(c.reservations) - 1; i >= 0; i-- {
		out = append(out, e.view(c.reservations[i], now.UnixMilli()))
	}
	return out
}

// Bookings returns every booking, oldest first: by BookedAt, then (for
// bookings made in the same millisecond) by reservation creation order.
func (e *Event) Bookings() []Booking {
	out := make([]Booking, 0, len(e.bookings))
	for _, r := range e.bookings {
		out = append(out, e.booking(r))
	}
	slices.SortFunc(out, func(a, b Booking) int {
		if c := a.BookedAt.Compare(b.BookedAt); c != 0 {
			return c
		}
		return cmp.Compare(e.reservations[a.ReservationID].createdSeq, e.reservations[b.ReservationID].createdSeq)
	})
	return out
}

func (e *Event) booking(r *reservation) Booking {
	b := Booking{
		ID: r.bookingID, ReservationID: r.id, CustomerID: r.customer, TotalCents: r.totalCents,
		Currency: e.def.Currency, BookedAt: time.UnixMilli(r.bookedAt).UTC(), Attempt: r.attempts,
	}
	if p := r.payments; len(p) > 0 {
		b.PaymentRef = p[len(p)-1].ref
	}
	for _, s := range r.seats {
		b.Seats = append(b.Seats, e.plan.Seats[s].ID)
	}
	return b
}

// SeatChanges returns the seat-map changes a record makes (none for
// payment records): SeatsHeld → reserved, HoldReleased and SeatsUnblocked →
// available, SeatsBooked → booked, SeatsBlocked → blocked.
func SeatChanges(dst []SeatChange, rec *Record) []SeatChange {
	var to SeatStatus
	switch rec.Type {
	case RecordSeatsHeld:
		to = SeatReserved
	case RecordHoldReleased, RecordSeatsUnblocked, RecordPaymentRefunded:
		to = SeatAvailable
	case RecordSeatsBooked:
		to = SeatBooked
	case RecordSeatsBlocked:
		to = SeatBlocked
	default:
		return dst
	}
	for _, s := range rec.Seats {
		dst = append(dst, SeatChange{Seat: s, Status: to})
	}
	return dst
}

// expiryHeap is a min-heap of live reservations by expiry, ties broken by
// creation order so that expiry records come out in a deterministic order.
type expiryHeap []*reservation

func (h expiryHeap) Len() int { return len(h) }
func (h expiryHeap) Less(i, j int) bool {
	if h[i].expiresAt != h[j].expiresAt {
		return h[i].expiresAt < h[j].expiresAt
	}
	return h[i].createdSeq < h[j].createdSeq
}
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = i, j
}
func (h *expiryHeap) Push(x any) {
	r := x.(*reservation)
	r.heapIndex = len(*h)
	*h = append(*h, r)
}
func (h *expiryHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	r.heapIndex = -1
	return r
}
func (h *expiryHeap) remove(r *reservation) {
	if r.heapIndex >= 0 && r.heapIndex < len(*h) && (*h)[r.heapIndex] == r {
		heap.Remove(h, r.heapIndex)
	}
}
