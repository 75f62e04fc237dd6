package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// reviewState is a snapshot state of about n bytes that names its seq at
// both ends, so that a torn or stale frame shows.
func reviewState(seq uint64, n int) []byte {
	tag := fmt.Appendf(nil, "state@%d|", seq)
	b := bytes.Repeat([]byte{byte(seq)}, max(n, 0))
	b = append(tag, b...)
	return append(b, tag...)
}

func checkReviewState(t *testing.T, id string, seq uint64, state []byte) {
	t.Helper()
	tag := fmt.Appendf(nil, "state@%d|", seq)
	if !bytes.HasPrefix(state, tag) || !bytes.HasSuffix(state, tag) {
		n := min(len(state), 24)
		t.Fatalf("%s: the snapshot at seq %d holds %q…", id, seq, state[:n])
	}
}

// TestReviewSnapshotWhileAppendingAndLoading: as the event actor now does,
// snapshots are written by a goroutine of their own while the event keeps
// appending. Loads running alongside must always see a journal without a
// hole (snapshot, then the records right after it), the stored snapshot's
// seq must never go back (a slow older snapshot never replaces a newer one),
// and a crash at any moment recovers every acknowledged record.
func TestReviewSnapshotWhileAppendingAndLoading(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { testReviewSnapshotConcurrent(t, seed) })
	}
}

