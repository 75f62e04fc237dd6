package engine

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The property tests drive the engine with random command sequences on a
// 20-seat plan (rows A and B, two categories, 4 seats per customer, TTL 60 s)
// through the checking harness, and compare every answer with a small
// reference model written from API.md's rules: holds and re-holds, best
// available, the orphan rule, payments, blocks, expiry and operators'
// changes (EventPatch), cancelling included.

// model is the reference: what each command should answer and journal.
type model struct {
	settings
	graceMs   int64
	startsMs  int64
	ids       []string // seat ids by index
	layout    *refLayout
	status    []SeatStatus
	res       map[string]*mres
	order     []*mres // creation order
	bookings  map[string]bool
	custSeats map[string]int
}

// settings are what an EventPatch changes, as the definition holds them
// (raw: "" and "allow" differ, as do a default and an explicit focal point).
type settings struct {
	name                 string
	ttlMs                int64
	max                  int
	maxHoldMs            int64 // 0: 3 × ttl
	onSaleMs, salesEndMs int64 // salesEndMs 0: sales run until the start
	orphans              string
	focal                *FocalPoint
	cancelled            bool
	defaultFocal         FocalPoint
}

type mres struct {
	id, cust           string
	seats              []int32
	status             ReservationStatus
	expires, heldUntil int64
	holdStart          int64
	attempts           uint32
	reason             ReleaseReason
	booking            string
	created            int                     // index in order
	pays               map[uint32]PaymentState // journaled attempts
}

func newModel(ev *Event) *model {
	info := ev.Info()
	def := ev.Definition()
	m := &model{
		settings: settings{
			name: def.Name, ttlMs: int64(info.HoldTTLSeconds) * 1000, max: info.MaxSeatsPerCustomer,
			maxHoldMs: int64(def.MaxHoldSeconds) * 1000, onSaleMs: info.OnSaleAt.UnixMilli(),
			orphans: def.OrphanSeats, focal: def.FocalPoint, defaultFocal: ev.Plan().DefaultFocalPoint(),
		},
		graceMs: int64(info.PaymentGraceSeconds) * 1000, startsMs: info.StartsAt.UnixMilli(),
		layout: newRefLayout(ev.Plan()),
		status: make([]SeatStatus, info.Capacity), res: map[string]*mres{},
		bookings: map[string]bool{}, custSeats: map[string]int{},
	}
	if !def.SalesEndAt.IsZero() {
		m.salesEndMs = def.SalesEndAt.UnixMilli()
	}
	for _, s := range ev.Plan().Seats {
		m.ids = append(m.ids, s.ID)
	}
	return m
}

func (m *model) salesEnds() int64 {
	if m.salesEndMs != 0 {
		return m.salesEndMs
	}
	return m.startsMs
}

func (m *model) maxHold() int64 {
	if m.maxHoldMs != 0 {
		return m.maxHoldMs
	}
	return 3 * m.ttlMs
}

func (m *model) holder(s int32) *mres {
	for _, r := range m.order {
		if (r.status.Live() || r.status == StatusBooked) && slices.Contains(r.seats, s) {
			return r
		}
	}
	return nil
}

// onSale is the check every hold passes first after its arguments.
func (m *model) onSale(now int64) Code {
	switch {
	case m.cancelled:
		return CodeEventCancelled
	case now < m.onSaleMs:
		return CodeSalesNotOpen
	case now >= m.salesEnds():
		return CodeSalesClosed
	}
	return ""
}

func (m *model) index(id string) (int32, bool) {
	i := slices.Index(m.ids, id)
	return int32(i), i >= 0
}

func (m *model) release(r *mres, reason ReleaseReason) string {
	r.status, r.reason = StatusReleased, reason
	for _, s := range r.seats {
		m.status[s] = SeatAvailable
	}
	m.custSeats[r.cust] -= len(r.seats)
	return "HoldReleased " + r.id + " " + reason.String()
}

// expire releases every live reservation due at now, by expiry then
// creation order.
func (m *model) expire(now int64) []string {
	var due []*mres
	for _, r := range m.order {
		if r.status.Live() && r.expires <= now {
			due = append(due, r)
		}
	}
	slices.SortStableFunc(due, func(a, b *mres) int { return cmp.Compare(a.expires, b.expires) })
	var out []string
	for _, r := range due {
		out = append(out, m.release(r, ReasonExpired))
	}
	return out
}

func hasDup(ids []string) bool {
	for i := range ids {
		if slices.Contains(ids[:i], ids[i]) {
			return true
		}
	}
	return false
}

