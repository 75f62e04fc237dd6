package engine

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// roomSampleRecords has one record of every type, with fields at their
// bounds.
func roomSampleRecords() []RoomRecord {
	cfg := RoomConfig{OnSaleAt: roomT0, AdmitPerSecond: 2.5, MaxActive: 10, ClaimSeconds: 120,
		AdmissionTTLSeconds: 900, MaxSeatsPerCustomer: 4}
	big := RoomConfig{OnSaleAt: time.UnixMilli(roomOnSaleMilliMax).UTC(), AdmitPerSecond: RoomAdmitPerSecondMax,
		MaxActive: roomConfigIntMax, ClaimSeconds: roomConfigIntMax, AdmissionTTLSeconds: roomConfigIntMax, MaxSeatsPerCustomer: roomConfigIntMax}
	many := make([]uint32, RoomRecordVisitorsMax)
	for i := range many {
		many[i] = uint32(i * 7)
	}
	many[0] = math.MaxUint32
	return []RoomRecord{
		{Seq: 1, Type: RoomRecordCreated, AtUnixMilli: 1_764_000_000_000, EventID: "ev-1", Config: cfg},
		{Seq: 2, Type: RoomRecordConfigUpdated, AtUnixMilli: -1, Config: big},
		{Seq: 3, Type: RoomRecordJoined, AtUnixMilli: math.MinInt64, Ticket: strings.Repeat("q", recordStringBytesMax), CustomerID: "auth0|user 1 ü"},
		{Seq: 4, Type: RoomRecordDrawn, AtUnixMilli: math.MaxInt64, Seed: roomSeed(200), Count: math.MaxUint32},
		{Seq: 5, Type: RoomRecordAdmitted, AtUnixMilli: 5, Visitors: many, ClaimByUnixMilli: math.MinInt64, ExpiresAtUnixMilli: math.MaxInt64, SeatBudget: math.MaxUint32},
		{Seq: 6, Type: RoomRecordClaimed, AtUnixMilli: 6, Visitors: []uint32{0}},
		{Seq: 7, Type: RoomRecordLeft, AtUnixMilli: 7, Visitors: []uint32{1, 2}, Reason: RoomReasonAbandoned},
		{Seq: 8, Type: RoomRecordLeft, AtUnixMilli: 8, Visitors: []uint32{3}, Reason: RoomReasonLeft},
		{Seq: 9, Type: RoomRecordAdmissionEnded, AtUnixMilli: 9, Visitors: []uint32{4}, Reason: RoomReasonDone, Count: 3},
		{Seq: 10, Type: RoomRecordAdmissionEnded, AtUnixMilli: 10, Visitors: []uint32{5, 6}, Reason: RoomReasonLapsed},
		{Seq: 11, Type: RoomRecordAdmissionEnded, AtUnixMilli: 11, Visitors: []uint32{7}, Reason: RoomReasonExpired},
		{Seq: 12, Type: RoomRecordSoldOut, AtUnixMilli: 12, SoldOut: true},
		{Seq: 13, Type: RoomRecordSoldOut, AtUnixMilli: 13},
		{Seq: math.MaxUint64, Type: RoomRecordResumed, AtUnixMilli: 14},
	}
}

// roomRunRecords is the journal of a short real run with every record
// type.
func roomRunRecords(t roomTB) []RoomRecord {
	cfg := roomCfg()
	cfg.MaxActive = 2
	h := newRoomHarness(t, cfg)
	for i := 1; i <= 6; i++ {
		h.mustJoin(-5, fmt.Sprint("c", i), fmt.Sprint("t", i))
	}
	h.draw(0, roomSeed(5))
	h.mustJoin(0.5, "c7", "t7")
	h.leave(0.5, "t7")
	h.tick(1, plenty)
	admitted := h.ticketsOf(h.recs, RoomRecordAdmitted)
	h.claim(2, h.r.vs.at(h.r.tickets[admitted[0]]).customer)
	h.done(3, h.r.vs.at(h.r.tickets[admitted[0]]).customer, 2)
	cfg.AdmitPerSecond = 5
	h.update(3, cfg)
	h.tickAlive(4, RoomInventory{SoldOut: true})
	h.tickAlive(200, plenty)
	h.restart(false)
	h.tick(300, plenty)
	return h.recs
}

