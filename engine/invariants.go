package engine

import (
	"fmt"
	"slices"
	"time"
)

// CheckInvariants verifies the event's internal consistency and returns the
// first violation found: status counts add up to capacity and match the seat
// array; every reserved or booked seat points at a live or booked reservation
// that lists it, and no seat belongs to two; every live reservation is in the
// expiry heap and nothing else is; each customer's seat count is what their
// reservations hold; the retained released reservations, the bookings and
// each customer's list agree with the reservation index; a hold starts no
// later than its reservation was made; every plan segment's count of
// available seats is right, and the segments are ranked for the focal point
// in effect. With a non-zero now
// (after Tick(now)), no live reservation may be at or past its expiry. It is
// O(seats + reservations):
// meant for tests and verification, not the hot path.
func (e *Event) CheckInvariants(now time.Time) error {
	var c Counts
	for _, s := range e.status {
		c.add(s, 1)
	}
	if c != e.counts {
		return fmt.Errorf("counts %+v, seat array says %+v", e.counts, c)
	}
	if c.Available+c.Reserved+c.Booked+c.Blocked != len(e.plan.Seats) {
		return fmt.Errorf("counts %+v do not add up to capacity %d", c, len(e.plan.Seats))
	}
	owner := make(map[int32]*reservation)
	live, released, booked := 0, 0, 0
	custSeats := make(map[string]int)
	for id, r := range e.reservations {
		if r.id != id {
			return fmt.Errorf("reservation %q indexed as %q", r.id, id)
		}
		if r.createdSeq < 2 || r.createdSeq > e.seq {
			return fmt.Errorf("reservation %q created at seq %d, event at %d", r.id, r.createdSeq, e.seq)
		}
		if r.holdStart > r.createdAt {
			return fmt.Errorf("reservation %q holds since %d, after it was made at %d", r.id, r.holdStart, r.createdAt)
		}
		if !paymentsConsistent(r) {
			return fmt.Errorf("reservation %q is %s but its payment attempts say otherwise", r.id, r.status)
		}
		if (r.status == StatusReleased) != (r.reason != ReasonNone) {
			return fmt.Errorf("reservation %q is %s with release reason %q", r.id, r.status, r.reason)
		}
		if r.status == StatusReleased {
			released++
			continue
		}
		if r.status == StatusBooked {
			booked++
			if r.bookingID == "" || e.bookings[r.bookingID] != r {
				return fmt.Errorf("booked reservation %q is not indexed under booking %q", r.id, r.bookingID)
			}
		}
		custSeats[r.customer] += len(r.seats)
		want := SeatBooked
		if r.status.Live() {
			live++
			want = SeatReserved
			if r.heapIndex < 0 || r.heapIndex >= len(e.expiries) || e.expiries[r.heapIndex] != r {
				return fmt.Errorf("live reservation %q is not in the expiry heap", r.id)
			}
			if !now.IsZero() && r.expiresAt <= now.UnixMilli() {
				return fmt.Errorf("live reservation %q expired at %d, now %d", r.id, r.expiresAt, now.UnixMilli())
			}
		}
		for _, s := range r.seats {
			if o := owner[s]; o != nil {
				return fmt.Errorf("seat %s belongs to reservations %q and %q", e.plan.Seats[s].ID, o.id, r.id)
			}
			owner[s] = r
			if e.status[s] != want || e.holder[s] != r {
				holder := "nothing"
				if e.holder[s] != nil {
					holder = fmt.Sprintf("%q", e.holder[s].id)
				}
				return fmt.Errorf("seat %s is %s, held by %s; reservation %q (%s) lists it", e.plan.Seats[s].ID, e.status[s], holder, r.id, r.status)
			}
		}
	}
	if live != len(e.expiries) {
		return fmt.Errorf("%d live reservations, %d in the expiry heap", live, len(e.expiries))
	}
	for i, s := range e.status {
		if (s == SeatReserved || s == SeatBooked) && owner[int32(i)] == nil {
			return fmt.Errorf("seat %s is %s but no reservation holds it", e.plan.Seats[i].ID, s)
		}
		if (s == SeatAvailable || s == SeatBlocked) && e.holder[i] != nil {
			return fmt.Errorf("seat %s is %s but points at reservation %q", e.plan.Seats[i].ID, s, e.holder[i].id)
		}
	}
	if booked != len(e.bookings) {
		return fmt.Errorf("%d booked reservations, %d bookings", booked, len(e.bookings))
	}
	owing := 0
	for _, r := range e.released {
		if owesProviderWork(r) {
			owing++
		}
	}
	// Past the bound only by reservations that still owe the provider work.
	if released != len(e.released) || len(e.released) > max(ReleasedRetainMax, owing+1) && len(e.released)-owing > ReleasedRetainMax {
		return fmt.Errorf("%d released reservations, %d retained (at most %d, %d owing the provider)", released, len(e.released), ReleasedRetainMax, owing)
	}
	for _, r := range e.released {
		if e.reservations[r.id] != r || r.status != StatusReleased {
			return fmt.Errorf("retained release %q is %s or not indexed", r.id, r.status)
		}
	}
	listed := 0
	for id, cu := range e.customers {
		if cu.seats != custSeats[id] {
			return fmt.Errorf("customer %q counts %d seats, reservations hold %d", id, cu.seats, custSeats[id])
		}
		if len(cu.reservations) == 0 {
			return fmt.Errorf("customer %q is kept with no reservations", id)
		}
		for i, r := range cu.reservations {
			if r.customer != id || e.reservations[r.id] != r {
				return fmt.Errorf("customer %q lists reservation %q of %q, not indexed", id, r.id, r.customer)
			}
			if i > 0 && cu.reservations[i-1].createdSeq >= r.createdSeq {
				return fmt.Errorf("customer %q lists reservations out of creation order", id)
			}
		}
		listed += len(cu.reservations)
	}
	if listed != len(e.reservations) {
		return fmt.Errorf("customers list %d reservations, the event has %d", listed, len(e.reservations))
	}
	retained, holes, lastSeq := 0, 0, uint64(0)
	for i, r := range e.order {
		if r == nil {
			holes++
			continue
		}
		retained++
		if r.orderIndex != i || e.reservations[r.id] != r || r.createdSeq <= lastSeq {
			return fmt.Errorf("creation order broken at %d (reservation %q)", i, r.id)
		}
		lastSeq = r.createdSeq
	}
	if retained != len(e.reservations) || holes != e.orderHoles {
		return fmt.Errorf("creation order holds %d reservations and %d holes, want %d and %d", retained, holes, len(e.reservations), e.orderHoles)
	}
	free := make([]int32, len(e.plan.segments))
	for si, sg := range e.plan.segments {
		runs := make([]int32, sg.count+1)
		var longest int32
		free[si], longest = countRuns(e.status[sg.first:sg.first+sg.count], runs)
		if !e.runsStale[si] && (longest != e.maxRun[si] || !slices.Equal(runs, e.runCount[sg.runBase:sg.runBase+sg.count+1])) {
			return fmt.Errorf("runs of available seats of segment %d (seats %d+%d) disagree with the seat array", si, sg.first, sg.count)
		}
	}
	if !slices.Equal(free, e.segFree) {
		return fmt.Errorf("available seats per segment %v, the seat array says %v", e.segFree, free)
	}
	if err := e.checkRank(); err != nil {
		return err
	}
	for i := 1; i < len(e.expiries); i++ {
		if e.expiries.Less(i, (i-1)/2) {
			return fmt.Errorf("expiry heap order broken at %d", i)
		}
	}
	return nil
}

// checkRank verifies, in O(segments), that every segment is ranked once, by
// its distance bound from the focal point in effect, then plan order.
func (e *Event) checkRank() error {
	fp := e.focalPoint()
	ri := &e.rank
	if ri.fx != halfUnits(fp.X) || ri.fy != halfUnits(fp.Y) || len(ri.order) != len(e.plan.segments) || len(ri.lower) != len(ri.order) {
		return fmt.Errorf("segments are ranked for another focal point or plan")
	}
	seen := make([]bool, len(ri.order))
	for i, sg := range ri.order {
		if sg < 0 || int(sg) >= len(seen) || seen[sg] {
			return fmt.Errorf("segment %d ranked twice or out of range", sg)
		}
		seen[sg] = true
		b := ri.boxDistance(&e.plan.segments[sg])
		if b != ri.lower[i] || i > 0 && (ri.lower[i-1] > b || ri.lower[i-1] == b && ri.order[i-1] > sg) {
			return fmt.Errorf("segment %d ranked out of order at %d", sg, i)
		}
	}
	return nil
}