// hold answers a hand-picked hold: the records, the id of the reservation
// that answers it, and the error code.
func (m *model) hold(now int64, cust, id string, seatIDs []string) ([]string, string, Code) {
	if len(seatIDs) == 0 || len(seatIDs) > m.max || m.res[id] != nil || hasDup(seatIDs) {
		return nil, "", CodeInvalidRequest
	}
	if code := m.onSale(now); code != "" {
		return nil, "", code
	}
	var seats []int32
	for _, sid := range seatIDs {
		i, ok := m.index(sid)
		if !ok {
			return nil, "", CodeSeatNotFound
		}
		seats = append(seats, i)
	}
	out := m.expire(now)
	// Re-hold: the customer's held reservations sharing a seat, in the
	// order the request names their seats.
	var replaced []*mres
	freed := 0
	for _, s := range seats {
		if r := m.holder(s); r != nil && r.cust == cust && r.status == StatusHeld && !slices.Contains(replaced, r) {
			replaced = append(replaced, r)
			freed += len(r.seats)
		}
	}
	expires, holdStart := now+m.ttlMs, now
	if len(replaced) > 0 {
		soonest := replaced[0].expires
		holdStart = replaced[0].holdStart
		for _, r := range replaced {
			holdStart, soonest = min(holdStart, r.holdStart), min(soonest, r.expires)
		}
		capMs := holdStart + m.maxHold()
		if capMs < soonest {
			expires = min(now+m.ttlMs, soonest)
		} else {
			expires = min(now+m.ttlMs, capMs)
		}
		if r := replaced[0]; len(replaced) == 1 && len(r.seats) == len(seats) && expires <= r.expires {
			same := true
			for _, s := range seats {
				same = same && slices.Contains(r.seats, s)
			}
			if same {
				return out, r.id, ""
			}
		}
	}
	if m.custSeats[cust]-freed+len(seats) > m.max {
		return out, "", CodeLimitExceeded
	}
	free := func(s int32) bool {
		return m.status[s] == SeatAvailable || slices.Contains(replaced, m.holder(s))
	}
	for _, s := range seats {
		if !free(s) {
			return out, "", CodeSeatUnavailable
		}
	}
	if m.orphans == OrphanPrevent && len(m.layout.avoidableOrphans(seats, free)) > 0 {
		return out, "", CodeOrphanSeat
	}
	for _, r := range replaced {
		out = append(out, m.release(r, ReasonCancelled))
	}
	return append(out, m.take(now, cust, id, seats, expires, holdStart)), id, ""
}

func (m *model) take(now int64, cust, id string, seats []int32, expires, holdStart int64) string {
	r := &mres{id: id, cust: cust, seats: seats, status: StatusHeld, expires: expires, heldUntil: expires, holdStart: holdStart, created: len(m.order)}
	m.res[id], m.order = r, append(m.order, r)
	for _, s := range seats {
		m.status[s] = SeatReserved
	}
	m.custSeats[cust] += len(seats)
	return "SeatsHeld " + id
}

// holdBest answers best available; seats are the ones it should hold.
func (m *model) holdBest(now int64, cust, id string, want BestAvailable) ([]string, []int32, Code) {
	if want.Quantity < 1 || want.Quantity > m.max || m.res[id] != nil {
		return nil, nil, CodeInvalidRequest
	}
	cat := int16(-1)
	if want.Category != "" {
		i := slices.IndexFunc(m.layout.plan.Categories, func(c PlanCategory) bool { return c.Name == want.Category })
		if i < 0 {
			return nil, nil, CodeInvalidRequest
		}
		cat = int16(i)
	}
	if want.Zone != "" && !slices.Contains(m.layout.plan.Zones, want.Zone) {
		return nil, nil, CodeInvalidRequest
	}
	if code := m.onSale(now); code != "" {
		return nil, nil, code
	}
	out := m.expire(now)
	if m.custSeats[cust]+want.Quantity > m.max {
		return out, nil, CodeLimitExceeded
	}
	focal := m.defaultFocal
	if m.focal != nil {
		focal = *m.focal
	}
	seats, ok := m.layout.best(want.Quantity, cat, want.Zone, focal, func(s int32) bool { return m.status[s] == SeatAvailable })
	if !ok {
		return out, nil, CodeNoAdjacentSeats
	}
	return append(out, m.take(now, cust, id, seats, now+m.ttlMs, now)), seats, ""
}

// update answers an operator's change.
func (m *model) update(now int64, p EventPatch) ([]string, Code) {
	n := m.settings
	reset := func(f string) bool { return slices.Contains(p.Reset, f) }
	for i, f := range p.Reset {
		if !slices.Contains([]string{"salesEndAt", "maxHoldSeconds", "focalPoint"}, f) || slices.Contains(p.Reset[:i], f) {
			return nil, CodeInvalidRequest
		}
	}
	if reset("salesEndAt") && p.SalesEndAt != nil || reset("maxHoldSeconds") && p.MaxHoldSeconds != nil || reset("focalPoint") && p.FocalPoint != nil {
		return nil, CodeInvalidRequest
	}
	if p.Name != nil {
		n.name = *p.Name
	}
	if p.OnSaleAt != nil {
		n.onSaleMs = p.OnSaleAt.UnixMilli()
	}
	if p.SalesEndAt != nil {
		if p.SalesEndAt.IsZero() {
			return nil, CodeInvalidRequest
		}
		n.salesEndMs = p.SalesEndAt.UnixMilli()
	} else if reset("salesEndAt") {
		n.salesEndMs = 0
	}
	if p.HoldTTLSeconds != nil {
		n.ttlMs = int64(*p.HoldTTLSeconds) * 1000
	}
	if p.MaxSeatsPerCustomer != nil {
		n.max = *p.MaxSeatsPerCustomer
	}
	if p.MaxHoldSeconds != nil {
		if *p.MaxHoldSeconds == 0 {
			return nil, CodeInvalidRequest
		}
		n.maxHoldMs = int64(*p.MaxHoldSeconds) * 1000
	} else if reset("maxHoldSeconds") {
		n.maxHoldMs = 0
	}
	if p.OrphanSeats != nil {
		if *p.OrphanSeats == "" {
			return nil, CodeInvalidRequest
		}
		n.orphans = *p.OrphanSeats
	}
	if p.FocalPoint != nil {
		fp := *p.FocalPoint
		n.focal = &fp
	} else if reset("focalPoint") {
		n.focal = nil
	}
	if p.Status != nil {
		if *p.Status != EventCancelled {
			return nil, CodeInvalidRequest
		}
		n.cancelled = true
	}
	salesEnd := n.salesEndMs
	if salesEnd == 0 {
		salesEnd = m.startsMs
	}
	switch {
	case strings.TrimSpace(n.name) == "",
		salesEnd <= n.onSaleMs,
		n.ttlMs < 1000 || n.ttlMs > HoldTTLSecondsMax*1000,
		n.max < 1 || n.max > MaxSeatsPerCustomerMax,
		n.maxHoldMs != 0 && (n.maxHoldMs < n.ttlMs || n.maxHoldMs > 10*HoldTTLSecondsMax*1000),
		n.orphans != OrphanAllow && n.orphans != OrphanPrevent && n.orphans != "":
		return nil, CodeInvalidRequest
	}
	out := m.expire(now)
	if n.name == m.name && n.ttlMs == m.ttlMs && n.max == m.max && n.maxHoldMs == m.maxHoldMs &&
		n.onSaleMs == m.onSaleMs && n.salesEndMs == m.salesEndMs && n.orphans == m.orphans &&
		equalFocal(n.focal, m.focal) && n.cancelled == m.cancelled {
		return out, ""
	}
	cancelling := n.cancelled && !m.cancelled
	m.settings = n
	out = append(out, "EventUpdated")
	if cancelling {
		for _, r := range m.order {
			if r.status == StatusHeld {
				out = append(out, m.release(r, ReasonCancelled))
			}
		}
	}
	return out, ""
}

