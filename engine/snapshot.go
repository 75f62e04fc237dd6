package engine

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Snapshot versions: 1 had no definition and no hold starts (RestoreEvent
// still reads it: the definition is then the created one, and every hold
// started when it was made); 2 had no payment attempts (RestoreEvent reads
// it: a paying or booked reservation then has its current attempt pending
// or succeeded, without token or references); 3 had no waiting room; 4 is
// what MarshalSnapshot writes.
const (
	snapshotVersion1 = 1
	snapshotVersion2 = 2
	snapshotVersion3 = 3
	snapshotVersion  = 4
)

// MarshalSnapshot encodes the event's state as of Seq, with its current
// definition (operators change it: EventUpdated) but without the plan, which
// stays in the EventCreated record. The encoding is deterministic: two
// events that replayed the same records encode to the same bytes, which is
// how tests compare a replayed state with a live one.
//
// Layout: byte version | uvarint seq | uvarint n, n bytes of the JSON
// EventDefinition without its seating plan | uvarint n, n blocked seat
// indexes | uvarint n, n reservations in creation order (string id, string
// customer, byte status, uvarint createdSeq, varint createdAt, varint
// holdStart, varint expiresAt, varint heldUntil, uvarint attempts, string
// bookingID, varint bookedAt, byte reason, uvarint n, n seat indexes,
// uvarint n, n payment attempts (uvarint attempt, byte state, varint
// startedAt, string token, string ref, string refundRef, uvarint n, n
// provider event ids)) |
// uvarint n, n positions (in the reservation list) of released reservations
// in release order | byte 1 with a waiting room (then bytes: its
// RoomRecordCreated as a RecordRoom entry, bytes: Room.MarshalSnapshot),
// else 0.
func (e *Event) MarshalSnapshot() []byte {
	return e.AppendSnapshot(nil)
}

// AppendSnapshot appends the snapshot MarshalSnapshot returns to dst and
// returns the extended buffer. A caller that snapshots repeatedly passes the
// previous buffer[:0]: a stadium's snapshot is megabytes, and writing it
// into memory already in use costs a fraction of growing a new buffer into
// fresh pages.
func (e *Event) AppendSnapshot(dst []byte) []byte {
	def, err := json.Marshal(e.def)
	if err != nil { // strings, numbers and times only: cannot happen
		panic(fmt.Sprintf("engine: marshal the definition: %v", err))
	}
	// A reservation takes about 100 bytes (two ids of ~30 bytes, times,
	// seats): sized so that a buffer grows at most once.
	b := slices.Grow(dst, 64+len(def)+len(e.status)/2+(len(e.order)-e.orderHoles)*100+len(e.released)*3)
	b = append(b, snapshotVersion)
	b = binary.AppendUvarint(b, e.seq)
	b = binary.AppendUvarint(b, uint64(len(def)))
	b = append(b, def...)
	var blocked []int32
	for i, s := range e.status {
		if s == SeatBlocked {
			blocked = append(blocked, int32(i))
		}
	}
	b = appendSeats(b, blocked)
	b = binary.AppendUvarint(b, uint64(len(e.order)-e.orderHoles))
	i := 0
	for _, r := range e.order {
		if r == nil {
			continue
		}
		r.snapPos = i
		i++
		b = appendString(b, r.id)
		b = appendString(b, r.customer)
		b = append(b, byte(r.status))
		b = binary.AppendUvarint(b, r.createdSeq)
		b = binary.AppendVarint(b, r.createdAt)
		b = binary.AppendVarint(b, r.holdStart)
		b = binary.AppendVarint(b, r.expiresAt)
		b = binary.AppendVarint(b, r.heldUntil)
		b = binary.AppendUvarint(b, uint64(r.attempts))
		b = appendString(b, r.bookingID)
		b = binary.AppendVarint(b, r.bookedAt)
		b = append(b, byte(r.reason))
		b = appendSeats(b, r.seats)
		b = binary.AppendUvarint(b, uint64(len(r.payments)))
		for _, p := range r.payments {
			b = binary.AppendUvarint(b, uint64(p.attempt))
			b = append(b, byte(p.state))
			b = binary.AppendVarint(b, p.startedAt)
			b = appendString(b, p.token)
			b = appendString(b, p.ref)
			b = appendString(b, p.refundRef)
			b = binary.AppendUvarint(b, uint64(len(p.events)))
			for _, id := range p.events {
				b = appendString(b, id)
			}
		}
	}
	b = binary.AppendUvarint(b, uint64(len(e.released)))
	for _, r := range e.released {
		b = binary.AppendUvarint(b, uint64(r.snapPos))
	}
	if e.room == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	entry := appendRoomEntry(nil, &e.roomCreated)
	b = binary.AppendUvarint(b, uint64(len(entry)))
	b = append(b, entry...)
	room := e.room.MarshalSnapshot()
	b = binary.AppendUvarint(b, uint64(len(room)))
	return append(b, room...)
}

func appendSeats(b []byte, seats []int32) []byte {
	b = binary.AppendUvarint(b, uint64(len(seats)))
	for _, s := range seats {
		b = binary.AppendUvarint(b, uint64(uint32(s)))
	}
	return b
}

// RestoreEvent rebuilds an event from its EventCreated record and a snapshot
// made by MarshalSnapshot. Records after the snapshot are then replayed with
// Apply. A snapshot that does not decode, or whose contents contradict each
// other or the plan, gives an *Error with code corrupt_record; it never
// panics.
func RestoreEvent(created Record, snapshot []byte) (*Event, error) {
	e, err := NewEvent(created)
	if err != nil {
		return nil, err
	}
	d := decoder{b: snapshot}
	bad := func(msg string) (*Event, error) {
		if d.err != "" {
			msg = d.err
		}
		return nil, Errorf(CodeCorruptRecord, "snapshot of event %q: %s", e.def.ID, msg)
	}
	version := d.byte()
	if version < snapshotVersion1 || version > snapshotVersion {
		return bad("unknown snapshot version")
	}
	e.seq = d.uvarint()
	if e.seq < 1 {
		return bad("sequence is zero")
	}
	if version >= snapshotVersion2 {
		blob := d.bytes()
		if d.err != "" {
			return bad("")
		}
		var def EventDefinition
		dec := json.NewDecoder(bytes.NewReader(blob))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&def); err != nil {
			return bad("definition: " + err.Error())
		}
		def.SeatingPlan = nil
		if err := validateSettings(&def); err != nil {
			return bad("definition: " + err.Error())
		}
		// Only what MarshalSnapshot writes: the canonical JSON.
		if again, err := json.Marshal(def); err != nil || !bytes.Equal(again, blob) {
			return bad("definition is not in canonical form")
		}
		if def.ID != e.def.ID || def.Currency != e.def.Currency || !maps.Equal(def.Prices, e.def.Prices) ||
			!def.StartsAt.Equal(e.def.StartsAt) || def.PaymentGraceSeconds != e.def.PaymentGraceSeconds {
			return bad("definition differs from the created event in what cannot change")
		}
		e.setDefinition(def)
	}
	seats := func() []int32 {
		n := d.uvarint()
		if n > uint64(len(e.status)) || n > uint64(len(d.b)) {
			d.fail("seat count out of bounds")
			return nil
		}
		out := make([]int32, n)
		for i := range out {
			v := d.uvarint()
			if v >= uint64(len(e.status)) {
				d.fail("seat index out of bounds")
				return nil
			}
			out[i] = int32(v)
		}
		return out
	}
	prev := int32(-1)
	for _, s := range seats() {
		// MarshalSnapshot writes them in ascending order; anything else is
		// not a snapshot it wrote.
		if s <= prev {
			return bad("blocked seats repeated or out of order")
		}
		prev = s
		e.setStatus(s, SeatBlocked)
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return bad("reservation count out of bounds")
	}
	all := make([]*reservation, 0, n)
	e.reservations = make(map[string]*reservation, n)
	e.customers = make(map[string]*customer, n/2)
	for range n {
		r := &reservation{}
		r.id = d.str()
		r.customer = d.str()
		r.status = ReservationStatus(d.byte())
		r.createdSeq = d.uvarint()
		r.createdAt = d.varint()
		r.holdStart = r.createdAt
		if version >= snapshotVersion2 {
			r.holdStart = d.varint()
		}
		r.expiresAt = d.varint()
		r.heldUntil = d.varint()
		att := d.uvarint()
		r.attempts = uint32(att)
		r.bookingID = d.str()
		r.bookedAt = d.varint()
		r.reason = ReleaseReason(d.byte())
		r.seats = seats()
		if version >= snapshotVersion {
			r.payments = d.payments(r.attempts)
		} else {
			r.payments = impliedPayments(r)
		}
		if d.err != "" {
			return bad("")
		}
		if r.id == "" || r.customer == "" || len(r.seats) == 0 || r.status > StatusReleased || att > 1<<32-1 ||
			e.reservations[r.id] != nil || (len(all) > 0 && all[len(all)-1].createdSeq >= r.createdSeq) ||
			// Created by a SeatsHeld record after EventCreated, at or
			// before the snapshot's seq.
			r.createdSeq < 2 || r.createdSeq > e.seq || r.holdStart > r.createdAt ||
			// Only a released reservation has a reason, only a booked
			// one a booking id, and a payment started before paying or
			// booked.
			(r.status == StatusReleased) != (r.reason != ReasonNone) || r.reason > reasonMax ||
			(r.status == StatusBooked || r.reason == ReasonRefunded) != (r.bookingID != "") ||
			(r.status == StatusPaying || r.status == StatusBooked) && r.attempts == 0 ||
			!paymentsConsistent(r) {
			return bad("reservation " + r.id + " is inconsistent")
		}
		for _, s := range r.seats {
			r.totalCents += e.categories[e.plan.Seats[s].Category].PriceCents
		}
		c := e.customers[r.customer]
		if c == nil {
			c = &customer{}
			e.customers[r.customer] = c
		}
		c.reservations = append(c.reservations, r)
		e.reservations[r.id] = r
		r.orderIndex = len(all)
		all = append(all, r)
		if r.status == StatusReleased {
			continue
		}
		to := SeatReserved
		if r.status == StatusBooked {
			to = SeatBooked
			if r.bookingID == "" || e.bookings[r.bookingID] != nil {
				return bad("booking of " + r.id + " is inconsistent")
			}
			e.bookings[r.bookingID] = r
		} else {
			heap.Push(&e.expiries, r)
		}
		for _, s := range r.seats {
			if e.status[s] != SeatAvailable {
				return bad("seat " + e.plan.Seats[s].ID + " belongs to two reservations")
			}
			e.setStatus(s, to)
			e.holder[s] = r
		}
		c.seats += len(r.seats)
	}
	e.order = all
	nr := d.uvarint()
	// More than ReleasedRetainMax only while the oldest owe the provider
	// work (retainReleased).
	if nr > uint64(len(all)) {
		return bad("released count out of bounds")
	}
	seen := make(map[int]bool, nr)
	for range nr {
		p := d.uvarint()
		if p >= uint64(len(all)) || seen[int(p)] || all[p].status != StatusReleased {
			return bad("released list is inconsistent")
		}
		seen[int(p)] = true
		e.released = append(e.released, all[p])
	}
	if version >= snapshotVersion {
		switch d.byte() {
		case 0:
		case 1:
			created, err := decodeRoomEntry(d.bytes())
			if err != nil || created.Type != RoomRecordCreated || created.EventID != e.def.ID {
				return bad("waiting room: bad created record")
			}
			state := d.bytes()
			if d.err != "" {
				return bad("")
			}
			room, err := RestoreRoom(created, state)
			if err != nil {
				return bad("waiting room: " + err.Error())
			}
			e.room, e.roomCreated = room, created
		default:
			return bad("waiting room: bad marker")
		}
	}
	if d.err != "" || len(d.b) != 0 || len(e.released) != countReleased(all) {
		return bad("trailing or missing data")
	}
	return e, nil
}

