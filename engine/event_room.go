package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// An event's waiting room (room.go) lives inside the event: the event actor
// decides both, so that an admission is claimed in the same command as the
// hold that claims it, a buyer is done in the same command as the booking,
// and admission reads the seat counts it meters by. The room's records are
// journaled in the event's journal as RecordRoom records (docs/DECISIONS.md
// D20); they advance the event's Seq, and the room keeps its own sequence
// inside them. Snapshots carry the room.

// CodeAdmissionBudgetExceeded (422): while the waiting room is on, a hold
// would take the customer past the seat budget of their admission.
const CodeAdmissionBudgetExceeded Code = "admission_budget_exceeded"

// roomActive reports whether holds need an admission now.
func (e *Event) roomActive() bool {
	return e.room != nil && e.def.WaitingRoom != nil && e.def.WaitingRoom.Enabled
}

// HasRoom reports whether the event has a waiting room and whether it is on.
func (e *Event) HasRoom() (exists, active bool) { return e.room != nil, e.roomActive() }

// roomConfig is the room's config from the definition: the event's onSaleAt
// and per-customer limit, and the waitingRoom settings.
func (e *Event) roomConfig(def *EventDefinition) RoomConfig {
	wr := def.WaitingRoom
	return RoomConfig{
		OnSaleAt: def.OnSaleAt, AdmitPerSecond: wr.AdmitPerSecond, MaxActive: wr.MaxActive,
		ClaimSeconds: wr.ClaimSeconds, AdmissionTTLSeconds: wr.AdmissionTTLSeconds,
		MaxSeatsPerCustomer: def.MaxSeatsPerCustomer,
	}
}

// validateWaitingRoom checks a definition's waitingRoom as the room would.
func validateWaitingRoom(d *EventDefinition) error {
	if d.WaitingRoom == nil {
		return nil
	}
	_, err := (&Event{}).roomConfig(d).resolved()
	return err
}

// journalRoom appends the room's records (already applied to the room) to
// the event's journal as RecordRoom records.
func (e *Event) journalRoom(out []Record, recs []RoomRecord) []Record {
	for i := range recs {
		e.seq++
		out = append(out, Record{Seq: e.seq, Type: RecordRoom, AtUnixMilli: recs[i].AtUnixMilli, Definition: appendRoomEntry(nil, &recs[i])})
	}
	return out
}

// appendRoomEntry encodes a room record inside a RecordRoom record.
func appendRoomEntry(dst []byte, r *RoomRecord) []byte {
	dst = append(dst, byte(r.Type))
	dst = binary.AppendUvarint(dst, r.Seq)
	return r.AppendPayload(dst)
}

// decodeRoomEntry decodes what appendRoomEntry wrote, insisting on the
// canonical encoding.
func decodeRoomEntry(b []byte) (RoomRecord, error) {
	if len(b) < 2 {
		return RoomRecord{}, fmt.Errorf("room entry of %d bytes", len(b))
	}
	typ := RoomRecordType(b[0])
	seq, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return RoomRecord{}, fmt.Errorf("room entry: bad seq")
	}
	rr, err := DecodeRoomPayload(seq, typ, b[1+n:])
	if err != nil {
		return RoomRecord{}, err
	}
	if !bytes.Equal(appendRoomEntry(nil, &rr), b) {
		return RoomRecord{}, fmt.Errorf("room entry is not in canonical encoding")
	}
	return rr, nil
}

// applyRoom replays a RecordRoom record.
func (e *Event) applyRoom(rec Record) string {
	rr, err := decodeRoomEntry(rec.Definition)
	if err != nil {
		return err.Error()
	}
	if rr.Type == RoomRecordCreated {
		if e.room != nil || rr.EventID != e.def.ID {
			return "a second room, or one of another event"
		}
		room, err := NewRoom(rr)
		if err != nil {
			return err.Error()
		}
		e.room, e.roomCreated = room, rr
		return ""
	}
	if e.room == nil {
		return "a room record before the room was created"
	}
	if err := e.room.Apply(rr); err != nil {
		return err.Error()
	}
	return ""
}

// syncRoom creates the room when the definition turns it on, and hands an
// existing room the definition's settings (onSaleAt, the per-customer limit,
// the waitingRoom object). A room that exists is never removed.
func (e *Event) syncRoom(out []Record, now time.Time) []Record {
	if e.def.WaitingRoom == nil {
		return out
	}
	cfg := e.roomConfig(&e.def)
	if e.room == nil {
		if !e.def.WaitingRoom.Enabled {
			return out
		}
		room, recs, err := CreateRoom(e.def.ID, cfg, now)
		if err != nil { // validated with the definition: cannot happen
			panic(fmt.Sprintf("engine: create the waiting room: %v", err))
		}
		e.room, e.roomCreated = room, recs[0]
		return e.journalRoom(out, recs)
	}
	recs, err := e.room.Update(now, cfg)
	if err != nil {
		panic(fmt.Sprintf("engine: update the waiting room: %v", err))
	}
	return e.journalRoom(out, recs)
}

// roomInventory is what admission meters by: the seats available, and sold
// out once none is available or held (none can come back from an expiry)
// or sales have ended.
func (e *Event) roomInventory(now time.Time) RoomInventory {
	soldOut := e.counts.Available == 0 && e.counts.Reserved == 0 || e.cancelled() || !now.Before(e.salesEnd())
	return RoomInventory{Available: e.counts.Available, SoldOut: soldOut}
}