func (m *model) owned(cust, id string) *mres {
	if r := m.res[id]; r != nil && r.cust == cust {
		return r
	}
	return nil
}

func (m *model) cancel(now int64, cust, id string) ([]string, Code) {
	out := m.expire(now)
	r := m.owned(cust, id)
	switch {
	case r == nil:
		return out, CodeReservationNotFound
	case r.status == StatusBooked:
		return out, CodeAlreadyBooked
	case r.status == StatusPaying:
		return out, CodePaymentInProgress
	case r.status == StatusReleased:
		return out, ""
	}
	return append(out, m.release(r, ReasonCancelled)), ""
}

func (m *model) pay(now int64, cust, id string) ([]string, uint32, Code) {
	out := m.expire(now)
	r := m.owned(cust, id)
	switch {
	case r == nil:
		return out, 0, CodeReservationNotFound
	case r.status == StatusBooked:
		return out, 0, ""
	case r.status == StatusPaying:
		return out, 0, CodePaymentInProgress
	case r.status == StatusReleased && r.reason == ReasonExpired:
		return out, 0, CodeReservationExpired
	case r.status == StatusReleased:
		return out, 0, CodeReservationReleased
	case m.cancelled:
		return out, 0, CodeEventCancelled
	}
	r.attempts++
	r.status, r.heldUntil, r.expires = StatusPaying, r.expires, max(r.expires, now+m.graceMs) // paying never shortens a hold
	if r.pays == nil {
		r.pays = map[uint32]PaymentState{}
	}
	r.pays[r.attempts] = PaymentPending
	return append(out, "PaymentStarted "+id), r.attempts, ""
}

// attemptOf is the model of Event.attemptOf.
func (m *model) attemptOf(id string, attempt uint32) (*mres, PaymentState, Code) {
	r := m.res[id]
	if r == nil {
		return nil, 0, CodeReservationNotFound
	}
	st, ok := r.pays[attempt]
	if !ok {
		return r, 0, CodeNotPaying
	}
	return r, st, ""
}

func (r *mres) payingWith(attempt uint32) bool {
	return r.status == StatusPaying && r.attempts == attempt
}

func (m *model) confirm(now int64, id string, attempt uint32, booking string) ([]string, Code) {
	out := m.expire(now)
	r, st, code := m.attemptOf(id, attempt)
	switch {
	case code != "":
		return out, code
	case st == PaymentSucceeded || st == PaymentRefundPending || st == PaymentRefunded:
		return out, ""
	case !r.payingWith(attempt):
		// The money was taken for seats that are not the payer's: refund.
		r.pays[attempt] = PaymentRefundPending
		out = append(out, "RefundRequested "+id)
		switch {
		case r.status == StatusReleased && r.reason == ReasonExpired:
			return out, CodeReservationExpired
		case r.status == StatusReleased:
			return out, CodeReservationReleased
		case r.status == StatusBooked:
			return out, CodeAlreadyBooked
		}
		return out, CodeNotPaying
	case !validID(booking, reservationIDBytesMax) || m.bookings[booking]:
		return out, CodeInvalidRequest
	}
	r.status, r.booking = StatusBooked, booking
	r.pays[attempt] = PaymentSucceeded
	m.bookings[booking] = true
	for _, s := range r.seats {
		m.status[s] = SeatBooked
	}
	return append(out, "SeatsBooked "+id), ""
}

func (m *model) fail(now int64, id string, attempt uint32) ([]string, Code) {
	out := m.expire(now)
	r, st, code := m.attemptOf(id, attempt)
	if code != "" || st != PaymentPending {
		return out, code
	}
	current := r.payingWith(attempt)
	r.pays[attempt] = PaymentFailed
	out = append(out, "PaymentFailed "+id)
	if !current {
		return out, ""
	}
	r.status, r.expires = StatusHeld, r.heldUntil
	if m.cancelled {
		out = append(out, m.release(r, ReasonCancelled))
	} else if r.heldUntil <= now {
		out = append(out, m.release(r, ReasonPaymentFailed))
	}
	return out, ""
}

func (m *model) void(now int64, id string, attempt uint32) ([]string, Code) {
	out := m.expire(now)
	r, st, code := m.attemptOf(id, attempt)
	if code != "" || st != PaymentPending || r.payingWith(attempt) {
		return out, code
	}
	r.pays[attempt] = PaymentVoided
	return append(out, "PaymentVoided "+id), ""
}