func countReleased(all []*reservation) int {
	n := 0
	for _, r := range all {
		if r.status == StatusReleased {
			n++
		}
	}
	return n
}

// payments reads a reservation's payment attempts: attempts ascending, from
// 1 to at most the reservation's attempt count.
func (d *decoder) payments(attempts uint32) []*payment {
	n := d.uvarint()
	if n > uint64(attempts) || n > uint64(len(d.b)) {
		d.fail("payment attempt count out of bounds")
		return nil
	}
	var out []*payment
	for range n {
		p := &payment{}
		a := d.uvarint()
		p.state = PaymentState(d.byte())
		p.startedAt = d.varint()
		p.token = d.str()
		p.ref = d.str()
		p.refundRef = d.str()
		ne := d.uvarint()
		if ne > uint64(len(d.b)) {
			d.fail("provider event count out of bounds")
			return nil
		}
		for range ne {
			p.events = append(p.events, d.str())
		}
		if a == 0 || a > uint64(attempts) || p.state > paymentStateMax || (len(out) > 0 && uint64(out[len(out)-1].attempt) >= a) {
			d.fail("payment attempt out of order or unknown state")
			return nil
		}
		p.attempt = uint32(a)
		out = append(out, p)
	}
	return out
}

// impliedPayments gives a reservation of a version 2 snapshot the attempt
// its status implies.
func impliedPayments(r *reservation) []*payment {
	switch r.status {
	case StatusPaying:
		return []*payment{{attempt: r.attempts, state: PaymentPending}}
	case StatusBooked:
		return []*payment{{attempt: r.attempts, state: PaymentSucceeded}}
	}
	return nil
}

// paymentsConsistent reports whether a reservation's status agrees with its
// attempts: paying means its current attempt is pending, booked that it
// succeeded or its refund is pending.
func paymentsConsistent(r *reservation) bool {
	var cur *payment
	if n := len(r.payments); n > 0 && r.payments[n-1].attempt == r.attempts {
		cur = r.payments[n-1]
	}
	switch r.status {
	case StatusPaying:
		return cur != nil && cur.state == PaymentPending
	case StatusBooked:
		return cur != nil && (cur.state == PaymentSucceeded || cur.state == PaymentRefundPending)
	case StatusReleased:
		return r.reason != ReasonRefunded || cur != nil && cur.state == PaymentRefunded
	}
	return true
}
