package persistence

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/boxoffice/boxoffice/engine"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// corruptFixture returns a store with events "bad" and "good", records 1..6
// each, and the stored value of bad's record 3.
func corruptFixture(t *testing.T) (*Store, []byte) {
	t.Helper()
	s := openStore(t, "db", vfs.NewMem())
	mustAppend(t, s, "bad", genRecords("bad", 1, 6))
	mustAppend(t, s, "good", genRecords("good", 1, 6))
	return s, rawGet(t, s, logKey("bad", 3))
}

func rawGet(t *testing.T, s *Store, key []byte) []byte {
	t.Helper()
	v, closer, err := s.db.Get(key)
	if err != nil {
		t.Fatalf("raw Get %s: %v", formatKey(key), err)
	}
	defer closer.Close()
	return slices.Clone(v)
}

func rawSet(t *testing.T, s *Store, key, value []byte) {
	t.Helper()
	if err := s.db.Set(key, value, pebble.Sync); err != nil {
		t.Fatalf("raw Set %s: %v", formatKey(key), err)
	}
}

func rawDelete(t *testing.T, s *Store, key []byte) {
	t.Helper()
	if err := s.db.Delete(key, pebble.Sync); err != nil {
		t.Fatalf("raw Delete %s: %v", formatKey(key), err)
	}
}

// wantCorruption fails the test unless Load and Scan of eventID both return
// a *CorruptionError naming eventID, seq and key, with reason containing
// reasonPart; and the event "good" still loads.
func wantCorruption(t *testing.T, s *Store, eventID string, seq uint64, key []byte, reasonPart string) {
	t.Helper()
	_, loadErr := s.Load(eventID)
	scanErr := s.Scan(eventID, func(engine.Record) error { return nil })
	for op, err := range map[string]error{"Load": loadErr, "Scan": scanErr} {
		var ce *CorruptionError
		if !errors.As(err, &ce) {
			t.Fatalf("%s(%q): got %v, want a *CorruptionError", op, eventID, err)
		}
		if ce.EventID != eventID || ce.Seq != seq || ce.Key != formatKey(key) || !strings.Contains(ce.Reason, reasonPart) {
			t.Fatalf("%s(%q): got %+v, want event %q seq %d key %s reason containing %q",
				op, eventID, *ce, eventID, seq, formatKey(key), reasonPart)
		}
	}
	if _, err := s.Load("good"); err != nil {
		t.Fatalf("Load(good) next to a corrupt event: %v", err)
	}
}

func TestCorruptionFlippedByte(t *testing.T) {
	s, orig := corruptFixture(t)
	key := logKey("bad", 3)
	// Every single flipped byte is caught: the version byte by its value,
	// every other byte by the checksum.
	for i := range orig {
		v := slices.Clone(orig)
		v[i] ^= 0x10
		rawSet(t, s, key, v)
		reason := "checksum mismatch"
		if i == 0 {
			reason = "unknown format version"
		}
		wantCorruption(t, s, "bad", 3, key, reason)
	}
	rawSet(t, s, key, orig)
	if _, err := s.Load("bad"); err != nil {
		t.Fatalf("Load after restoring the value: %v", err)
	}
}

func TestCorruptionErrorMessage(t *testing.T) {
	s, orig := corruptFixture(t)
	v := slices.Clone(orig)
	v[len(v)/2] ^= 0xff
	rawSet(t, s, logKey("bad", 3), v)
	_, err := s.Load("bad")
	const want = `persistence: event "bad" record 3 (key ev/bad/log/0000000000000003): checksum mismatch`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error: got %v, want prefix %q", err, want)
	}
}

// reseal returns body (a frame without its CRC) with a valid CRC, so that
// only the checks after the checksum can catch it.
func reseal(body []byte) []byte { return sealFrame(slices.Clone(body), 0) }