// QueueJoin gives customerID a place in the event's waiting room (Room.Join).
// Errors: ticket_not_found when the event has no waiting room, and those
// of Room.Join.
func (e *Event) QueueJoin(now time.Time, customerID, ticketID string) ([]Record, TicketView, error) {
	if e.room == nil {
		return nil, TicketView{}, Errorf(CodeTicketNotFound, "event %q has no waiting room", e.def.ID)
	}
	recs, tv, err := e.room.Join(now, customerID, ticketID)
	return e.journalRoom(nil, recs), tv, err
}

// QueuePoll reads a ticket and counts the poll (Room.Poll; nothing is
// journaled). Errors: ticket_not_found.
func (e *Event) QueuePoll(now time.Time, ticket string) (TicketView, error) {
	if e.room == nil {
		return TicketView{}, Errorf(CodeTicketNotFound, "event %q has no waiting room", e.def.ID)
	}
	return e.room.Poll(now, ticket)
}

// QueueLeave takes a ticket out of the room (Room.Leave). Errors:
// ticket_not_found.
func (e *Event) QueueLeave(now time.Time, ticket string) ([]Record, error) {
	if e.room == nil {
		return nil, Errorf(CodeTicketNotFound, "event %q has no waiting room", e.def.ID)
	}
	recs, err := e.room.Leave(now, ticket)
	return e.journalRoom(nil, recs), err
}

// RoomTick runs the waiting room at now: the draw of the pre-queue with
// seed once onSaleAt has come (the caller draws the seed from a
// cryptographic source; it is journaled), then admissions by the rate, the
// active cap and the seats (Room.Tick). Nil without a room.
func (e *Event) RoomTick(now time.Time, seed [32]byte) []Record {
	if e.room == nil {
		return nil
	}
	var out []Record
	if e.room.DrawDue(now) {
		recs, err := e.room.Draw(now, seed)
		if err != nil {
			panic(fmt.Sprintf("engine: draw: %v", err))
		}
		out = e.journalRoom(out, recs)
	}
	return e.journalRoom(out, e.room.Tick(now, e.roomInventory(now)))
}

// RoomStats returns the waiting room's counts; false without a room.
func (e *Event) RoomStats(now time.Time) (RoomStats, bool) {
	if e.room == nil {
		return RoomStats{}, false
	}
	return e.room.Stats(now), true
}

// RoomDraw returns the journaled draw of the waiting room, once it happened.
func (e *Event) RoomDraw() (RoomDraw, bool) {
	if e.room == nil {
		return RoomDraw{}, false
	}
	return e.room.Drawn()
}

// admit checks, for a hold of customerID while the room is on, that the
// customer holds an admission in force. Errors: admission_required.
func (e *Event) admit(now time.Time, customerID string) error {
	if !e.roomActive() {
		return nil
	}
	_, err := e.room.Admission(now, customerID)
	return err
}

// afterHold claims the customer's admission with their successful hold, in
// the same command; a hold refused for the limit while the room is on is
// the admission's budget.
func (e *Event) afterHold(out []Record, now time.Time, customerID string, err error) ([]Record, error) {
	if !e.roomActive() {
		return out, err
	}
	if CodeOf(err) == CodeLimitExceeded {
		return out, Errorf(CodeAdmissionBudgetExceeded, "your admission allows %d seats", e.def.MaxSeatsPerCustomer)
	}
	if err != nil {
		return out, err
	}
	recs, _, cerr := e.room.Claim(now, customerID)
	out = e.journalRoom(out, recs)
	if cerr != nil { // admit checked the admission in this same command
		panic(fmt.Sprintf("engine: claim an admission checked a moment ago: %v", cerr))
	}
	return out, nil
}

// afterBooking tells the room the buyer is done, in the booking's command.
func (e *Event) afterBooking(out []Record, now time.Time, customerID string, seats int) []Record {
	if e.room == nil {
		return out
	}
	recs, err := e.room.Done(now, customerID, min(seats, MaxSeatsPerCustomerMax))
	if err != nil {
		panic(fmt.Sprintf("engine: room done: %v", err))
	}
	return e.journalRoom(out, recs)
}

// RoomRecordOf decodes the waiting-room record a RecordRoom record carries
// (audits read the draw's seed and the admissions from the journal).
// Errors: corrupt_record.
func RoomRecordOf(rec Record) (RoomRecord, error) {
	if rec.Type != RecordRoom {
		return RoomRecord{}, Errorf(CodeCorruptRecord, "record %d is %s, not a waiting-room record", rec.Seq, rec.Type)
	}
	rr, err := decodeRoomEntry(rec.Definition)
	if err != nil {
		return RoomRecord{}, Errorf(CodeCorruptRecord, "record %d: %v", rec.Seq, err)
	}
	return rr, nil
}

// RoomResume tells the waiting room the event runs again after a recovery
// (Room.Resume): unclaimed admissions get a fresh claim window and queued
// visitors a fresh poll grace, so the downtime counts against nobody. Call
// it right after recovery; nil without a room or when already resumed.
func (e *Event) RoomResume(now time.Time) []Record {
	if e.room == nil {
		return nil
	}
	return e.journalRoom(nil, e.room.Resume(now))
}
