package persistence

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"testing"

	"github.com/boxoffice/boxoffice/engine"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// testLogger shows Pebble's warnings and errors only, to keep test output
// readable.
func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openStore opens a store in dir on fs (nil: the OS) and closes it when the
// test ends, unless the test closed it already.
func openStore(t testing.TB, dir string, fs vfs.FS) *Store {
	t.Helper()
	s, err := Open(dir, Options{FS: fs, Logger: testLogger()})
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// sampleRecords returns one record of every type with fixed field values,
// numbered 1..8. The golden file pins their framing: never change a value.
func sampleRecords() []engine.Record {
	const t0 = int64(1767225600000) // 2026-01-01T00:00:00Z
	return []engine.Record{
		{Seq: 1, Type: engine.RecordEventCreated, AtUnixMilli: t0,
			Definition: []byte(`{"id":"golden-night","name":"Golden Night","holdTtlSeconds":600}`),
			Plan:       []byte{0x01, 0x00, 0x02, 0xff, 'p', 'l', 'a', 'n'}}, // opaque here
		{Seq: 2, Type: engine.RecordSeatsHeld, AtUnixMilli: t0 + 1000, ReservationID: "rsv-0001",
			CustomerID: "cust-42", Seats: []int32{0, 1, 2, 300}, ExpiresAtUnixMilli: t0 + 601000},
		{Seq: 3, Type: engine.RecordPaymentStarted, AtUnixMilli: t0 + 2000, ReservationID: "rsv-0001",
			CustomerID: "cust-42", ExpiresAtUnixMilli: t0 + 602000, Attempt: 1},
		{Seq: 4, Type: engine.RecordPaymentFailed, AtUnixMilli: t0 + 3000, ReservationID: "rsv-0001",
			CustomerID: "cust-42", Attempt: 1},
		{Seq: 5, Type: engine.RecordHoldReleased, AtUnixMilli: t0 + 4000, ReservationID: "rsv-0001",
			CustomerID: "cust-42", Seats: []int32{0, 1, 2, 300}, Reason: engine.ReasonExpired},
		{Seq: 6, Type: engine.RecordSeatsBooked, AtUnixMilli: t0 + 5000, ReservationID: "rsv-0002",
			CustomerID: "cust-7", Seats: []int32{17}, BookingID: "bkg-0001", Attempt: 2},
		{Seq: 7, Type: engine.RecordSeatsBlocked, AtUnixMilli: t0 + 6000, Seats: []int32{40, 41, 42}},
		{Seq: 8, Type: engine.RecordSeatsUnblocked, AtUnixMilli: t0 + 7000, Seats: []int32{41}},
		// A re-hold: its hold started with the reservation it replaced.
		{Seq: 9, Type: engine.RecordSeatsHeld, AtUnixMilli: t0 + 8000, ReservationID: "rsv-0003",
			CustomerID: "cust-42", Seats: []int32{0, 1}, ExpiresAtUnixMilli: t0 + 608000, HoldStartUnixMilli: t0 + 1000},
		{Seq: 10, Type: engine.RecordEventUpdated, AtUnixMilli: t0 + 9000,
			Definition: []byte(`{"salesEndAt":"2026-02-01T00:00:00Z","orphanSeats":"prevent","status":"cancelled"}`)},
		// Payments with the provider's references (the outbox of D19).
		{Seq: 11, Type: engine.RecordPaymentStarted, AtUnixMilli: t0 + 10000, ReservationID: "rsv-0004",
			CustomerID: "cust-9", ExpiresAtUnixMilli: t0 + 610000, Attempt: 1, PaymentToken: "tok_visa"},
		{Seq: 12, Type: engine.RecordSeatsBooked, AtUnixMilli: t0 + 11000, ReservationID: "rsv-0004",
			CustomerID: "cust-9", Seats: []int32{5}, BookingID: "bkg-0002", Attempt: 1,
			PaymentRef: "pi_3Golden", ProviderEventID: "evt_1Golden"},
		{Seq: 13, Type: engine.RecordPaymentVoided, AtUnixMilli: t0 + 12000, ReservationID: "rsv-0005",
			CustomerID: "cust-9", Attempt: 1},
		{Seq: 14, Type: engine.RecordRefundRequested, AtUnixMilli: t0 + 13000, ReservationID: "rsv-0006",
			CustomerID: "cust-9", Attempt: 2, PaymentRef: "pi_3Late", ProviderEventID: "evt_1Late"},
		{Seq: 15, Type: engine.RecordPaymentRefunded, AtUnixMilli: t0 + 14000, ReservationID: "rsv-0004",
			CustomerID: "cust-9", Seats: []int32{5}, Attempt: 1, PaymentRef: "re_3Golden"},
		// A waiting-room record: RoomResumed at room seq 3 (engine/event_room.go).
		{Seq: 16, Type: engine.RecordRoom, AtUnixMilli: t0 + 15000, Definition: []byte{10, 3}},
	}
}

// genRecord returns the deterministic record seq of eventID used by the
// concurrency, crash and reopen tests, so that a reader can check every
// record it gets back without having kept a copy.
func genRecord(eventID string, seq uint64) engine.Record {
	if seq == 1 {
		return engine.Record{Seq: 1, Type: engine.RecordEventCreated, AtUnixMilli: 1,
			Definition: []byte(`{"id":"` + eventID + `"}`)}
	}
	typ := engine.RecordType(2 + seq%7) // SeatsHeld..SeatsUnblocked
	r := engine.Record{
		Seq:           seq,
		Type:          typ,
		AtUnixMilli:   int64(seq) * 10,
		ReservationID: fmt.Sprintf("%s-r%d", eventID, seq),
		CustomerID:    fmt.Sprintf("c%d", seq%13),
		Seats:         []int32{int32(seq % 500), int32(seq%500) + 1},
	}
	switch typ {
	case engine.RecordSeatsHeld, engine.RecordPaymentStarted:
		r.ExpiresAtUnixMilli = int64(seq)*10 + 600000
	case engine.RecordHoldReleased:
		r.Reason = engine.ReasonCancelled
	case engine.RecordSeatsBooked:
		r.BookingID = fmt.Sprintf("b%d", seq)
		r.Attempt = 1
	}
	return r
}

// genRecords returns genRecord(eventID, from) … genRecord(eventID, from+n-1).
func genRecords(eventID string, from uint64, n int) []engine.Record {
	recs := make([]engine.Record, n)
	for i := range recs {
		recs[i] = genRecord(eventID, from+uint64(i))
	}
	return recs
}

// mustAppend appends recs (numbered from their first Seq) or fails the test.
func mustAppend(t testing.TB, s *Store, eventID string, recs []engine.Record) {
	t.Helper()
	if err := s.Append(eventID, recs[0].Seq, recs); err != nil {
		t.Fatalf("Append(%q, %d, %d records): %v", eventID, recs[0].Seq, len(recs), err)
	}
}

// scanSeqs returns the seqs Scan visits.
func scanSeqs(t testing.TB, s *Store, eventID string) []uint64 {
	t.Helper()
	var seqs []uint64
	if err := s.Scan(eventID, func(r engine.Record) error {
		seqs = append(seqs, r.Seq)
		return nil
	}); err != nil {
		t.Fatalf("Scan(%q): %v", eventID, err)
	}
	return seqs
}

func seqRange(from, to uint64) []uint64 {
	var seqs []uint64
	for q := from; q <= to; q++ {
		seqs = append(seqs, q)
	}
	return seqs
}

// checkRecords fails the test unless got equals want, record by record.
func checkRecords(t testing.TB, what string, got, want []engine.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s: record %d:\ngot  %+v\nwant %+v", what, i, got[i], want[i])
		}
	}
}