func testReviewSnapshotConcurrent(t *testing.T, seed uint64) {
	const events = 3
	rng := rand.New(rand.NewPCG(seed, 0x5a5a))
	fs := vfs.NewCrashableMem()
	s, err := Open("db", Options{FS: fs, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var (
		acked    [events]atomic.Uint64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
		maxSnap  [events]atomic.Uint64
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	for e := range events {
		id := fmt.Sprintf("rv-%d", e)
		// The appender.
		wg.Go(func() {
			wrng := rand.New(rand.NewPCG(seed, uint64(e)))
			next := uint64(1)
			for !stopped() {
				n := 1 + wrng.IntN(6)
				if err := s.Append(id, next, genRecords(id, next, n)); err != nil {
					fail(fmt.Errorf("append %s: %w", id, err))
					return
				}
				next += uint64(n)
				acked[e].Store(next - 1)
			}
		})
		// Two snapshot writers: one at the newest acknowledged seq, one
		// lagging (an older snapshot arriving late).
		for lag := range 2 {
			wg.Go(func() {
				wrng := rand.New(rand.NewPCG(seed, uint64(100+e*2+lag)))
				for !stopped() {
					seq := acked[e].Load()
					if lag == 1 && seq > 5 {
						seq -= uint64(1 + wrng.IntN(5))
					}
					if seq == 0 {
						continue
					}
					size := wrng.IntN(64 << 10)
					if err := s.SaveSnapshot(id, seq, reviewState(seq, size)); err != nil {
						fail(fmt.Errorf("snapshot %s at %d: %w", id, seq, err))
						return
					}
					for {
						m := maxSnap[e].Load()
						if seq <= m || maxSnap[e].CompareAndSwap(m, seq) {
							break
						}
					}
				}
			})
		}
		// A reader: Load must always give a whole history.
		wg.Go(func() {
			var lastSnap uint64
			for !stopped() {
				floor := acked[e].Load()
				got, err := s.Load(id)
				if errors.Is(err, ErrNotFound) && floor == 0 {
					continue
				}
				if err != nil {
					fail(fmt.Errorf("load %s: %w", id, err))
					return
				}
				if got.SnapshotSeq < lastSnap {
					fail(fmt.Errorf("load %s: the snapshot went back from seq %d to %d", id, lastSnap, got.SnapshotSeq))
					return
				}
				lastSnap = got.SnapshotSeq
				if got.SnapshotSeq > 0 {
					tag := fmt.Appendf(nil, "state@%d|", got.SnapshotSeq)
					if !bytes.HasPrefix(got.Snapshot, tag) || !bytes.HasSuffix(got.Snapshot, tag) {
						fail(fmt.Errorf("load %s: snapshot at %d has the wrong state", id, got.SnapshotSeq))
						return
					}
				}
				from := max(got.SnapshotSeq, 1) + 1
				for i, r := range got.Tail {
					if r.Seq != from+uint64(i) {
						fail(fmt.Errorf("load %s: tail record %d has seq %d, want %d", id, i, r.Seq, from+uint64(i)))
						return
					}
				}
				if last := from - 1 + uint64(len(got.Tail)); last < floor {
					fail(fmt.Errorf("load %s: up to seq %d, but %d was acknowledged", id, last, floor))
					return
				}
			}
		})
	}

	// Let them run, then crash at a random moment.
	for acked[events-1].Load() < 200+uint64(rng.IntN(400)) {
		errMu.Lock()
		e := firstErr
		errMu.Unlock()
		if e != nil {
			break
		}
		runtimeGosched()
	}
	var mustHave, snapFloor [events]uint64
	for e := range events {
		mustHave[e] = acked[e].Load()
		snapFloor[e] = maxSnap[e].Load()
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: []int{0, 30, 100}[seed%3], RNG: rng})
	close(stop)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	// The stored snapshot is the newest one written.
	for e := range events {
		id := fmt.Sprintf("rv-%d", e)
		got, err := s.Load(id)
		if err != nil {
			t.Fatal(err)
		}
		if got.SnapshotSeq != maxSnap[e].Load() {
			t.Errorf("%s: stored snapshot at seq %d, newest written %d", id, got.SnapshotSeq, maxSnap[e].Load())
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	r := openStore(t, "db", crashed)
	for e := range events {
		id := fmt.Sprintf("rv-%d", e)
		got, err := r.Load(id)
		if err != nil {
			t.Fatalf("after the crash: %s: %v", id, err)
		}
		if got.SnapshotSeq < snapFloor[e] {
			t.Fatalf("after the crash: %s: snapshot at %d, but %d was acknowledged", id, got.SnapshotSeq, snapFloor[e])
		}
		if got.SnapshotSeq > 0 {
			checkReviewState(t, id, got.SnapshotSeq, got.Snapshot)
		}
		from := max(got.SnapshotSeq, 1) + 1
		checkRecords(t, id+" tail after the crash", got.Tail, genRecords(id, from, len(got.Tail)))
		last := from - 1 + uint64(len(got.Tail))
		if last < mustHave[e] {
			t.Fatalf("after the crash: %s: up to seq %d, but %d was acknowledged", id, last, mustHave[e])
		}
		mustAppend(t, r, id, genRecords(id, last+1, 3))
		if err := r.SaveSnapshot(id, last+3, reviewState(last+3, 10)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReviewSnapshotCloseAndReopenRace: Close and Reopen while snapshots
// and appends are being written: no panic (Pebble panics when used after
// Close), every error is ErrClosed, and what was acknowledged is there.
func TestReviewSnapshotCloseAndReopenRace(t *testing.T) {
	for round := range 10 {
		fs := vfs.NewMem()
		s, err := Open("db", Options{FS: fs, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		id := "close-race"
		mustAppend(t, s, id, genRecords(id, 1, 5))
		var acked, snapped atomic.Uint64
		acked.Store(5)
		var wg sync.WaitGroup
		var bad atomic.Value
		wg.Go(func() {
			next := uint64(6)
			for {
				err := s.Append(id, next, genRecords(id, next, 2))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					bad.Store(err)
					return
				}
				next += 2
				acked.Store(next - 1)
			}
		})
		wg.Go(func() {
			for {
				seq := acked.Load()
				err := s.SaveSnapshot(id, seq, reviewState(seq, 256<<10))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					bad.Store(err)
					return
				}
				snapped.Store(seq)
			}
		})
		for acked.Load() < uint64(20+round*10) {
			runtimeGosched()
		}
		if err := s.Reopen(); err != nil { // not failed: a no-op, but it takes closeMu
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if v := bad.Load(); v != nil {
			t.Fatal(v)
		}
		r := openStore(t, "db", fs)
		got, err := r.Load(id)
		if err != nil {
			t.Fatal(err)
		}
		if got.SnapshotSeq < snapped.Load() {
			t.Fatalf("snapshot at %d, %d acknowledged", got.SnapshotSeq, snapped.Load())
		}
		if last := max(got.SnapshotSeq, 1) + uint64(len(got.Tail)); last < acked.Load() {
			t.Fatalf("journal up to %d, %d acknowledged", last, acked.Load())
		}
		if got.SnapshotSeq > 0 {
			checkReviewState(t, id, got.SnapshotSeq, got.Snapshot)
		}
	}
}

// TestReviewSnapshotLargeBatch: a snapshot larger than half a memtable is
// committed by Pebble as a flushable batch that keeps the batch's memory;
// the frame written with SetDeferred must read back intact, and the buffer
// passed in may be overwritten as soon as SaveSnapshot returns.
func TestReviewSnapshotLargeBatch(t *testing.T) {
	s := openStore(t, "db", vfs.NewMem())
	id := "large"
	mustAppend(t, s, id, genRecords(id, 1, 10))
	state := reviewState(10, MemTableBytes/2+1<<20)
	if err := s.SaveSnapshot(id, 10, state); err != nil {
		t.Fatal(err)
	}
	clear(state) // the caller reuses its buffer
	mustAppend(t, s, id, genRecords(id, 11, 3))
	got, err := s.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	if got.SnapshotSeq != 10 {
		t.Fatalf("snapshot at %d", got.SnapshotSeq)
	}
	checkReviewState(t, id, 10, got.Snapshot)
	if len(got.Snapshot) != MemTableBytes/2+1<<20+2*len("state@10|") {
		t.Fatalf("snapshot of %d bytes", len(got.Snapshot))
	}
	checkRecords(t, "tail", got.Tail, genRecords(id, 11, 3))
}

func runtimeGosched() { runtime.Gosched() }
