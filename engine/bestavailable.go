package engine

import (
	"fmt"
	"math/bits"
	"slices"
	"time"
)

// HoldBestRequest asks the engine to choose and hold seats: Quantity
// adjacent seats of one row segment, of Category and in Zone when given.
type HoldBestRequest struct {
	ReservationID string // chosen by the caller, unique per event
	CustomerID    string // the customer who will own the hold
	BestAvailable
}

// HoldBest chooses the best block of req.Quantity adjacent available seats
// and holds it for req.CustomerID, deciding and holding in one command: two
// customers asking at the same moment get different seats.
//
// A block is req.Quantity consecutive seats of one segment (a row between
// aisles or row ends: see Plan.Adjacent), all available (blocked seats are
// never offered), all of req.Category and in req.Zone when those are given.
// Blocks that would leave a single empty seat between the block and a taken
// seat, an aisle or a row end (an orphan seat) are offered only when no
// block of that size strands none. Among the rest the block whose centre
// (the mean of its seat positions) is nearest the focal point wins; ties go
// to the earlier row of the plan, then the lowest seat index. The choice is
// thus deterministic. Best available adds a reservation: it never replaces
// one the customer holds.
//
// Records and errors as Hold: invalid_request (bad ids, a quantity below 1
// or over maxSeatsPerCustomer, a category or zone the plan does not have),
// event_cancelled, sales_not_open, sales_closed, limit_exceeded,
// no_adjacent_seats (no block of that size is available).
func (e *Event) HoldBest(now time.Time, req HoldBestRequest) ([]Record, error) {
	if err := e.admit(now, req.CustomerID); err != nil {
		return nil, err
	}
	out, err := e.holdBest(now, req)
	return e.afterHold(out, now, req.CustomerID, err)
}

// holdBest is HoldBest without the waiting room.
func (e *Event) holdBest(now time.Time, req HoldBestRequest) ([]Record, error) {
	switch {
	case !validID(req.ReservationID, reservationIDBytesMax):
		return nil, Errorf(CodeInvalidRequest, "reservation id is invalid")
	case req.CustomerID == "" || len(req.CustomerID) > customerIDBytesMax:
		return nil, Errorf(CodeInvalidRequest, "customer id is invalid")
	case req.Quantity < 1:
		return nil, Errorf(CodeInvalidRequest, "bestAvailable.quantity must be at least 1")
	case req.Quantity > e.def.MaxSeatsPerCustomer:
		return nil, Errorf(CodeInvalidRequest, "at most %d seats per request", e.def.MaxSeatsPerCustomer)
	}
	if _, dup := e.reservations[req.ReservationID]; dup {
		return nil, Errorf(CodeInvalidRequest, "reservation id %q is already used", req.ReservationID)
	}
	cat := int16(-1)
	if req.Category != "" {
		i := slices.IndexFunc(e.plan.Categories, func(c PlanCategory) bool { return c.Name == req.Category })
		if i < 0 {
			return nil, Errorf(CodeInvalidRequest, "bestAvailable.category: this event has no category %q", req.Category)
		}
		cat = int16(i)
	}
	var zones []bool // by zone index; nil: any zone
	if req.Zone != "" {
		zones = make([]bool, len(e.plan.Zones))
		found := false
		for i, z := range e.plan.Zones {
			zones[i] = z == req.Zone
			found = found || zones[i]
		}
		if !found {
			return nil, Errorf(CodeInvalidRequest, "bestAvailable.zone: this event has no zone %q", req.Zone)
		}
	}
	if err := e.checkOnSale(now); err != nil {
		return nil, err
	}
	nowMs := now.UnixMilli()
	out := e.expireDue(nil, nowMs)
	if c := e.customers[req.CustomerID]; c != nil && c.seats+req.Quantity > e.def.MaxSeatsPerCustomer {
		return out, Errorf(CodeLimitExceeded, "%d seats held or booked, at most %d per customer", c.seats, e.def.MaxSeatsPerCustomer)
	}
	first, ok := e.chooseBlock(req.Quantity, cat, zones)
	if !ok {
		return out, Errorf(CodeNoAdjacentSeats, "no %s available", describeBlock(req.BestAvailable))
	}
	seats := make([]int32, req.Quantity)
	for i := range seats {
		seats[i] = first + int32(i)
	}
	return e.emit(out, Record{
		Type: RecordSeatsHeld, AtUnixMilli: nowMs, ReservationID: req.ReservationID,
		CustomerID: req.CustomerID, Seats: seats, ExpiresAtUnixMilli: nowMs + int64(e.def.HoldTTLSeconds)*1000,
	}), nil
}

