package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// This file holds the waiting room's test harness (every command followed
// by the codec round trip of its records and an invariant check), the
// invariant checker, and the table tests of its rules.

// roomTB is what the room harness needs from *testing.T, *testing.B and
// *rapid.T.
type roomTB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// roomT0 is the on-sale moment of the test rooms; times are seconds after it.
var roomT0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func roomAt(seconds float64) time.Time {
	return roomT0.Add(time.Duration(math.Round(seconds * float64(time.Second))))
}

func roomSeed(b byte) [32]byte {
	var s [32]byte
	for i := range s {
		s[i] = b + byte(i)
	}
	return s
}

// roomCfg is the default test config: on sale at roomT0, 10 visitors per
// second, no cap on active shoppers, 4 seats per customer.
func roomCfg() RoomConfig {
	return RoomConfig{OnSaleAt: roomT0, AdmitPerSecond: 10, MaxSeatsPerCustomer: 4}
}

// plenty is an inventory that never limits admissions.
var plenty = RoomInventory{Available: 1_000_000}

var roomCodes = map[Code]bool{
	CodeInvalidRequest: true, CodeTicketNotFound: true, CodeAdmissionRequired: true,
	CodeQueueFull: true, CodeSalesNotOpen: true,
}

type roomHarness struct {
	t    roomTB
	r    *Room
	recs []RoomRecord // every record returned so far, from RoomCreated on
	// quiet skips the invariant check after each command (bulk set-ups
	// check once at their end: the check is O(n log n)).
	quiet bool
}

func newRoomHarness(t roomTB, cfg RoomConfig) *roomHarness {
	t.Helper()
	r, recs, err := CreateRoom("ev-1", cfg, roomT0.Add(-time.Hour))
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	h := &roomHarness{t: t, r: r}
	h.absorb("create", recs, nil)
	return h
}

// absorb checks what a command returned: contiguous sequence numbers,
// records that survive the codec, a known error code, and the room's
// invariants.
func (h *roomHarness) absorb(name string, recs []RoomRecord, err error) {
	h.t.Helper()
	for _, rec := range recs {
		if want := uint64(len(h.recs) + 1); rec.Seq != want {
			h.t.Fatalf("%s: record %s has seq %d, want %d", name, rec.Type, rec.Seq, want)
		}
		got, derr := DecodeRoomPayload(rec.Seq, rec.Type, rec.AppendPayload(nil))
		if derr != nil || !reflect.DeepEqual(got, rec) {
			h.t.Fatalf("%s: record %s does not survive the codec: %v\ngot  %+v\nwant %+v", name, rec.Type, derr, got, rec)
		}
		h.recs = append(h.recs, rec)
	}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || !roomCodes[e.Code] {
			h.t.Fatalf("%s: error %v is not an *Error with a room code", name, err)
		}
	}
	if h.quiet {
		return
	}
	if err := checkRoomInvariants(h.r); err != nil {
		h.t.Fatalf("%s: %v", name, err)
	}
}

// joinMany joins customers c<from>…c<to> with tickets t<from>…t<to>.
func (h *roomHarness) joinMany(s float64, from, to int) {
	h.t.Helper()
	h.quiet = true
	for i := from; i <= to; i++ {
		h.mustJoin(s, fmt.Sprint("c", i), fmt.Sprint("t", i))
	}
	h.quiet = false
	h.absorb("join many", nil, nil)
}

// keepAlive polls every queued visitor, as visitors who keep their browser
// open do.
func (h *roomHarness) keepAlive(s float64, except ...string) {
	h.t.Helper()
	for i := range uint32(h.r.vs.len()) {
		if h.r.vs.at(i).status.queued() && !slices.Contains(except, h.r.vs.at(i).ticket) {
			h.r.Poll(roomAt(s), h.r.vs.at(i).ticket)
		}
	}
}

// tickAlive polls every queued visitor, then ticks.
func (h *roomHarness) tickAlive(s float64, inv RoomInventory) []RoomRecord {
	h.t.Helper()
	h.keepAlive(s)
	return h.tick(s, inv)
}

func (h *roomHarness) join(s float64, cust, ticket string) (TicketView, []RoomRecord, error) {
	h.t.Helper()
	recs, tv, err := h.r.Join(roomAt(s), cust, ticket)
	h.absorb("join "+cust, recs, err)
	return tv, recs, err
}

func (h *roomHarness) mustJoin(s float64, cust, ticket string) TicketView {
	h.t.Helper()
	tv, _, err := h.join(s, cust, ticket)
	if err != nil {
		h.t.Fatalf("join %s: %v", cust, err)
	}
	return tv
}

func (h *roomHarness) poll(s float64, ticket string) TicketView {
	h.t.Helper()
	tv, err := h.r.Poll(roomAt(s), ticket)
	if err != nil {
		h.t.Fatalf("poll %s: %v", ticket, err)
	}
	if err := checkRoomInvariants(h.r); err != nil {
		h.t.Fatalf("poll %s: %v", ticket, err)
	}
	return tv
}

func (h *roomHarness) tick(s float64, inv RoomInventory) []RoomRecord {
	h.t.Helper()
	recs := h.r.Tick(roomAt(s), inv)
	h.absorb("tick", recs, nil)
	return recs
}

func (h *roomHarness) draw(s float64, seed [32]byte) []RoomRecord {
	h.t.Helper()
	recs, err := h.r.Draw(roomAt(s), seed)
	h.absorb("draw", recs, err)
	if err != nil {
		h.t.Fatalf("draw: %v", err)
	}
	return recs
}

func (h *roomHarness) leave(s float64, ticket string) []RoomRecord {
	h.t.Helper()
	recs, err := h.r.Leave(roomAt(s), ticket)
	h.absorb("leave", recs, err)
	if err != nil {
		h.t.Fatalf("leave %s: %v", ticket, err)
	}
	return recs
}

func (h *roomHarness) claim(s float64, cust string) ([]RoomRecord, TicketView, error) {
	h.t.Helper()
	recs, tv, err := h.r.Claim(roomAt(s), cust)
	h.absorb("claim "+cust, recs, err)
	return recs, tv, err
}

func (h *roomHarness) done(s float64, cust string, seats int) []RoomRecord {
	h.t.Helper()
	recs, err := h.r.Done(roomAt(s), cust, seats)
	h.absorb("done "+cust, recs, err)
	if err != nil {
		h.t.Fatalf("done %s: %v", cust, err)
	}
	return recs
}

func (h *roomHarness) update(s float64, cfg RoomConfig) ([]RoomRecord, error) {
	h.t.Helper()
	recs, err := h.r.Update(roomAt(s), cfg)
	h.absorb("update", recs, err)
	return recs, err
}

// replay rebuilds the room from every record returned so far.
func (h *roomHarness) replay() *Room {
	h.t.Helper()
	return roomReplay(h.t, h.recs)
}

func roomReplay(t roomTB, recs []RoomRecord) *Room {
	t.Helper()
	r, err := NewRoom(recs[0])
	if err != nil {
		t.Fatalf("NewRoom: %v", err)
	}
	for _, rec := range recs[1:] {
		if err := r.Apply(rec); err != nil {
			t.Fatalf("replay: %v", err)
		}
	}
	return r
}

// checkReplay asserts that replaying the journal gives the live room's
// snapshot byte for byte, and that the snapshot restores to itself.
func (h *roomHarness) checkReplay() {
	h.t.Helper()
	live := h.r.MarshalSnapshot()
	if got := h.replay().MarshalSnapshot(); !bytes.Equal(got, live) {
		h.t.Fatalf("replayed snapshot (%d bytes) differs from the live one (%d bytes)", len(got), len(live))
	}
	back, err := RestoreRoom(h.recs[0], live)
	if err != nil {
		h.t.Fatalf("RestoreRoom: %v", err)
	}
	if err := checkRoomInvariants(back); err != nil {
		h.t.Fatalf("restored room: %v", err)
	}
	if got := back.MarshalSnapshot(); !bytes.Equal(got, live) {
		h.t.Fatalf("restored snapshot differs from the one it was restored from")
	}
}

