// Package persistence is the journal of every event, on Pebble: the
// write-ahead log of engine records, snapshots of event state, recovery,
// verification and checkpoints. The event actor persists each group-commit
// batch with Append and answers its callers only after Append returns nil.
//
// # Key layout
//
// One key space per event, the id validated first (1–64 bytes of
// [A-Za-z0-9._-], so no id contains '/' and no id reaches into another's keys):
//
//	ev/<eventId>/log/<seq: 8 bytes big-endian>   one journal record
//	ev/<eventId>/snap                            the latest snapshot
//
// Log keys sort in seq order. Seqs are contiguous from 1; record 1 is always
// EventCreated and is kept forever (it holds the event definition, with the
// venue plan), while a snapshot at seq S deletes records 2..S in the same
// batch that stores it.
//
// # Framing
//
// A journal record value is
//
//	version (1 byte, = 1) | record type (1 byte, engine.RecordType) |
//	seq (8 bytes big-endian, equal to the key's) |
//	payload ((*engine.Record).AppendPayload) |
//	CRC-32C Castagnoli (4 bytes big-endian) over all bytes before it
//
// and a snapshot value is
//
//	version (1 byte, = 1) | seq (8 bytes big-endian) | state (opaque) | CRC-32C
//
// The byte layout is pinned by testdata/golden/records.golden.
//
// # Contract
//
//  1. Durability. Append writes its records as one Pebble batch committed with
//     pebble.Sync and returns nil only after the commit is on stable storage.
//     A record whose Append returned nil survives a crash (of the process
//     or the machine, on a disk that honours fsync); a record whose
//     Append returned an error may or may not have been stored, so the caller
//     recovers from the journal before acknowledging anything more.
//     SaveSnapshot is synced the same way.
//  2. Ordering and fencing. Append takes the expected next seq; it writes only
//     if that is the event's last stored seq + 1 and the records are numbered
//     from it without gaps, else it fails with ErrSequenceMismatch and writes
//     nothing. One event's Appends are therefore applied in seq order, one at
//     a time; different events' Appends run concurrently and share fsyncs in
//     Pebble's commit pipeline. The store keeps each written event's last seq
//     in memory, read from the store on first use.
//  3. Failure. Pebble treats a failed WAL write or sync as fatal. The store
//     gives Pebble a logger that never exits the process; after such a
//     failure every write returns ErrFailed, and the owner closes and reopens
//     the Store and recovers the affected events.
//  4. Corruption. Load and Scan verify every value right after reading it:
//     length, version, checksum, the seq in the value against the key, the
//     sequence without gaps, the payload decoding (canonically). The first
//     failure stops the event's recovery with a *CorruptionError naming the
//     event, seq and key (for a gap, the first missing seq); a record is never
//     skipped. Other events are unaffected.
//
// All file access goes through Options.FS, so tests run on vfs.NewMem and
// simulate crashes with vfs.NewCrashableMem.
package persistence
