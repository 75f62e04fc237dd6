package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// richStory drives h through every reservation state: held, paying, booked,
// released for each reason, blocked seats; seats are named by fn(i).
func richStory(h *harness, seat func(i int) string) {
	h.t.Helper()
	h.mustHold(at(0), "u1", "r1", seat(0), seat(1))  // will expire
	h.mustBook(at(1), "u2", "r2", seat(2), seat(3))  // booked
	h.mustHold(at(2), "u3", "r3", seat(4))           // cancelled
	h.cancel(at(3), "u3", "r3")                      //
	h.mustHold(at(4), "u4", "r4", seat(5))           // payment failed after expiry
	h.pay(at(5), "u4", "r4")                         //
	h.block(at(6), seat(6), seat(7), seat(8))        // blocked
	h.unblock(at(7), seat(7))                        //
	h.tick(at(61))                                   // r1 expires
	h.fail(at(70), "r4", 1)                          // r4 released, payment_failed
	h.mustHold(at(80), "u1", "r5", seat(0))          // held again by u1
	h.mustHold(at(81), "u5", "r6", seat(1), seat(9)) // paying
	h.pay(at(82), "u5", "r6")                        //
	h.mustHold(at(83), "u6", "r7", seat(10))         // held, payment failed before expiry
	h.pay(at(84), "u6", "r7")                        //
	h.fail(at(85), "r7", 1)                          //
	h.mustHold(at(86), "u2", "r8", seat(11))         // held by a customer with a booking
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    func(t *testing.T) *harness
		seat func(i int) string
	}{
		{"small", func(t *testing.T) *harness { return newSmall(t) }, func(i int) string {
			return fmt.Sprintf("%c-%d", 'A'+i/10, i%10+1)
		}},
		{"riverside", func(t *testing.T) *harness {
			return newHarness(t, venueDef(t, "riverside-concert-hall.json", 4, 60))
		}, func(i int) string { return fmt.Sprintf("stalls-B-%d", i+1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h(t)
			empty := h.ev.MarshalSnapshot()
			richStory(h, tc.seat)
			snap := h.ev.MarshalSnapshot()
			for _, s := range [][]byte{empty, snap} {
				back, err := RestoreEvent(h.recs[0], s)
				if err != nil {
					t.Fatalf("restore: %v", err)
				}
				if err := back.CheckInvariants(time.Time{}); err != nil {
					t.Fatalf("restored event: %v", err)
				}
				if again := back.MarshalSnapshot(); !bytes.Equal(again, s) {
					t.Fatalf("snapshot does not round-trip: %x\nthen %x", s, again)
				}
			}
			back := restoreOf(t, h)
			if back.Seq() != h.ev.Seq() || back.Counts() != h.ev.Counts() || fmt.Sprint(back.Statuses()) != fmt.Sprint(h.ev.Statuses()) {
				t.Fatalf("restored seq %d counts %+v", back.Seq(), back.Counts())
			}
			for _, c := range []string{"u1", "u2", "u3", "u4", "u5", "u6"} {
				if a, b := fmt.Sprint(back.Reservations(at(90), c)), fmt.Sprint(h.ev.Reservations(at(90), c)); a != b {
					t.Fatalf("customer %s reads\n%s\nafter restore, live\n%s", c, a, b)
				}
			}
			if fmt.Sprint(back.Bookings()) != fmt.Sprint(h.ev.Bookings()) {
				t.Fatalf("bookings differ after restore")
			}
			ln, lok := h.ev.NextExpiry()
			rn, rok := back.NextExpiry()
			if ln != rn || lok != rok {
				t.Fatalf("next expiry %v %v, live %v %v", rn, rok, ln, lok)
			}
			// The restored event decides exactly as the live one: same
			// commands, same records, same snapshots.
			live := h
			twin := &harness{t: t, ev: back, recs: append([]Record(nil), h.recs...), checkRejects: true}
			for _, hh := range []*harness{live, twin} {
				hh.hold(at(90), "u1", "r9", tc.seat(1))
				hh.hold(at(90), "u7", "r10", tc.seat(12), tc.seat(13))
				hh.cancel(at(91), "u6", "r7")
				hh.tick(at(200))
				hh.pay(at(200), "u2", "r8")
			}
			if fmt.Sprint(recordTypes(live.recs)) != fmt.Sprint(recordTypes(twin.recs)) {
				t.Fatalf("after restore the records differ:\n%q\n%q", recordTypes(twin.recs), recordTypes(live.recs))
			}
			if !bytes.Equal(live.ev.MarshalSnapshot(), twin.ev.MarshalSnapshot()) {
				t.Fatal("after restore and the same commands the snapshots differ")
			}
			live.checkReplay()
		})
	}
}

