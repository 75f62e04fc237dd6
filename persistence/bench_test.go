package persistence

import (
	"fmt"
	"sync"
	"testing"

	"github.com/boxoffice/boxoffice/engine"
)

// benchBatchRecords is the group-commit batch size of the benchmarks: a hot
// event under a flash sale.
const benchBatchRecords = 256

// benchBatch returns benchBatchRecords small SeatsHeld records of one event,
// numbered from 2 (record 1 is the EventCreated appended first).
func benchBatch() []engine.Record {
	recs := make([]engine.Record, benchBatchRecords)
	for i := range recs {
		recs[i] = engine.Record{
			Seq:                uint64(2 + i),
			Type:               engine.RecordSeatsHeld,
			AtUnixMilli:        1767225600000 + int64(i),
			ReservationID:      fmt.Sprintf("rsv-%08d", i),
			CustomerID:         fmt.Sprintf("customer-%06d", i),
			Seats:              []int32{int32(2 * i), int32(2*i + 1)},
			ExpiresAtUnixMilli: 1767225600000 + 600000,
		}
	}
	return recs
}

// BenchmarkAppend measures one event's group commits: each op is one synced
// Append of 256 small records on the real filesystem (b.TempDir()).
func BenchmarkAppend(b *testing.B) {
	s := openStore(b, b.TempDir(), nil)
	mustAppend(b, s, "bench", genRecords("bench", 1, 1))
	recs := benchBatch()
	next := uint64(2)
	ops := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range recs {
			recs[i].Seq = next + uint64(i)
		}
		if err := s.Append("bench", next, recs); err != nil {
			b.Fatal(err)
		}
		next += benchBatchRecords
		ops++
	}
	b.ReportMetric(float64(ops*benchBatchRecords)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendEvents is BenchmarkAppend with 8 events committing at once,
// sharing fsyncs in Pebble's commit pipeline; an op is one Append per event.
func BenchmarkAppendEvents(b *testing.B) {
	const events = 8
	s := openStore(b, b.TempDir(), nil)
	batches := make([][]engine.Record, events)
	for e := range batches {
		mustAppend(b, s, fmt.Sprint("bench-", e), genRecords("bench", 1, 1))
		batches[e] = benchBatch()
	}
	next := uint64(2)
	ops := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make([]error, events)
		for e := range batches {
			wg.Go(func() {
				recs := batches[e]
				for i := range recs {
					recs[i].Seq = next + uint64(i)
				}
				errs[e] = s.Append(fmt.Sprint("bench-", e), next, recs)
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		next += benchBatchRecords
		ops++
	}
	b.ReportMetric(float64(ops*events*benchBatchRecords)/b.Elapsed().Seconds(), "records/s")
}
