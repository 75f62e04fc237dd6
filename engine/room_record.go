package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// RoomRecordType identifies a waiting-room journal record. A room has its
// own journal (its actor is not the event actor), framed like the event's:
// the journal frames Seq and Type and stores AppendPayload's bytes. The
// numeric values are on disk: never renumber.
type RoomRecordType uint8

// Waiting-room journal record types. Every state change of a room is one of
// these; visitors are named by their visitor number (0-based join order,
// the count of RoomRecordJoined records before theirs).
const (
	RoomRecordCreated        RoomRecordType = 1  // EventID, Config: the room as created (always seq 1)
	RoomRecordConfigUpdated  RoomRecordType = 2  // Config: an operator's change, the whole resolved config
	RoomRecordJoined         RoomRecordType = 3  // Ticket, CustomerID: a visitor takes a place
	RoomRecordDrawn          RoomRecordType = 4  // Seed, Count: the pre-queue is shuffled (the draw)
	RoomRecordAdmitted       RoomRecordType = 5  // Visitors (the next waiting, in queue order), ClaimBy, ExpiresAt, SeatBudget
	RoomRecordClaimed        RoomRecordType = 6  // Visitors (one): the admission's first successful hold
	RoomRecordLeft           RoomRecordType = 7  // Visitors, Reason left (DELETE) or abandoned (missed polls)
	RoomRecordAdmissionEnded RoomRecordType = 8  // Visitors, Reason done (Count: seats booked), lapsed or expired
	RoomRecordSoldOut        RoomRecordType = 9  // SoldOut: the event became sold out (true) or got seats back (false)
	RoomRecordResumed        RoomRecordType = 10 // the room restarted after a stop: unclaimed admissions get a fresh claim window
	roomRecordTypeMax                       = RoomRecordResumed
)

var roomRecordTypeNames = [...]string{
	RoomRecordCreated:        "RoomCreated",
	RoomRecordConfigUpdated:  "RoomConfigUpdated",
	RoomRecordJoined:         "RoomJoined",
	RoomRecordDrawn:          "RoomDrawn",
	RoomRecordAdmitted:       "RoomAdmitted",
	RoomRecordClaimed:        "RoomClaimed",
	RoomRecordLeft:           "RoomLeft",
	RoomRecordAdmissionEnded: "RoomAdmissionEnded",
	RoomRecordSoldOut:        "RoomSoldOut",
	RoomRecordResumed:        "RoomResumed",
}

// String is the type's name ("RoomAdmitted"), or RoomRecordType(n) for an
// unknown one.
func (t RoomRecordType) String() string {
	if t.Valid() {
		return roomRecordTypeNames[t]
	}
	return fmt.Sprintf("RoomRecordType(%d)", uint8(t))
}

// Valid reports whether t is a known room record type.
func (t RoomRecordType) Valid() bool { return t >= 1 && t <= roomRecordTypeMax }

// RoomReason says why a visitor left the queue or why an admission ended.
// Numeric values are on disk (records and snapshots).
type RoomReason uint8

// Room reasons: RoomRecordLeft carries left or abandoned,
// RoomRecordAdmissionEnded done, lapsed or expired.
const (
	RoomReasonNone      RoomReason = 0
	RoomReasonLeft      RoomReason = 1 // the visitor deleted the ticket
	RoomReasonAbandoned RoomReason = 2 // the visitor missed RoomMissedPollsMax suggested polls
	RoomReasonDone      RoomReason = 3 // the admitted buyer finished (Done)
	RoomReasonLapsed    RoomReason = 4 // the admission was not claimed within claimSeconds
	RoomReasonExpired   RoomReason = 5 // the admission passed admissionTtlSeconds
	roomReasonMax                  = RoomReasonExpired
)

// String is the reason as API.md and logs spell it ("abandoned"), or ""
// for RoomReasonNone and unknown values.
func (r RoomReason) String() string {
	switch r {
	case RoomReasonLeft:
		return "left"
	case RoomReasonAbandoned:
		return "abandoned"
	case RoomReasonDone:
		return "done"
	case RoomReasonLapsed:
		return "lapsed"
	case RoomReasonExpired:
		return "expired"
	}
	return ""
}