func (m *model) refundBooking(now int64, booking string) ([]string, Code) {
	out := m.expire(now)
	for _, r := range m.order {
		if r.status == StatusBooked && r.booking == booking {
			if r.pays[r.attempts] == PaymentSucceeded {
				r.pays[r.attempts] = PaymentRefundPending
				out = append(out, "RefundRequested "+r.id)
			}
			return out, ""
		}
	}
	return out, CodeBookingNotFound
}

func (m *model) completeRefund(now int64, id string, attempt uint32) ([]string, Code) {
	out := m.expire(now)
	r, st, code := m.attemptOf(id, attempt)
	if code != "" || st != PaymentRefundPending {
		return out, code
	}
	r.pays[attempt] = PaymentRefunded
	if r.status == StatusBooked && r.attempts == attempt {
		delete(m.bookings, r.booking)
		m.release(r, ReasonRefunded)
	}
	return append(out, "PaymentRefunded "+id), ""
}

func (m *model) setBlocked(now int64, seatIDs []string, block bool) ([]string, Code) {
	if len(seatIDs) == 0 || len(seatIDs) > len(m.ids) || hasDup(seatIDs) {
		return nil, CodeInvalidRequest
	}
	var seats []int32
	for _, sid := range seatIDs {
		i, ok := m.index(sid)
		if !ok {
			return nil, CodeSeatNotFound
		}
		seats = append(seats, i)
	}
	out := m.expire(now)
	var change []int32
	held, booked := false, false
	for _, s := range seats {
		switch st := m.status[s]; {
		case st == SeatReserved:
			held = true
		case st == SeatBooked && block:
			booked = true
		case block && st == SeatAvailable:
			change = append(change, s)
		case !block && st == SeatBlocked:
			change = append(change, s)
		}
	}
	switch {
	case held:
		return out, CodeSeatHeld
	case booked:
		return out, CodeSeatUnavailable
	case len(change) == 0:
		return out, ""
	}
	to, name := SeatAvailable, "SeatsUnblocked"
	if block {
		to, name = SeatBlocked, "SeatsBlocked"
	}
	for _, s := range change {
		m.status[s] = to
	}
	return append(out, name), ""
}

// machine is one property run: the harness-wrapped event, the model, the
// clock, and a snapshot taken part-way.
type machine struct {
	t       *rapid.T
	h       *harness
	m       *model
	nowMs   int64
	nextRes int
	nextBk  int
	midSnap []byte
	midSeq  uint64
	steps   []string
}

var propCustomers = []string{"u1", "u2", "u3", "u4", "u5"}

func newMachine(t *rapid.T) *machine {
	def := smallDef()
	def.PaymentGraceSeconds = rapid.SampledFrom([]int{30, 90, 600}).Draw(t, "graceSeconds")
	def.SalesEndAt = t0.Add(2 * time.Hour)
	def.OrphanSeats = rapid.SampledFrom([]string{"", OrphanAllow, OrphanPrevent}).Draw(t, "orphanSeats")
	def.MaxHoldSeconds = rapid.SampledFrom([]int{0, 0, 60, 90}).Draw(t, "maxHoldSeconds") // 60: no renewal at all
	if pct(t, "focal") >= 70 {
		def.FocalPoint = &FocalPoint{X: float64(rapid.IntRange(0, 800).Draw(t, "fx")) / 2, Y: float64(rapid.IntRange(0, 400).Draw(t, "fy")) / 2}
	}
	h := newHarness(t, def)
	start := rapid.SampledFrom([]int64{-1000, 0, 0, 0}).Draw(t, "startMs") // sometimes before on-sale
	return &machine{t: t, h: h, m: newModel(h.ev), nowMs: t0.UnixMilli() + start}
}

func (mc *machine) now() time.Time { return time.UnixMilli(mc.nowMs).UTC() }

func (mc *machine) compare(what string, gotRecs []Record, gotErr error, wantRecs []string, wantCode Code) {
	mc.t.Helper()
	got := recordTypes(gotRecs)
	if !slices.Equal(got, wantRecs) || CodeOf(gotErr) != wantCode || (wantCode == "" && gotErr != nil) {
		mc.t.Fatalf("%s at %d:\ngot  %q, %v\nwant %q, code %q", what, mc.nowMs-t0.UnixMilli(), got, gotErr, wantRecs, wantCode)
	}
	mc.steps = append(mc.steps, what)
}

// seatIDs draws a seat list: usually 1..maxN distinct known seats;
// sometimes empty, one too many, with a duplicate or with an unknown id.
func (mc *machine) seatIDs(t *rapid.T, maxN int) []string {
	perm := rapid.Permutation(mc.m.ids).Draw(t, "seats")
	switch k := pct(t, "seatsKind"); {
	case k < 80:
		return perm[:rapid.IntRange(1, maxN).Draw(t, "n")]
	case k < 85:
		return nil
	case k < 90:
		return perm[:maxN+1]
	case k < 95:
		n := rapid.IntRange(1, maxN).Draw(t, "n")
		return append(perm[:n:n], perm[rapid.IntRange(0, n-1).Draw(t, "dup")])
	default:
		n := rapid.IntRange(1, maxN).Draw(t, "n")
		return rapid.Permutation(append(perm[:n-1:n-1], "Z-1")).Draw(t, "order")
	}
}

// pct draws a percentage. rapid favours small values (and shrinks towards
// them), so callers give the common case the low numbers.
func pct(t *rapid.T, label string) int { return rapid.IntRange(0, 99).Draw(t, label) }