func TestRoomRecordRoundTrip(t *testing.T) {
	recs := append(roomSampleRecords(), roomRunRecords(t)...)
	seen := map[RoomRecordType]bool{}
	for _, r := range recs {
		seen[r.Type] = true
		payload := r.AppendPayload(nil)
		got, err := DecodeRoomPayload(r.Seq, r.Type, payload)
		if err != nil {
			t.Fatalf("%s: %v", r.Type, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("%s round trip:\ngot  %+v\nwant %+v", r.Type, got, r)
		}
		if again := got.AppendPayload([]byte("prefix")); !bytes.Equal(again[6:], payload) {
			t.Fatalf("%s: re-encoding differs", r.Type)
		}
		// Every truncation and a trailing byte fail cleanly.
		for n := range len(payload) {
			if len(payload) > 1000 && n > 100 && n < len(payload)-100 && n%997 != 0 {
				continue // a long list: its ends and a sample of the middle
			}
			if _, err := DecodeRoomPayload(r.Seq, r.Type, payload[:n]); CodeOf(err) != CodeCorruptRecord {
				t.Fatalf("%s truncated to %d of %d bytes: %v", r.Type, n, len(payload), err)
			}
		}
		if _, err := DecodeRoomPayload(r.Seq, r.Type, append(payload, 0)); CodeOf(err) != CodeCorruptRecord {
			t.Fatalf("%s with a trailing byte: %v", r.Type, err)
		}
	}
	for typ := RoomRecordType(1); typ <= roomRecordTypeMax; typ++ {
		if !seen[typ] {
			t.Fatalf("no sample of %s", typ)
		}
	}
}

func TestRoomRecordDecodeErrors(t *testing.T) {
	at := []byte{0x02}
	for _, tc := range []struct {
		name    string
		typ     RoomRecordType
		payload []byte
	}{
		{"unknown type", 0, at},
		{"type past the last", roomRecordTypeMax + 1, at},
		{"empty", RoomRecordResumed, nil},
		{"non-minimal varint", RoomRecordResumed, []byte{0x82, 0x00}},
		{"sold-out flag 2", RoomRecordSoldOut, append(at, 2)},
		{"visitor count over the bound", RoomRecordClaimed, append(at, 0x81, 0x80, 0x04)},
		{"visitor count past the payload", RoomRecordClaimed, append(at, 5, 1)},
		{"visitor over 2^32-1", RoomRecordClaimed, append(at, 1, 0x80, 0x80, 0x80, 0x80, 0x10)},
		{"string over 1 KiB", RoomRecordJoined, append(at, 0x81, 0x08)},
		{"truncated seed", RoomRecordDrawn, append(at, make([]byte, 31)...)},
		{"config int over 2^31-1", RoomRecordConfigUpdated, append(append(append(at, 0), make([]byte, 8)...), 0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRoomPayload(7, tc.typ, tc.payload)
			wantRoomCode(t, err, CodeCorruptRecord)
		})
	}
	if s := RoomRecordType(99).String(); s != "RoomRecordType(99)" {
		t.Fatalf("unknown type prints %q", s)
	}
}

func FuzzRoomRecordDecode(f *testing.F) {
	for _, r := range roomSampleRecords() {
		if len(r.Visitors) < 100 {
			f.Add(r.Seq, uint8(r.Type), r.AppendPayload(nil))
		}
	}
	f.Add(uint64(3), uint8(0), []byte{0})
	f.Add(uint64(3), uint8(9), []byte{0, 1})
	f.Fuzz(func(t *testing.T, seq uint64, typ uint8, payload []byte) {
		r, err := DecodeRoomPayload(seq, RoomRecordType(typ), payload)
		if r.Seq != seq || r.Type != RoomRecordType(typ) {
			t.Fatalf("decoded seq/type %d/%d from %d/%d", r.Seq, r.Type, seq, typ)
		}
		if err != nil {
			if CodeOf(err) != CodeCorruptRecord {
				t.Fatalf("error %v is not corrupt_record", err)
			}
			return
		}
		if !RoomRecordType(typ).Valid() {
			t.Fatalf("decoded a record of unknown type %d", typ)
		}
		if again := r.AppendPayload(nil); !bytes.Equal(again, payload) {
			t.Fatalf("re-encoded %x, decoded from %x", again, payload)
		}
		if len(r.Visitors) > len(payload) {
			t.Fatalf("%d visitors from %d bytes", len(r.Visitors), len(payload))
		}
	})
}

// roomFuzzBytes hands out the fuzzer's bytes; zeros once they run out.
type roomFuzzBytes struct{ b []byte }

func (f *roomFuzzBytes) next() byte {
	if len(f.b) == 0 {
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

// record builds a record for r from the fuzzer's bytes: the right next
// seq mostly, visitors near the room's, times near its clock, so that many
// records apply and the rest probe Apply's checks.
func (f *roomFuzzBytes) record(r *Room, nowMs int64) RoomRecord {
	rec := RoomRecord{Seq: r.Seq() + 1, Type: RoomRecordType(f.next() % byte(roomRecordTypeMax+2))}
	if f.next() == 255 {
		rec.Seq += uint64(f.next())
	}
	delta := func() int64 { return int64(int8(f.next())) * 1000 }
	rec.AtUnixMilli = nowMs + delta()
	nv := max(r.vs.len(), 1)
	for range f.next() % 4 {
		rec.Visitors = append(rec.Visitors, uint32(int(f.next())%(nv+1)))
	}
	switch rec.Type {
	case RoomRecordConfigUpdated:
		rec.Config = r.Config()
		rec.Config.MaxActive = int(f.next() % 4)
		rec.Config.OnSaleAt = rec.Config.OnSaleAt.Add(time.Duration(delta()) * time.Millisecond)
		if f.next() == 1 {
			rec.Config.ClaimSeconds = 0 // not resolved
		}
	case RoomRecordJoined:
		rec.Ticket = fmt.Sprint("f", f.next()%16)
		rec.CustomerID = fmt.Sprint("fc", f.next()%8)
	case RoomRecordDrawn:
		rec.Seed[0] = f.next()
		rec.Count = uint32(f.next() % 8)
	case RoomRecordAdmitted:
		rec.ClaimByUnixMilli = rec.AtUnixMilli + delta()
		rec.ExpiresAtUnixMilli = rec.ClaimByUnixMilli + delta()
		rec.SeatBudget = uint32(f.next() % 6)
	case RoomRecordLeft, RoomRecordAdmissionEnded:
		rec.Reason = RoomReason(f.next() % 7)
		rec.Count = uint32(f.next() % 3)
	case RoomRecordSoldOut:
		rec.SoldOut = f.next()%2 == 0
	}
	return rec
}

// FuzzRoomApply applies records built from random bytes to a room: Apply
// never panics, a refused record changes nothing, an accepted one keeps
// every invariant, and the journal of accepted records replays — and
// snapshots and restores — to the same bytes.
func FuzzRoomApply(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 0, 0, 0, 1, 2, 3, 0, 0, 0, 4, 0, 0, 4, 1, 0, 0, 0, 5, 0, 0, 1, 0, 10, 10, 2})
	f.Add(bytes.Repeat([]byte{3, 0, 5, 0, 7, 1, 5, 0, 3, 1, 2, 3, 10, 20, 3}, 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newRoomHarness(t, roomCfg())
		h.mustJoin(-2, "a", "ta")
		h.mustJoin(-1, "b", "tb")
		fb := &roomFuzzBytes{b: data}
		nowMs := roomT0.UnixMilli()
		for i := 0; len(fb.b) > 0 && i < 200; i++ {
			rec := fb.record(h.r, nowMs)
			before := h.r.MarshalSnapshot()
			if err := h.r.Apply(rec); err != nil {
				if CodeOf(err) != CodeCorruptRecord {
					t.Fatalf("error %v is not corrupt_record", err)
				}
				if !bytes.Equal(h.r.MarshalSnapshot(), before) {
					t.Fatalf("refused %s changed the room", rec.Type)
				}
				continue
			}
			h.recs = append(h.recs, rec)
			nowMs = max(nowMs, rec.AtUnixMilli)
			if err := checkRoomInvariants(h.r); err != nil {
				t.Fatalf("after %+v: %v", rec, err)
			}
			// The commands still work on whatever state the records made.
			if i%5 == 0 {
				recs := h.r.Tick(roomTime(nowMs), RoomInventory{Available: int(fb.next())})
				h.absorb("tick", recs, nil)
			}
		}
		h.checkReplay()
	})
}

// FuzzRestoreRoom: restoring any bytes never panics; a snapshot it accepts
// is exactly what MarshalSnapshot writes for the room it gives, whose
// invariants hold.
func FuzzRestoreRoom(f *testing.F) {
	recs := roomRunRecords(f)
	for i := 2; i <= len(recs); i += 3 {
		f.Add(roomReplay(f, recs[:i]).MarshalSnapshot())
	}
	f.Add([]byte{roomSnapshotVersion})
	f.Fuzz(func(t *testing.T, snap []byte) {
		r, err := RestoreRoom(recs[0], snap)
		if err != nil {
			if CodeOf(err) != CodeCorruptRecord {
				t.Fatalf("error %v is not corrupt_record", err)
			}
			return
		}
		if err := checkRoomInvariants(r); err != nil {
			t.Fatal(err)
		}
		if again := r.MarshalSnapshot(); !bytes.Equal(again, snap) {
			t.Fatalf("restored to other bytes")
		}
		r.Tick(roomTime(r.creditAt), RoomInventory{Available: 5})
		if err := checkRoomInvariants(r); err != nil {
			t.Fatalf("after a tick: %v", err)
		}
	})
}
