package engine

import (
	"fmt"
	"time"
)

// CheckInvariants verifies the event's internal consistency and returns the
// first violation found: status counts add up to capacity and match the seat
// array; every reserved or booked seat points at a live or booked reservation
// that lists it, and no seat belongs to two; every live reservation is in the
// expiry heap and nothing else is; each customer's seat count is what their
// reservations hold. With a non-zero now (after Tick(now)), no live
// reservation may be at or past its expiry. It is O(seats + reservations):
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
	live := 0
	custSeats := make(map[string]int)
	for id, r := range e.reservations {
		if r.id != id {
			return fmt.Errorf("reservation %q indexed as %q", r.id, id)
		}
		if r.status == StatusReleased {
			continue
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
				return fmt.Errorf("seat %s is %s, held by %p; reservation %q (%s) lists it", e.plan.Seats[s].ID, e.status[s], e.holder[s], r.id, r.status)
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
	for id, cu := range e.customers {
		if cu.seats != custSeats[id] {
			return fmt.Errorf("customer %q counts %d seats, reservations hold %d", id, cu.seats, custSeats[id])
		}
	}
	for i := 1; i < len(e.expiries); i++ {
		if e.expiries.Less(i, (i-1)/2) {
			return fmt.Errorf("expiry heap order broken at %d", i)
		}
	}
	return nil
}
