package persistence

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/boxoffice/boxoffice/engine"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// formatMajorVersion is the on-disk format Open creates or ratchets an
// existing store up to. Pinned by name so that a Pebble upgrade never changes
// the format silently; it is pebble.FormatNewest as of pebble v2.1.7.
const formatMajorVersion = pebble.FormatValueSeparation

// Bounds.
const (
	// AppendRecordsMax is the most records one Append accepts. The actor cuts
	// its group-commit batches well below this.
	AppendRecordsMax = 1 << 16
	// SnapshotStateBytesMax is the largest snapshot state SaveSnapshot accepts.
	SnapshotStateBytesMax = 256 << 20
	// MemTableBytes is the size of one Pebble memtable (Pebble keeps up to
	// two before it stalls writes).
	MemTableBytes = 64 << 20
	// DefaultCacheBytes is the block cache size when Options.CacheBytes is 0.
	DefaultCacheBytes = 8 << 20
)

// Options configures Open.
type Options struct {
	// FS is the filesystem Pebble uses; nil means vfs.Default (the OS).
	// Tests pass vfs.NewMem() or vfs.NewCrashableMem().
	FS vfs.FS
	// Logger receives Pebble's log lines; nil means slog.Default().
	Logger *slog.Logger
	// CacheBytes is the size of Pebble's block cache in bytes; 0 means
	// DefaultCacheBytes. Negative is an error.
	CacheBytes int64
}

// Store is the journal of every event: one Pebble database. It is safe for
// concurrent use; writes to one event are serialised by a per-event lock, so
// one event's Appends commit one after another while different events'
// Appends share fsyncs inside Pebble's commit pipeline.
type Store struct {
	db  *pebble.DB // nil after a failed Reopen
	log *slog.Logger
	// open opens the database again (Reopen): the directory and options
	// Open was given.
	open func() (*pebble.DB, error)
	// probe writes, syncs and removes a file in the store's directory.
	probe func() error

	// fatal holds the first message Pebble passed to Logger.Fatalf. Once set,
	// writes fail with ErrFailed (see pebbleLogger).
	fatal atomic.Pointer[string]

	// closeMu is read-held by every operation and write-held by Close:
	// Pebble panics when used after Close, callers get ErrClosed instead.
	closeMu sync.RWMutex
	closed  bool

	snapMu sync.Mutex           // held across writing a snapshot (SaveSnapshot)
	mu     sync.Mutex           // guards events (the map, not its values)
	events map[string]*eventLog // written-to events; grows with the number of events
}

// eventLog is the in-memory tail of one event's journal.
type eventLog struct {
	// mu is held across a commit, so that the check of expectedSeq and the
	// write it guards are one step: a second writer of the same event waits,
	// then gets ErrSequenceMismatch.
	mu      sync.Mutex
	loaded  bool   // lastSeq and snapSeq were read from the store
	lastSeq uint64 // last stored seq, 0 for none
	snapSeq uint64 // seq of the stored snapshot, 0 for none

	// Append's scratch buffers for record frames and keys, reused by the
	// event's appends (guarded by mu): Pebble copies both into the batch.
	frameBuf, keyBuf []byte
}

