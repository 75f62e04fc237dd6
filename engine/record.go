package engine

import (
	"encoding/binary"
	"fmt"
)

// RecordType identifies a journal record. The numeric values are part of the
// on-disk format (pinned by persistence's golden file): never renumber.
type RecordType uint8

// Journal record types. Every state change of an event is one of these.
const (
	RecordEventCreated   RecordType = 1 // Definition: the event as created (JSON EventDefinition)
	RecordSeatsHeld      RecordType = 2 // a reservation holds Seats until ExpiresAtUnixMilli
	RecordHoldReleased   RecordType = 3 // a held or paying reservation released for Reason
	RecordPaymentStarted RecordType = 4 // reservation → paying; expiry frozen to ExpiresAtUnixMilli (grace deadline)
	RecordSeatsBooked    RecordType = 5 // paying reservation → booked as BookingID
	RecordPaymentFailed  RecordType = 6 // paying reservation → back to held until its original expiry
	RecordSeatsBlocked   RecordType = 7 // operator withholds Seats
	RecordSeatsUnblocked RecordType = 8 // operator returns Seats to sale
	RecordEventUpdated   RecordType = 9 // operator changes the event; Definition: the JSON EventPatch
	// Payment settlement (the outbox of payments.go): an attempt whose
	// reservation can no longer be paid for is voided or refunded at the
	// provider, and the outcome journaled.
	RecordPaymentVoided   RecordType = 10 // attempt Attempt's authorisation was voided at the provider; no money moved
	RecordRefundRequested RecordType = 11 // attempt Attempt took money that must go back (a late success, or an operator's refund of its booking)
	RecordPaymentRefunded RecordType = 12 // attempt Attempt was refunded (PaymentRef: the refund); a booking it paid for is cancelled and its seats return to sale
	// RecordRoom carries one record of the event's waiting room
	// (event_room.go) in Definition: byte RoomRecordType, uvarint room seq,
	// then the RoomRecord's payload.
	RecordRoom    RecordType = 13
	recordTypeMax            = RecordRoom
)

var recordTypeNames = [...]string{
	RecordEventCreated:    "EventCreated",
	RecordSeatsHeld:       "SeatsHeld",
	RecordHoldReleased:    "HoldReleased",
	RecordPaymentStarted:  "PaymentStarted",
	RecordSeatsBooked:     "SeatsBooked",
	RecordPaymentFailed:   "PaymentFailed",
	RecordSeatsBlocked:    "SeatsBlocked",
	RecordSeatsUnblocked:  "SeatsUnblocked",
	RecordEventUpdated:    "EventUpdated",
	RecordPaymentVoided:   "PaymentVoided",
	RecordRefundRequested: "RefundRequested",
	RecordPaymentRefunded: "PaymentRefunded",
	RecordRoom:            "Room",
}

func (t RecordType) String() string {
	if t >= 1 && t <= recordTypeMax {
		return recordTypeNames[t]
	}
	return fmt.Sprintf("RecordType(%d)", uint8(t))
}

// Valid reports whether t is a known record type.
func (t RecordType) Valid() bool { return t >= 1 && t <= recordTypeMax }

// ReleaseReason says why a reservation was released.
type ReleaseReason uint8

// Release reasons; numeric values are on disk.
const (
	ReasonNone          ReleaseReason = 0
	ReasonExpired       ReleaseReason = 1
	ReasonCancelled     ReleaseReason = 2
	ReasonPaymentFailed ReleaseReason = 3
	ReasonRefunded      ReleaseReason = 4 // a booking refunded by an operator
	reasonMax                         = ReasonRefunded
)

func (r ReleaseReason) String() string {
	switch r {
	case ReasonExpired:
		return "expired"
	case ReasonCancelled:
		return "cancelled"
	case ReasonPaymentFailed:
		return "payment_failed"
	case ReasonRefunded:
		return "refunded"
	}
	return ""
}

// Record is one journal record: the output of an accepted engine command and
// the only input of Apply. Fields not used by a Type are zero.
//
// Seats are indexes into the event's plan (Plan.Seats), stable for the life
// of the event. Times are Unix milliseconds (UTC).
type Record struct {
	Seq                uint64 // position in the event's journal, contiguous from 1
	Type               RecordType
	AtUnixMilli        int64 // when the decision was made
	ReservationID      string
	CustomerID         string
	Seats              []int32
	ExpiresAtUnixMilli int64 // SeatsHeld: hold expiry; PaymentStarted: end of the payment grace period
	Reason             ReleaseReason
	BookingID          string
	Attempt            uint32 // payment attempt number, from 1
	Definition         []byte // EventCreated: the JSON EventDefinition, without its seating plan; EventUpdated: the JSON EventPatch
	Plan               []byte // EventCreated only: the venue plan in Plan.AppendBinary encoding
	// SeatsHeld: since when the customer has held these seats, when the
	// hold replaces earlier ones of theirs (their earliest hold start); 0
	// means AtUnixMilli. The hold lifetime cap (maxHoldSeconds) counts from it.
	HoldStartUnixMilli int64
	// PaymentStarted: the payment token the attempt charges (a test token
	// or a provider's payment-method id), kept so that the charge can be
	// sent again after a crash.
	PaymentToken string
	// SeatsBooked, PaymentFailed, RefundRequested: the provider's id of the
	// charge ("pi_..."); PaymentRefunded: the provider's id of the refund.
	PaymentRef string
	// SeatsBooked, PaymentFailed, RefundRequested: the provider's event id
	// of the webhook that told us ("evt_..."), empty when the answer came
	// from a call. A webhook whose id an attempt already recorded changes
	// nothing.
	ProviderEventID string
}