func describeBlock(b BestAvailable) string {
	s := fmt.Sprintf("%d adjacent seats", b.Quantity)
	if b.Quantity == 1 {
		s = "seat"
	}
	if b.Category != "" {
		s += fmt.Sprintf(" of category %q", b.Category)
	}
	if b.Zone != "" {
		s += fmt.Sprintf(" in zone %q", b.Zone)
	}
	return s
}

// u128 is an unsigned 128-bit integer: squared distances of block centres,
// scaled to integers, overflow 64 bits on large plans. Exact comparisons
// make the ranking (and its ties) the same on every platform.
type u128 struct{ hi, lo uint64 }

func square(v int64) u128 {
	if v < 0 {
		v = -v
	}
	hi, lo := bits.Mul64(uint64(v), uint64(v))
	return u128{hi, lo}
}

func (a u128) add(b u128) u128 {
	lo, carry := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, carry)
	return u128{hi, lo}
}

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// candidate is the best block found so far of one kind.
type candidate struct {
	ok    bool
	key   u128  // n² × squared distance of the block centre to the focal point, half units
	first int32 // first seat of the block
}

func (c *candidate) offer(key u128, first int32) {
	if !c.ok || key.less(c.key) || key == c.key && first < c.first {
		*c = candidate{ok: true, key: key, first: first}
	}
}

// chooseBlock returns the first seat of the best block of n seats (see
// HoldBest), cat < 0 and zones nil meaning any. It never looks at every
// seat: segments are visited in order of the lower bound of their blocks'
// distance (rankIndex), and a segment is skipped unless its runs of
// available seats (a histogram kept on every status change) can hold the
// block at all, or of another category or zone.
//
// The first pass looks for blocks stranding no seat: only a run of exactly
// n seats, or of n+2 or more, holds one. It stops once the bound passes the
// best found: no later segment can hold a better one. Only when no such
// block exists does a second pass, in the same order and stopping the same
// way, take the best block that strands a seat (any run of n or more).
func (e *Event) chooseBlock(n int, cat int16, zones []bool) (int32, bool) {
	for _, clean := range [2]bool{true, false} {
		var best candidate
		nn := uint64(n * n)
		for i, sg := range e.rank.order {
			if best.ok {
				hi, lo := bits.Mul64(e.rank.lower[i], nn)
				if best.key.less(u128{hi, lo}) {
					break
				}
			}
			seg := &e.plan.segments[sg]
			if int(e.segFree[sg]) < n || zones != nil && !zones[seg.zone] || cat >= 0 && seg.cat >= 0 && seg.cat != cat {
				continue
			}
			runs, longest := e.runs(sg)
			if int(longest) < n || clean && int(longest) < n+2 && runs[n] == 0 {
				continue // every run is too short (or, for a clean block, exactly n+1)
			}
			e.scanSegment(seg, n, cat, clean, &best)
		}
		if best.ok {
			return best.first, true
		}
	}
	return 0, false
}

