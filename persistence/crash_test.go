package persistence

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/boxoffice/boxoffice/engine"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCrashKeepsAcknowledgedRecords runs writers against a crashable
// in-memory filesystem, takes a crash clone at a random moment and recovers
// from it: every record whose Append returned nil before the clone must be
// there, in a contiguous, verified journal.
func TestCrashKeepsAcknowledgedRecords(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { testCrash(t, seed) })
	}
}

func testCrash(t *testing.T, seed uint64) {
	const writers = 8
	rng := rand.New(rand.NewPCG(seed, 0xc4a5))
	// How much unsynced data the crash keeps: none, some, or all of it.
	unsyncedPercent := []int{0, 10, 50, 100}[seed%4]
	crashAfter := int64(20 + rng.IntN(300)) // acknowledged Appends before the crash

	fs := vfs.NewCrashableMem()
	s, err := Open("db", Options{FS: fs, Logger: testLogger()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}

	var (
		acked     [writers]atomic.Uint64 // last seq acknowledged to each writer
		total     atomic.Int64           // acknowledged Appends, all writers
		crashNow  = make(chan struct{})
		crashOnce sync.Once
		stop      = make(chan struct{})
		errs      [writers]error
		wg        sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("crash-%d", w)
			wrng := rand.New(rand.NewPCG(seed, uint64(w)))
			next := uint64(1)
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := 1 + wrng.IntN(8)
				if err := s.Append(id, next, genRecords(id, next, n)); err != nil {
					errs[w] = err
					return
				}
				next += uint64(n)
				acked[w].Store(next - 1)
				if wrng.IntN(10) == 0 {
					if err := s.SaveSnapshot(id, next-1, snapshotState(next-1)); err != nil {
						errs[w] = err
						return
					}
				}
				if total.Add(1) == crashAfter {
					crashOnce.Do(func() { close(crashNow) })
				}
			}
		})
	}

	<-crashNow
	// Read the acknowledgements first: all of them happened before the
	// clone, so all of them must survive it.
	var mustHave [writers]uint64
	for w := range writers {
		mustHave[w] = acked[w].Load()
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPercent, RNG: rng})
	close(stop)
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", w, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	r := openStore(t, "db", crashed)
	for w := range writers {
		id := fmt.Sprintf("crash-%d", w)
		got, err := r.Load(id)
		if errors.Is(err, ErrNotFound) && mustHave[w] == 0 {
			mustAppend(t, r, id, genRecords(id, 1, 2)) // never acknowledged, so gone
			continue
		}
		if err != nil {
			t.Fatalf("Load(%q) after the crash: %v", id, err)
		}
		checkRecords(t, id+" Created", []engine.Record{got.Created}, genRecords(id, 1, 1))
		if got.SnapshotSeq > 0 && string(got.Snapshot) != string(snapshotState(got.SnapshotSeq)) {
			t.Fatalf("%s: snapshot at %d holds %q", id, got.SnapshotSeq, got.Snapshot)
		}
		from := max(got.SnapshotSeq, 1) + 1
		checkRecords(t, id+" Tail", got.Tail, genRecords(id, from, len(got.Tail)))
		last := from - 1 + uint64(len(got.Tail))
		if last < mustHave[w] {
			t.Fatalf("%s: recovered up to seq %d, but seq %d was acknowledged before the crash", id, last, mustHave[w])
		}
		// The recovered store continues the journal where it ended.
		if lastSeq, err := r.LastSeq(id); err != nil || lastSeq != last {
			t.Fatalf("%s: LastSeq after the crash: got %d, %v; want %d", id, lastSeq, err, last)
		}
		mustAppend(t, r, id, genRecords(id, last+1, 2))
	}
}

func snapshotState(seq uint64) []byte { return fmt.Appendf(nil, "state@%d", seq) }