// restart replaces the live room by one rebuilt from the journal — from a
// snapshot taken midway and the records after it when midway is true — as
// a crash and recovery would.
func (h *roomHarness) restart(midway bool) {
	h.t.Helper()
	if !midway || len(h.recs) < 3 {
		h.r = h.replay()
	} else {
		cut := len(h.recs) / 2
		snap := roomReplay(h.t, h.recs[:cut]).MarshalSnapshot()
		r, err := RestoreRoom(h.recs[0], snap)
		if err != nil {
			h.t.Fatalf("RestoreRoom: %v", err)
		}
		for _, rec := range h.recs[cut:] {
			if err := r.Apply(rec); err != nil {
				h.t.Fatalf("replay after the snapshot: %v", err)
			}
		}
		h.r = r
	}
	if err := checkRoomInvariants(h.r); err != nil {
		h.t.Fatalf("after restart: %v", err)
	}
}

// ticketsOf lists the tickets admitted (or named) by records of type typ.
func (h *roomHarness) ticketsOf(recs []RoomRecord, typ RoomRecordType) []string {
	var out []string
	for _, rec := range recs {
		if rec.Type == typ {
			for _, v := range rec.Visitors {
				out = append(out, h.r.vs.at(v).ticket)
			}
		}
	}
	return out
}

func roomTypes(recs []RoomRecord) []string {
	var out []string
	for _, rec := range recs {
		s := rec.Type.String()
		if rec.Reason != RoomReasonNone {
			s += " " + rec.Reason.String()
		}
		out = append(out, s)
	}
	return out
}

func wantRoomRecords(t roomTB, recs []RoomRecord, want ...string) {
	t.Helper()
	if got := roomTypes(recs); !slices.Equal(got, want) {
		t.Fatalf("got records %q, want %q", got, want)
	}
}

func wantRoomCode(t roomTB, err error, want Code) {
	t.Helper()
	if got := CodeOf(err); got != want || want == "" && err != nil {
		t.Fatalf("got error %v (code %q), want code %q", err, got, want)
	}
}

func wantTicket(t roomTB, tv TicketView, status TicketStatus, position int) {
	t.Helper()
	if tv.Status != status || tv.Position != position {
		t.Fatalf("ticket %s reads %s at %d, want %s at %d", tv.Ticket, tv.Status, tv.Position, status, position)
	}
}

// checkRoomInvariants recounts everything the room keeps incrementally
// and checks its structures against each other.
func checkRoomInvariants(r *Room) error {
	var pre, waiting, active, done int
	live := map[string]int{}
	for i := range uint32(r.vs.len()) {
		x := r.vs.at(i)
		switch {
		case x.status == vPre:
			pre++
		case x.status == vWaiting:
			waiting++
		case x.status.active():
			active++
		case x.status == vDone:
			done++
		}
		if x.status.live() {
			live[x.customer]++
			if live[x.customer] > 1 {
				return fmt.Errorf("customer %s has two live tickets", x.customer)
			}
		}
		if v, ok := r.tickets[x.ticket]; !ok || v != uint32(i) {
			return fmt.Errorf("ticket %s is not indexed", x.ticket)
		}
		if r.customers[x.customer] < uint32(i) {
			return fmt.Errorf("customer %s does not point at their latest ticket", x.customer)
		}
		if x.status.queued() != x.inWheel {
			return fmt.Errorf("visitor %d (status %d): in the poll wheel %v", i, x.status, x.inWheel)
		}
		if x.status.active() != (x.adm != 0 && r.adms[x.adm-1].heapIdx >= 0) {
			return fmt.Errorf("visitor %d (status %d): admission heap membership wrong", i, x.status)
		}
		if (x.status == vClaimed) != (x.status.active() && r.adms[x.adm-1].claimed) {
			return fmt.Errorf("visitor %d: claimed flag wrong", i)
		}
		if !r.drawn && x.slot != 0 || x.status == vWaiting && x.slot == 0 || x.status == vPre && r.drawn {
			return fmt.Errorf("visitor %d (status %d) placed wrongly (slot %d)", i, x.status, x.slot)
		}
	}
	if len(r.tickets) != r.vs.len() {
		return fmt.Errorf("%d tickets indexed, %d visitors", len(r.tickets), r.vs.len())
	}
	if pre != r.pre || waiting != r.waiting || active != r.active || int64(done) != r.doneBuyers {
		return fmt.Errorf("counts pre %d waiting %d active %d done %d, kept %d %d %d %d",
			pre, waiting, active, done, r.pre, r.waiting, r.active, r.doneBuyers)
	}
	// The queue order, the departed counts and the positions.
	gone := int32(0)
	seenWaiting := false
	pos := 0
	for s, v := range r.slots {
		x := r.vs.at(v)
		if int(x.slot) != s+1 {
			return fmt.Errorf("slot %d holds visitor %d whose slot is %d", s+1, v, x.slot)
		}
		if x.status == vWaiting {
			if s < r.head {
				return fmt.Errorf("visitor %d waits before the head %d", v, r.head)
			}
			seenWaiting = true
			pos++
			if got := r.position(v); got != pos {
				return fmt.Errorf("visitor %d: position %d, want %d", v, got, pos)
			}
		} else {
			gone++
			if x.adm != 0 && seenWaiting {
				return fmt.Errorf("visitor %d admitted behind a waiting visitor", v)
			}
		}
		if got := r.gone.prefix(s); got != gone {
			return fmt.Errorf("departed count up to slot %d is %d, want %d", s+1, got, gone)
		}
	}
	if r.head < len(r.slots) && r.vs.at(r.slots[r.head]).status != vWaiting {
		return fmt.Errorf("head %d is not at a waiting visitor", r.head)
	}
	// The admission heap.
	for i, ai := range r.due {
		a := &r.adms[ai]
		if a.heapIdx != i {
			return fmt.Errorf("admission %d has heap index %d, is at %d", ai, a.heapIdx, i)
		}
		if i > 0 && (roomDue{r}).Less(i, (i-1)/2) {
			return fmt.Errorf("admission heap out of order at %d", i)
		}
	}
	// The poll wheel: every list well linked, in the bucket of its deadline.
	n := 0
	for b := range r.wheel {
		prev := uint32(0)
		for x := r.wheel[b]; x != 0; x = r.vs.at(x - 1).next {
			vx := r.vs.at(x - 1)
			if vx.prev != prev || !vx.inWheel || int(uint8(roomCeilDiv(vx.deadline, 1000))) != b {
				return fmt.Errorf("poll wheel bucket %d is mislinked at visitor %d", b, x-1)
			}
			prev = x
			n++
			if n > r.vs.len() {
				return fmt.Errorf("poll wheel has a cycle")
			}
		}
	}
	if n != pre+waiting {
		return fmt.Errorf("poll wheel holds %d visitors, %d are queued", n, pre+waiting)
	}
	return nil
}

