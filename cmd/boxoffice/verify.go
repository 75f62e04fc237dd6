package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/persistence"
)

// errUnclean is returned by verify when at least one event failed.
var errUnclean = errors.New("verification failed")

// verify replays every event's journal in dataDir through the engine — the
// EventCreated record, the snapshot if any, then the tail — checking each
// record as persistence reads it and the engine's invariants after the
// replay. It prints one line per event and returns errUnclean if any event
// failed (a corrupt record names the event, sequence and key). It never
// writes a record; Pebble itself may write its own bookkeeping on open.
func verify(dataDir string, out io.Writer, log *slog.Logger) error {
	dir := filepath.Join(dataDir, "journal")
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("no journal in %s: %w", dataDir, err)
	}
	return verifyDir(dir, out, log)
}

// verifyDir is verify of the journal in dir.
func verifyDir(dir string, out io.Writer, log *slog.Logger) error {
	store, err := persistence.Open(dir, persistence.Options{Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	ids, err := store.Events()
	if err != nil {
		return fmt.Errorf("list events: %w", err)
	}
	failed := 0
	for _, id := range ids {
		line, err := verifyEvent(store, id)
		if err != nil {
			failed++
			fmt.Fprintf(out, "event %s: CORRUPT: %v\n", id, err)
			continue
		}
		fmt.Fprintf(out, "event %s: ok: %s\n", id, line)
	}
	fmt.Fprintf(out, "%d events, %d clean, %d corrupt\n", len(ids), len(ids)-failed, failed)
	if failed > 0 {
		return errUnclean
	}
	return nil
}

// verifyEvent replays one event and describes it.
func verifyEvent(store *persistence.Store, id string) (string, error) {
	rec, err := store.Load(id)
	var ev *engine.Event
	if err == nil {
		ev, err = rec.Replay(id) // a record the engine refuses is corruption too
	}
	if err != nil {
		var ce *persistence.CorruptionError
		if errors.As(err, &ce) {
			return "", fmt.Errorf("sequence %d, key %s: %s", ce.Seq, ce.Key, ce.Reason)
		}
		return "", err
	}
	holds := 0 // SeatsHeld records replayed: reservations made since the snapshot
	for _, r := range rec.Tail {
		if r.Type == engine.RecordSeatsHeld {
			holds++
		}
	}
	// A zero time: holds that lapsed while the server was down are not
	// expired yet (the server journals that on its next start).
	if err := ev.CheckInvariants(time.Time{}); err != nil {
		return "", fmt.Errorf("sequence %d: invariant broken after replay: %w", ev.Seq(), err)
	}
	c := ev.Counts()
	reservations := fmt.Sprint(holds)
	if rec.Snapshot != nil {
		reservations = fmt.Sprintf("%d since the snapshot at seq %d", holds, rec.SnapshotSeq)
	}
	return fmt.Sprintf("records %d, seq %d, seats available %d reserved %d booked %d blocked %d, reservations %s, bookings %d",
		1+len(rec.Tail), ev.Seq(), c.Available, c.Reserved, c.Booked, c.Blocked, reservations, len(ev.Bookings())), nil
}
