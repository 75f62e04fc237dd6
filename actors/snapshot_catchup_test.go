package actors_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine/enginetest"
)

// gatedJournal holds the first SaveSnapshot until release is closed and
// records the seq of every snapshot saved.
type gatedJournal struct {
	actors.Journal
	release chan struct{}
	once    sync.Once
	started chan struct{}

	mu    sync.Mutex
	saved []uint64
}

func (j *gatedJournal) SaveSnapshot(eventID string, seq uint64, state []byte) error {
	first := false
	j.once.Do(func() { first = true; close(j.started) })
	if first {
		<-j.release
	}
	err := j.Journal.SaveSnapshot(eventID, seq, state)
	j.mu.Lock()
	j.saved = append(j.saved, seq)
	j.mu.Unlock()
	return err
}

func (j *gatedJournal) latest() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.saved) == 0 {
		return 0
	}
	return j.saved[len(j.saved)-1]
}

// TestSnapshotSkippedWhileWritingIsTakenAfter: a batch that is due a
// snapshot while the previous one is still being written skips it; when
// the sale then goes quiet, the actor takes it once the writer is done,
// instead of leaving the journal with up to twice SnapshotEveryRecords
// records after its snapshot until the next command.
func TestSnapshotSkippedWhileWritingIsTakenAfter(t *testing.T) {
	ctx := context.Background()
	j := &gatedJournal{release: make(chan struct{}), started: make(chan struct{})}
	e := start(t, vfs.NewMem(), actors.NewManualClock(t0), func(c *actors.Config) {
		j.Journal = c.Journal
		c.Journal = j
	})
	if _, err := e.sys.CreateEvent(ctx, definition("ev1", enginetest.GridPlan(10, 20))); err != nil {
		t.Fatal(err)
	}
	hold := func(i int) {
		if _, err := e.sys.Hold(ctx, "ev1", fmt.Sprint("u", i), []string{fmt.Sprintf("%c%d", 'A'+i%10, 1+i/10)}); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	for ; i < 20; i++ { // past SnapshotEveryRecords (7): the first snapshot starts, and blocks
		hold(i)
	}
	select {
	case <-j.started:
	case <-time.After(5 * time.Second):
		t.Fatal("no snapshot started")
	}
	for ; i < 40; i++ { // every batch now finds the buffer taken and skips its snapshot
		hold(i)
	}
	last, err := e.store.LastSeq("ev1")
	if err != nil {
		t.Fatal(err)
	}
	close(j.release) // the first snapshot completes; no command follows
	deadline := time.Now().Add(10 * time.Second)
	for j.latest() != last {
		if time.Now().After(deadline) {
			t.Fatalf("snapshots saved at %v; the journal ends at %d: the skipped snapshot was never taken", j.saved, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
