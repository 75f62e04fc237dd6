package persistence

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Key layout (see doc.go). Event ids never contain '/', so the keys of one
// event are exactly the keys in [ev/<id>/, ev/<id>0): '0' is the byte after
// '/'.
const (
	keyRoot       = "ev/"
	keyLogInfix   = "/log/"
	keySnapSuffix = "/snap"
	seqBytes      = 8
)

// EventIDBytesMax is the longest event id the store accepts, in bytes.
const EventIDBytesMax = 64

// validateEventID reports whether id is 1–EventIDBytesMax bytes of
// [A-Za-z0-9._-]. Checking before building a key means that no id can reach
// into another event's key space.
func validateEventID(id string) error {
	if len(id) == 0 || len(id) > EventIDBytesMax {
		return fmt.Errorf("%w: %q has %d bytes, want 1 to %d", ErrInvalidEventID, id, len(id), EventIDBytesMax)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: %q has byte %#02x at %d, want [A-Za-z0-9._-]", ErrInvalidEventID, id, c, i)
		}
	}
	return nil
}

// eventPrefix returns ev/<id>/, the first key of the event's key space.
func eventPrefix(id string) []byte { return []byte(keyRoot + id + "/") }

// eventEnd returns ev/<id>0, the first key past the event's key space.
func eventEnd(id string) []byte { return []byte(keyRoot + id + "0") }

// logPrefix returns ev/<id>/log/.
func logPrefix(id string) []byte { return []byte(keyRoot + id + keyLogInfix) }

// appendLogKey appends ev/<id>/log/<seq big-endian> to dst.
func appendLogKey(dst []byte, id string, seq uint64) []byte {
	dst = append(dst, keyRoot...)
	dst = append(dst, id...)
	dst = append(dst, keyLogInfix...)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func logKey(id string, seq uint64) []byte { return appendLogKey(nil, id, seq) }

// snapKey returns ev/<id>/snap.
func snapKey(id string) []byte { return []byte(keyRoot + id + keySnapSuffix) }

// parseLogSeq returns the seq of a key that starts with prefix (a logPrefix)
// and reports whether the rest is exactly 8 bytes.
func parseLogSeq(key, prefix []byte) (uint64, bool) {
	if len(key) != len(prefix)+seqBytes {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[len(prefix):]), true
}

// formatKey renders a key for error messages and logs: a log key as
// ev/<id>/log/ followed by its 8 seq bytes as 16 hex digits, anything else
// with non-printable bytes escaped as \xNN.
func formatKey(key []byte) string {
	s := string(key)
	if strings.HasPrefix(s, keyRoot) {
		if i := strings.Index(s[len(keyRoot):], keyLogInfix); i >= 0 {
			head := len(keyRoot) + i + len(keyLogInfix)
			if len(s)-head == seqBytes && validateEventID(s[len(keyRoot):len(keyRoot)+i]) == nil {
				return fmt.Sprintf("%s%016x", s[:head], s[head:])
			}
		}
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 0x20 && c < 0x7f && c != '\\' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

// logEnd returns ev/<id>/log0, the first key past the event's log keys.
func logEnd(id string) []byte { return []byte(keyRoot + id + "/log0") }