// scanSegment offers best every block of n seats of one segment (only
// those stranding no seat when clean): within each run of available seats,
// every window of n seats of the category. A window strands a seat when
// exactly one available seat would remain between it and the end of its
// run (a taken seat, an aisle or the row end).
func (e *Event) scanSegment(seg *segment, n int, cat int16, clean bool, best *candidate) {
	seats := e.plan.Seats[seg.first : seg.first+seg.count]
	status := e.status[seg.first : seg.first+seg.count]
	fx, fy := int64(n)*e.rank.fx, int64(n)*e.rank.fy
	for i := 0; i < len(status); {
		if status[i] != SeatAvailable {
			i++
			continue
		}
		a := i
		for i < len(status) && status[i] == SeatAvailable {
			i++
		}
		b := i // the run is [a, b)
		if b-a < n {
			continue
		}
		// Slide a window of n seats over the run, with its coordinate sums
		// and the number of its seats of another category.
		var sumX, sumY int64
		other := 0
		for j := a; j < b; j++ {
			s := &seats[j]
			sumX, sumY = sumX+int64(s.X), sumY+int64(s.Y)
			if cat >= 0 && s.Category != cat {
				other++
			}
			start := j - n + 1
			if start < a {
				continue
			}
			if start > a {
				out := &seats[start-1]
				sumX, sumY = sumX-int64(out.X), sumY-int64(out.Y)
				if cat >= 0 && out.Category != cat {
					other--
				}
			}
			if other > 0 {
				continue
			}
			// The centre is (sumX/n, sumY/n); in half units, times n:
			// 2·sum − n·focal, exact in int64 (|sum| < 2^31).
			if clean && (start-a == 1 || b-(j+1) == 1) {
				continue
			}
			best.offer(square(2*sumX-fx).add(square(2*sumY-fy)), seg.first+int32(start))
		}
	}
}

// avoidableOrphans returns the seats (ascending) that holding seats would
// strand, counting the seats of the replaced reservations as free, in every
// row where another choice of as many seats would strand none. A seat is
// stranded when it stays available but has no available neighbour left,
// next to a held seat: between two taken seats, or between a taken seat and
// an aisle or row end.
func (e *Event) avoidableOrphans(seats []int32, replaced []*reservation) []int32 {
	freeBefore := func(s int32) bool {
		return e.status[s] == SeatAvailable || e.status[s] == SeatReserved && slices.Contains(replaced, e.holder[s])
	}
	freeAfter := func(s int32) bool { return freeBefore(s) && !slices.Contains(seats, s) }
	p := e.plan
	var stranded []int32
	for _, h := range seats {
		for _, x := range [2]int32{h - 1, h + 1} {
			if !p.Adjacent(h, x) || !freeAfter(x) || slices.Contains(stranded, x) {
				continue
			}
			if (!p.Adjacent(x, x-1) || !freeAfter(x-1)) && (!p.Adjacent(x, x+1) || !freeAfter(x+1)) {
				stranded = append(stranded, x)
			}
		}
	}
	if len(stranded) == 0 {
		return nil
	}
	slices.Sort(stranded)
	var avoidable []int32
	for _, x := range stranded {
		row := p.Seats[x].Row
		k := 0
		for _, h := range seats {
			if p.Seats[h].Row == row {
				k++
			}
		}
		if e.cleanChoiceExists(row, k, freeBefore) {
			avoidable = append(avoidable, x)
		}
	}
	return avoidable
}

// cleanChoiceExists reports whether k seats of the row, free by free, can
// be taken without stranding one. Taking t seats of a run of L free seats
// (between taken seats, aisles or row ends) strands none exactly when t is
// 0 or L, or leaves at least two (taken from one end). A dynamic program
// over the runs finds whether the allowed amounts add up to k.
func (e *Event) cleanChoiceExists(row int32, k int, free func(int32) bool) bool {
	r := e.plan.Rows[row]
	reach := make([]bool, k+1)
	reach[0] = true
	next := make([]bool, k+1)
	for i := r.First; i < r.First+r.Count; {
		if !free(i) {
			i++
			continue
		}
		a := i
		for i++; i < r.First+r.Count && free(i) && e.plan.Adjacent(i-1, i); i++ {
		}
		l := int(i - a)
		clear(next)
		for have := range reach {
			if !reach[have] {
				continue
			}
			for t := 0; t <= l && have+t <= k; t++ {
				if t == 0 || t == l || l-t >= 2 {
					next[have+t] = true
				}
			}
		}
		reach, next = next, reach
		if reach[k] {
			return true
		}
	}
	return reach[k]
}
