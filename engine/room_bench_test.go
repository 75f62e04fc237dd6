package engine

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// The waiting room at flash-sale scale: run with -benchtime=1000000x for a
// million visitors, e.g.
//
//	go test ./engine -run '^$' -bench 'Room' -benchtime 1000000x -benchmem

// roomBenchIDs returns n customer and ticket ids of realistic length.
func roomBenchIDs(n int) (custs, tickets []string) {
	custs, tickets = make([]string, n), make([]string, n)
	for i := range n {
		custs[i] = fmt.Sprintf("auth0|%024d", i)
		tickets[i] = fmt.Sprintf("q%016d.ev-1", i)
	}
	return custs, tickets
}

func roomHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkRoomJoin: b.N visitors join a drawn room, one command each; it
// reports the room's memory per visitor (everything it keeps: ids,
// indexes, queue order, poll wheel), measured on the heap.
func BenchmarkRoomJoin(b *testing.B) {
	custs, tickets := roomBenchIDs(b.N)
	base := roomHeap()
	r, _, _ := CreateRoom("ev-1", roomCfg(), roomT0)
	r.Draw(roomT0, roomSeed(1))
	now := roomT0.Add(time.Second)
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := r.Join(now, custs[i], tickets[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(roomHeap()-base)/float64(b.N), "bytes/visitor")
	runtime.KeepAlive(r)
}

// BenchmarkRoomPoll: polls of random visitors in a room of b.N waiting
// visitors (at least 1000).
func BenchmarkRoomPoll(b *testing.B) {
	n := max(b.N, 1000)
	custs, tickets := roomBenchIDs(n)
	r, _, _ := CreateRoom("ev-1", roomCfg(), roomT0)
	r.Draw(roomT0, roomSeed(1))
	now := roomT0.Add(time.Second)
	for i := range n {
		r.Join(now, custs[i], tickets[i])
	}
	runtime.GC()
	b.ResetTimer()
	x := uint64(1)
	for range b.N {
		x = x*6364136223846793005 + 1442695040888963407
		if _, err := r.Poll(now, tickets[x>>33%uint64(n)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoomDraw: the draw of a pre-queue of b.N visitors; ns/op is per
// visitor.
func BenchmarkRoomDraw(b *testing.B) {
	custs, tickets := roomBenchIDs(b.N)
	r, _, _ := CreateRoom("ev-1", roomCfg(), roomT0.Add(-time.Hour))
	for i := range b.N {
		r.Join(roomT0.Add(-time.Minute), custs[i], tickets[i])
	}
	b.ResetTimer()
	if _, err := r.Draw(roomT0, roomSeed(1)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRoomReplay: replaying the journal of b.N joins and the draw (a
// restart without snapshot); ns/op is per record.
func BenchmarkRoomReplay(b *testing.B) {
	custs, tickets := roomBenchIDs(b.N)
	r, recs, _ := CreateRoom("ev-1", roomCfg(), roomT0.Add(-time.Hour))
	for i := range b.N {
		out, _, _ := r.Join(roomT0.Add(-time.Minute), custs[i], tickets[i])
		recs = append(recs, out...)
	}
	out, _ := r.Draw(roomT0, roomSeed(1))
	recs = append(recs, out...)
	b.ResetTimer()
	back, err := NewRoom(recs[0])
	if err != nil {
		b.Fatal(err)
	}
	for _, rec := range recs[1:] {
		if err := back.Apply(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoomTick: admission ticks (100 visitors each, 1 ms apart at
// 100,000 per second) at the front of a queue of a million; the queue is
// rebuilt (untimed) every 9,000 ticks, before it runs short.
func BenchmarkRoomTick(b *testing.B) {
	const n, ticks = 1_000_000, 9_000
	custs, tickets := roomBenchIDs(n)
	cfg := roomCfg()
	cfg.AdmitPerSecond = 100_000
	var r *Room
	build := func() {
		r, _, _ = CreateRoom("ev-1", cfg, roomT0)
		r.Draw(roomT0, roomSeed(1))
		for i := range n {
			r.Join(roomT0, custs[i], tickets[i])
		}
		r.Tick(roomT0, plenty)
	}
	build()
	b.ResetTimer()
	for i := range b.N {
		j := i%ticks + 1
		if j == ticks {
			b.StopTimer()
			build()
			b.StartTimer()
			continue
		}
		if recs := r.Tick(roomT0.Add(time.Duration(j)*time.Millisecond), plenty); len(recs) != 1 {
			b.Fatalf("tick %d: %d records", i, len(recs))
		}
	}
}

// BenchmarkRoomRestore: restoring a snapshot of b.N waiting visitors (a
// restart with a snapshot); ns/op is per visitor.
func BenchmarkRoomRestore(b *testing.B) {
	custs, tickets := roomBenchIDs(b.N)
	r, recs, _ := CreateRoom("ev-1", roomCfg(), roomT0)
	r.Draw(roomT0, roomSeed(1))
	for i := range b.N {
		r.Join(roomT0, custs[i], tickets[i])
	}
	snap := r.MarshalSnapshot()
	b.ResetTimer()
	if _, err := RestoreRoom(recs[0], snap); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(snap))/float64(b.N), "snapshot-bytes/visitor")
}