// pickRes draws an existing reservation id (or an unknown one) and a
// customer, usually its owner.
func (mc *machine) pickRes(t *rapid.T, prefer ReservationStatus) (id, cust string) {
	id = "r-unknown"
	var preferred []*mres
	for _, r := range mc.m.order {
		if r.status == prefer && r.expires > mc.nowMs {
			preferred = append(preferred, r)
		}
	}
	switch k := pct(t, "known"); {
	case k < 60 && len(preferred) > 0:
		id = rapid.SampledFrom(preferred).Draw(t, "res").id
	case k < 95 && len(mc.m.order) > 0:
		id = rapid.SampledFrom(mc.m.order).Draw(t, "res").id
	}
	cust = rapid.SampledFrom(propCustomers).Draw(t, "cust")
	if r := mc.m.res[id]; r != nil && pct(t, "owner") < 80 {
		cust = r.cust
	}
	return id, cust
}

// patch draws an operator's change: a few fields, mostly valid values,
// sometimes invalid ones, rarely a cancellation.
func (mc *machine) patch(t *rapid.T) EventPatch {
	var p EventPatch
	for range rapid.IntRange(1, 3).Draw(t, "fields") {
		switch rapid.IntRange(0, 9).Draw(t, "field") {
		case 0:
			p.Name = ptr(rapid.SampledFrom([]string{"Renamed Night", " ", "Test Night"}).Draw(t, "name"))
		case 1:
			p.OnSaleAt = ptr(t0.Add(time.Duration(rapid.SampledFrom([]int{-60, 0, 30, 90, 7200}).Draw(t, "onSale")) * time.Second))
		case 2:
			if pct(t, "resetEnd") < 30 {
				p.Reset = append(p.Reset, "salesEndAt")
			} else {
				p.SalesEndAt = ptr(t0.Add(time.Duration(rapid.SampledFrom([]int{-30, 45, 600, 7200}).Draw(t, "salesEnd")) * time.Second))
			}
		case 3:
			p.HoldTTLSeconds = ptr(rapid.SampledFrom([]int{0, 30, 60, 120}).Draw(t, "ttl"))
		case 4:
			p.MaxSeatsPerCustomer = ptr(rapid.SampledFrom([]int{0, 1, 2, 4, 6}).Draw(t, "max"))
		case 5:
			if pct(t, "resetHold") < 30 {
				p.Reset = append(p.Reset, "maxHoldSeconds")
			} else {
				p.MaxHoldSeconds = ptr(rapid.SampledFrom([]int{0, 30, 90, 180, 600}).Draw(t, "maxHold"))
			}
		case 6:
			p.OrphanSeats = ptr(rapid.SampledFrom([]string{OrphanAllow, OrphanPrevent, OrphanPrevent, ""}).Draw(t, "orphans"))
		case 7:
			if pct(t, "resetFocal") < 30 {
				p.Reset = append(p.Reset, "focalPoint")
			} else {
				p.FocalPoint = &FocalPoint{X: float64(rapid.IntRange(0, 800).Draw(t, "fx")) / 2, Y: float64(rapid.IntRange(0, 400).Draw(t, "fy")) / 2}
			}
		case 8:
			if pct(t, "cancel") >= 90 {
				p.Status = ptr(rapid.SampledFrom([]string{EventCancelled, "active"}).Draw(t, "status"))
			}
		case 9:
			p.Reset = append(p.Reset, rapid.SampledFrom([]string{"name", "focalPoint"}).Draw(t, "reset"))
		}
	}
	return p
}

func patchString(p EventPatch) string {
	b, _ := json.Marshal(p)
	return string(b)
}

func (mc *machine) attempt(t *rapid.T, id string) uint32 {
	var cur uint32
	if r := mc.m.res[id]; r != nil {
		cur = r.attempts
	}
	if pct(t, "current") < 75 {
		return cur
	}
	return rapid.Uint32Range(0, cur+1).Draw(t, "attempt")
}

