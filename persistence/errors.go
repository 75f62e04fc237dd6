package persistence

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test for them with errors.Is; the returned errors wrap
// them with the event and numbers involved.
var (
	// ErrSequenceMismatch: Append's expected seq is not the event's last
	// stored seq + 1, or the records are not numbered expectedSeq,
	// expectedSeq+1, …; or SaveSnapshot names a seq past the journal. Nothing
	// was written. For the event actor it means another writer (a stale owner)
	// or a bug: stop and recover from the journal.
	ErrSequenceMismatch = errors.New("persistence: sequence mismatch")

	// ErrNotFound: Load or Scan of an event that has no journal.
	ErrNotFound = errors.New("persistence: event not found")

	// ErrInvalidEventID: the id is not 1–64 bytes of [A-Za-z0-9._-].
	ErrInvalidEventID = errors.New("persistence: invalid event id")

	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("persistence: store closed")

	// ErrFailed: Pebble reported a fatal error (for example a failed WAL write
	// or sync). Pebble cannot be trusted to persist anything more through this
	// handle, so every later write fails with ErrFailed, including a write
	// whose commit raced with the failure. The owner closes the Store, opens it
	// again and recovers the affected events from the journal.
	ErrFailed = errors.New("persistence: store failed")
)

// CorruptionError reports a stored record or snapshot that fails
// verification: a short value, an unknown format version, a checksum
// mismatch, a seq that disagrees with its key, a gap in the sequence, or a
// payload engine.DecodePayload rejects. Recovery of EventID stops there; the
// record is never skipped.
type CorruptionError struct {
	EventID string
	Seq     uint64 // the record's seq (for a gap: the first missing seq; for a snapshot: the seq in its key space, 0 if unreadable)
	Key     string // the key, rendered readably (log keys end in the seq as 16 hex digits)
	Reason  string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("persistence: event %q record %d (key %s): %s", e.EventID, e.Seq, e.Key, e.Reason)
}