func TestRoomConfigValidation(t *testing.T) {
	base := roomCfg()
	for _, tc := range []struct {
		name string
		edit func(*RoomConfig)
	}{
		{"no onSaleAt", func(c *RoomConfig) { c.OnSaleAt = time.Time{} }},
		{"onSaleAt before 1970", func(c *RoomConfig) { c.OnSaleAt = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"zero rate", func(c *RoomConfig) { c.AdmitPerSecond = 0 }},
		{"rate too small", func(c *RoomConfig) { c.AdmitPerSecond = 0.0009 }},
		{"rate too big", func(c *RoomConfig) { c.AdmitPerSecond = RoomAdmitPerSecondMax + 1 }},
		{"rate NaN", func(c *RoomConfig) { c.AdmitPerSecond = math.NaN() }},
		{"rate Inf", func(c *RoomConfig) { c.AdmitPerSecond = math.Inf(1) }},
		{"negative maxActive", func(c *RoomConfig) { c.MaxActive = -1 }},
		{"maxActive too big", func(c *RoomConfig) { c.MaxActive = RoomMaxActiveMax + 1 }},
		{"negative claim", func(c *RoomConfig) { c.ClaimSeconds = -1 }},
		{"claim too long", func(c *RoomConfig) { c.ClaimSeconds = RoomClaimSecondsMax + 1 }},
		{"ttl shorter than claim", func(c *RoomConfig) { c.ClaimSeconds, c.AdmissionTTLSeconds = 300, 299 }},
		{"ttl negative", func(c *RoomConfig) { c.AdmissionTTLSeconds = -5 }},
		{"ttl too long", func(c *RoomConfig) { c.AdmissionTTLSeconds = RoomAdmissionTTLSecondsMax + 1 }},
		{"no seats", func(c *RoomConfig) { c.MaxSeatsPerCustomer = 0 }},
		{"too many seats", func(c *RoomConfig) { c.MaxSeatsPerCustomer = MaxSeatsPerCustomerMax + 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			_, _, err := CreateRoom("ev-1", c, roomT0)
			wantRoomCode(t, err, CodeInvalidRequest)
			h := newRoomHarness(t, base)
			_, err = h.update(1, c)
			wantRoomCode(t, err, CodeInvalidRequest)
		})
	}
	_, _, err := CreateRoom("../ev", base, roomT0)
	wantRoomCode(t, err, CodeInvalidRequest)

	// Defaults, and values kept to milliseconds and thousandths.
	c := base
	c.OnSaleAt = roomT0.Add(1500 * time.Microsecond).In(time.FixedZone("CET", 3600))
	c.AdmitPerSecond = 2.50049
	r, recs, err := CreateRoom("ev-1", c, roomT0)
	if err != nil {
		t.Fatal(err)
	}
	want := RoomConfig{OnSaleAt: roomT0.Add(time.Millisecond), AdmitPerSecond: 2.5, ClaimSeconds: RoomClaimSecondsDefault,
		AdmissionTTLSeconds: RoomAdmissionTTLSecondsDefault, MaxSeatsPerCustomer: 4}
	if got := r.Config(); got != want || recs[0].Config != want {
		t.Fatalf("resolved config %+v, want %+v", got, want)
	}
	c.ClaimSeconds = 1800 // longer than the default lifetime: the lifetime follows
	r, _, _ = CreateRoom("ev-1", c, roomT0)
	if got := r.Config().AdmissionTTLSeconds; got != 1800 {
		t.Fatalf("admission lifetime %d, want the claim window 1800", got)
	}
}

func TestRoomJoinOnePlacePerCustomer(t *testing.T) {
	h := newRoomHarness(t, roomCfg())
	h.draw(0, roomSeed(1))
	a := h.mustJoin(1, "alice", "ta")
	wantTicket(t, a, TicketWaiting, 1)
	// Again, with another ticket id: the same ticket, no record.
	tv, recs, err := h.join(2, "alice", "ta2")
	if err != nil || tv.Ticket != "ta" || len(recs) != 0 {
		t.Fatalf("second join: %v, ticket %s, %d records; want ta and none", err, tv.Ticket, len(recs))
	}
	// A ticket id is never issued twice.
	_, _, err = h.join(3, "bob", "ta")
	wantRoomCode(t, err, CodeInvalidRequest)
	for _, bad := range [][2]string{{"", "tb"}, {string(make([]byte, 257)), "tb"}, {"bob", ""}, {"bob", "t/b"}, {"bob", string(make([]byte, 129))}} {
		_, _, err = h.join(3, bad[0], bad[1])
		wantRoomCode(t, err, CodeInvalidRequest)
	}
	_, err = h.r.Poll(roomAt(3), "nope")
	wantRoomCode(t, err, CodeTicketNotFound)
	_, err = h.r.Leave(roomAt(3), "nope")
	wantRoomCode(t, err, CodeTicketNotFound)
	// After leaving, joining again is a new place at the back.
	h.mustJoin(4, "bob", "tb")
	wantRoomRecords(t, h.leave(5, "ta"), "RoomLeft left")
	wantRoomRecords(t, h.leave(6, "ta")) // again: nothing
	if tv := h.poll(6, "ta"); tv.Status != TicketLeft || tv.Reason != RoomReasonLeft {
		t.Fatalf("left ticket reads %s (%s)", tv.Status, tv.Reason)
	}
	wantTicket(t, h.mustJoin(7, "alice", "ta3"), TicketWaiting, 2)
	wantTicket(t, h.poll(7, "tb"), TicketWaiting, 1)
	h.checkReplay()
}

// TestRoomCaseC14 is CASES.md C14: positions are honest.
func TestRoomCaseC14(t *testing.T) {
	for _, how := range []string{"deletes", "misses polls"} {
		t.Run(how, func(t *testing.T) {
			h := newRoomHarness(t, roomCfg())
			h.draw(0, roomSeed(1))
			for i, c := range []string{"A", "B", "C", "D"} {
				wantTicket(t, h.mustJoin(1+float64(i)/10, c, "t"+c), TicketWaiting, i+1)
			}
			if how == "deletes" {
				h.leave(2, "tB")
			} else {
				// A, C and D poll as told; B never again.
				s := 1.0
				for s < 60 {
					s += 2
					for _, c := range []string{"A", "C", "D"} {
						if tv := h.poll(s, "t"+c); tv.PollAfterSeconds != RoomPollAfterSecondsMin {
							t.Fatalf("front of the queue told to poll after %d s", tv.PollAfterSeconds)
						}
					}
					h.tick(s, RoomInventory{SoldOut: false}) // no seats: nobody admitted
				}
				if tv := h.poll(s, "tB"); tv.Status != TicketExpired || tv.Reason != RoomReasonAbandoned {
					t.Fatalf("B reads %s (%s), want expired (abandoned)", tv.Status, tv.Reason)
				}
			}
			h.mustJoin(61, "E", "tE")
			for i, c := range []string{"A", "C", "D", "E"} {
				wantTicket(t, h.poll(62, "t"+c), TicketWaiting, i+1)
			}
			// C again with the same session: its place, no second entry.
			tv, recs, err := h.join(63, "C", "tC2")
			if err != nil || tv.Ticket != "tC" || tv.Position != 2 || len(recs) != 0 {
				t.Fatalf("C re-joining: %v %+v, %d records", err, tv, len(recs))
			}
			h.checkReplay()
		})
	}
}

// TestRoomCaseC13 is CASES.md C13: abandoned admissions do not stall the
// queue.
func TestRoomCaseC13(t *testing.T) {
	cfg := roomCfg()
	cfg.MaxActive, cfg.AdmitPerSecond = 10, 100
	h := newRoomHarness(t, cfg)
	h.draw(0, roomSeed(1))
	for i := 1; i <= 30; i++ {
		h.mustJoin(0.5, fmt.Sprint("v", i), fmt.Sprint("t", i))
	}
	first := h.ticketsOf(h.tick(1, plenty), RoomRecordAdmitted)
	if want := roomTicketRange(1, 10); !slices.Equal(first, want) {
		t.Fatalf("first admitted %q, want %q", first, want)
	}
	// Everyone waiting polls once; then 11–20 stop polling.
	for i := 11; i <= 30; i++ {
		h.poll(1, fmt.Sprint("t", i))
	}
	for i := 1; i <= 10; i++ {
		h.claim(2, fmt.Sprint("v", i))
	}
	for i := 1; i <= 10; i++ {
		h.done(3, fmt.Sprint("v", i), 2)
	}
	var admitted []string
	doneAt := 0.0
	for s := 3.0; s <= 200 && len(admitted) < 20; s++ {
		for i := 21; i <= 30; i++ {
			if tv := h.poll(s, fmt.Sprint("t", i)); tv.Status == TicketAdmitted {
				continue
			}
		}
		got := h.ticketsOf(h.tick(s, plenty), RoomRecordAdmitted)
		admitted = append(admitted, got...)
		if len(admitted) == 20 {
			doneAt = s
		}
	}
	if want := append(roomTicketRange(11, 20), roomTicketRange(21, 30)...); !slices.Equal(admitted, want) {
		t.Fatalf("admitted %q, want %q", admitted, want)
	}
	// 11–20 were admitted at 3 s: 21–30 within their claim deadline plus one tick.
	if limit := 3 + float64(RoomClaimSecondsDefault) + 1; doneAt > limit {
		t.Fatalf("21–30 admitted at %v s, later than %v s", doneAt, limit)
	}
	for i := 11; i <= 20; i++ {
		if tv := h.poll(doneAt, fmt.Sprint("t", i)); tv.Status != TicketExpired || tv.Reason != RoomReasonLapsed {
			t.Fatalf("t%d reads %s (%s), want expired (lapsed)", i, tv.Status, tv.Reason)
		}
	}
	if st := h.r.Stats(roomAt(doneAt)); st.Active != 10 {
		t.Fatalf("%d active, want 10 (21–30)", st.Active)
	}
	h.checkReplay()
}

func roomTicketRange(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprint("t", i))
	}
	return out
}