// Open opens (creating if needed) the store in dir on opts.FS, with the
// format version pinned to formatMajorVersion (an existing older store is
// upgraded in place).
//
// Pebble gets a Logger that writes to opts.Logger and never exits the process:
// Pebble treats a failed WAL write as fatal and its default logger calls
// os.Exit, while boxoffice must instead stop acknowledging, then close and
// reopen the store (DESIGN.md, "Group commit").
func Open(dir string, opts Options) (*Store, error) {
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cacheBytes := opts.CacheBytes
	if cacheBytes < 0 {
		return nil, fmt.Errorf("persistence: open %s: cache size %d bytes is negative", dir, cacheBytes)
	}
	if cacheBytes == 0 {
		cacheBytes = DefaultCacheBytes
	}
	s := &Store{
		log:    logger,
		events: make(map[string]*eventLog),
	}
	s.probe = func() error {
		name := fs.PathJoin(dir, "reopen-probe")
		f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
		if err != nil {
			return err
		}
		_, err = f.Write([]byte{1})
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if rerr := fs.Remove(name); err == nil {
			err = rerr
		}
		return err
	}
	s.open = func() (*pebble.DB, error) {
		cache := pebble.NewCache(cacheBytes)
		defer cache.Unref() // the DB holds its own reference
		db, err := pebble.Open(dir, &pebble.Options{
			FS:                 fs,
			Cache:              cache,
			FormatMajorVersion: formatMajorVersion,
			Logger:             pebbleLogger{log: logger.With("component", "pebble"), fatal: &s.fatal},
			// A journal's records are short-lived: a snapshot deletes them and
			// replaces the previous snapshot. A memtable large enough to hold
			// the records between two snapshots lets a flush drop them instead of
			// writing and compacting them (measured: compactions were 18% of CPU
			// of a hot event with Pebble's 4 MiB default).
			MemTableSize: MemTableBytes,
		})
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("persistence: %s is locked by another process (is a boxoffice server running on this data directory?): %w", dir, err)
		}
		if err != nil {
			return nil, fmt.Errorf("persistence: open %s: %w", dir, err)
		}
		return db, nil
	}
	db, err := s.open()
	if err != nil {
		return nil, err
	}
	s.db = db
	return s, nil
}

// Close closes the database. Operations after Close return ErrClosed; Close
// waits for operations in flight.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	if s.db == nil { // a reopen failed: nothing is open
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("persistence: close: %w", err)
	}
	return nil
}

// Reopen closes and reopens a store that failed (ErrFailed: Pebble reported
// a fatal error, such as a failed WAL write or sync), so that it can be used
// again once the storage works: what was durable is read back; a write whose
// commit failed may or may not be there, and its owner recovers from the
// journal. A store that has not failed is left alone (nil). It waits for
// the operations in flight. If the open fails, the store stays failed and
// Reopen may be called again. Errors: ErrClosed, the open's error.
func (s *Store) Reopen() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.fatal.Load() == nil && s.db != nil {
		return nil
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			s.log.Warn("closing the failed store", "err", err)
		}
		s.db = nil
	}
	// Pebble leaks a goroutine when its open fails after it has started
	// (pebble v2.1.7: the compaction scheduler is registered before the new
	// WAL is created): first check that the directory takes a synced write.
	if err := s.probe(); err != nil {
		return fmt.Errorf("persistence: the store's directory cannot be written yet: %w", err)
	}
	db, err := s.open()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.events = make(map[string]*eventLog) // cached seqs may not match what survived
	s.mu.Unlock()
	s.db = db
	s.fatal.Store(nil)
	s.log.Info("store reopened after a failure")
	return nil
}

// failed returns an error wrapping ErrFailed once Pebble reported a fatal
// error, else nil.
func (s *Store) failed() error {
	if msg := s.fatal.Load(); msg != nil {
		return fmt.Errorf("%w: %s", ErrFailed, *msg)
	}
	return nil
}

