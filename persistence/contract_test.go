package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/boxoffice/boxoffice/engine"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestJournalContractMem(t *testing.T) {
	testJournalContract(t, func(t *testing.T) *Store { return openStore(t, "db", vfs.NewMem()) })
}

func TestJournalContractDisk(t *testing.T) {
	testJournalContract(t, func(t *testing.T) *Store { return openStore(t, t.TempDir(), nil) })
}

// testJournalContract is what every journal implementation must do; open
// returns an empty store that the test owns.
func testJournalContract(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("SnapshotsAlongsideAppends", func(t *testing.T) {
		// Snapshots written while the same event's Appends go on (the event
		// actor writes them from another goroutine), some of them older than
		// one already stored: the newest wins, and it plus the tail is the
		// whole journal.
		s := open(t)
		const total, batch = 3000, 10
		mustAppend(t, s, "ev1", genRecords("ev1", 1, batch))
		state := func(seq uint64) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%08d", seq)), 8<<10) }
		done := make(chan struct{})
		saved := make(chan uint64, 1)
		go func() {
			defer close(saved)
			var newest uint64
			for i := 0; ; i++ {
				select {
				case <-done:
					saved <- newest
					return
				default:
				}
				last, err := s.LastSeq("ev1")
				if err != nil {
					t.Error(err)
					saved <- newest
					return
				}
				seq := last
				if i%3 == 2 { // an older snapshot than the last one
					seq = max(1, newest/2)
				}
				if err := s.SaveSnapshot("ev1", seq, state(seq)); err != nil {
					t.Errorf("SaveSnapshot(%d): %v", seq, err)
				}
				newest = max(newest, seq)
			}
		}()
		for seq := uint64(batch + 1); seq <= total; seq += batch {
			mustAppend(t, s, "ev1", genRecords("ev1", seq, batch))
		}
		close(done)
		newest := <-saved
		got, err := s.Load("ev1")
		if err != nil {
			t.Fatal(err)
		}
		if newest < 2 || got.SnapshotSeq != newest || !bytes.Equal(got.Snapshot, state(newest)) {
			t.Fatalf("snapshot at %d (%d bytes), want the newest saved, %d", got.SnapshotSeq, len(got.Snapshot), newest)
		}
		checkRecords(t, "Tail", got.Tail, genRecords("ev1", newest+1, total-int(newest)))
	})

	t.Run("RoundTripEveryType", func(t *testing.T) {
		s := open(t)
		recs := sampleRecords()
		mustAppend(t, s, "ev1", recs[:3])
		mustAppend(t, s, "ev1", recs[3:])
		got, err := s.Load("ev1")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		checkRecords(t, "Created", []engine.Record{got.Created}, recs[:1])
		checkRecords(t, "Tail", got.Tail, recs[1:])
		if got.SnapshotSeq != 0 || got.Snapshot != nil {
			t.Errorf("snapshot: got seq %d, %d bytes; want none", got.SnapshotSeq, len(got.Snapshot))
		}
		var scanned []engine.Record
		if err := s.Scan("ev1", func(r engine.Record) error { scanned = append(scanned, r); return nil }); err != nil {
			t.Fatalf("Scan: %v", err)
		}
		checkRecords(t, "Scan", scanned, recs)
		if last, err := s.LastSeq("ev1"); err != nil || last != uint64(len(recs)) {
			t.Errorf("LastSeq: got %d, %v; want %d", last, err, len(recs))
		}
		if _, err := s.Load("nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Load of an unknown event: got %v, want ErrNotFound", err)
		}
		if last, err := s.LastSeq("nope"); err != nil || last != 0 {
			t.Errorf("LastSeq of an unknown event: got %d, %v; want 0", last, err)
		}
	})

	t.Run("LargeDefinition", func(t *testing.T) {
		s := open(t)
		// A venue plan of a few MB lives in record 1 (Pebble's large-batch path).
		def := bytes.Repeat([]byte(`{"seat_guid":"0123456789"},`), 5<<20/27)
		created := engine.Record{Seq: 1, Type: engine.RecordEventCreated, AtUnixMilli: 5, Definition: def}
		mustAppend(t, s, "big", []engine.Record{created, genRecord("big", 2)})
		got, err := s.Load("big")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if !bytes.Equal(got.Created.Definition, def) {
			t.Fatalf("definition: got %d bytes, want %d", len(got.Created.Definition), len(def))
		}
		checkRecords(t, "Tail", got.Tail, genRecords("big", 2, 1))
	})

	t.Run("WrongExpectedSeqRejected", func(t *testing.T) {
		s := open(t)
		err := s.Append("ev", 2, genRecords("ev", 2, 1))
		if !errors.Is(err, ErrSequenceMismatch) {
			t.Fatalf("first Append at seq 2: got %v, want ErrSequenceMismatch", err)
		}
		for _, part := range []string{`"ev"`, "expected seq 2", "next seq is 1"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("error %q does not name %s", err, part)
			}
		}
		if ids, err := s.Events(); err != nil || len(ids) != 0 {
			t.Fatalf("Events after a rejected Append: got %q, %v; want none", ids, err)
		}
		mustAppend(t, s, "ev", genRecords("ev", 1, 3))

		cases := []struct {
			name     string
			expected uint64
			recs     []engine.Record
		}{
			{"expected is the last stored", 3, genRecords("ev", 3, 1)},
			{"expected skips one", 5, genRecords("ev", 5, 2)},
			{"expected zero", 0, genRecords("ev", 4, 1)},
			{"records skip one", 4, []engine.Record{genRecord("ev", 4), genRecord("ev", 6)}},
			{"records start late", 4, genRecords("ev", 5, 1)},
			{"records repeat", 4, []engine.Record{genRecord("ev", 4), genRecord("ev", 4)}},
		}
		for _, c := range cases {
			err := s.Append("ev", c.expected, c.recs)
			if !errors.Is(err, ErrSequenceMismatch) {
				t.Errorf("%s: got %v, want ErrSequenceMismatch", c.name, err)
			} else if !strings.Contains(err.Error(), `"ev"`) || !strings.Contains(err.Error(), fmt.Sprint(c.expected)) {
				t.Errorf("%s: error %q does not name the event and expected seq", c.name, err)
			}
		}
		// Not sequence errors, but rejected before anything is written too.
		negative := genRecord("ev", 4)
		negative.Seats = []int32{-1}
		longID := genRecord("ev", 4)
		longID.CustomerID = strings.Repeat("c", 4096)
		invalid := []struct {
			name string
			recs []engine.Record
		}{
			{"no records", nil},
			{"EventCreated after record 1", []engine.Record{{Seq: 4, Type: engine.RecordEventCreated}}},
			{"unknown type", []engine.Record{{Seq: 4, Type: 99}}},
			{"negative seat", []engine.Record{negative}},
			{"string past the decoder's bound", []engine.Record{longID}},
		}
		for _, c := range invalid {
			if err := s.Append("ev", 4, c.recs); err == nil || errors.Is(err, ErrSequenceMismatch) {
				t.Errorf("%s: got %v, want a validation error", c.name, err)
			}
		}
		if err := s.Append("fresh", 1, genRecords("fresh", 2, 1)); err == nil {
			t.Errorf("record 1 that is not EventCreated: got nil error")
		}
		if err := s.Append("fresh", 1, []engine.Record{{Seq: 1, Type: engine.RecordSeatsHeld}}); err == nil {
			t.Errorf("record 1 of type SeatsHeld: got nil error")
		}

		if last, err := s.LastSeq("ev"); err != nil || last != 3 {
			t.Fatalf("LastSeq after rejected Appends: got %d, %v; want 3", last, err)
		}
		if got, want := scanSeqs(t, s, "ev"), seqRange(1, 3); !slices.Equal(got, want) {
			t.Fatalf("stored seqs after rejected Appends: got %v, want %v", got, want)
		}
		if ids, _ := s.Events(); !slices.Equal(ids, []string{"ev"}) {
			t.Fatalf("Events: got %q, want [ev]", ids)
		}
		mustAppend(t, s, "ev", genRecords("ev", 4, 2))
		got, err := s.Load("ev")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		checkRecords(t, "Tail", got.Tail, genRecords("ev", 2, 4))
	})

	t.Run("SnapshotAndTail", func(t *testing.T) {
		s := open(t)
		mustAppend(t, s, "ev", genRecords("ev", 1, 10))
		if err := s.SaveSnapshot("ev", 6, []byte("state@6")); err != nil {
			t.Fatalf("SaveSnapshot: %v", err)
		}
		mustAppend(t, s, "ev", genRecords("ev", 11, 2))
		got, err := s.Load("ev")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if got.SnapshotSeq != 6 || string(got.Snapshot) != "state@6" {
			t.Errorf("snapshot: got seq %d %q, want 6 %q", got.SnapshotSeq, got.Snapshot, "state@6")
		}
		checkRecords(t, "Created", []engine.Record{got.Created}, genRecords("ev", 1, 1))
		checkRecords(t, "Tail", got.Tail, genRecords("ev", 7, 6))
		if last, err := s.LastSeq("ev"); err != nil || last != 12 {
			t.Errorf("LastSeq: got %d, %v; want 12", last, err)
		}
	})

	t.Run("SnapshotDeletesOldRecordsKeepsFirst", func(t *testing.T) {
		s := open(t)
		mustAppend(t, s, "ev", genRecords("ev", 1, 10))
		mustAppend(t, s, "other", genRecords("other", 1, 10))
		if err := s.SaveSnapshot("ev", 6, []byte("state@6")); err != nil {
			t.Fatalf("SaveSnapshot: %v", err)
		}
		if got, want := scanSeqs(t, s, "ev"), append([]uint64{1}, seqRange(7, 10)...); !slices.Equal(got, want) {
			t.Fatalf("stored seqs: got %v, want %v", got, want)
		}
		if got, want := scanSeqs(t, s, "other"), seqRange(1, 10); !slices.Equal(got, want) {
			t.Fatalf("other event's seqs: got %v, want %v", got, want)
		}
		// Older or equal snapshots are ignored.
		for _, seq := range []uint64{4, 6} {
			if err := s.SaveSnapshot("ev", seq, []byte("stale")); err != nil {
				t.Fatalf("SaveSnapshot(%d) older than the stored one: %v", seq, err)
			}
		}
		if got, err := s.Load("ev"); err != nil || got.SnapshotSeq != 6 || string(got.Snapshot) != "state@6" {
			t.Fatalf("after stale snapshots: got seq %d %q, %v; want 6 %q", got.SnapshotSeq, got.Snapshot, err, "state@6")
		}
		for _, seq := range []uint64{0, 11} {
			if err := s.SaveSnapshot("ev", seq, []byte("x")); !errors.Is(err, ErrSequenceMismatch) {
				t.Errorf("SaveSnapshot(%d) outside 1..10: got %v, want ErrSequenceMismatch", seq, err)
			}
		}
		// A snapshot of the whole journal leaves record 1 alone.
		if err := s.SaveSnapshot("ev", 10, []byte("state@10")); err != nil {
			t.Fatalf("SaveSnapshot(10): %v", err)
		}
		if got := scanSeqs(t, s, "ev"); !slices.Equal(got, []uint64{1}) {
			t.Fatalf("stored seqs: got %v, want [1]", got)
		}
		got, err := s.Load("ev")
		if err != nil || got.SnapshotSeq != 10 || len(got.Tail) != 0 || got.Created.Type != engine.RecordEventCreated {
			t.Fatalf("Load: got snapshot %d, %d tail records, created %v, %v; want 10, 0, EventCreated", got.SnapshotSeq, len(got.Tail), got.Created.Type, err)
		}
		if last, err := s.LastSeq("ev"); err != nil || last != 10 {
			t.Fatalf("LastSeq: got %d, %v; want 10", last, err)
		}
		if err := s.Append("ev", 10, genRecords("ev", 10, 1)); !errors.Is(err, ErrSequenceMismatch) {
			t.Fatalf("Append at a seq covered by the snapshot: got %v, want ErrSequenceMismatch", err)
		}
		mustAppend(t, s, "ev", genRecords("ev", 11, 1))
		if got := scanSeqs(t, s, "ev"); !slices.Equal(got, []uint64{1, 11}) {
			t.Fatalf("stored seqs: got %v, want [1 11]", got)
		}
	})

	t.Run("Events", func(t *testing.T) {
		s := open(t)
		if ids, err := s.Events(); err != nil || len(ids) != 0 {
			t.Fatalf("Events of an empty store: got %q, %v", ids, err)
		}
		// Ids whose keys sort differently from the ids themselves ('-' and
		// '.' sort before '/').
		ids := []string{"b", "a", "a-x", "a.b", "a0", "A_1", strings.Repeat("z", EventIDBytesMax)}
		for _, id := range ids {
			mustAppend(t, s, id, genRecords(id, 1, 2))
		}
		if err := s.SaveSnapshot("a", 2, []byte("s")); err != nil {
			t.Fatalf("SaveSnapshot: %v", err)
		}
		want := slices.Clone(ids)
		slices.Sort(want)
		got, err := s.Events()
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("Events: got %q, %v; want %q", got, err, want)
		}
		for _, bad := range []string{"", "a/b", "a/log", strings.Repeat("z", EventIDBytesMax+1), "ü", "a b", "a\x00", "a*"} {
			if err := s.Append(bad, 1, genRecords("x", 1, 1)); !errors.Is(err, ErrInvalidEventID) {
				t.Errorf("Append(%q): got %v, want ErrInvalidEventID", bad, err)
			}
			if _, err := s.Load(bad); !errors.Is(err, ErrInvalidEventID) {
				t.Errorf("Load(%q): got %v, want ErrInvalidEventID", bad, err)
			}
			if _, err := s.LastSeq(bad); !errors.Is(err, ErrInvalidEventID) {
				t.Errorf("LastSeq(%q): got %v, want ErrInvalidEventID", bad, err)
			}
			if err := s.SaveSnapshot(bad, 1, nil); !errors.Is(err, ErrInvalidEventID) {
				t.Errorf("SaveSnapshot(%q): got %v, want ErrInvalidEventID", bad, err)
			}
		}
		if got, _ := s.Events(); !slices.Equal(got, want) {
			t.Fatalf("Events after invalid ids: got %q, want %q", got, want)
		}
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		s := open(t)
		const writers, batches = 8, 30
		var wg sync.WaitGroup
		lasts := make([]uint64, writers)
		errs := make([]error, writers)
		for w := range writers {
			wg.Go(func() {
				id := fmt.Sprintf("conc-%d", w)
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				next := uint64(1)
				for range batches {
					n := 1 + rng.IntN(4)
					if err := s.Append(id, next, genRecords(id, next, n)); err != nil {
						errs[w] = err
						return
					}
					next += uint64(n)
				}
				lasts[w] = next - 1
			})
		}
		wg.Wait()
		for w := range writers {
			if errs[w] != nil {
				t.Fatalf("writer %d: %v", w, errs[w])
			}
			id := fmt.Sprintf("conc-%d", w)
			got, err := s.Load(id)
			if err != nil {
				t.Fatalf("Load(%q): %v", id, err)
			}
			checkRecords(t, id, append([]engine.Record{got.Created}, got.Tail...), genRecords(id, 1, int(lasts[w])))
		}
		if ids, _ := s.Events(); len(ids) != writers {
			t.Fatalf("Events: got %q, want %d events", ids, writers)
		}
	})

	t.Run("ConcurrentAppendsToOneEvent", func(t *testing.T) {
		s := open(t)
		mustAppend(t, s, "one", genRecords("one", 1, 1))
		const racers = 4
		errs := make([]error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() { errs[i] = s.Append("one", 2, genRecords("one", 2, 3)) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrSequenceMismatch):
				t.Errorf("losing Append: got %v, want ErrSequenceMismatch", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d racing Appends at the same seq succeeded, want 1", won, racers)
		}
		if got, want := scanSeqs(t, s, "one"), seqRange(1, 4); !slices.Equal(got, want) {
			t.Fatalf("stored seqs: got %v, want %v", got, want)
		}
	})
}