func (mc *machine) actions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"hold": func(t *rapid.T) {
			cust := rapid.SampledFrom(propCustomers).Draw(t, "cust")
			id := fmt.Sprintf("r%d", mc.nextRes)
			if len(mc.m.order) > 0 && pct(t, "reuseID") >= 95 {
				id = rapid.SampledFrom(mc.m.order).Draw(t, "reused").id
			} else {
				mc.nextRes++
			}
			seats := mc.seatIDs(t, mc.m.max)
			var held []*mres
			for _, r := range mc.m.order {
				if r.status == StatusHeld && r.expires > mc.nowMs {
					held = append(held, r)
				}
			}
			if len(seats) > 0 && len(mc.m.order) > 0 && pct(t, "rehold") >= 65 {
				// Ask again for (some of) a reservation's seats, maybe more:
				// mostly a live hold's, as its customer.
				pool := mc.m.order
				if len(held) > 0 && pct(t, "live") < 80 {
					pool = held
				}
				if r := pool[rapid.IntRange(0, len(pool)-1).Draw(t, "of")]; r != nil {
					seats = nil
					for _, x := range r.seats {
						seats = append(seats, mc.m.ids[x])
					}
					seats = seats[:rapid.IntRange(1, len(seats)).Draw(t, "keep")]
					for _, x := range rapid.Permutation(mc.m.ids).Draw(t, "more")[:rapid.IntRange(0, 2).Draw(t, "extra")] {
						if !slices.Contains(seats, x) {
							seats = append(seats, x)
						}
					}
					if pct(t, "sameCustomer") < 85 {
						cust = r.cust
					}
				}
			}
			recs, answer, err := mc.h.holdID(mc.now(), cust, id, seats...)
			want, wantAnswer, code := mc.m.hold(mc.nowMs, cust, id, seats)
			mc.compare(fmt.Sprintf("hold %s %s %v", cust, id, seats), recs, err, want, code)
			if answer != wantAnswer {
				t.Fatalf("hold %s %v answered by %q, want %q", id, seats, answer, wantAnswer)
			}
			if code == CodeSeatUnavailable || code == CodeSeatNotFound {
				mc.checkErrorSeats(err, cust, seats, code)
			}
		},
		"best": func(t *rapid.T) {
			cust := rapid.SampledFrom(propCustomers).Draw(t, "cust")
			id := fmt.Sprintf("r%d", mc.nextRes)
			mc.nextRes++
			want := BestAvailable{Quantity: rapid.IntRange(0, mc.m.max+1).Draw(t, "quantity")}
			switch k := pct(t, "filter"); {
			case k < 50:
			case k < 70:
				want.Category = rapid.SampledFrom([]string{"Premium", "Standard", "Gold"}).Draw(t, "category")
			case k < 90:
				want.Zone = rapid.SampledFrom([]string{"Stalls", "Stage", "Balcony"}).Draw(t, "zone")
			default:
				want.Category, want.Zone = "Standard", "Stalls"
			}
			recs, err := mc.h.holdBest(mc.now(), cust, id, want)
			wantRecs, seats, code := mc.m.holdBest(mc.nowMs, cust, id, want)
			mc.compare(fmt.Sprintf("best %s %s %+v", cust, id, want), recs, err, wantRecs, code)
			if code == "" && !slices.Equal(recs[len(recs)-1].Seats, seats) {
				t.Fatalf("best %+v chose %v, want %v", want, recs[len(recs)-1].Seats, seats)
			}
		},
		"update": func(t *rapid.T) {
			p := mc.patch(t)
			recs, err := mc.h.update(mc.now(), p)
			want, code := mc.m.update(mc.nowMs, p)
			mc.compare(fmt.Sprintf("update %s", patchString(p)), recs, err, want, code)
		},
		"cancel": func(t *rapid.T) {
			id, cust := mc.pickRes(t, StatusHeld)
			recs, err := mc.h.cancel(mc.now(), cust, id)
			want, code := mc.m.cancel(mc.nowMs, cust, id)
			mc.compare("cancel "+cust+" "+id, recs, err, want, code)
		},
		"pay": func(t *rapid.T) {
			id, cust := mc.pickRes(t, StatusHeld)
			recs, attempt, err := mc.h.pay(mc.now(), cust, id)
			want, wantAttempt, code := mc.m.pay(mc.nowMs, cust, id)
			mc.compare("pay "+cust+" "+id, recs, err, want, code)
			if attempt != wantAttempt {
				t.Fatalf("pay %s: attempt %d, want %d", id, attempt, wantAttempt)
			}
		},
		"confirm": func(t *rapid.T) {
			id, _ := mc.pickRes(t, StatusPaying)
			attempt := mc.attempt(t, id)
			booking := fmt.Sprintf("b%d", mc.nextBk)
			switch k := pct(t, "bookingKind"); {
			case k < 90:
				mc.nextBk++
			case k < 95:
				booking = "bad id"
			default:
				booking = "b0" // maybe taken
			}
			recs, err := mc.h.confirm(mc.now(), id, attempt, booking)
			want, code := mc.m.confirm(mc.nowMs, id, attempt, booking)
			mc.compare(fmt.Sprintf("confirm %s %d %s", id, attempt, booking), recs, err, want, code)
		},
		"fail": func(t *rapid.T) {
			id, _ := mc.pickRes(t, StatusPaying)
			attempt := mc.attempt(t, id)
			recs, err := mc.h.fail(mc.now(), id, attempt)
			want, code := mc.m.fail(mc.nowMs, id, attempt)
			mc.compare(fmt.Sprintf("fail %s %d", id, attempt), recs, err, want, code)
		},
		"void": func(t *rapid.T) {
			id, _ := mc.pickRes(t, StatusReleased)
			attempt := mc.attempt(t, id)
			recs, err := mc.h.void(mc.now(), id, attempt)
			want, code := mc.m.void(mc.nowMs, id, attempt)
			mc.compare(fmt.Sprintf("void %s %d", id, attempt), recs, err, want, code)
		},
		"refund": func(t *rapid.T) {
			booking := fmt.Sprintf("b%d", rapid.IntRange(0, max(mc.nextBk, 1)).Draw(t, "booking"))
			recs, err := mc.h.refundBooking(mc.now(), booking)
			want, code := mc.m.refundBooking(mc.nowMs, booking)
			mc.compare("refund "+booking, recs, err, want, code)
		},
		"refunded": func(t *rapid.T) {
			id, _ := mc.pickRes(t, StatusBooked)
			attempt := mc.attempt(t, id)
			recs, err := mc.h.completeRefund(mc.now(), id, attempt)
			want, code := mc.m.completeRefund(mc.nowMs, id, attempt)
			mc.compare(fmt.Sprintf("refunded %s %d", id, attempt), recs, err, want, code)
		},
		"block": func(t *rapid.T) {
			seats := mc.seatIDs(t, 3)
			recs, err := mc.h.block(mc.now(), seats...)
			want, code := mc.m.setBlocked(mc.nowMs, seats, true)
			mc.compare(fmt.Sprintf("block %v", seats), recs, err, want, code)
		},
		"unblock": func(t *rapid.T) {
			seats := mc.seatIDs(t, 3)
			recs, err := mc.h.unblock(mc.now(), seats...)
			want, code := mc.m.setBlocked(mc.nowMs, seats, false)
			mc.compare(fmt.Sprintf("unblock %v", seats), recs, err, want, code)
		},
		"tick": func(t *rapid.T) {
			recs := mc.h.tick(mc.now())
			mc.compare("tick", recs, nil, mc.m.expire(mc.nowMs), "")
		},
		"advance": func(t *rapid.T) {
			switch k := pct(t, "stride"); {
			case k < 70:
				mc.nowMs += rapid.Int64Range(0, 5_000).Draw(t, "ms")
			case k < 90:
				mc.nowMs += rapid.Int64Range(5_000, 70_000).Draw(t, "ms")
			default:
				mc.nowMs += 60_000
			}
			mc.steps = append(mc.steps, fmt.Sprintf("advance to %d", mc.nowMs-t0.UnixMilli()))
		},
		"advance-to-expiry": func(t *rapid.T) {
			// To the next expiry, or to some live reservation's expiry or
			// original hold expiry, give or take a millisecond.
			var edges []int64
			if next, ok := mc.h.ev.NextExpiry(); ok {
				edges = append(edges, next.UnixMilli())
			}
			for _, r := range mc.m.order {
				if r.status.Live() {
					edges = append(edges, r.expires, r.heldUntil)
				}
			}
			if len(edges) == 0 {
				return
			}
			to := rapid.SampledFrom(edges).Draw(t, "edge") + rapid.Int64Range(-1, 1).Draw(t, "by")
			if to > mc.nowMs {
				mc.nowMs = to
			}
			mc.steps = append(mc.steps, fmt.Sprintf("advance to %d", mc.nowMs-t0.UnixMilli()))
		},
		"jump": func(t *rapid.T) {
			if pct(t, "rare") >= 97 {
				mc.nowMs += 30 * 60 * 1000
			}
		},
		"snapshot": func(t *rapid.T) {
			if mc.midSnap == nil {
				mc.midSnap, mc.midSeq = mc.h.ev.MarshalSnapshot(), mc.h.ev.Seq()
			}
		},
	}
}