// Append writes recs to the journal of eventID as one Pebble batch, committed
// with pebble.Sync: when it returns nil every record is on stable storage
// (and it returns nil only then).
//
// recs must hold 1 to AppendRecordsMax records numbered expectedSeq,
// expectedSeq+1, …, and expectedSeq must be the event's last stored seq + 1
// (1 for a new event); otherwise the error wraps ErrSequenceMismatch and
// names the event, the expected and the actual seq. Record 1 must be
// EventCreated, and only record 1. Each record is encoded, then checked to
// decode again, before it is written. On any error nothing is written, except
// that after a failed commit (ErrFailed, or a Pebble error) the records may or
// may not be stored: recover from the journal.
//
// Appends to different events may run concurrently; concurrent Appends to
// one event are serialised and all but one fail with ErrSequenceMismatch.
func (s *Store) Append(eventID string, expectedSeq uint64, recs []engine.Record) error {
	if err := validateEventID(eventID); err != nil {
		return err
	}
	if len(recs) == 0 || len(recs) > AppendRecordsMax {
		return fmt.Errorf("persistence: append to event %q: %d records, want 1 to %d", eventID, len(recs), AppendRecordsMax)
	}
	if expectedSeq == 0 {
		return fmt.Errorf("%w: event %q: expected seq 0, seqs start at 1", ErrSequenceMismatch, eventID)
	}
	for i := range recs {
		r := &recs[i]
		if want := expectedSeq + uint64(i); r.Seq != want {
			return fmt.Errorf("%w: event %q: record %d of the batch has seq %d, want %d (expected seq %d)",
				ErrSequenceMismatch, eventID, i, r.Seq, want, expectedSeq)
		}
		if !r.Type.Valid() {
			return fmt.Errorf("persistence: append to event %q: record %d has unknown type %d", eventID, r.Seq, uint8(r.Type))
		}
		if (r.Seq == 1) != (r.Type == engine.RecordEventCreated) {
			return fmt.Errorf("persistence: append to event %q: record %d is %s; record 1, and only record 1, is EventCreated", eventID, r.Seq, r.Type)
		}
	}

	ev, unlock, err := s.beginWrite(eventID)
	if err != nil {
		return err
	}
	defer unlock()
	if next := ev.lastSeq + 1; expectedSeq != next {
		return fmt.Errorf("%w: event %q: expected seq %d, but the journal's next seq is %d",
			ErrSequenceMismatch, eventID, expectedSeq, next)
	}

	// One scratch buffer for the frames and one for the keys, the event's
	// own: Pebble copies both into the batch, so an append allocates
	// nothing for them once the event has written (a buffer grown past
	// frameBufBytes by a big record is not kept).
	if ev.frameBuf == nil {
		ev.frameBuf = make([]byte, 0, frameBufBytes)
		ev.keyBuf = make([]byte, 0, len(keyRoot)+EventIDBytesMax+len(keyLogInfix)+seqBytes)
	}
	buf, key := ev.frameBuf, ev.keyBuf
	defer func() {
		if cap(buf) > frameBufBytes {
			buf = nil
		}
		ev.frameBuf, ev.keyBuf = buf, key
	}()
	b := s.db.NewBatch()
	defer b.Close()
	for i := range recs {
		r := &recs[i]
		buf = appendRecordFrame(buf[:0], r)
		// Check the data right before writing it: a record the engine's
		// decoder rejects (a field past its bound) would stop recovery.
		if _, err := engine.DecodePayload(r.Seq, r.Type, buf[recordHeaderBytes:len(buf)-crcBytes]); err != nil {
			return fmt.Errorf("persistence: append to event %q: record %d would not decode: %w", eventID, r.Seq, err)
		}
		key = appendLogKey(key[:0], eventID, r.Seq)
		if err := b.Set(key, buf, nil); err != nil {
			return fmt.Errorf("persistence: append to event %q: record %d: %w", eventID, r.Seq, err)
		}
	}
	last := recs[len(recs)-1].Seq
	if fatal, err := s.commit(b); err != nil || fatal != "" {
		ev.loaded = false // unknown whether it landed: read it back next time
		return commitError(fatal, err, fmt.Sprintf("append to event %q seqs %d..%d", eventID, expectedSeq, last))
	}
	ev.lastSeq = last
	return nil
}

// commit commits b with pebble.Sync and returns Pebble's error, or the
// message of a fatal error Pebble reported. Pebble logs a failed commit with
// Logger.Fatalf and then returns nil from Commit, so the fatal flag set by
// pebbleLogger is checked afterwards too: a commit that raced with a failure
// counts as failed.
func (s *Store) commit(b *pebble.Batch) (fatal string, err error) {
	if err := b.Commit(pebble.Sync); err != nil {
		return "", err
	}
	if msg := s.fatal.Load(); msg != nil {
		return *msg, nil
	}
	return "", nil
}