func TestReopen(t *testing.T) {
	fs := vfs.NewMem()
	s := openStore(t, "db", fs)
	mustAppend(t, s, "ev", genRecords("ev", 1, 5))
	mustAppend(t, s, "all", genRecords("all", 1, 5))
	if err := s.SaveSnapshot("all", 5, []byte("state@5")); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openStore(t, "db", fs)
	// The last seq is read lazily: from the last key, or from the snapshot
	// when it covers the whole journal.
	for id, want := range map[string]uint64{"ev": 5, "all": 5} {
		if last, err := s.LastSeq(id); err != nil || last != want {
			t.Errorf("LastSeq(%q) after reopen: got %d, %v; want %d", id, last, err, want)
		}
		if err := s.Append(id, want, genRecords(id, want, 1)); !errors.Is(err, ErrSequenceMismatch) {
			t.Errorf("Append(%q) at the last seq after reopen: got %v, want ErrSequenceMismatch", id, err)
		}
		mustAppend(t, s, id, genRecords(id, want+1, 1))
	}
	got, err := s.Load("all")
	if err != nil || got.SnapshotSeq != 5 || string(got.Snapshot) != "state@5" {
		t.Fatalf("Load: got snapshot %d %q, %v; want 5 %q", got.SnapshotSeq, got.Snapshot, err, "state@5")
	}
	checkRecords(t, "Tail", got.Tail, genRecords("all", 6, 1))
}