// roomAuditOrder re-derives, from the journal alone, the queue order the
// draw produced: it follows Draw's documented algorithm with its own
// arithmetic (math/big for the 128-bit products) on the stdlib ChaCha8
// stream, the only thing it shares with the engine.
func roomAuditOrder(recs []RoomRecord) []string {
	onSale := recs[0].Config.OnSaleAt.UnixMilli()
	type joined struct {
		ticket string
		at     int64
		gone   bool
	}
	var vs []*joined
	var order []string
	drawn := false
	for _, rec := range recs {
		switch rec.Type {
		case RoomRecordConfigUpdated:
			onSale = rec.Config.OnSaleAt.UnixMilli()
		case RoomRecordJoined:
			vs = append(vs, &joined{ticket: rec.Ticket, at: rec.AtUnixMilli})
			if drawn {
				order = append(order, rec.Ticket)
			}
		case RoomRecordLeft:
			for _, v := range rec.Visitors {
				vs[v].gone = true
			}
		case RoomRecordDrawn:
			var early, late []string
			for _, j := range vs {
				if j.gone {
					continue
				}
				if j.at < onSale {
					early = append(early, j.ticket)
				} else {
					late = append(late, j.ticket)
				}
			}
			roomAuditShuffle(early, rec.Seed)
			order = append(append(order, early...), late...)
			drawn = true
		}
	}
	return order
}

// roomAuditShuffle is Draw's documented shuffle, written again with
// math/big for the 128-bit products.
func roomAuditShuffle[T any](items []T, seed [32]byte) {
	src := rand.NewChaCha8(seed)
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	for i := len(items) - 1; i > 0; i-- {
		m := big.NewInt(int64(i + 1))
		thresh := new(big.Int).Mod(new(big.Int).Sub(two64, m), m)
		var j int
		for {
			prod := new(big.Int).Mul(new(big.Int).SetUint64(src.Uint64()), m)
			if lo := new(big.Int).Mod(prod, two64); lo.Cmp(thresh) >= 0 {
				j = int(new(big.Int).Rsh(prod, 64).Int64())
				break
			}
		}
		items[i], items[j] = items[j], items[i]
	}
}

// TestRoomFairness: 10,000 customers join before onSaleAt; the admission
// order is the permutation re-derived from the journaled seed, then those
// who joined after onSaleAt in arrival order.
func TestRoomFairness(t *testing.T) {
	cfg := roomCfg()
	cfg.AdmitPerSecond = 1000
	h := newRoomHarness(t, cfg)
	var pre []string
	h.quiet = true
	for i := range 10_000 {
		tk := fmt.Sprint("p", i)
		h.mustJoin(-60+float64(i)/200, fmt.Sprint("c", i), tk)
		pre = append(pre, tk)
	}
	// Some leave before the draw; the draw shuffles those who stay.
	for i := 0; i < 10_000; i += 97 {
		h.leave(-10, pre[i])
	}
	h.quiet = false
	h.keepAlive(-5)
	var late []string
	for i := range 50 { // on sale (the first at the very moment), not drawn yet: behind the pre-queue
		tk := fmt.Sprint("l", i)
		tv := h.mustJoin(float64(i)/1000, fmt.Sprint("lc", i), tk)
		if tv.Status != TicketPreQueue || tv.Position != 0 {
			t.Fatalf("before the draw %s reads %s at %d", tk, tv.Status, tv.Position)
		}
		late = append(late, tk)
	}
	if !h.r.DrawDue(roomAt(0.5)) || h.r.DrawDue(roomAt(-0.001)) {
		t.Fatal("DrawDue is wrong around onSaleAt")
	}
	_, err := h.r.Draw(roomAt(-0.001), roomSeed(9))
	wantRoomCode(t, err, CodeSalesNotOpen)
	seed := roomSeed(42)
	recs := h.draw(0.5, seed)
	if len(recs) != 1 || recs[0].Seed != seed || recs[0].Count != 10_000-104 {
		t.Fatalf("draw records %+v", recs)
	}
	wantRoomRecords(t, h.draw(0.6, roomSeed(7))) // drawing again: nothing
	for i := range 50 {
		tk := fmt.Sprint("a", i)
		h.mustJoin(0.7+float64(i)/100, fmt.Sprint("ac", i), tk)
		late = append(late, tk)
	}
	var admitted []string
	for s := 1.0; len(admitted) < 10_000-104+100; s++ {
		if s > 100 {
			t.Fatalf("only %d admitted after 100 s", len(admitted))
		}
		admitted = append(admitted, h.ticketsOf(h.tickAlive(s, plenty), RoomRecordAdmitted)...)
	}
	audit := roomAuditOrder(h.recs)
	if !slices.Equal(admitted, audit) {
		t.Fatalf("admission order differs from the audited draw (first %q vs %q)", admitted[:5], audit[:5])
	}
	if !slices.Equal(admitted[len(admitted)-100:], late) {
		t.Fatal("the visitors who joined at or after onSaleAt are not admitted last, in arrival order")
	}
	var kept []string
	for i, tk := range pre {
		if i%97 != 0 {
			kept = append(kept, tk)
		}
	}
	head := admitted[:len(kept)]
	if slices.Equal(head, kept) {
		t.Fatal("the draw kept join order")
	}
	if !slices.Equal(slices.Sorted(slices.Values(head)), slices.Sorted(slices.Values(kept))) {
		t.Fatal("the draw admitted other visitors than the pre-queue")
	}
	h.checkReplay()
}

// TestRoomShuffleGolden pins the draw's permutation for one seed: if Go's
// ChaCha8 stream or the algorithm ever changed, journaled draws could no
// longer be audited.
func TestRoomShuffleGolden(t *testing.T) {
	vs := make([]uint32, 12)
	for i := range vs {
		vs[i] = uint32(i)
	}
	audit := slices.Clone(vs)
	roomShuffle(vs, roomSeed(0))
	want := []uint32{10, 2, 5, 11, 3, 7, 0, 9, 4, 1, 6, 8}
	if !slices.Equal(vs, want) {
		t.Fatalf("permutation %v, want %v", vs, want)
	}
	roomAuditShuffle(audit, roomSeed(0))
	if !slices.Equal(audit, want) {
		t.Fatalf("audited permutation %v, want %v", audit, want)
	}
}

func TestRoomPreQueue(t *testing.T) {
	h := newRoomHarness(t, roomCfg())
	tv := h.mustJoin(-100, "a", "ta")
	// 100 s before the sale: poll no sooner than 60 s; the estimate is at
	// least the time to the sale.
	if tv.Status != TicketPreQueue || tv.Position != 0 || tv.PollAfterSeconds != 60 || tv.ETASeconds < 100 {
		t.Fatalf("pre-queue ticket %+v", tv)
	}
	tv = h.poll(-5, "ta")
	if tv.PollAfterSeconds != 5 || tv.ETASeconds < 5 {
		t.Fatalf("5 s before the sale: %+v", tv)
	}
	// Nobody is admitted before the draw, even after onSaleAt.
	wantRoomRecords(t, h.tick(1, plenty))
	h.draw(2, roomSeed(1))
	wantTicket(t, h.poll(2, "ta"), TicketWaiting, 1)
	if got := h.ticketsOf(h.tick(3, plenty), RoomRecordAdmitted); !slices.Equal(got, []string{"ta"}) {
		t.Fatalf("admitted %q", got)
	}
	tv = h.poll(3, "ta")
	if tv.Status != TicketAdmitted || tv.SeatBudget != 4 || !tv.ClaimBy.Equal(roomAt(3+120)) ||
		!tv.AdmissionExpiresAt.Equal(roomAt(3+900)) || !tv.AdmittedAt.Equal(roomAt(3)) || tv.PollAfterSeconds != 0 {
		t.Fatalf("admitted ticket %+v", tv)
	}
	h.checkReplay()
}

