package persistence

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/boxoffice/boxoffice/engine"
)

// Frame layout, shared by records and snapshots (doc.go):
//
//	record:   version | type | seq (8, big-endian) | payload | CRC-32C (4, big-endian)
//	snapshot: version | seq (8, big-endian) | state | CRC-32C (4, big-endian)
//
// The CRC covers every byte before it.
const (
	frameVersion        = 1
	crcBytes            = 4
	recordHeaderBytes   = 1 + 1 + seqBytes
	snapshotHeaderBytes = 1 + seqBytes

	// frameBufBytes is the scratch buffer Append allocates once and reuses for
	// every record of a batch (Pebble copies the value into the batch). Hold
	// records fit; a larger record (EventCreated with a venue plan) grows it
	// for the rest of that one call only.
	frameBufBytes = 4 << 10
)

func checksum(b []byte) uint32 {
	return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
}

// sealFrame appends the CRC-32C of buf[start:] to buf. Both frame kinds end
// with it.
func sealFrame(buf []byte, start int) []byte {
	return binary.BigEndian.AppendUint32(buf, checksum(buf[start:]))
}

// openFrame checks the length, version and CRC of a frame with a header of
// headerBytes (version byte included) and returns the frame without its CRC.
// The error text becomes CorruptionError.Reason.
func openFrame(b []byte, headerBytes int) ([]byte, error) {
	if len(b) < headerBytes+crcBytes {
		return nil, fmt.Errorf("value has %d bytes, want at least %d", len(b), headerBytes+crcBytes)
	}
	if b[0] != frameVersion {
		return nil, fmt.Errorf("unknown format version %d, want %d", b[0], frameVersion)
	}
	body, sum := b[:len(b)-crcBytes], binary.BigEndian.Uint32(b[len(b)-crcBytes:])
	if got := checksum(body); got != sum {
		return nil, fmt.Errorf("checksum mismatch: stored %08x, computed %08x", sum, got)
	}
	return body, nil
}

// appendRecordFrame appends the framed r to dst.
func appendRecordFrame(dst []byte, r *engine.Record) []byte {
	start := len(dst)
	dst = append(dst, frameVersion, byte(r.Type))
	dst = binary.BigEndian.AppendUint64(dst, r.Seq)
	dst = r.AppendPayload(dst)
	return sealFrame(dst, start)
}

// decodeRecordFrame verifies and decodes one framed record. scratch is a
// reusable buffer (may be nil); the possibly grown buffer is returned for the
// next call. Besides the frame checks it insists that the payload is exactly
// what AppendPayload writes for the decoded record (no overlong varints), so
// that whatever it accepts re-encodes to the same bytes.
func decodeRecordFrame(b, scratch []byte) (engine.Record, []byte, error) {
	body, err := openFrame(b, recordHeaderBytes)
	if err != nil {
		return engine.Record{}, scratch, err
	}
	typ := engine.RecordType(body[1])
	seq := binary.BigEndian.Uint64(body[2:recordHeaderBytes])
	payload := body[recordHeaderBytes:]
	r, err := engine.DecodePayload(seq, typ, payload)
	if err != nil {
		return engine.Record{}, scratch, err
	}
	scratch = r.AppendPayload(scratch[:0])
	if !bytes.Equal(scratch, payload) {
		return engine.Record{}, scratch, fmt.Errorf("payload of %s is not in canonical encoding", typ)
	}
	return r, scratch, nil
}

// appendSnapshotFrame appends the framed snapshot of state as of seq to dst.
func appendSnapshotFrame(dst []byte, seq uint64, state []byte) []byte {
	start := len(dst)
	dst = append(dst, frameVersion)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = append(dst, state...)
	return sealFrame(dst, start)
}

// decodeSnapshotFrame verifies a framed snapshot and returns its seq and
// state (aliasing b).
func decodeSnapshotFrame(b []byte) (uint64, []byte, error) {
	body, err := openFrame(b, snapshotHeaderBytes)
	if err != nil {
		return 0, nil, err
	}
	return binary.BigEndian.Uint64(body[1:snapshotHeaderBytes]), body[snapshotHeaderBytes:], nil
}