func TestCheckpoint(t *testing.T) {
	fs := vfs.NewMem()
	s := openStore(t, "db", fs)
	mustAppend(t, s, "ev", genRecords("ev", 1, 4))
	if err := s.SaveSnapshot("ev", 3, []byte("state@3")); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	if err := s.Checkpoint("ckpt"); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	mustAppend(t, s, "ev", genRecords("ev", 5, 2))
	if err := s.Checkpoint("ckpt"); err == nil {
		t.Errorf("Checkpoint into an existing directory: got nil error")
	}

	c := openStore(t, "ckpt", fs)
	got, err := c.Load("ev")
	if err != nil {
		t.Fatalf("Load from the checkpoint: %v", err)
	}
	if got.SnapshotSeq != 3 || string(got.Snapshot) != "state@3" {
		t.Errorf("checkpoint snapshot: got %d %q, want 3 %q", got.SnapshotSeq, got.Snapshot, "state@3")
	}
	checkRecords(t, "checkpoint Tail", got.Tail, genRecords("ev", 4, 1))
}

func TestClosed(t *testing.T) {
	s := openStore(t, "db", vfs.NewMem())
	mustAppend(t, s, "ev", genRecords("ev", 1, 1))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checks := map[string]error{
		"Append":       s.Append("ev", 2, genRecords("ev", 2, 1)),
		"SaveSnapshot": s.SaveSnapshot("ev", 1, nil),
		"Scan":         s.Scan("ev", func(engine.Record) error { return nil }),
		"Checkpoint":   s.Checkpoint("ckpt"),
		"Close":        s.Close(),
	}
	_, checks["Load"] = s.Load("ev")
	_, checks["LastSeq"] = s.LastSeq("ev")
	_, checks["Events"] = s.Events()
	for op, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", op, err)
		}
	}
}