// TestSnapshotMidwayReplay restores from a snapshot taken part-way and
// replays the rest of the records.
func TestSnapshotMidwayReplay(t *testing.T) {
	h := newSmall(t)
	seat := func(i int) string { return fmt.Sprintf("%c-%d", 'A'+i/10, i%10+1) }
	h.mustHold(at(0), "u9", "r0", "B-10")
	mid := h.ev.MarshalSnapshot()
	midSeq := h.ev.Seq()
	richStory(h, seat)
	ev, err := RestoreEvent(h.recs[0], mid)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range h.recs[midSeq:] {
		if err := ev.Apply(r); err != nil {
			t.Fatalf("apply %d %s: %v", r.Seq, r.Type, err)
		}
	}
	if !bytes.Equal(ev.MarshalSnapshot(), h.ev.MarshalSnapshot()) {
		t.Fatal("midway snapshot + replay differs from the live event")
	}
	// Applying a record out of sequence fails and changes nothing.
	before := ev.MarshalSnapshot()
	if err := ev.Apply(h.recs[3]); CodeOf(err) != CodeCorruptRecord {
		t.Fatalf("stale record applied: %v", err)
	}
	if !bytes.Equal(before, ev.MarshalSnapshot()) {
		t.Fatal("rejected Apply changed the event")
	}
}

func TestRestoreEventErrors(t *testing.T) {
	h := newSmall(t)
	richStory(h, func(i int) string { return fmt.Sprintf("%c-%d", 'A'+i/10, i%10+1) })
	snap := h.ev.MarshalSnapshot()
	for n := range len(snap) {
		if _, err := RestoreEvent(h.recs[0], snap[:n]); CodeOf(err) != CodeCorruptRecord {
			t.Fatalf("snapshot truncated to %d of %d bytes: %v", n, len(snap), err)
		}
	}
	if _, err := RestoreEvent(h.recs[0], append(snap, 0)); CodeOf(err) != CodeCorruptRecord {
		t.Fatalf("trailing byte: %v", err)
	}
	for _, tc := range []struct {
		name string
		snap []byte
	}{
		{"version", append([]byte{5}, snap[1:]...)},
		{"version-0", append([]byte{0}, snap[1:]...)},
		{"definition-not-canonical", func() []byte {
			def, _ := json.Marshal(h.ev.def)
			def = append([]byte(" "), def...)
			b := binary.AppendUvarint([]byte{2, 5}, uint64(len(def)))
			return append(append(b, def...), 0, 0, 0)
		}()},
		{"definition-other-event", func() []byte {
			d := h.ev.def
			d.ID = "ev-2"
			def, _ := json.Marshal(d)
			b := binary.AppendUvarint([]byte{2, 5}, uint64(len(def)))
			return append(append(b, def...), 0, 0, 0)
		}()},
		{"definition-invalid", func() []byte {
			d := h.ev.def
			d.HoldTTLSeconds = 0
			def, _ := json.Marshal(d)
			b := binary.AppendUvarint([]byte{2, 5}, uint64(len(def)))
			return append(append(b, def...), 0, 0, 0)
		}()},
		{"seq-zero", []byte{1, 0, 0, 0, 0}},
		{"blocked-out-of-range", []byte{1, 5, 1, 20, 0, 0}},
		{"blocked-twice", []byte{1, 5, 2, 3, 3, 0, 0}},
		{"blocked-unsorted", []byte{1, 5, 2, 4, 3, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := RestoreEvent(h.recs[0], tc.snap); CodeOf(err) != CodeCorruptRecord {
				t.Fatalf("got %v, want corrupt_record", err)
			}
		})
	}
	// Not an EventCreated record.
	if _, err := RestoreEvent(h.recs[1], snap); CodeOf(err) != CodeCorruptRecord {
		t.Fatalf("restore from %s: %v", h.recs[1].Type, err)
	}
	// A good minimal snapshot of version 1 (no definition, no hold
	// starts): seq 5, B-1 blocked, nothing else.
	ev, err := RestoreEvent(h.recs[0], []byte{1, 5, 1, 10, 0, 0})
	if err != nil || ev.Seq() != 5 || ev.Counts().Blocked != 1 {
		t.Fatalf("minimal snapshot: %v", err)
	}
	// Version 1 with a reservation: its hold started when it was made.
	ev, err = RestoreEvent(h.recs[0], []byte{1, 5, 0, 1, 2, 'r', '1', 2, 'u', '1', 0, 2, 0x80, 0x01, 0x90, 0x01, 0x90, 0x01, 0, 0, 0, 0, 1, 3, 0})
	if err != nil {
		t.Fatalf("version 1 snapshot with a reservation: %v", err)
	}
	if r := ev.reservations["r1"]; r == nil || r.holdStart != r.createdAt || r.createdAt != 64 {
		t.Fatalf("version 1 reservation restored as %+v", r)
	}
}