// RoomRecord is one waiting-room journal record: the output of an accepted
// Room command and the only input of Room.Apply. Fields not used by a Type
// are zero. Times are Unix milliseconds (UTC).
type RoomRecord struct {
	Seq         uint64 // position in the room's journal, contiguous from 1
	Type        RoomRecordType
	AtUnixMilli int64      // when the decision was made
	EventID     string     // RoomRecordCreated: the event the room meters
	Config      RoomConfig // RoomRecordCreated, RoomRecordConfigUpdated: resolved (no zero defaults), OnSaleAt in whole ms, UTC
	Ticket      string     // RoomRecordJoined: the ticket id the caller chose
	CustomerID  string     // RoomRecordJoined
	// RoomRecordAdmitted, RoomRecordClaimed, RoomRecordLeft,
	// RoomRecordAdmissionEnded: visitor numbers, at most
	// RoomRecordVisitorsMax.
	Visitors []uint32
	Seed     [32]byte   // RoomRecordDrawn: the ChaCha8 seed of the draw (see Room.Draw)
	Count    uint32     // RoomRecordDrawn: visitors shuffled; RoomRecordAdmissionEnded with RoomReasonDone: seats the buyer booked
	Reason   RoomReason // RoomRecordLeft, RoomRecordAdmissionEnded
	// RoomRecordAdmitted: the claim deadline (unclaimed past it, the
	// admission lapses), the admission's expiry (the token's) and the seat
	// budget the token carries.
	ClaimByUnixMilli   int64
	ExpiresAtUnixMilli int64
	SeatBudget         uint32
	SoldOut            bool // RoomRecordSoldOut
}

// RoomRecordVisitorsMax bounds the visitors of one record; a command that
// affects more (a large admission tick, a mass abandonment) writes several
// records.
const RoomRecordVisitorsMax = 1 << 16

// roomConfigIntMax bounds the integer fields of a journaled RoomConfig so
// that a corrupt value never overflows an int on 32-bit platforms.
const roomConfigIntMax = 1<<31 - 1

// AppendPayload appends the binary payload of r (everything but Seq and
// Type, which the journal frames itself) to dst and returns the extended
// slice. The layout depends on the type; every payload starts with varint
// AtUnixMilli:
//
//	Created:        string EventID, config
//	ConfigUpdated:  config
//	Joined:         string Ticket, string CustomerID
//	Drawn:          32 bytes Seed, uvarint Count
//	Admitted:       visitors, varint ClaimByUnixMilli, varint ExpiresAtUnixMilli, uvarint SeatBudget
//	Claimed:        visitors
//	Left:           visitors, byte Reason
//	AdmissionEnded: visitors, byte Reason, uvarint Count
//	SoldOut:        byte 0 or 1
//	Resumed:        nothing more
//
// where a string is a uvarint length then the bytes, visitors is a uvarint
// count then a uvarint per visitor, and config is varint OnSaleAt (Unix
// ms), 8 bytes little-endian IEEE 754 AdmitPerSecond, then uvarint
// MaxActive, ClaimSeconds, AdmissionTTLSeconds, MaxSeatsPerCustomer. An
// unknown type appends only AtUnixMilli.
func (r *RoomRecord) AppendPayload(dst []byte) []byte {
	dst = binary.AppendVarint(dst, r.AtUnixMilli)
	switch r.Type {
	case RoomRecordCreated:
		dst = appendString(dst, r.EventID)
		dst = appendRoomConfig(dst, &r.Config)
	case RoomRecordConfigUpdated:
		dst = appendRoomConfig(dst, &r.Config)
	case RoomRecordJoined:
		dst = appendString(dst, r.Ticket)
		dst = appendString(dst, r.CustomerID)
	case RoomRecordDrawn:
		dst = append(dst, r.Seed[:]...)
		dst = binary.AppendUvarint(dst, uint64(r.Count))
	case RoomRecordAdmitted:
		dst = appendRoomVisitors(dst, r.Visitors)
		dst = binary.AppendVarint(dst, r.ClaimByUnixMilli)
		dst = binary.AppendVarint(dst, r.ExpiresAtUnixMilli)
		dst = binary.AppendUvarint(dst, uint64(r.SeatBudget))
	case RoomRecordClaimed:
		dst = appendRoomVisitors(dst, r.Visitors)
	case RoomRecordLeft:
		dst = appendRoomVisitors(dst, r.Visitors)
		dst = append(dst, byte(r.Reason))
	case RoomRecordAdmissionEnded:
		dst = appendRoomVisitors(dst, r.Visitors)
		dst = append(dst, byte(r.Reason))
		dst = binary.AppendUvarint(dst, uint64(r.Count))
	case RoomRecordSoldOut:
		b := byte(0)
		if r.SoldOut {
			b = 1
		}
		dst = append(dst, b)
	}
	return dst
}

