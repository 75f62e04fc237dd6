package persistence

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/boxoffice/boxoffice/engine"
	"github.com/cockroachdb/pebble/v2"
)

// Recovered is what recovery of one event needs, as read by Load.
type Recovered struct {
	// Created is record 1, EventCreated: the event definition.
	Created engine.Record
	// SnapshotSeq is the seq the snapshot reflects, 0 without a snapshot.
	SnapshotSeq uint64
	// Snapshot is the state passed to SaveSnapshot (a copy), nil without one.
	Snapshot []byte
	// Tail is the records after the snapshot, SnapshotSeq+1 … last (2 … last
	// without a snapshot), in seq order. Replaying Created, then Snapshot,
	// then Tail rebuilds the event.
	Tail []engine.Record
}

// Load reads and verifies everything recovery of eventID needs, from one
// consistent view of the store. A record or snapshot that fails verification
// (see CorruptionError) stops it: Load returns that *CorruptionError and no
// records, never a history with a hole. An event without a journal gives an
// error wrapping ErrNotFound.
func (s *Store) Load(eventID string) (Recovered, error) {
	var out Recovered
	last, _ := s.LastSeq(eventID) // a capacity hint only: walk verifies
	snapSeq, state, err := s.walk(eventID, true, func(r engine.Record) error {
		if r.Seq == 1 {
			out.Created = r
		} else {
			if out.Tail == nil && last >= r.Seq {
				out.Tail = make([]engine.Record, 0, min(last-r.Seq+1, 1<<22))
			}
			out.Tail = append(out.Tail, r)
		}
		return nil
	})
	if err != nil {
		return Recovered{}, err
	}
	out.SnapshotSeq, out.Snapshot = snapSeq, state
	return out, nil
}

// Scan calls fn with every stored record of eventID in seq order (record 1,
// then the records after the snapshot), verifying each and the snapshot frame
// exactly as Load does. It stops at the first *CorruptionError, or at the
// first error fn returns, which it returns unchanged. For `boxoffice verify`.
func (s *Store) Scan(eventID string, fn func(engine.Record) error) error {
	_, _, err := s.walk(eventID, false, fn)
	return err
}

// walk verifies the snapshot and then every log record of eventID, calling
// fn for each record in seq order. It returns the snapshot seq (0 for none)
// and, withState, a copy of the snapshot state.
func (s *Store) walk(eventID string, withState bool, fn func(engine.Record) error) (snapSeq uint64, state []byte, err error) {
	if err := validateEventID(eventID); err != nil {
		return 0, nil, err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return 0, nil, ErrClosed
	}
	if s.db == nil { // a reopen failed: Reopen again
		return 0, nil, s.failed()
	}
	// One iterator for the snapshot and the log: a consistent view even while
	// the event's actor keeps appending.
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: eventPrefix(eventID), UpperBound: eventEnd(eventID)})
	if err != nil {
		return 0, nil, fmt.Errorf("persistence: read event %q: %w", eventID, err)
	}
	defer it.Close()
	corrupt := func(seq uint64, key []byte, format string, args ...any) error {
		return &CorruptionError{EventID: eventID, Seq: seq, Key: formatKey(key), Reason: fmt.Sprintf(format, args...)}
	}

	sk := snapKey(eventID)
	if it.SeekGE(sk) && bytes.Equal(it.Key(), sk) {
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, nil, fmt.Errorf("persistence: read snapshot of event %q: %w", eventID, err)
		}
		seq, st, err := decodeSnapshotFrame(v)
		if err != nil {
			return 0, nil, corrupt(0, sk, "snapshot: %v", err)
		}
		if seq == 0 {
			return 0, nil, corrupt(0, sk, "snapshot at seq 0")
		}
		snapSeq = seq
		if withState {
			state = slices.Clone(st)
		}
	}

	prefix := logPrefix(eventID)
	next := uint64(1) // the seq the next log key must have
	var scratch []byte
	for valid := it.SeekGE(prefix); valid && bytes.HasPrefix(it.Key(), prefix); valid = it.Next() {
		key := it.Key()
		seq, ok := parseLogSeq(key, prefix)
		switch {
		case !ok:
			return 0, nil, corrupt(next, key, "malformed log key (want %d seq bytes)", seqBytes)
		case seq > next:
			return 0, nil, corrupt(next, logKey(eventID, next), "record %d is missing (next stored record is %d)", next, seq)
		case seq < next:
			return 0, nil, corrupt(seq, key, "unexpected record %d: want %d (snapshot at seq %d)", seq, next, snapSeq)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, nil, fmt.Errorf("persistence: read event %q record %d: %w", eventID, seq, err)
		}
		var r engine.Record
		r, scratch, err = decodeRecordFrame(v, scratch)
		if err != nil {
			return 0, nil, corrupt(seq, key, "%v", err)
		}
		if r.Seq != seq {
			return 0, nil, corrupt(seq, key, "value holds seq %d", r.Seq)
		}
		if (seq == 1) != (r.Type == engine.RecordEventCreated) {
			return 0, nil, corrupt(seq, key, "record %d is %s; record 1, and only record 1, is EventCreated", seq, r.Type)
		}
		if err := fn(r); err != nil {
			return 0, nil, err
		}
		next = seq + 1
		if seq == 1 && snapSeq >= 2 {
			next = snapSeq + 1 // 2..snapSeq were deleted with the snapshot
		}
	}
	if err := it.Error(); err != nil {
		return 0, nil, fmt.Errorf("persistence: read event %q: %w", eventID, err)
	}
	if next == 1 {
		if snapSeq == 0 {
			return 0, nil, fmt.Errorf("%w: %q", ErrNotFound, eventID)
		}
		return 0, nil, corrupt(1, logKey(eventID, 1), "record 1 is missing (snapshot at seq %d)", snapSeq)
	}
	return snapSeq, state, nil
}

// Replay rebuilds the event r describes through the engine: the
// EventCreated record, then the snapshot if there is one, then every record
// of the tail with engine.Apply. A snapshot or record the engine refuses is
// reported as a *CorruptionError naming the event, sequence and key, like a
// record that fails its checksum: recovery never skips one.
func (r Recovered) Replay(eventID string) (*engine.Event, error) {
	var ev *engine.Event
	var err error
	if r.Snapshot != nil {
		if ev, err = engine.RestoreEvent(r.Created, r.Snapshot); err != nil {
			return nil, &CorruptionError{EventID: eventID, Seq: r.SnapshotSeq, Key: formatKey(snapKey(eventID)), Reason: err.Error()}
		}
	} else if ev, err = engine.NewEvent(r.Created); err != nil {
		return nil, &CorruptionError{EventID: eventID, Seq: 1, Key: formatKey(logKey(eventID, 1)), Reason: err.Error()}
	}
	for _, rec := range r.Tail {
		if err := ev.Apply(rec); err != nil {
			return nil, &CorruptionError{EventID: eventID, Seq: rec.Seq, Key: formatKey(logKey(eventID, rec.Seq)), Reason: err.Error()}
		}
	}
	return ev, nil
}