// fuzzCreated is the EventCreated record FuzzRestoreEvent restores against.
func fuzzCreated(t testing.TB) Record {
	_, recs, err := CreateEvent(smallDef(), t0)
	if err != nil {
		t.Fatal(err)
	}
	return recs[0]
}

// FuzzRestoreEvent: a corrupted snapshot never panics; one that is accepted
// passes CheckInvariants, re-encodes to the same bytes, and can go on taking
// commands.
func FuzzRestoreEvent(f *testing.F) {
	created := fuzzCreated(f)
	h := newSmall(f)
	f.Add(h.ev.MarshalSnapshot())
	richStory(h, func(i int) string { return fmt.Sprintf("%c-%d", 'A'+i/10, i%10+1) })
	f.Add(h.ev.MarshalSnapshot())
	h.tick(at(1000))
	f.Add(h.ev.MarshalSnapshot())
	// A changed definition and a replacement's hold start.
	h.update(at(1001), EventPatch{OrphanSeats: ptr(OrphanPrevent), FocalPoint: &FocalPoint{X: 10.5, Y: -3}, MaxHoldSeconds: ptr(600)})
	h.mustHold(at(1002), "u7", "r20", "B-5", "B-6")
	h.mustHold(at(1003), "u7", "r21", "B-6")
	f.Add(h.ev.MarshalSnapshot())
	f.Add([]byte{1, 5, 1, 10, 0, 0})
	f.Add([]byte{1, 5, 0, 1, 2, 'r', '1', 2, 'u', '1', 0, 2, 0, 0x80, 0x01, 0x80, 0x01, 0, 0, 0, 0, 1, 3, 0})
	f.Fuzz(func(t *testing.T, snap []byte) {
		ev, err := RestoreEvent(created, snap)
		if err != nil {
			if CodeOf(err) != CodeCorruptRecord {
				t.Fatalf("error %v is not corrupt_record", err)
			}
			return
		}
		if err := ev.CheckInvariants(time.Time{}); err != nil {
			t.Fatalf("accepted snapshot breaks an invariant: %v", err)
		}
		again := ev.MarshalSnapshot()
		if snap[0] == snapshotVersion1 {
			// An old snapshot is written in the current version, which
			// restores to the same state.
			back, err := RestoreEvent(created, again)
			if err != nil || !bytes.Equal(back.MarshalSnapshot(), again) {
				t.Fatalf("version 1 snapshot rewritten as %x does not restore to itself: %v", again, err)
			}
		} else if !bytes.Equal(again, snap) {
			t.Fatalf("accepted snapshot re-encodes differently:\n%x\n%x", snap, again)
		}
		// It can go on: expire everything, then sell a seat.
		now := time.UnixMilli(1 << 50)
		recs := ev.Tick(now)
		if err := ev.CheckInvariants(now); err != nil {
			t.Fatalf("after Tick: %v", err)
		}
		for _, r := range recs {
			if r.Type != RecordHoldReleased {
				t.Fatalf("Tick returned %s", r.Type)
			}
		}
		if _, err := ev.Block(now, []string{"A-1"}); err != nil && CodeOf(err) != CodeSeatUnavailable {
			t.Fatalf("block after restore: %v", err)
		}
		if err := ev.CheckInvariants(time.Time{}); err != nil {
			t.Fatalf("after Block: %v", err)
		}
		if _, err := RestoreEvent(created, ev.MarshalSnapshot()); err != nil {
			t.Fatalf("snapshot of a restored event does not restore: %v", err)
		}
	})
}

