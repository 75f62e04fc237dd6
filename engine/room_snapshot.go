package engine

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"math"
)

// roomSnapshotVersion is what Room.MarshalSnapshot writes.
const roomSnapshotVersion = 1

// Bounds RestoreRoom checks on the measured values of a snapshot, far above
// anything a room reaches, so that arithmetic on them cannot overflow.
const (
	roomSnapRateMilliMax = 1 << 50
	roomSnapCountMax     = 1 << 40
	roomSnapCreditMin    = -(1 << 50)
)

// MarshalSnapshot encodes the room's journaled state as of Seq. Poll times
// and the wait estimates last told are not part of it (they are not
// journaled either: a restarted room gives everyone a fresh grace). The
// encoding is deterministic: two rooms that applied the same records encode
// to the same bytes, which is how tests compare a replayed room with a live
// one.
//
// Layout: byte version | uvarint seq | config (as in AppendPayload) | byte
// flags (1 drawn, 2 sold out, 4 the meter's window drained) | when drawn:
// varint drawnAt, 32 bytes seed, uvarint drawCount | varint creditMilli,
// varint creditAt, varint rateMilli, varint winStart, varint winCount,
// uvarint doneBuyers, uvarint doneSeats | uvarint n, n visitors in join
// order (string ticket, string customer, varint joinedAt, byte status,
// uvarint slot (1 + the place in the queue order, 0 if never placed), byte
// admission (0 none, 1 unclaimed, 2 claimed) and, with one, varint
// admittedAt, varint claimBy, varint expiresAt, uvarint seat budget).
func (r *Room) MarshalSnapshot() []byte {
	b := make([]byte, 0, 128+r.vs.len()*40)
	b = append(b, roomSnapshotVersion)
	b = binary.AppendUvarint(b, r.seq)
	b = appendRoomConfig(b, &r.cfg)
	var flags byte
	if r.drawn {
		flags |= 1
	}
	if r.soldOut {
		flags |= 2
	}
	if r.meter.drained {
		flags |= 4
	}
	b = append(b, flags)
	if r.drawn {
		b = binary.AppendVarint(b, r.drawnAt)
		b = append(b, r.seed[:]...)
		b = binary.AppendUvarint(b, uint64(r.drawCount))
	}
	for _, v := range []int64{r.creditMilli, r.creditAt, r.meter.rateMilli, r.meter.winStart, r.meter.winCount} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.AppendUvarint(b, uint64(r.doneBuyers))
	b = binary.AppendUvarint(b, uint64(r.doneSeats))
	b = binary.AppendUvarint(b, uint64(r.vs.len()))
	for i := range uint32(r.vs.len()) {
		x := r.vs.at(i)
		b = appendString(b, x.ticket)
		b = appendString(b, x.customer)
		b = binary.AppendVarint(b, x.joinedAt)
		b = append(b, byte(x.status))
		b = binary.AppendUvarint(b, uint64(x.slot))
		if x.adm == 0 {
			b = append(b, 0)
			continue
		}
		a := &r.adms[x.adm-1]
		kind := byte(1)
		if a.claimed {
			kind = 2
		}
		b = append(b, kind)
		b = binary.AppendVarint(b, a.at)
		b = binary.AppendVarint(b, a.claimBy)
		b = binary.AppendVarint(b, a.expiresAt)
		b = binary.AppendUvarint(b, uint64(a.budget))
	}
	return b
}