func TestRoomPollAfterGrowsWithDistance(t *testing.T) {
	h := newRoomHarness(t, roomCfg()) // 10 per second
	h.draw(0, roomSeed(1))
	h.joinMany(1, 1, 2000)
	prev := 0
	for _, c := range []struct{ pos, eta, poll int }{{1, 1, 2}, {20, 2, 2}, {100, 10, 2}, {400, 40, 10}, {1000, 100, 25}, {2000, 200, 50}} {
		tv := h.poll(1, fmt.Sprint("t", c.pos))
		if tv.Position != c.pos || tv.ETASeconds != c.eta || tv.PollAfterSeconds != c.poll {
			t.Fatalf("position %d: %+v, want eta %d poll %d", c.pos, tv, c.eta, c.poll)
		}
		if tv.PollAfterSeconds < prev {
			t.Fatal("poll interval shrank with distance")
		}
		prev = tv.PollAfterSeconds
	}
}

func TestRoomAbandonment(t *testing.T) {
	h := newRoomHarness(t, roomCfg())
	h.draw(0, roomSeed(1))
	h.joinMany(0, 1, 1000)
	tv := h.poll(10, "t1000") // far from the front: a long interval
	if tv.PollAfterSeconds < 20 {
		t.Fatalf("poll after %d s at position %d", tv.PollAfterSeconds, tv.Position)
	}
	deadline := 10.0 + float64(RoomMissedPollsMax*tv.PollAfterSeconds+RoomPollSlackSeconds)
	for i := 1; i < 1000; i++ { // everyone else keeps polling
		h.poll(deadline-1, fmt.Sprint("t", i))
	}
	h.tick(deadline-1, RoomInventory{})
	if tv := h.poll(deadline-1, "t999"); tv.Status != TicketWaiting {
		t.Fatalf("t999 reads %s", tv.Status)
	}
	if v := h.r.tickets["t1000"]; h.r.vs.at(v).status != vWaiting {
		t.Fatal("abandoned before missing three polls")
	}
	recs := h.tick(deadline, RoomInventory{})
	if got := h.ticketsOf(recs, RoomRecordLeft); !slices.Equal(got, []string{"t1000"}) || recs[0].Reason != RoomReasonAbandoned {
		t.Fatalf("abandoned %q (%v)", got, roomTypes(recs))
	}
	// A pre-queue visitor is abandoned the same way.
	h2 := newRoomHarness(t, roomCfg())
	h2.mustJoin(-1000, "a", "ta")
	h2.mustJoin(-1000, "b", "tb")
	for s := -1000.0; s < -700; s += 60 {
		h2.poll(s, "tb")
		h2.tick(s, RoomInventory{})
	}
	if tv := h2.poll(-700, "ta"); tv.Status != TicketExpired || tv.Reason != RoomReasonAbandoned {
		t.Fatalf("silent pre-queue visitor reads %s (%s)", tv.Status, tv.Reason)
	}
	if tv := h2.poll(-700, "tb"); tv.Status != TicketPreQueue {
		t.Fatalf("polling pre-queue visitor reads %s", tv.Status)
	}
	h.checkReplay()
	h2.checkReplay()
}

// TestRoomRestart: after a crash, replay keeps every ticket and position
// and every admission; the downtime counts neither as missed polls nor
// against a claim window.
func TestRoomRestart(t *testing.T) {
	for _, midway := range []bool{false, true} {
		t.Run(fmt.Sprint("midway=", midway), func(t *testing.T) {
			cfg := roomCfg()
			cfg.MaxActive = 2
			h := newRoomHarness(t, cfg)
			for i := 1; i <= 20; i++ {
				h.mustJoin(-10, fmt.Sprint("c", i), fmt.Sprint("t", i))
			}
			h.draw(0, roomSeed(3))
			admitted := h.ticketsOf(h.tick(1, plenty), RoomRecordAdmitted)
			for _, tk := range roomTicketRange(1, 20) {
				if !slices.Contains(admitted, tk) {
					h.leave(1, tk) // one waiting visitor leaves
					break
				}
			}
			if len(admitted) != 2 {
				t.Fatalf("admitted %q before the crash", admitted)
			}
			before := map[string]TicketView{}
			for i := 1; i <= 20; i++ {
				before[fmt.Sprint("t", i)] = h.poll(2, fmt.Sprint("t", i))
			}
			h.restart(midway)
			// Back ten minutes later, within the admissions' lifetime:
			// nobody is abandoned or lapsed for the downtime.
			recs := h.tick(600, plenty)
			wantRoomRecords(t, recs, "RoomResumed")
			for i := 1; i <= 20; i++ {
				tk := fmt.Sprint("t", i)
				tv := h.r.look(h.r.tickets[tk], roomAt(600).UnixMilli())
				b := before[tk]
				if tv.Ticket != b.Ticket || tv.Status != b.Status || tv.Position != b.Position {
					t.Fatalf("%s after restart %s at %d, before %s at %d", tk, tv.Status, tv.Position, b.Status, b.Position)
				}
				if tv.Status == TicketAdmitted && !tv.ClaimBy.Equal(roomAt(600+120)) {
					t.Fatalf("%s: claim window not renewed: %v", tk, tv.ClaimBy)
				}
			}
			// The same customer gets the same ticket.
			cust := h.r.vs.at(h.r.tickets[admitted[0]]).customer
			tv, jr, err := h.join(600, cust, "other")
			if err != nil || tv.Ticket != admitted[0] || len(jr) != 0 {
				t.Fatalf("re-join after restart: %v %s %d", err, tv.Ticket, len(jr))
			}
			// The fresh grace is the longest one; silent visitors are
			// abandoned when it ends (no seats meanwhile: no admissions).
			recs = h.tick(600+184, RoomInventory{})
			wantRoomRecords(t, recs, "RoomAdmissionEnded lapsed")
			if st := h.r.Stats(roomAt(784)); st.Waiting != 17 {
				t.Fatalf("%d waiting before the grace ends, want 17", st.Waiting)
			}
			recs = h.tick(600+185, RoomInventory{})
			if got := len(h.ticketsOf(recs, RoomRecordLeft)); got != 17 {
				t.Fatalf("%d abandoned once the grace ran out, want 17: %v", got, roomTypes(recs))
			}
			h.checkReplay()
		})
	}
}