// TestApplyRejects: a record that does not fit the state is refused with
// corrupt_record and changes nothing.
func TestApplyRejects(t *testing.T) {
	h := newSmall(t)
	h.mustHold(at(0), "u1", "r1", "A-1", "A-2")
	h.mustHold(at(0), "u2", "r2", "A-3")
	h.pay(at(1), "u2", "r2")
	h.block(at(1), "B-1")
	next := h.ev.Seq() + 1
	for _, tc := range []struct {
		name string
		rec  Record
	}{
		{"seq-gap", Record{Seq: next + 1, Type: RecordSeatsBlocked, Seats: []int32{15}}},
		{"seq-repeat", Record{Seq: next - 1, Type: RecordSeatsBlocked, Seats: []int32{15}}},
		{"event-created", Record{Seq: next, Type: RecordEventCreated, Definition: h.recs[0].Definition}},
		{"unknown-type", Record{Seq: next, Type: 77}},
		{"seat-out-of-range", Record{Seq: next, Type: RecordSeatsBlocked, Seats: []int32{20}}},
		{"seat-negative", Record{Seq: next, Type: RecordSeatsBlocked, Seats: []int32{-1}}},
		{"held-taken-seat", Record{Seq: next, Type: RecordSeatsHeld, ReservationID: "r3", CustomerID: "u3", Seats: []int32{1}}},
		{"held-blocked-seat", Record{Seq: next, Type: RecordSeatsHeld, ReservationID: "r3", CustomerID: "u3", Seats: []int32{10}}},
		{"held-duplicate-seat", Record{Seq: next, Type: RecordSeatsHeld, ReservationID: "r3", CustomerID: "u3", Seats: []int32{5, 5}}},
		{"held-existing-id", Record{Seq: next, Type: RecordSeatsHeld, ReservationID: "r1", CustomerID: "u3", Seats: []int32{5}}},
		{"held-no-seats", Record{Seq: next, Type: RecordSeatsHeld, ReservationID: "r3", CustomerID: "u3"}},
		{"held-no-customer", Record{Seq: next, Type: RecordSeatsHeld, ReservationID: "r3", Seats: []int32{5}}},
		{"release-unknown", Record{Seq: next, Type: RecordHoldReleased, ReservationID: "r9", CustomerID: "u1", Seats: []int32{0, 1}, Reason: ReasonCancelled}},
		{"release-no-reason", Record{Seq: next, Type: RecordHoldReleased, ReservationID: "r1", CustomerID: "u1", Seats: []int32{0, 1}}},
		{"release-bad-reason", Record{Seq: next, Type: RecordHoldReleased, ReservationID: "r1", CustomerID: "u1", Seats: []int32{0, 1}, Reason: 4}},
		{"release-other-seats", Record{Seq: next, Type: RecordHoldReleased, ReservationID: "r1", CustomerID: "u1", Seats: []int32{0}, Reason: ReasonCancelled}},
		{"release-no-seats", Record{Seq: next, Type: RecordHoldReleased, ReservationID: "r1", CustomerID: "u1", Reason: ReasonCancelled}},
		{"release-other-customer", Record{Seq: next, Type: RecordHoldReleased, ReservationID: "r1", CustomerID: "u2", Seats: []int32{0, 1}, Reason: ReasonCancelled}},
		{"pay-wrong-attempt", Record{Seq: next, Type: RecordPaymentStarted, ReservationID: "r1", CustomerID: "u1", Attempt: 2}},
		{"pay-paying", Record{Seq: next, Type: RecordPaymentStarted, ReservationID: "r2", CustomerID: "u2", Attempt: 2}},
		{"pay-other-customer", Record{Seq: next, Type: RecordPaymentStarted, ReservationID: "r1", CustomerID: "u2", Attempt: 1}},
		{"fail-held", Record{Seq: next, Type: RecordPaymentFailed, ReservationID: "r1", CustomerID: "u1", Attempt: 0}},
		{"fail-wrong-attempt", Record{Seq: next, Type: RecordPaymentFailed, ReservationID: "r2", CustomerID: "u2", Attempt: 2}},
		{"book-held", Record{Seq: next, Type: RecordSeatsBooked, ReservationID: "r1", CustomerID: "u1", Seats: []int32{0, 1}, BookingID: "b"}},
		{"book-no-booking-id", Record{Seq: next, Type: RecordSeatsBooked, ReservationID: "r2", CustomerID: "u2", Seats: []int32{2}, Attempt: 1}},
		{"book-other-seats", Record{Seq: next, Type: RecordSeatsBooked, ReservationID: "r2", CustomerID: "u2", Seats: []int32{3}, Attempt: 1, BookingID: "b"}},
		{"block-reserved", Record{Seq: next, Type: RecordSeatsBlocked, Seats: []int32{0}}},
		{"block-blocked", Record{Seq: next, Type: RecordSeatsBlocked, Seats: []int32{10}}},
		{"block-twice", Record{Seq: next, Type: RecordSeatsBlocked, Seats: []int32{12, 12}}},
		{"block-none", Record{Seq: next, Type: RecordSeatsBlocked}},
		{"unblock-available", Record{Seq: next, Type: RecordSeatsUnblocked, Seats: []int32{12}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.ev.MarshalSnapshot()
			if err := h.ev.Apply(tc.rec); CodeOf(err) != CodeCorruptRecord {
				t.Fatalf("Apply: %v, want corrupt_record", err)
			}
			if !bytes.Equal(before, h.ev.MarshalSnapshot()) {
				t.Fatal("a refused record changed the event")
			}
			if err := h.ev.CheckInvariants(time.Time{}); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The right records do apply.
	for _, rec := range []Record{
		{Seq: next, Type: RecordSeatsBooked, ReservationID: "r2", CustomerID: "u2", Seats: []int32{2}, Attempt: 1, BookingID: "b"},
		{Seq: next + 1, Type: RecordHoldReleased, ReservationID: "r1", CustomerID: "u1", Seats: []int32{0, 1}, Reason: ReasonCancelled},
	} {
		if err := h.ev.Apply(rec); err != nil {
			t.Fatalf("%s: %v", rec.Type, err)
		}
	}
	if err := h.ev.CheckInvariants(time.Time{}); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreEventByteFlips corrupts every byte of a real snapshot in a few
// ways: each result is refused with corrupt_record, or accepted as an event
// that passes CheckInvariants and encodes back to exactly those bytes.
func TestRestoreEventByteFlips(t *testing.T) {
	h := newSmall(t)
	richStory(h, func(i int) string { return fmt.Sprintf("%c-%d", 'A'+i/10, i%10+1) })
	snap := h.ev.MarshalSnapshot()
	accepted := 0
	for i := range snap {
		for _, v := range []byte{0, 1, 2, 3, 0x7f, 0x80, 0xff, snap[i] + 1, snap[i] - 1} {
			if v == snap[i] {
				continue
			}
			bad := bytes.Clone(snap)
			bad[i] = v
			ev, err := RestoreEvent(h.recs[0], bad)
			if err != nil {
				if CodeOf(err) != CodeCorruptRecord {
					t.Fatalf("byte %d = %#x: %v", i, v, err)
				}
				continue
			}
			accepted++
			if err := ev.CheckInvariants(time.Time{}); err != nil {
				t.Fatalf("byte %d = %#x accepted, but: %v", i, v, err)
			}
			if !bytes.Equal(ev.MarshalSnapshot(), bad) {
				t.Fatalf("byte %d = %#x accepted, but encodes differently", i, v)
			}
		}
	}
	t.Logf("%d bytes, %d corruptions accepted as other valid states", len(snap), accepted)
}