// RestoreRoom rebuilds a room from its RoomRecordCreated record and a
// snapshot made by MarshalSnapshot; the records after the snapshot are then
// replayed with Apply, and the room journals RoomRecordResumed with its
// first command (see Resume). A snapshot that does not decode, is not
// exactly what MarshalSnapshot writes, or whose contents contradict each
// other (a customer with two live tickets, a queue order that is not a
// permutation, an admitted visitor behind a waiting one, …) gives an
// *Error with code corrupt_record; it never panics.
func RestoreRoom(created RoomRecord, snapshot []byte) (*Room, error) {
	r, err := NewRoom(created)
	if err != nil {
		return nil, err
	}
	d := decoder{b: snapshot}
	bad := func(format string, args ...any) (*Room, error) {
		msg := fmt.Sprintf(format, args...)
		if d.err != "" {
			msg = d.err
		}
		return nil, Errorf(CodeCorruptRecord, "snapshot of the waiting room of %q: %s", r.eventID, msg)
	}
	if d.byte() != roomSnapshotVersion {
		return bad("unknown snapshot version")
	}
	r.seq = d.uvarint()
	cfg := d.roomConfig()
	flags := d.byte()
	if d.err != "" {
		return bad("")
	}
	c, msg := canonicalRoomConfig(cfg)
	switch {
	case r.seq < 1:
		return bad("sequence is zero")
	case msg != "":
		return bad("%s", msg)
	case flags&^7 != 0:
		return bad("unknown flags")
	}
	r.setConfig(c)
	r.drawn, r.soldOut, r.meter.drained = flags&1 != 0, flags&2 != 0, flags&4 != 0
	if r.drawn {
		r.drawnAt = d.varint()
		if len(d.b) < len(r.seed) {
			d.fail("truncated seed")
		} else {
			copy(r.seed[:], d.b)
			d.b = d.b[len(r.seed):]
		}
		r.drawCount = d.roomUint32()
	}
	r.creditMilli, r.creditAt = d.varint(), d.varint()
	r.meter.rateMilli, r.meter.winStart, r.meter.winCount = d.varint(), d.varint(), d.varint()
	doneBuyers, doneSeats := d.uvarint(), d.uvarint()
	n := d.uvarint()
	if d.err != "" {
		return bad("")
	}
	switch {
	case !r.drawn && (r.creditMilli != 0 || r.creditAt != 0 || r.meter != roomMeter{}):
		return bad("a room that has not drawn has no credit and no measured rate")
	case r.creditMilli < roomSnapCreditMin || r.creditMilli > max(1000, r.cfgRate) ||
		r.meter.rateMilli < 0 || r.meter.rateMilli > roomSnapRateMilliMax ||
		r.meter.winCount < 0 || r.meter.winCount > roomSnapCountMax:
		return bad("credit or measured rate out of bounds")
	case doneBuyers > RoomTicketsMax || doneSeats > doneBuyers*MaxSeatsPerCustomerMax:
		return bad("done buyers or their seats out of bounds")
	case n > RoomTicketsMax || n > uint64(len(d.b)):
		return bad("visitor count out of bounds")
	}
	r.doneBuyers, r.doneSeats = int64(doneBuyers), int64(doneSeats)
	// n is bounded by the snapshot's length: sizing the indexes up front
	// spares their growth.
	r.tickets, r.customers = make(map[string]uint32, n), make(map[string]uint32, n)
	owner := make([]uint32, n) // per slot: 1 + its visitor
	placed, done := 0, uint64(0)
	for i := range uint32(n) {
		var x visitor
		x.ticket = d.str()
		x.customer = d.str()
		x.joinedAt = d.varint()
		st := visitorStatus(d.byte())
		x.status = st
		slot := d.uvarint()
		kind := d.byte()
		var a admission
		if kind == 1 || kind == 2 {
			a = admission{visitor: i, at: d.varint(), claimBy: d.varint(), expiresAt: d.varint(), claimed: kind == 2, heapIdx: -1}
			a.budget = d.roomUint32()
		}
		if d.err != "" {
			return bad("")
		}
		if msg := r.checkRestored(&x, slot, kind, &a); msg != "" {
			return bad("visitor %d: %s", i, msg)
		}
		if slot != 0 {
			if slot > n || owner[slot-1] != 0 {
				return bad("visitor %d: slot %d is out of range or taken", i, slot)
			}
			owner[slot-1] = i + 1
			x.slot = uint32(slot)
			placed++
		}
		if kind != 0 {
			r.adms = append(r.adms, a)
			x.adm = uint32(len(r.adms))
		}
		switch {
		case st == vPre:
			r.pre++
		case st == vWaiting:
			r.waiting++
		case st.active():
			r.active++
			r.due = append(r.due, x.adm-1)
		case st == vDone:
			done++
		}
		r.tickets[x.ticket] = i
		r.customers[x.customer] = i
		r.vs.push(x)
	}
	if d.err != "" || len(d.b) != 0 {
		return bad("trailing or missing data")
	}
	if done != doneBuyers {
		return bad("%d done buyers counted, %d visitors done", doneBuyers, done)
	}
	// The queue order: slots 1..placed, each once; nobody admitted behind
	// somebody waiting.
	r.slots = make([]uint32, 0, placed)
	waitingSeen := false
	for s := range placed {
		if owner[s] == 0 {
			return bad("slot %d is empty", s+1)
		}
		v := owner[s] - 1
		st := r.vs.at(v).status
		r.slots = append(r.slots, v)
		goneFlag := int32(1)
		if st == vWaiting {
			waitingSeen, goneFlag = true, 0
		} else if r.vs.at(v).adm != 0 && waitingSeen {
			return bad("visitor %d was admitted behind a waiting visitor", v)
		}
		r.gone.push(goneFlag)
	}
	if r.drawn && uint64(r.drawCount) > uint64(placed) {
		return bad("the draw shuffled more visitors than were placed")
	}
	r.advanceHead()
	for i := range r.due {
		r.adms[r.due[i]].heapIdx = i
	}
	heap.Init(roomDue{r})
	for i := range uint32(r.vs.len()) {
		if r.vs.at(i).status.queued() {
			r.wheelPut(uint32(i), roomAddMilli(r.vs.at(i).joinedAt, roomGraceMilliMax))
		}
	}
	return r, nil
}

// checkRestored checks one visitor of a snapshot against the ones before
// it and the room's draw.
func (r *Room) checkRestored(x *visitor, slot uint64, kind byte, a *admission) string {
	st := x.status
	switch {
	case !validID(x.ticket, roomTicketIDBytesMax) || !validRoomCustomer(x.customer):
		return "ticket or customer id is invalid"
	case st > vStatusMax || kind > 2 || slot > math.MaxUint32:
		return "unknown status, admission kind or slot"
	case !r.drawn && (slot != 0 || kind != 0 || st != vPre && st != vLeft && st != vAbandoned):
		return "placed, admitted or in a queue status before the draw"
	case r.drawn && st == vPre:
		return "in the pre-queue after the draw"
	case st == vWaiting && (slot == 0 || kind != 0):
		return "waiting without a place, or with an admission"
	case st >= vDone || st.active():
		if slot == 0 || kind == 0 {
			return "admitted without a place or an admission"
		}
	case kind != 0 && slot == 0:
		return "admitted without a place"
	}
	if kind != 0 {
		switch {
		case a.budget < 1 || a.budget > MaxSeatsPerCustomerMax:
			return "seat budget out of range"
		case a.claimBy < a.at || a.expiresAt < a.claimBy:
			return "claim deadline or expiry out of order"
		case st == vClaimed && !a.claimed || (st == vAdmitted || st == vLapsed) && a.claimed:
			return "claimed flag contradicts the status"
		}
	}
	if _, dup := r.tickets[x.ticket]; dup {
		return "ticket issued twice"
	}
	if p, ok := r.customers[x.customer]; ok && r.vs.at(p).status.live() {
		return "the customer has another live ticket"
	}
	return ""
}