func TestRoomClaimLapseExpiry(t *testing.T) {
	cfg := roomCfg()
	cfg.MaxActive, cfg.ClaimSeconds, cfg.AdmissionTTLSeconds = 1, 30, 100
	h := newRoomHarness(t, cfg)
	h.draw(0, roomSeed(1))
	for _, c := range []string{"a", "b", "c"} {
		h.mustJoin(0, c, "t"+c)
	}
	_, _, err := h.claim(0.5, "b") // not admitted yet
	wantRoomCode(t, err, CodeAdmissionRequired)
	_, _, err = h.claim(0.5, "zed") // not even queued
	wantRoomCode(t, err, CodeAdmissionRequired)
	_, err = h.r.Admission(roomAt(0.5), "b")
	wantRoomCode(t, err, CodeAdmissionRequired)
	if got := h.ticketsOf(h.tickAlive(1, plenty), RoomRecordAdmitted); !slices.Equal(got, []string{"ta"}) {
		t.Fatalf("admitted %q", got)
	}
	if tv, err := h.r.Admission(roomAt(30.999), "a"); err != nil || tv.Ticket != "ta" {
		t.Fatalf("admission just before the claim deadline: %v", err)
	}
	wantRoomRecords(t, h.tickAlive(30.999, plenty))
	// At the deadline it lapses and the next visitor is admitted, in one tick.
	recs := h.tickAlive(31, plenty)
	wantRoomRecords(t, recs, "RoomAdmissionEnded lapsed", "RoomAdmitted")
	if tv, err := h.r.Admission(roomAt(31), "a"); CodeOf(err) != CodeAdmissionRequired || tv.Reason != RoomReasonLapsed {
		t.Fatalf("lapsed admission: %v, %+v", err, tv)
	}
	_, _, err = h.claim(31, "a")
	wantRoomCode(t, err, CodeAdmissionRequired)
	wantRoomRecords(t, h.done(31, "a", 2)) // no admission: a no-op
	recs, tv, err := h.claim(40, "b")
	if err != nil || !tv.Claimed {
		t.Fatalf("claim: %v %+v", err, tv)
	}
	wantRoomRecords(t, recs, "RoomClaimed")
	recs, _, err = h.claim(41, "b") // again: nothing
	if err != nil || len(recs) != 0 {
		t.Fatalf("second claim: %v, %d records", err, len(recs))
	}
	// Claimed, it outlives the claim window, up to its expiry.
	wantRoomRecords(t, h.tickAlive(130.999, plenty))
	wantRoomRecords(t, h.tickAlive(131, plenty), "RoomAdmissionEnded expired", "RoomAdmitted")
	if tv := h.poll(131, "tb"); tv.Status != TicketExpired || tv.Reason != RoomReasonExpired {
		t.Fatalf("expired admission reads %s (%s)", tv.Status, tv.Reason)
	}
	// A command that touches a lapsed admission before any tick ends it.
	recs, _, err = h.claim(161, "c")
	wantRoomCode(t, err, CodeAdmissionRequired)
	wantRoomRecords(t, recs, "RoomAdmissionEnded lapsed")
	// Rejoining after the end: a new place at the back.
	if tv := h.mustJoin(162, "a", "ta2"); tv.Ticket != "ta2" || tv.Status != TicketWaiting {
		t.Fatalf("rejoin %+v", tv)
	}
	_, err = h.r.Done(roomAt(162), "a", -1)
	wantRoomCode(t, err, CodeInvalidRequest)
	h.checkReplay()
}

func TestRoomSoldOut(t *testing.T) {
	cfg := roomCfg()
	cfg.AdmitPerSecond = 1
	h := newRoomHarness(t, cfg)
	h.draw(0, roomSeed(1))
	for i := 1; i <= 5; i++ {
		h.mustJoin(0, fmt.Sprint("c", i), fmt.Sprint("t", i))
	}
	h.tick(1, plenty) // admits t1
	wantRoomRecords(t, h.tick(2, RoomInventory{SoldOut: true}), "RoomSoldOut")
	for i := 2; i <= 5; i++ {
		if tv := h.poll(2, fmt.Sprint("t", i)); tv.Status != TicketSoldOut || tv.Position != 0 {
			t.Fatalf("t%d reads %s at %d", i, tv.Status, tv.Position)
		}
	}
	// No admissions while sold out, however long; newcomers read sold_out.
	for s := 3.0; s < 10; s++ {
		wantRoomRecords(t, h.tick(s, RoomInventory{Available: 100, SoldOut: true}))
	}
	if tv := h.mustJoin(10, "late", "tl"); tv.Status != TicketSoldOut {
		t.Fatalf("newcomer reads %s", tv.Status)
	}
	// Seats come back (a refund): places kept, admissions resume in order.
	recs := h.tick(11, plenty)
	wantRoomRecords(t, recs, "RoomSoldOut", "RoomAdmitted")
	if got := h.ticketsOf(recs, RoomRecordAdmitted); !slices.Equal(got, []string{"t2"}) {
		t.Fatalf("admitted %q", got)
	}
	wantTicket(t, h.poll(11, "t3"), TicketWaiting, 1)
	wantTicket(t, h.poll(11, "tl"), TicketWaiting, 4)
	h.checkReplay()
}

func TestRoomInventoryLimit(t *testing.T) {
	cfg := roomCfg()
	cfg.AdmitPerSecond = 1000
	h := newRoomHarness(t, cfg)
	h.draw(0, roomSeed(1))
	for i := 1; i <= 100; i++ {
		h.mustJoin(0, fmt.Sprint("c", i), fmt.Sprint("t", i))
	}
	// 10 seats, 2 per buyer by default (half of 4): 2 × 10 ÷ 2 = 10 shoppers.
	if n := len(h.ticketsOf(h.tick(1, RoomInventory{Available: 10}), RoomRecordAdmitted)); n != 10 {
		t.Fatalf("admitted %d, want 10", n)
	}
	wantRoomRecords(t, h.tick(2, RoomInventory{Available: 10}))
	// No seats available (all held), not sold out: nobody more.
	wantRoomRecords(t, h.tick(3, RoomInventory{}))
	// Ten buyers book 1 seat each: the average falls to 1.5; 6 seats left
	// allow 8 shoppers, none of whom is shopping now.
	for i := 1; i <= 10; i++ {
		h.done(4, fmt.Sprint("c", i), 1)
	}
	if got := h.r.Stats(roomAt(4)).SeatsPerBuyer; got != 1.5 {
		t.Fatalf("seats per buyer %v, want 1.5", got)
	}
	if n := len(h.ticketsOf(h.tick(5, RoomInventory{Available: 6}), RoomRecordAdmitted)); n != 8 {
		t.Fatalf("admitted %d, want 8", n)
	}
}

// TestRoomLastSeat: when buyers average more than two seats, the inventory
// rule alone would admit nobody for the last seats; as many shoppers as
// seats are admitted, and none when no seat is available.
func TestRoomLastSeat(t *testing.T) {
	cfg := roomCfg()
	cfg.AdmitPerSecond = 1000
	h := newRoomHarness(t, cfg)
	h.draw(0, roomSeed(1))
	for i := 1; i <= 40; i++ {
		h.mustJoin(0, fmt.Sprint("c", i), fmt.Sprint("t", i))
	}
	if n := len(h.ticketsOf(h.tick(1, RoomInventory{Available: 60}), RoomRecordAdmitted)); n != 40 {
		t.Fatalf("admitted %d, want all 40", n)
	}
	for i := 1; i <= 40; i++ {
		h.done(2, fmt.Sprint("c", i), 4)
	}
	if got := h.r.Stats(roomAt(2)).SeatsPerBuyer; got <= 3 {
		t.Fatalf("seats per buyer %v, want above 3", got)
	}
	h.mustJoin(2, "c-last", "t-last")
	h.mustJoin(2, "c-next", "t-next")
	wantRoomRecords(t, h.tick(3, RoomInventory{}))
	if got := h.ticketsOf(h.tick(4, RoomInventory{Available: 1}), RoomRecordAdmitted); !slices.Equal(got, []string{"t-last"}) {
		t.Fatalf("with one seat left admitted %q, want the first in line", got)
	}
	wantRoomRecords(t, h.tick(5, RoomInventory{Available: 1}))
	h.done(6, "c-last", 1)
	for i := 1; i <= 3; i++ {
		h.mustJoin(6, fmt.Sprint("c-more", i), fmt.Sprint("t-more", i))
	}
	// Three seats back: three shoppers (2 × 3 ÷ 3.5 alone would allow one).
	if got := h.ticketsOf(h.tick(7, RoomInventory{Available: 3}), RoomRecordAdmitted); !slices.Equal(got, []string{"t-next", "t-more1", "t-more2"}) {
		t.Fatalf("with three seats left admitted %q, want the next three in line", got)
	}
	h.checkReplay()
}