func TestScanStopsAtCallbackError(t *testing.T) {
	s := openStore(t, "db", vfs.NewMem())
	mustAppend(t, s, "ev", genRecords("ev", 1, 5))
	stop := errors.New("stop here")
	var seen []uint64
	err := s.Scan("ev", func(r engine.Record) error {
		seen = append(seen, r.Seq)
		if r.Seq == 3 {
			return stop
		}
		return nil
	})
	if err != stop || !slices.Equal(seen, []uint64{1, 2, 3}) {
		t.Fatalf("Scan: got %v after %v, want %v after [1 2 3]", err, seen, stop)
	}
}

func TestOpenRejectsNegativeCache(t *testing.T) {
	if _, err := Open("db", Options{FS: vfs.NewMem(), CacheBytes: -1}); err == nil {
		t.Fatalf("Open with CacheBytes -1: got nil error")
	}
}

// TestFormatMajorVersionPinned fails when a Pebble upgrade moves
// pebble.FormatNewest, so that moving the pinned on-disk format is a decision
// (update formatMajorVersion), not a side effect.
func TestFormatMajorVersionPinned(t *testing.T) {
	if formatMajorVersion != pebble.FormatNewest {
		t.Errorf("pinned format %s, but this Pebble's newest is %s: decide whether to move the pin", formatMajorVersion, pebble.FormatNewest)
	}
	s := openStore(t, "db", vfs.NewMem())
	if got := s.db.FormatMajorVersion(); got != formatMajorVersion {
		t.Fatalf("opened store has format %s, want %s", got, formatMajorVersion)
	}
}
