package engine

import (
	"testing"
	"time"
)

// TestEventWaitingRoom: an event with its waiting room on. Holds need an
// admission; the draw at onSaleAt uses the journaled seed; the first hold
// claims the admission in its own command; the limit reads as the
// admission's budget; the booking ends the admission in its own command;
// and replaying the journal (room records included) gives the same state.
func TestEventWaitingRoom(t *testing.T) {
	def := smallDef()
	def.WaitingRoom = &WaitingRoom{Enabled: true, AdmitPerSecond: 1, ClaimSeconds: 30}
	h := newHarness(t, def)
	if exists, active := h.ev.HasRoom(); !exists || !active {
		t.Fatalf("room exists %v, active %v", exists, active)
	}
	join := func(now time.Time, cust, ticket string) TicketView {
		t.Helper()
		var tv TicketView
		_, err := h.do("join "+cust, now, func() ([]Record, error) {
			recs, v, err := h.ev.QueueJoin(now, cust, ticket)
			tv = v
			return recs, err
		})
		if err != nil {
			t.Fatal(err)
		}
		return tv
	}
	tick := func(now time.Time) {
		t.Helper()
		h.do("tick", now, func() ([]Record, error) { return h.ev.RoomTick(now, [32]byte{7}), nil })
	}
	if tv := join(at(-1800), "u1", "t1"); tv.Status != TicketPreQueue {
		t.Fatalf("before onSaleAt: %+v", tv)
	}
	join(at(-600), "u2", "t2")
	join(at(-60), "u3", "t3")
	_, _, err := h.ev.Hold(at(1), HoldRequest{ReservationID: "r0", CustomerID: "u1", SeatIDs: []string{"A-1"}})
	wantCode(t, err, CodeAdmissionRequired)

	tick(at(0))
	draw, ok := h.ev.RoomDraw()
	if !ok || draw.Seed != [32]byte{7} || draw.Count != 3 {
		t.Fatalf("draw %+v %v", draw, ok)
	}
	var admitted string
	for s := 1.0; admitted == "" && s < 10; s++ {
		tick(at(s))
		for _, tk := range []string{"t1", "t2", "t3"} {
			if tv, _ := h.ev.QueuePoll(at(s), tk); tv.Status == TicketAdmitted {
				admitted = tv.CustomerID
			}
		}
	}
	if admitted == "" {
		t.Fatal("nobody admitted")
	}
	now := at(10)
	recs, err := h.hold(now, admitted, "r1", "A-1", "A-2")
	wantCode(t, err, "")
	if n := len(recs); n < 2 || recs[n-2].Type != RecordSeatsHeld || recs[n-1].Type != RecordRoom {
		t.Fatalf("the hold did not claim its admission in the same command: %v", recs)
	}
	_, err = h.hold(now, admitted, "r2", "B-1", "B-2", "B-3")
	wantCode(t, err, CodeAdmissionBudgetExceeded)
	_, attempt, err := h.pay(now, admitted, "r1")
	wantCode(t, err, "")
	recs, err = h.confirm(now, "r1", attempt, "b1")
	wantCode(t, err, "")
	if n := len(recs); n != 2 || recs[0].Type != RecordSeatsBooked || recs[1].Type != RecordRoom {
		t.Fatalf("the booking did not end the admission in the same command: %v", recs)
	}
	h.checkReplay()

	// Turned off by an operator: anyone may hold again.
	off := *def.WaitingRoom
	off.Enabled = false
	if _, err := h.update(at(11), EventPatch{WaitingRoom: &off}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.hold(at(12), "u9", "r9", "B-9"); err != nil {
		t.Fatalf("hold with the room off: %v", err)
	}
	h.checkReplay()
}