func appendRoomVisitors(dst []byte, vs []uint32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(vs)))
	for _, v := range vs {
		dst = binary.AppendUvarint(dst, uint64(v))
	}
	return dst
}

func appendRoomConfig(dst []byte, c *RoomConfig) []byte {
	dst = binary.AppendVarint(dst, c.OnSaleAt.UnixMilli())
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.AdmitPerSecond))
	for _, v := range []int{c.MaxActive, c.ClaimSeconds, c.AdmissionTTLSeconds, c.MaxSeatsPerCustomer} {
		dst = binary.AppendUvarint(dst, uint64(v))
	}
	return dst
}

// DecodeRoomPayload decodes a payload written by AppendPayload into a
// RoomRecord with the given seq and type. It returns an *Error with code
// corrupt_record for an unknown type, a truncated or over-long payload, a
// non-minimal varint, or a field past its bound (strings over 1 KiB, more
// than RoomRecordVisitorsMax visitors, a visitor number or count over
// 2³²−1, a config integer over 2³¹−1, a sold-out byte other than 0 or 1);
// every payload it accepts is exactly what AppendPayload writes for the
// result. It never panics and never allocates more than the payload's size
// allows.
func DecodeRoomPayload(seq uint64, typ RoomRecordType, payload []byte) (RoomRecord, error) {
	r := RoomRecord{Seq: seq, Type: typ}
	if !typ.Valid() {
		return r, Errorf(CodeCorruptRecord, "unknown room record type %d", uint8(typ))
	}
	d := decoder{b: payload}
	r.AtUnixMilli = d.varint()
	switch typ {
	case RoomRecordCreated:
		r.EventID = d.str()
		r.Config = d.roomConfig()
	case RoomRecordConfigUpdated:
		r.Config = d.roomConfig()
	case RoomRecordJoined:
		r.Ticket = d.str()
		r.CustomerID = d.str()
	case RoomRecordDrawn:
		if len(d.b) < len(r.Seed) {
			d.fail("truncated seed")
		} else {
			copy(r.Seed[:], d.b)
			d.b = d.b[len(r.Seed):]
		}
		r.Count = d.roomUint32()
	case RoomRecordAdmitted:
		r.Visitors = d.roomVisitors()
		r.ClaimByUnixMilli = d.varint()
		r.ExpiresAtUnixMilli = d.varint()
		r.SeatBudget = d.roomUint32()
	case RoomRecordClaimed:
		r.Visitors = d.roomVisitors()
	case RoomRecordLeft:
		r.Visitors = d.roomVisitors()
		r.Reason = RoomReason(d.byte())
	case RoomRecordAdmissionEnded:
		r.Visitors = d.roomVisitors()
		r.Reason = RoomReason(d.byte())
		r.Count = d.roomUint32()
	case RoomRecordSoldOut:
		switch d.byte() {
		case 0:
		case 1:
			r.SoldOut = true
		default:
			d.fail("sold-out flag is not 0 or 1")
		}
	}
	if d.err == "" && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != "" {
		return r, Errorf(CodeCorruptRecord, "room record %d (%s): %s", seq, typ, d.err)
	}
	return r, nil
}

func (d *decoder) roomUint32() uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.fail("value over 2^32-1")
		return 0
	}
	return uint32(v)
}

func (d *decoder) roomVisitors() []uint32 {
	n := d.uvarint()
	if n > RoomRecordVisitorsMax || n > uint64(len(d.b)) {
		d.fail("visitor count out of bounds")
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = d.roomUint32()
	}
	return out
}

func (d *decoder) roomConfig() RoomConfig {
	var c RoomConfig
	c.OnSaleAt = time.UnixMilli(d.varint()).UTC()
	if len(d.b) < 8 {
		d.fail("truncated admitPerSecond")
		return c
	}
	c.AdmitPerSecond = math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	for _, f := range []*int{&c.MaxActive, &c.ClaimSeconds, &c.AdmissionTTLSeconds, &c.MaxSeatsPerCustomer} {
		v := d.uvarint()
		if v > roomConfigIntMax {
			d.fail("config value out of bounds")
			return c
		}
		*f = int(v)
	}
	return c
}