// TestRoomRate: admissions follow the rate — at most one second's worth
// of credit plus the rate times the time — and a tick that comes late
// does not make up for more than one second.
func TestRoomRate(t *testing.T) {
	cfg := roomCfg()
	cfg.AdmitPerSecond = 2.5
	h := newRoomHarness(t, cfg)
	h.draw(0, roomSeed(1))
	h.joinMany(0, 1, 500)
	total := 0
	for ms := 0; ms <= 20_000; ms += 100 {
		s := float64(ms) / 1000
		total += len(h.ticketsOf(h.tickAlive(s, plenty), RoomRecordAdmitted))
		if hi := 2.5 + 2.5*s; float64(total) > hi+1e-9 {
			t.Fatalf("%d admitted by %v s, more than %v", total, s, hi)
		}
		if lo := 2.5*s - 1; float64(total) < lo {
			t.Fatalf("%d admitted by %v s, fewer than %v", total, s, lo)
		}
	}
	// A minute without ticks: one second's worth, not sixty.
	if n := len(h.ticketsOf(h.tickAlive(80, plenty), RoomRecordAdmitted)); n != 2 {
		t.Fatalf("a late tick admitted %d, want 2", n)
	}
	// A slower rate from now on.
	cfg.AdmitPerSecond = 0.5
	recs, err := h.update(80, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantRoomRecords(t, recs, "RoomConfigUpdated")
	recs, _ = h.update(81, cfg) // unchanged: nothing
	wantRoomRecords(t, recs)
	n := 0
	for s := 81.0; s <= 100; s++ {
		n += len(h.ticketsOf(h.tickAlive(s, plenty), RoomRecordAdmitted))
	}
	if n < 9 || n > 11 {
		t.Fatalf("%d admitted in 20 s at 0.5 per second", n)
	}
	h.checkReplay()
}

// TestRoomETA: the estimate follows the measured rate, does not grow while
// the rate holds, and grows, when the rate falls, by at most the factor it
// fell by.
func TestRoomETA(t *testing.T) {
	cfg := roomCfg()
	cfg.MaxActive = 20
	h := newRoomHarness(t, cfg)
	h.draw(0, roomSeed(1))
	h.joinMany(0, 1, 300)
	tv := h.poll(0, "t300")
	if tv.ETASeconds != 30 || tv.AdmitPerSecond != 10 {
		t.Fatalf("at 10 per second, position 300: %+v", tv)
	}
	// Buyers finish at 5 per second: the queue moves at 5, not 10.
	last := tv
	finished := 1
	for s := 1.0; s <= 40; s++ {
		for range 5 {
			h.done(s, fmt.Sprint("c", finished), 1)
			finished++
		}
		h.keepAlive(s, "t300")
		h.tick(s, plenty)
		if int(s)%2 == 0 {
			tv := h.poll(s, "t300")
			if tv.Status != TicketWaiting {
				break
			}
			rate, lastRate := tv.AdmitPerSecond, last.AdmitPerSecond
			if rate >= lastRate && tv.ETASeconds > last.ETASeconds ||
				rate < lastRate && float64(tv.ETASeconds) > math.Ceil(float64(last.ETASeconds)*lastRate/rate) {
				t.Fatalf("at %v s the estimate went from %d (rate %v) to %d (rate %v)", s, last.ETASeconds, lastRate, tv.ETASeconds, rate)
			}
			last = tv
		}
	}
	if st := h.r.Stats(roomAt(40)); st.AdmitPerSecond < 4 || st.AdmitPerSecond > 6 {
		t.Fatalf("measured %v per second, want about 5", st.AdmitPerSecond)
	}
	// Nobody finishes any more: the measured rate falls and the estimate
	// may grow, but never more than the rate fell.
	for s := 42.0; s < 100; s += 2 {
		h.keepAlive(s, "t300")
		h.tick(s, plenty)
		tv := h.poll(s, "t300")
		rate, lastRate := tv.AdmitPerSecond, last.AdmitPerSecond
		if rate >= lastRate && tv.ETASeconds > last.ETASeconds ||
			rate > 0 && rate < lastRate && float64(tv.ETASeconds) > math.Ceil(float64(last.ETASeconds)*lastRate/rate) {
			t.Fatalf("at %v s the estimate went from %d (rate %v) to %d (rate %v)", s, last.ETASeconds, lastRate, tv.ETASeconds, rate)
		}
		last = tv
	}
	if last.AdmitPerSecond > 0.5 || last.ETASeconds <= 60 {
		t.Fatalf("stalled queue: rate %v, estimate %d", last.AdmitPerSecond, last.ETASeconds)
	}
}

// TestRoomOnSaleMoves: a later onSaleAt after the draw pauses admissions;
// positions stay.
func TestRoomOnSaleMoves(t *testing.T) {
	h := newRoomHarness(t, roomCfg())
	h.mustJoin(-5, "a", "ta")
	h.mustJoin(-5, "b", "tb")
	h.draw(0, roomSeed(1))
	cfg := roomCfg()
	cfg.OnSaleAt = roomAt(60)
	if recs, err := h.update(0.5, cfg); err != nil || len(recs) != 1 {
		t.Fatalf("update: %v", err)
	}
	wantRoomRecords(t, h.tick(1, plenty))
	ta, tb := h.poll(1, "ta"), h.poll(1, "tb")
	if ta.Status != TicketWaiting || tb.Status != TicketWaiting || ta.Position+tb.Position != 3 || min(ta.ETASeconds, tb.ETASeconds) < 59 {
		t.Fatalf("paused queue: %+v %+v", ta, tb)
	}
	h.keepAlive(30)
	if n := len(h.ticketsOf(h.tickAlive(60, plenty), RoomRecordAdmitted)); n != 2 {
		t.Fatalf("admitted %d at the new onSaleAt", n)
	}
	h.checkReplay()
}

// TestRoomApplyRejects: records that do not fit the state are refused with
// corrupt_record and change nothing.
func TestRoomApplyRejects(t *testing.T) {
	h := newRoomHarness(t, roomCfg())
	h.mustJoin(-1, "a", "ta")
	h.mustJoin(-1, "b", "tb")
	h.draw(0, roomSeed(1))
	h.mustJoin(1, "c", "tc")
	h.tick(1, RoomInventory{Available: 1}) // admits the first of a and b only
	first := h.r.slots[0]
	second := h.r.slots[1]
	next := func(rec RoomRecord) RoomRecord {
		rec.Seq = h.r.Seq() + 1
		rec.AtUnixMilli = roomAt(2).UnixMilli()
		return rec
	}
	adm := func(vs ...uint32) RoomRecord {
		return next(RoomRecord{Type: RoomRecordAdmitted, Visitors: vs, ClaimByUnixMilli: roomAt(3).UnixMilli(),
			ExpiresAtUnixMilli: roomAt(4).UnixMilli(), SeatBudget: 2})
	}
	for _, tc := range []struct {
		name string
		rec  RoomRecord
	}{
		{"sequence gap", func() RoomRecord { r := next(RoomRecord{Type: RoomRecordResumed}); r.Seq++; return r }()},
		{"second created", next(RoomRecord{Type: RoomRecordCreated, EventID: "ev-1", Config: h.r.Config()})},
		{"unknown type", next(RoomRecord{Type: 99})},
		{"joined twice", next(RoomRecord{Type: RoomRecordJoined, Ticket: "ta", CustomerID: "z"})},
		{"live customer joins", next(RoomRecord{Type: RoomRecordJoined, Ticket: "tz", CustomerID: "c"})},
		{"bad ticket id", next(RoomRecord{Type: RoomRecordJoined, Ticket: "t z", CustomerID: "z"})},
		{"drawn twice", next(RoomRecord{Type: RoomRecordDrawn, Count: 0})},
		{"admitted out of order", adm(2)},
		{"admitted twice", adm(second, second)},
		{"admitted already admitted", adm(first)},
		{"admitted no one", adm()},
		{"admitted unknown", adm(77)},
		{"admitted budget 0", func() RoomRecord { r := adm(second); r.SeatBudget = 0; return r }()},
		{"admitted claim after expiry", func() RoomRecord { r := adm(second); r.ClaimByUnixMilli = r.ExpiresAtUnixMilli + 1; return r }()},
		{"claimed waiting", next(RoomRecord{Type: RoomRecordClaimed, Visitors: []uint32{second}})},
		{"claimed two", next(RoomRecord{Type: RoomRecordClaimed, Visitors: []uint32{first, second}})},
		{"left without reason", next(RoomRecord{Type: RoomRecordLeft, Visitors: []uint32{second}})},
		{"abandoned admitted", next(RoomRecord{Type: RoomRecordLeft, Visitors: []uint32{first}, Reason: RoomReasonAbandoned})},
		{"lapsed early", next(RoomRecord{Type: RoomRecordAdmissionEnded, Visitors: []uint32{first}, Reason: RoomReasonLapsed})},
		{"expired early", next(RoomRecord{Type: RoomRecordAdmissionEnded, Visitors: []uint32{first}, Reason: RoomReasonExpired})},
		{"ended waiting", next(RoomRecord{Type: RoomRecordAdmissionEnded, Visitors: []uint32{second}, Reason: RoomReasonDone})},
		{"done too many seats", next(RoomRecord{Type: RoomRecordAdmissionEnded, Visitors: []uint32{first}, Reason: RoomReasonDone, Count: 101})},
		{"ended as left", next(RoomRecord{Type: RoomRecordAdmissionEnded, Visitors: []uint32{first}, Reason: RoomReasonLeft})},
		{"sold out unchanged", next(RoomRecord{Type: RoomRecordSoldOut})},
		{"config not resolved", next(RoomRecord{Type: RoomRecordConfigUpdated, Config: roomCfg()})},
		{"visitors on a join", next(RoomRecord{Type: RoomRecordJoined, Ticket: "tz", CustomerID: "z", Visitors: []uint32{0}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.r.MarshalSnapshot()
			err := h.r.Apply(tc.rec)
			wantRoomCode(t, err, CodeCorruptRecord)
			if !bytes.Equal(h.r.MarshalSnapshot(), before) {
				t.Fatal("a refused record changed the room")
			}
			if err := checkRoomInvariants(h.r); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A draw before onSaleAt, and one that miscounts the pre-queue.
	h2 := newRoomHarness(t, roomCfg())
	h2.mustJoin(-1, "a", "ta")
	for _, rec := range []RoomRecord{
		{Seq: 3, Type: RoomRecordDrawn, AtUnixMilli: roomAt(-0.5).UnixMilli(), Count: 1},
		{Seq: 3, Type: RoomRecordDrawn, AtUnixMilli: roomAt(0).UnixMilli(), Count: 2},
	} {
		wantRoomCode(t, h2.r.Apply(rec), CodeCorruptRecord)
	}
	if _, err := NewRoom(RoomRecord{Seq: 2, Type: RoomRecordCreated}); CodeOf(err) != CodeCorruptRecord {
		t.Fatalf("NewRoom at seq 2: %v", err)
	}
	if _, err := NewRoom(RoomRecord{Seq: 1, Type: RoomRecordCreated, EventID: "ev-1", Config: roomCfg()}); CodeOf(err) != CodeCorruptRecord {
		t.Fatalf("NewRoom with an unresolved config: %v", err)
	}
}

func TestRoomRestoreRejects(t *testing.T) {
	h := newRoomHarness(t, roomCfg())
	for i := range 6 {
		h.mustJoin(-1, fmt.Sprint("c", i), fmt.Sprint("t", i))
	}
	h.draw(0, roomSeed(1))
	h.tick(1, RoomInventory{Available: 2})
	h.claim(2, h.r.vs.at(h.r.slots[0]).customer)
	h.leave(2, "t5")
	h.done(3, h.r.vs.at(h.r.slots[0]).customer, 2)
	snap := h.r.MarshalSnapshot()
	if _, err := RestoreRoom(h.recs[0], snap); err != nil {
		t.Fatal(err)
	}
	// Every single-byte change and truncation either fails cleanly or
	// restores to exactly the bytes given.
	for i := range snap {
		for _, delta := range []byte{1, 0x80, 0xff} {
			b := bytes.Clone(snap)
			b[i] += delta
			if r, err := RestoreRoom(h.recs[0], b); err == nil {
				if !bytes.Equal(r.MarshalSnapshot(), b) {
					t.Fatalf("byte %d +%d: restored to other bytes", i, delta)
				}
				if err := checkRoomInvariants(r); err != nil {
					t.Fatalf("byte %d +%d: %v", i, delta, err)
				}
			} else {
				wantRoomCode(t, err, CodeCorruptRecord)
			}
		}
		if _, err := RestoreRoom(h.recs[0], snap[:i]); CodeOf(err) != CodeCorruptRecord {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, err := RestoreRoom(h.recs[0], append(bytes.Clone(snap), 0)); CodeOf(err) != CodeCorruptRecord {
		t.Fatalf("trailing byte: %v", err)
	}
}

// TestRoomPreQueuePollSpread: the pre-queue's first polls after the draw
// are spread over roomPollJitter seconds, not all at onSaleAt.
func TestRoomPreQueuePollSpread(t *testing.T) {
	h := newRoomHarness(t, roomCfg())
	seen := map[int]bool{}
	for i := range 32 {
		tv := h.mustJoin(-1, fmt.Sprint("c", i), fmt.Sprint("t", i))
		if tv.PollAfterSeconds < 1 || tv.PollAfterSeconds > 1+roomPollJitter {
			t.Fatalf("poll after %d s, one second before the sale", tv.PollAfterSeconds)
		}
		seen[tv.PollAfterSeconds] = true
	}
	if len(seen) < roomPollJitter-2 {
		t.Fatalf("only %d distinct poll intervals: %v", len(seen), seen)
	}
}

// TestRoomRateAfterIdle: a queue that ran empty says nothing about the
// rate: a burst after a quiet time is estimated at the rate the room can
// admit, not at the trickle it had to admit.
func TestRoomRateAfterIdle(t *testing.T) {
	h := newRoomHarness(t, roomCfg()) // 10 per second
	h.draw(0, roomSeed(1))
	for i := range 60 { // one visitor every 5 s, admitted at once
		s := float64(i * 5)
		h.mustJoin(s, fmt.Sprint("c", i), fmt.Sprint("t", i))
		if n := len(h.ticketsOf(h.tick(s+0.5, plenty), RoomRecordAdmitted)); n != 1 {
			t.Fatalf("%d admitted at %v s", n, s+0.5)
		}
	}
	for i := range 100 {
		h.mustJoin(300, fmt.Sprint("b", i), fmt.Sprint("tb", i))
	}
	tv := h.poll(300, "tb99")
	if tv.AdmitPerSecond != 10 || tv.ETASeconds != 10 {
		t.Fatalf("after an idle time: rate %v, estimate %d s; want 10 and 10 s", tv.AdmitPerSecond, tv.ETASeconds)
	}
}

// TestRoomRestartKeepsRate: the downtime is no window without admissions:
// after a restart the measured rate is the one before it.
func TestRoomRestartKeepsRate(t *testing.T) {
	cfg := roomCfg()
	cfg.MaxActive = 10
	h := newRoomHarness(t, cfg)
	h.draw(0, roomSeed(1))
	h.joinMany(0, 1, 500)
	n := 1
	for s := 1.0; s <= 60; s++ { // buyers finish at 4 per second
		for range 4 {
			h.done(s, fmt.Sprint("c", n), 1)
			n++
		}
		h.tickAlive(s, plenty)
	}
	before := h.r.Stats(roomAt(60)).AdmitPerSecond
	if before < 3.5 || before > 4.5 {
		t.Fatalf("measured %v per second before the crash, want about 4", before)
	}
	h.restart(true)
	recs := h.r.Resume(roomAt(900))
	h.absorb("resume", recs, nil)
	wantRoomRecords(t, recs, "RoomResumed")
	if after := h.r.Stats(roomAt(900)).AdmitPerSecond; after != before {
		t.Fatalf("measured %v per second after a 15-minute stop, %v before", after, before)
	}
}