// commitError describes a failed commit of what.
func commitError(fatal string, err error, what string) error {
	if err != nil {
		return fmt.Errorf("persistence: %s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %s", ErrFailed, what, fatal)
}

// SaveSnapshot stores state, an opaque snapshot of the event as of seq, and
// in the same synced batch deletes journal records 2..seq. Record 1
// (EventCreated, the event definition) is kept forever, so the snapshot need
// not repeat the venue plan.
//
// seq must be between 1 and the event's last stored seq (else the error wraps
// ErrSequenceMismatch); state is at most SnapshotStateBytesMax bytes. A
// snapshot at or before the stored snapshot's seq is ignored (nil error).
// It may run concurrently with Appends to the same event: they do not wait
// for it.
func (s *Store) SaveSnapshot(eventID string, seq uint64, state []byte) error {
	if err := validateEventID(eventID); err != nil {
		return err
	}
	if len(state) > SnapshotStateBytesMax {
		return fmt.Errorf("persistence: snapshot of event %q: state has %d bytes, more than %d", eventID, len(state), SnapshotStateBytesMax)
	}
	// Snapshots are written one at a time (snapMu), but not under the
	// event's write lock: the batch touches only the snapshot key and
	// records up to seq, all already stored, so Appends of later records go
	// on while several megabytes are committed. snapMu makes the check
	// against the stored snapshot's seq and the commit one step, so an older
	// snapshot never overwrites a newer one whose range delete has run.
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	ev, unlock, err := s.beginWrite(eventID)
	if err != nil {
		return err
	}
	if seq == 0 || seq > ev.lastSeq {
		unlock()
		return fmt.Errorf("%w: event %q: snapshot at seq %d, but the journal holds seqs 1..%d",
			ErrSequenceMismatch, eventID, seq, ev.lastSeq)
	}
	if seq <= ev.snapSeq {
		unlock()
		return nil
	}
	ev.mu.Unlock() // keep closeMu (read) until the commit is done
	defer s.closeMu.RUnlock()
	b := s.db.NewBatch()
	defer b.Close()
	// The frame is written straight into the batch: a stadium's snapshot is
	// megabytes, and a separate frame buffer would be one more copy in new
	// pages.
	key := snapKey(eventID)
	op := b.SetDeferred(len(key), snapshotHeaderBytes+len(state)+crcBytes)
	copy(op.Key, key)
	if frame := appendSnapshotFrame(op.Value[:0], seq, state); len(frame) != len(op.Value) || &frame[0] != &op.Value[0] {
		return fmt.Errorf("persistence: snapshot of event %q at seq %d: frame of %d bytes, %d reserved", eventID, seq, len(frame), len(op.Value))
	}
	if err := op.Finish(); err != nil {
		return fmt.Errorf("persistence: snapshot of event %q at seq %d: %w", eventID, seq, err)
	}
	if seq >= 2 {
		if err := b.DeleteRange(logKey(eventID, 2), logKey(eventID, seq+1), nil); err != nil {
			return fmt.Errorf("persistence: snapshot of event %q at seq %d: %w", eventID, seq, err)
		}
	}
	fatal, err := s.commit(b)
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if err != nil || fatal != "" {
		ev.loaded = false
		return commitError(fatal, err, fmt.Sprintf("snapshot of event %q at seq %d", eventID, seq))
	}
	if ev.loaded {
		ev.snapSeq = max(ev.snapSeq, seq)
	}
	return nil
}

// lockEvent returns the event's eventLog, locked and loaded. The caller holds
// closeMu for reading and unlocks ev.mu.
// beginWrite opens a write to eventID: the store is open and has not failed,
// and the event's lock is held until unlock.
func (s *Store) beginWrite(eventID string) (ev *eventLog, unlock func(), err error) {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return nil, nil, ErrClosed
	}
	if err := s.failed(); err != nil {
		s.closeMu.RUnlock()
		return nil, nil, err
	}
	if ev, err = s.lockEvent(eventID); err != nil {
		s.closeMu.RUnlock()
		return nil, nil, err
	}
	return ev, func() { ev.mu.Unlock(); s.closeMu.RUnlock() }, nil
}

func (s *Store) lockEvent(eventID string) (*eventLog, error) {
	s.mu.Lock()
	ev := s.events[eventID]
	if ev == nil {
		ev = &eventLog{}
		s.events[eventID] = ev
	}
	s.mu.Unlock()
	ev.mu.Lock()
	if !ev.loaded {
		last, snap, err := s.readLastSeq(eventID)
		if err != nil {
			ev.mu.Unlock()
			return nil, err
		}
		ev.lastSeq, ev.snapSeq, ev.loaded = last, snap, true
	}
	return ev, nil
}