func TestCorruptionPastChecksum(t *testing.T) {
	s, orig := corruptFixture(t)
	key := logKey("bad", 3)
	body := orig[:len(orig)-crcBytes]
	rec4 := rawGet(t, s, logKey("bad", 4))

	withType := func(typ engine.RecordType) []byte {
		b := slices.Clone(body)
		b[1] = byte(typ)
		return reseal(b)
	}
	// genRecord("bad", 3) has AtUnixMilli 30 (one varint byte, 0x3c): write
	// it overlong, 0xbc 0x00, which binary.Varint accepts.
	overlong := slices.Concat(body[:recordHeaderBytes], []byte{body[recordHeaderBytes] | 0x80, 0}, body[recordHeaderBytes+1:])
	cases := []struct {
		name, reason string
		value        []byte
	}{
		{"empty", "value has 0 bytes", nil},
		{"short", "value has 5 bytes", orig[:5]},
		{"value of another key", "value holds seq 4", rec4},
		{"trailing payload byte", "trailing bytes", reseal(append(slices.Clone(body), 0))},
		{"truncated payload", "truncated", reseal(body[:recordHeaderBytes+1])},
		{"unknown type", "unknown record type", withType(42)},
		{"EventCreated after 1", "only record 1", withType(engine.RecordEventCreated)},
		// Rejected by engine.DecodePayload or, failing that, by the
		// canonical-encoding check of decodeRecordFrame.
		{"overlong varint", "", reseal(overlong)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rawSet(t, s, key, c.value)
			wantCorruption(t, s, "bad", 3, key, c.reason)
		})
	}
}

func TestCorruptionGap(t *testing.T) {
	s, _ := corruptFixture(t)
	rawDelete(t, s, logKey("bad", 4))
	wantCorruption(t, s, "bad", 4, logKey("bad", 4), "record 4 is missing (next stored record is 5)")
}

func TestCorruptionMissingFirstRecord(t *testing.T) {
	s, _ := corruptFixture(t)
	rawDelete(t, s, logKey("bad", 1))
	wantCorruption(t, s, "bad", 1, logKey("bad", 1), "record 1 is missing")

	// Also when a snapshot covers the rest of the journal.
	if err := s.SaveSnapshot("good", 6, []byte("s")); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	rawDelete(t, s, logKey("good", 1))
	var ce *CorruptionError
	if _, err := s.Load("good"); !errors.As(err, &ce) || ce.Seq != 1 || !strings.Contains(ce.Reason, "record 1 is missing") {
		t.Fatalf("Load(good) without record 1: got %v, want a *CorruptionError for record 1", err)
	}
}

func TestCorruptionRecordFirstKeyWrong(t *testing.T) {
	s, _ := corruptFixture(t)
	// Record 1 replaced by a valid frame of another type.
	r := genRecord("bad", 2)
	r.Seq = 1
	rawSet(t, s, logKey("bad", 1), appendRecordFrame(nil, &r))
	wantCorruption(t, s, "bad", 1, logKey("bad", 1), "only record 1, is EventCreated")
}

func TestCorruptionSnapshot(t *testing.T) {
	s, _ := corruptFixture(t)
	if err := s.SaveSnapshot("bad", 4, []byte("state@4")); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	sk := snapKey("bad")
	orig := rawGet(t, s, sk)
	v := slices.Clone(orig)
	v[len(v)-crcBytes-1] ^= 1 // last state byte
	rawSet(t, s, sk, v)
	wantCorruption(t, s, "bad", 0, sk, "snapshot: checksum mismatch")

	// A record the snapshot covers that is still stored.
	rawSet(t, s, sk, orig)
	r := genRecord("bad", 3)
	rawSet(t, s, logKey("bad", 3), appendRecordFrame(nil, &r))
	wantCorruption(t, s, "bad", 3, logKey("bad", 3), "unexpected record 3: want 5")
}

func TestCorruptionMalformedKey(t *testing.T) {
	s, _ := corruptFixture(t)
	key := append(logPrefix("bad"), 1, 2, 3)
	rawSet(t, s, key, []byte("x"))
	var ce *CorruptionError
	if _, err := s.Load("bad"); !errors.As(err, &ce) || ce.Key != `ev/bad/log/\x01\x02\x03` {
		t.Fatalf("Load with a 3-byte seq key: got %v, want a *CorruptionError with key %s", err, `ev/bad/log/\x01\x02\x03`)
	}
}

func TestFormatKey(t *testing.T) {
	cases := map[string]string{
		string(logKey("ev-1", 258)): "ev/ev-1/log/0000000000000102",
		string(snapKey("ev-1")):     "ev/ev-1/snap",
		"ev/a/log/\x00":             `ev/a/log/\x00`,
		"ev/a\\b/log/" + string(binary.BigEndian.AppendUint64(nil, 1)): `ev/a\x5cb/log/\x00\x00\x00\x00\x00\x00\x00\x01`,
	}
	for key, want := range cases {
		if got := formatKey([]byte(key)); got != want {
			t.Errorf("formatKey(%q): got %s, want %s", key, got, want)
		}
	}
}