// checkErrorSeats: seat_unavailable lists exactly the requested seats not
// available (the customer's own held seats are theirs to ask for again),
// seat_not_found exactly the unknown ones, in request order.
func (mc *machine) checkErrorSeats(err error, cust string, req []string, code Code) {
	mc.t.Helper()
	var want []string
	for _, id := range req {
		i, ok := mc.m.index(id)
		if code == CodeSeatNotFound && !ok {
			want = append(want, id)
		}
		if code == CodeSeatUnavailable && ok && mc.m.status[i] != SeatAvailable {
			if r := mc.m.holder(i); r == nil || r.cust != cust || r.status != StatusHeld {
				want = append(want, id)
			}
		}
	}
	var e *Error
	if !errors.As(err, &e) || !slices.Equal(e.Seats, want) {
		mc.t.Fatalf("%s lists %q, want %q", code, e.Seats, want)
	}
}

// check compares the engine's whole visible state with the model.
func (mc *machine) check() {
	mc.t.Helper()
	ev, now := mc.h.ev, mc.now()
	if got := ev.Statuses(); !slices.Equal(got, mc.m.status) {
		mc.t.Fatalf("seat statuses %v, model %v", got, mc.m.status)
	}
	holder := make(map[string]string)
	for _, r := range mc.m.order {
		v, err := ev.ReservationByID(now, r.id)
		if err != nil {
			mc.t.Fatalf("reservation %s: %v", r.id, err)
		}
		wantStatus, wantReason := r.status, r.reason
		if r.status.Live() && r.expires <= mc.nowMs {
			wantStatus, wantReason = StatusReleased, ReasonExpired // lapsed, not yet journaled
		}
		if v.Status != wantStatus || v.ReleaseReason != wantReason || v.Attempts != r.attempts ||
			v.ExpiresAt.UnixMilli() != r.expires || v.BookingID != r.booking || v.CustomerID != r.cust {
			mc.t.Fatalf("reservation %s reads %+v, model %+v", r.id, v, *r)
		}
		if r.status.Live() || r.status == StatusBooked {
			for _, s := range v.Seats {
				if other, taken := holder[s]; taken {
					mc.t.Fatalf("seat %s in live/booked reservations %s and %s", s, other, r.id)
				}
				holder[s] = r.id
			}
		}
	}
	for _, c := range propCustomers {
		var got, want []string
		for _, v := range ev.Reservations(now, c) {
			got = append(got, v.ID)
		}
		for i := len(mc.m.order) - 1; i >= 0; i-- {
			if mc.m.order[i].cust == c {
				want = append(want, mc.m.order[i].id)
			}
		}
		if !slices.Equal(got, want) {
			mc.t.Fatalf("customer %s reservations %q, model %q", c, got, want)
		}
	}
	if len(ev.Bookings()) != len(mc.m.bookings) {
		mc.t.Fatalf("%d bookings, model %d", len(ev.Bookings()), len(mc.m.bookings))
	}
	info, m := ev.Info(), mc.m
	wantStatus, wantOrphans, wantFocal := EventActive, OrphanAllow, m.defaultFocal
	if m.cancelled {
		wantStatus = EventCancelled
	}
	if m.orphans == OrphanPrevent {
		wantOrphans = OrphanPrevent
	}
	if m.focal != nil {
		wantFocal = *m.focal
	}
	if info.Name != m.name || int64(info.HoldTTLSeconds)*1000 != m.ttlMs || info.MaxSeatsPerCustomer != m.max ||
		int64(info.MaxHoldSeconds)*1000 != m.maxHold() || info.OnSaleAt.UnixMilli() != m.onSaleMs ||
		info.SalesEndAt.UnixMilli() != m.salesEnds() || info.Status != wantStatus || info.OrphanSeats != wantOrphans ||
		info.FocalPoint != wantFocal {
		mc.t.Fatalf("event reads %+v, model %+v", info, m.settings)
	}
	if m.cancelled {
		for _, r := range m.order {
			if r.status == StatusHeld {
				mc.t.Fatalf("cancelled event still holds %s", r.id)
			}
		}
	}
}