// LastSeq returns the last stored seq of eventID: 0 for an event without a
// journal. Records covered by a snapshot count as stored.
func (s *Store) LastSeq(eventID string) (uint64, error) {
	if err := validateEventID(eventID); err != nil {
		return 0, err
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	if s.db == nil { // a reopen failed: Reopen again
		return 0, s.failed()
	}
	s.mu.Lock()
	ev := s.events[eventID]
	s.mu.Unlock()
	if ev != nil {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		if ev.loaded {
			return ev.lastSeq, nil
		}
	}
	// Not cached: read without caching, so that looking up unknown ids does
	// not grow the map.
	last, _, err := s.readLastSeq(eventID)
	return last, err
}

// readLastSeq reads the last stored seq and the snapshot seq of eventID.
// After a snapshot of the whole journal only record 1 is left, so the last
// seq is the larger of the last log key and the snapshot seq.
func (s *Store) readLastSeq(eventID string) (last, snap uint64, err error) {
	snap, err = s.readSnapshotSeq(eventID)
	if err != nil {
		return 0, 0, err
	}
	prefix := logPrefix(eventID)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: logEnd(eventID)})
	if err != nil {
		return 0, 0, fmt.Errorf("persistence: read last seq of event %q: %w", eventID, err)
	}
	defer it.Close()
	if it.Last() {
		seq, ok := parseLogSeq(it.Key(), prefix)
		if !ok {
			return 0, 0, &CorruptionError{EventID: eventID, Key: formatKey(it.Key()), Reason: "malformed log key"}
		}
		last = seq
	}
	if err := it.Error(); err != nil {
		return 0, 0, fmt.Errorf("persistence: read last seq of event %q: %w", eventID, err)
	}
	return max(last, snap), snap, nil
}

// readSnapshotSeq reads and verifies the stored snapshot of eventID and
// returns its seq: 0 if there is none.
func (s *Store) readSnapshotSeq(eventID string) (uint64, error) {
	sk := snapKey(eventID)
	v, closer, err := s.db.Get(sk)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("persistence: read snapshot of event %q: %w", eventID, err)
	}
	defer closer.Close()
	seq, _, err := decodeSnapshotFrame(v)
	if err != nil {
		return 0, &CorruptionError{EventID: eventID, Key: formatKey(sk), Reason: "snapshot: " + err.Error()}
	}
	if seq == 0 {
		return 0, &CorruptionError{EventID: eventID, Key: formatKey(sk), Reason: "snapshot at seq 0"}
	}
	return seq, nil
}

// Events returns the ids of every event with a journal (any stored key),
// sorted.
func (s *Store) Events() ([]string, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.db == nil { // a reopen failed: Reopen again
		return nil, s.failed()
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(keyRoot), UpperBound: []byte("ev0")})
	if err != nil {
		return nil, fmt.Errorf("persistence: list events: %w", err)
	}
	defer it.Close()
	var ids []string
	for valid := it.First(); valid; {
		rest := it.Key()[len(keyRoot):]
		i := slices.Index(rest, '/')
		if i < 0 {
			valid = it.Next() // not our layout; no event owns it
			continue
		}
		id := string(rest[:i])
		ids = append(ids, id)
		valid = it.SeekGE(eventEnd(id)) // skip the rest of this event
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("persistence: list events: %w", err)
	}
	// Key order is not id order ("a-b/" sorts before "a/"), so sort.
	slices.Sort(ids)
	return ids, nil
}

// Checkpoint writes a consistent copy of the whole store to destDir (on the
// store's FS), which must not exist. The copy opens with Open.
func (s *Store) Checkpoint(destDir string) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if s.db == nil { // a reopen failed: Reopen again
		return s.failed()
	}
	if err := s.db.Checkpoint(destDir); err != nil {
		return fmt.Errorf("persistence: checkpoint to %s: %w", destDir, err)
	}
	return nil
}

// pebbleLogger adapts slog to pebble.Logger. Fatalf logs at error level and
// returns instead of exiting: Pebble calls it for failures it considers
// unrecoverable for the DB handle (a failed WAL write or MANIFEST sync), and
// boxoffice recovers from those by reopening, not by dying. It records the
// first such message in fatal, which turns every later write into ErrFailed.
type pebbleLogger struct {
	log   *slog.Logger
	fatal *atomic.Pointer[string]
}

// Infof logs at debug level: Pebble's informational lines (WAL replay,
// compactions) are routine for an operator.
func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.fatal.CompareAndSwap(nil, &msg)
	l.log.Error(msg, "fatal", true)
}

var _ pebble.Logger = pebbleLogger{}
