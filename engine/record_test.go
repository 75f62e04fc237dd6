package engine

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
)

// sampleRecords has one record of every type, with fields at their bounds.
func sampleRecords() []Record {
	def := []byte(`{"id":"ev-1","name":"x"}`)
	return []Record{
		{Seq: 1, Type: RecordEventCreated, AtUnixMilli: 1_764_000_000_000, Definition: def},
		{Seq: 2, Type: RecordSeatsHeld, AtUnixMilli: 1_764_000_000_001, ReservationID: "r-1", CustomerID: "auth0|user 1 ü",
			Seats: []int32{0, 1, 48567, math.MaxInt32}, ExpiresAtUnixMilli: 1_764_000_060_001},
		{Seq: 3, Type: RecordHoldReleased, AtUnixMilli: -1, ReservationID: "r-1", CustomerID: "u", Seats: []int32{5}, Reason: ReasonExpired},
		{Seq: 4, Type: RecordHoldReleased, AtUnixMilli: 0, ReservationID: "r", CustomerID: "u", Seats: []int32{5}, Reason: ReasonCancelled},
		{Seq: 5, Type: RecordHoldReleased, AtUnixMilli: math.MaxInt64, ReservationID: "r", CustomerID: "u", Seats: []int32{5}, Reason: ReasonPaymentFailed},
		{Seq: 6, Type: RecordPaymentStarted, AtUnixMilli: math.MinInt64, ReservationID: "r", CustomerID: "u", Attempt: 1, ExpiresAtUnixMilli: math.MaxInt64},
		{Seq: 7, Type: RecordSeatsBooked, AtUnixMilli: 7, ReservationID: strings.Repeat("r", recordStringBytesMax),
			CustomerID: "u", Seats: []int32{1, 2}, Attempt: math.MaxUint32, BookingID: "bk-1"},
		{Seq: 8, Type: RecordPaymentFailed, AtUnixMilli: 8, ReservationID: "r", CustomerID: "u", Attempt: 2},
		{Seq: 9, Type: RecordSeatsBlocked, AtUnixMilli: 9, Seats: []int32{3, 4, 5}},
		{Seq: 10, Type: RecordSeatsUnblocked, AtUnixMilli: 10, Seats: []int32{4}},
		{Seq: 11, Type: RecordSeatsHeld, AtUnixMilli: 11, ReservationID: "r-2", CustomerID: "u", Seats: []int32{7},
			ExpiresAtUnixMilli: 71, HoldStartUnixMilli: math.MinInt64},
		{Seq: 12, Type: RecordSeatsHeld, AtUnixMilli: 12, ReservationID: "r-3", CustomerID: "u", Seats: []int32{8},
			ExpiresAtUnixMilli: 72, HoldStartUnixMilli: 1},
		{Seq: 13, Type: RecordEventUpdated, AtUnixMilli: 13, Definition: []byte(`{"status":"cancelled"}`)},
		{Seq: 14, Type: RecordPaymentStarted, AtUnixMilli: 14, ReservationID: "r", CustomerID: "u", Attempt: 1,
			ExpiresAtUnixMilli: 600_014, PaymentToken: "tok_visa"},
		{Seq: 15, Type: RecordSeatsBooked, AtUnixMilli: 15, ReservationID: "r", CustomerID: "u", Seats: []int32{1},
			Attempt: 1, BookingID: "b", PaymentRef: "pi_1", ProviderEventID: "evt_1"},
		{Seq: 16, Type: RecordPaymentFailed, AtUnixMilli: 16, ReservationID: "r", CustomerID: "u", Attempt: 1, PaymentRef: "pi_1"},
		{Seq: 17, Type: RecordPaymentVoided, AtUnixMilli: 17, ReservationID: "r", CustomerID: "u", Attempt: 1},
		{Seq: 18, Type: RecordRefundRequested, AtUnixMilli: 18, ReservationID: "r", CustomerID: "u", Attempt: 1,
			ProviderEventID: strings.Repeat("e", recordStringBytesMax)},
		{Seq: 20, Type: RecordRoom, AtUnixMilli: 20, Definition: []byte{byte(RoomRecordResumed), 3}},
		{Seq: math.MaxUint64, Type: RecordPaymentRefunded, AtUnixMilli: 19, ReservationID: "r", CustomerID: "u", Seats: []int32{1},
			Attempt: 1, PaymentRef: "re_1", HoldStartUnixMilli: 3},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	recs := sampleRecords()
	// And every record of a real run.
	h := newSmall(t)
	h.mustHold(at(0), "u1", "r1", "A-1", "B-2")
	h.mustBook(at(1), "u2", "r2", "A-2")
	h.mustHold(at(2), "u3", "r3", "A-3")
	_, a, _ := h.pay(at(3), "u3", "r3")
	h.fail(at(4), "r3", a)
	h.cancel(at(5), "u3", "r3")
	h.block(at(6), "B-9", "B-10")
	h.unblock(at(7), "B-10")
	h.mustHold(at(8), "u1", "r4", "A-1", "B-2", "B-3") // replaces r1, keeps its hold start
	h.update(at(9), EventPatch{OrphanSeats: ptr(OrphanPrevent)})
	h.tick(at(100))
	recs = append(recs, h.recs...)
	seen := make(map[RecordType]bool)
	for _, r := range recs {
		seen[r.Type] = true
		payload := r.AppendPayload(nil)
		got, err := DecodePayload(r.Seq, r.Type, payload)
		if err != nil {
			t.Fatalf("%s: %v", r.Type, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("%s round trip:\ngot  %+v\nwant %+v", r.Type, got, r)
		}
		if again := got.AppendPayload([]byte("prefix")); !bytes.Equal(again[6:], payload) || string(again[:6]) != "prefix" {
			t.Fatalf("%s: re-encoding differs", r.Type)
		}
		// Every truncation fails cleanly, and so does a trailing byte —
		// but for those that end the optional tail after a non-zero field,
		// which read as the record without the fields cut off (the journal
		// frame's checksum covers the whole payload).
		shorter := map[int]Record{}
		cut := r
		for _, zero := range []func(*Record){
			func(c *Record) { c.ProviderEventID = "" },
			func(c *Record) { c.PaymentRef = "" },
			func(c *Record) { c.PaymentToken = "" },
			func(c *Record) { c.HoldStartUnixMilli = 0 },
		} {
			zero(&cut)
			shorter[len(cut.AppendPayload(nil))] = cut
		}
		for n := range len(payload) {
			if want, ok := shorter[n]; ok {
				if got, err := DecodePayload(r.Seq, r.Type, payload[:n]); err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("%s cut to %d bytes: %+v, %v; want %+v", r.Type, n, got, err, want)
				}
				continue
			}
			if _, err := DecodePayload(r.Seq, r.Type, payload[:n]); CodeOf(err) != CodeCorruptRecord {
				t.Fatalf("%s truncated to %d of %d bytes: %v", r.Type, n, len(payload), err)
			}
		}
		if _, err := DecodePayload(r.Seq, r.Type, append(payload, 0)); CodeOf(err) != CodeCorruptRecord {
			t.Fatalf("%s with a trailing byte: %v", r.Type, err)
		}
	}
	for typ := RecordType(1); typ.Valid(); typ++ {
		if !seen[typ] {
			t.Errorf("no round trip of %s", typ)
		}
	}
}

func TestDecodePayloadErrors(t *testing.T) {
	valid := (&Record{AtUnixMilli: 1, ReservationID: "r", CustomerID: "u", Seats: []int32{1}}).AppendPayload(nil)
	var b []byte
	for _, tc := range []struct {
		name    string
		typ     RecordType
		payload []byte
	}{
		{"type-0", 0, valid},
		{"type-14", 14, valid},
		{"type-255", 255, valid},
		{"empty", RecordSeatsHeld, nil},
		{"string-too-long", RecordSeatsHeld, func() []byte {
			b = binary.AppendVarint(nil, 1)
			b = binary.AppendUvarint(b, recordStringBytesMax+1)
			return append(b, strings.Repeat("x", recordStringBytesMax+1)...)
		}()},
		{"string-past-end", RecordSeatsHeld, func() []byte {
			b = binary.AppendVarint(nil, 1)
			return binary.AppendUvarint(b, 10)
		}()},
		{"seat-count-huge", RecordSeatsHeld, func() []byte {
			b = binary.AppendVarint(nil, 1)
			b = append(b, 0, 0)
			return binary.AppendUvarint(b, 1<<40)
		}()},
		{"seat-index-over-int32", RecordSeatsHeld, func() []byte {
			r := Record{Seats: []int32{1}}
			b = r.AppendPayload(nil)
			// Replace the one seat (byte 4: after at, two empty strings, count).
			out := append([]byte(nil), b[:4]...)
			out = binary.AppendUvarint(out, 1<<31)
			return append(out, b[5:]...)
		}()},
		{"attempt-over-uint32", RecordPaymentStarted, func() []byte {
			r := Record{}
			b = r.AppendPayload(nil)
			// at, "", "", 0 seats, expires, reason, "" = 7 bytes, then attempt.
			out := append([]byte(nil), b[:7]...)
			out = binary.AppendUvarint(out, 1<<32)
			return append(out, b[8:]...)
		}()},
		{"definition-past-end", RecordEventCreated, func() []byte {
			r := Record{}
			b = r.AppendPayload(nil)
			out := append([]byte(nil), b[:8]...)
			return binary.AppendUvarint(out, 5)
		}()},
		{"varint-overflow", RecordSeatsHeld, bytes.Repeat([]byte{0xff}, 11)},
		{"non-minimal-varint", RecordSeatsHeld, append([]byte{0x82, 0x00}, valid[1:]...)},
		{"non-minimal-uvarint", RecordSeatsHeld, append([]byte{valid[0], 0x81, 0x00, 'r'}, valid[3:]...)},
		// The optional hold start is written only when not zero.
		{"hold-start-zero", RecordSeatsHeld, append(bytes.Clone(valid), 0)},
		{"hold-start-truncated", RecordSeatsHeld, append(bytes.Clone(valid), 0x80)},
		{"after-hold-start", RecordSeatsHeld, append(bytes.Clone(valid), 2, 0)},
		{"tail-ends-in-empty-ref", RecordSeatsHeld, append(bytes.Clone(valid), 0, 1, 't', 0)},
		{"after-tail", RecordSeatsHeld, append(bytes.Clone(valid), 0, 0, 0, 1, 'e', 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodePayload(42, tc.typ, tc.payload)
			if CodeOf(err) != CodeCorruptRecord {
				t.Fatalf("got %+v, %v; want corrupt_record", r, err)
			}
			if r.Seq != 42 || r.Type != tc.typ {
				t.Fatalf("error result lost seq/type: %+v", r)
			}
		})
	}
}

// FuzzDecodePayload: DecodePayload never panics, errors are corrupt_record,
// and whatever decodes re-encodes to exactly the same bytes.
func FuzzDecodePayload(f *testing.F) {
	for _, r := range sampleRecords() {
		f.Add(r.Seq, uint8(r.Type), r.AppendPayload(nil))
	}
	f.Add(uint64(3), uint8(2), []byte{})
	f.Add(uint64(3), uint8(0), []byte{0})
	f.Add(uint64(3), uint8(2), []byte{0x82, 0x00, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, seq uint64, typ uint8, payload []byte) {
		r, err := DecodePayload(seq, RecordType(typ), payload)
		if r.Seq != seq || r.Type != RecordType(typ) {
			t.Fatalf("decoded seq/type %d/%d from %d/%d", r.Seq, r.Type, seq, typ)
		}
		if err != nil {
			if CodeOf(err) != CodeCorruptRecord {
				t.Fatalf("error %v is not corrupt_record", err)
			}
			return
		}
		if !RecordType(typ).Valid() {
			t.Fatalf("decoded a record of unknown type %d", typ)
		}
		if again := r.AppendPayload(nil); !bytes.Equal(again, payload) {
			t.Fatalf("re-encoded %x, decoded from %x", again, payload)
		}
		for _, s := range r.Seats {
			if s < 0 {
				t.Fatalf("negative seat %d", s)
			}
		}
	})
}