// Bounds checked by DecodePayload, so that a corrupt length can never make the
// decoder allocate without limit.
const (
	recordStringBytesMax     = 1 << 10
	recordSeatsMax           = 1 << 16
	recordDefinitionBytesMax = 64 << 20
)

// AppendPayload appends the binary payload of r (everything but Seq and Type,
// which the journal frames itself) to dst and returns the extended slice.
//
// Layout, in order: varint AtUnixMilli, string ReservationID, string
// CustomerID, uvarint len(Seats) then uvarint each seat, varint
// ExpiresAtUnixMilli, byte Reason, string BookingID, uvarint Attempt, bytes
// Definition, bytes Plan, then the optional tail: varint
// HoldStartUnixMilli, string PaymentToken, string PaymentRef, string
// ProviderEventID. The tail is written only as far as its last non-zero
// field (so records written before a field existed decode unchanged, and
// every accepted payload is exactly what AppendPayload writes). A string or
// bytes field is a uvarint length then the bytes.
func (r *Record) AppendPayload(dst []byte) []byte {
	dst = binary.AppendVarint(dst, r.AtUnixMilli)
	dst = appendString(dst, r.ReservationID)
	dst = appendString(dst, r.CustomerID)
	dst = binary.AppendUvarint(dst, uint64(len(r.Seats)))
	for _, s := range r.Seats {
		dst = binary.AppendUvarint(dst, uint64(uint32(s)))
	}
	dst = binary.AppendVarint(dst, r.ExpiresAtUnixMilli)
	dst = append(dst, byte(r.Reason))
	dst = appendString(dst, r.BookingID)
	dst = binary.AppendUvarint(dst, uint64(r.Attempt))
	dst = binary.AppendUvarint(dst, uint64(len(r.Definition)))
	dst = append(dst, r.Definition...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Plan)))
	dst = append(dst, r.Plan...)
	tail := 0
	switch {
	case r.ProviderEventID != "":
		tail = 4
	case r.PaymentRef != "":
		tail = 3
	case r.PaymentToken != "":
		tail = 2
	case r.HoldStartUnixMilli != 0:
		tail = 1
	}
	if tail >= 1 {
		dst = binary.AppendVarint(dst, r.HoldStartUnixMilli)
	}
	if tail >= 2 {
		dst = appendString(dst, r.PaymentToken)
	}
	if tail >= 3 {
		dst = appendString(dst, r.PaymentRef)
	}
	if tail >= 4 {
		dst = appendString(dst, r.ProviderEventID)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodePayload decodes a payload written by AppendPayload into a Record with
// the given seq and type. It returns an *Error with CodeCorruptRecord for an
// unknown type, a truncated or over-long payload, or a field past its bound;
// it never panics on any input.
func DecodePayload(seq uint64, typ RecordType, payload []byte) (Record, error) {
	r := Record{Seq: seq, Type: typ}
	if !typ.Valid() {
		return r, Errorf(CodeCorruptRecord, "unknown record type %d", uint8(typ))
	}
	d := decoder{b: payload}
	r.AtUnixMilli = d.varint()
	r.ReservationID = d.str()
	r.CustomerID = d.str()
	n := d.uvarint()
	if n > recordSeatsMax || n > uint64(len(d.b)) {
		return r, Errorf(CodeCorruptRecord, "seat count %d out of bounds", n)
	}
	if n > 0 {
		r.Seats = make([]int32, n)
		for i := range r.Seats {
			v := d.uvarint()
			if v > 1<<31-1 {
				d.fail("seat index out of bounds")
			}
			r.Seats[i] = int32(v)
		}
	}
	r.ExpiresAtUnixMilli = d.varint()
	r.Reason = ReleaseReason(d.byte())
	r.BookingID = d.str()
	att := d.uvarint()
	if att > 1<<32-1 {
		d.fail("attempt out of bounds")
	}
	r.Attempt = uint32(att)
	r.Definition = d.bytes()
	r.Plan = d.bytes()
	// The optional tail, written only as far as its last non-zero field:
	// a tail that ends in a zero field is not what AppendPayload writes.
	tail := 0
	var last bool // the last field read is non-zero
	if d.err == "" && len(d.b) != 0 {
		r.HoldStartUnixMilli = d.varint()
		tail, last = 1, r.HoldStartUnixMilli != 0
	}
	for _, f := range []*string{&r.PaymentToken, &r.PaymentRef, &r.ProviderEventID} {
		if d.err == "" && len(d.b) != 0 {
			*f = d.str()
			tail, last = tail+1, *f != ""
		}
	}
	if d.err == "" && tail > 0 && !last {
		d.fail("trailing bytes: the optional tail ends in a zero field")
	}
	if d.err == "" && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != "" {
		return r, Errorf(CodeCorruptRecord, "record %d (%s): %s", seq, typ, d.err)
	}
	return r, nil
}

// decoder reads varint fields; the first failure sticks and later reads
// return zero values.
type decoder struct {
	b   []byte
	err string
}

func (d *decoder) fail(msg string) {
	if d.err == "" {
		d.err = msg
	}
	d.b = nil
}

// The varint readers accept only the minimal encoding (a multi-byte varint
// never ends in a zero byte), so that every accepted payload or snapshot is
// exactly what the encoder writes for the decoded value.

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated uvarint")
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		d.fail("non-minimal uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated varint")
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		d.fail("non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("truncated byte")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > recordDefinitionBytesMax || n > uint64(len(d.b)) {
		d.fail("bytes length out of bounds")
		return nil
	}
	if n == 0 {
		return nil
	}
	out := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return out
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > recordStringBytesMax || n > uint64(len(d.b)) {
		d.fail("string length out of bounds")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