// finish checks the whole run: contiguous seqs, replay from the records,
// and a midway snapshot plus the rest of the records.
func (mc *machine) finish() {
	mc.t.Helper()
	for i, r := range mc.h.recs {
		if r.Seq != uint64(i+1) {
			mc.t.Fatalf("record %d has seq %d", i, r.Seq)
		}
	}
	live := mc.h.ev.MarshalSnapshot()
	if got := mc.h.replay().MarshalSnapshot(); !bytes.Equal(got, live) {
		mc.t.Fatalf("replay of %d records differs from the live event", len(mc.h.recs))
	}
	if mc.midSnap != nil {
		ev, err := RestoreEvent(mc.h.recs[0], mc.midSnap)
		if err != nil {
			mc.t.Fatalf("restore midway snapshot: %v", err)
		}
		for _, r := range mc.h.recs[mc.midSeq:] {
			if err := ev.Apply(r); err != nil {
				mc.t.Fatalf("apply %d after the midway snapshot: %v", r.Seq, err)
			}
		}
		if got := ev.MarshalSnapshot(); !bytes.Equal(got, live) {
			mc.t.Fatalf("midway snapshot at %d + replay differs from the live event", mc.midSeq)
		}
	}
}

func TestPropertyEngine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mc := newMachine(t)
		actions := mc.actions()
		names := make([]string, 0, len(actions))
		for n := range actions {
			names = append(names, n)
		}
		slices.Sort(names)
		// Holds are the most common command, as in a sale.
		names = append(names, "hold", "hold", "hold", "best", "best", "advance", "advance-to-expiry", "pay", "fail", "confirm", "confirm")
		steps := rapid.IntRange(40, 250).Draw(t, "steps")
		for range steps {
			actions[rapid.SampledFrom(names).Draw(t, "action")](t)
			mc.check()
		}
		mc.finish()
	})
}

// TestPropertyRecordSeqContiguous drives the bare engine (no harness) with
// random commands and checks that the records of all of them, accepted or
// rejected, carry sequence numbers 1, 2, 3, … and that Seq follows them.
func TestPropertyRecordSeqContiguous(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ev, all, err := CreateEvent(smallDef(), t0)
		if err != nil {
			t.Fatal(err)
		}
		nowMs := t0.UnixMilli()
		ids := ev.Plan().Seats
		seat := func() string { return ids[rapid.IntRange(0, len(ids)-1).Draw(t, "seat")].ID }
		res := func() string { return fmt.Sprintf("r%d", rapid.IntRange(0, 30).Draw(t, "res")) }
		cust := func() string { return rapid.SampledFrom(propCustomers).Draw(t, "cust") }
		for range rapid.IntRange(1, 200).Draw(t, "steps") {
			nowMs += rapid.Int64Range(0, 20_000).Draw(t, "ms")
			now := time.UnixMilli(nowMs)
			var recs []Record
			switch rapid.IntRange(0, 9).Draw(t, "cmd") {
			case 0, 1:
				recs, _, _ = ev.Hold(now, HoldRequest{ReservationID: res(), CustomerID: cust(), SeatIDs: []string{seat(), seat()}})
			case 2:
				recs, _ = ev.Cancel(now, cust(), res())
			case 3:
				recs, _, _ = ev.BeginPayment(now, cust(), res(), "tok_visa")
			case 4:
				recs, _ = ev.ConfirmPayment(now, res(), uint32(rapid.IntRange(0, 2).Draw(t, "a")), fmt.Sprintf("b%d", len(all)), evidence(t))
			case 5:
				switch rapid.IntRange(0, 3).Draw(t, "settle") {
				case 0:
					recs, _ = ev.FailPayment(now, res(), uint32(rapid.IntRange(0, 2).Draw(t, "a")), evidence(t))
				case 1:
					recs, _ = ev.VoidPayment(now, res(), uint32(rapid.IntRange(0, 2).Draw(t, "a")))
				case 2:
					recs, _, _ = ev.RefundBooking(now, fmt.Sprintf("b%d", rapid.IntRange(0, len(all)).Draw(t, "b")))
				default:
					recs, _ = ev.CompleteRefund(now, res(), uint32(rapid.IntRange(0, 2).Draw(t, "a")), "re_1")
				}
			case 6:
				recs, _ = ev.Block(now, []string{seat()})
			case 7:
				recs = ev.Tick(now)
			case 8:
				recs, _ = ev.HoldBest(now, HoldBestRequest{ReservationID: res(), CustomerID: cust(), BestAvailable: BestAvailable{Quantity: rapid.IntRange(1, 3).Draw(t, "n")}})
			case 9:
				p := EventPatch{HoldTTLSeconds: ptr(rapid.SampledFrom([]int{30, 60}).Draw(t, "ttl"))}
				if rapid.IntRange(0, 9).Draw(t, "cancel") == 0 {
					p.Status = ptr(EventCancelled)
				}
				recs, _ = ev.Update(now, p)
			}
			all = append(all, recs...)
			if ev.Seq() != uint64(len(all)) {
				t.Fatalf("event at seq %d after %d records", ev.Seq(), len(all))
			}
		}
		for i, r := range all {
			if r.Seq != uint64(i+1) {
				t.Fatalf("record %d of %d has seq %d", i, len(all), r.Seq)
			}
		}
	})
}

// evidence draws how a provider's answer arrived: by call, or by one of a
// few webhook events (so that repeats happen).
func evidence(t *rapid.T) PaymentEvidence {
	if rapid.Bool().Draw(t, "webhook") {
		return PaymentEvidence{Ref: "pi_1", ProviderEventID: fmt.Sprintf("evt_%d", rapid.IntRange(0, 3).Draw(t, "evt"))}
	}
	return PaymentEvidence{Ref: "pi_1"}
}
