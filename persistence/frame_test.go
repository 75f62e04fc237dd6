package persistence

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/boxoffice/boxoffice/engine"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/records.golden from the current encoder")

var goldenPath = filepath.Join("..", "testdata", "golden", "records.golden")

// goldenSnapshotSeq and goldenSnapshotState make the snapshot line of the
// golden file.
const (
	goldenSnapshotSeq   = 8
	goldenSnapshotState = "opaque event state"
)

// TestGoldenRecords pins the on-disk format: the frames of sampleRecords
// (and of one snapshot) must equal testdata/golden/records.golden byte for
// byte, and every line of that file must decode to its record. Regenerate
// with `go test ./persistence -run Golden -update` only for an intended
// format change (which also needs a new frameVersion), and review the diff.
func TestGoldenRecords(t *testing.T) {
	var b strings.Builder
	b.WriteString("# Journal record frames of persistence's sampleRecords, one per line: <type> <hex>.\n")
	b.WriteString("# The last line is a snapshot frame. Regenerate: go test ./persistence -run Golden -update\n")
	recs := sampleRecords()
	for i := range recs {
		b.WriteString(recs[i].Type.String() + " " + hex.EncodeToString(appendRecordFrame(nil, &recs[i])) + "\n")
	}
	b.WriteString("snapshot " + hex.EncodeToString(appendSnapshotFrame(nil, goldenSnapshotSeq, []byte(goldenSnapshotState))) + "\n")
	got := b.String()

	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantBytes, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("read golden file (create it with -update): %v", err)
	}
	want := string(wantBytes)
	if got != want {
		gotLines, wantLines := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := range max(len(gotLines), len(wantLines)) {
			var g, w string
			if i < len(gotLines) {
				g = gotLines[i]
			}
			if i < len(wantLines) {
				w = wantLines[i]
			}
			if g != w {
				t.Errorf("%s line %d:\ngot  %s\nwant %s", goldenPath, i+1, g, w)
			}
		}
		t.Fatalf("encoding differs from %s", goldenPath)
	}

	// The reading direction: the stored bytes decode to the records.
	sc := bufio.NewScanner(bytes.NewReader(wantBytes))
	var decoded []engine.Record
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		name, hexFrame, _ := strings.Cut(line, " ")
		frame, err := hex.DecodeString(hexFrame)
		if err != nil {
			t.Fatalf("golden line %q: %v", line, err)
		}
		if name == "snapshot" {
			seq, state, err := decodeSnapshotFrame(frame)
			if err != nil || seq != goldenSnapshotSeq || string(state) != goldenSnapshotState {
				t.Fatalf("golden snapshot: got seq %d %q, %v; want %d %q", seq, state, err, goldenSnapshotSeq, goldenSnapshotState)
			}
			continue
		}
		r, _, err := decodeRecordFrame(frame, nil)
		if err != nil {
			t.Fatalf("golden %s: %v", name, err)
		}
		if r.Type.String() != name {
			t.Fatalf("golden line %s decodes to a %s", name, r.Type)
		}
		decoded = append(decoded, r)
	}
	checkRecords(t, "golden records", decoded, recs)
}

// TestSampleRecordsCoverEveryType keeps the golden file complete when a
// record type is added.
func TestSampleRecordsCoverEveryType(t *testing.T) {
	seen := map[engine.RecordType]bool{}
	for _, r := range sampleRecords() {
		seen[r.Type] = true
	}
	for typ := engine.RecordType(1); typ.Valid(); typ++ {
		if !seen[typ] {
			t.Errorf("sampleRecords has no %s record", typ)
		}
	}
}

// FuzzDecodeRecord checks the record frame decoder on any input: it never
// panics, and whatever it accepts re-encodes to exactly the same bytes. Each
// input is also tried with its last 4 bytes replaced by a valid CRC, so that
// the fuzzer reaches the checks after the checksum.
func FuzzDecodeRecord(f *testing.F) {
	recs := sampleRecords()
	for i := range recs {
		f.Add(appendRecordFrame(nil, &recs[i]))
	}
	f.Add([]byte{})
	f.Add([]byte{frameVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeRecord(t, b)
		if len(b) >= crcBytes {
			checkDecodeRecord(t, sealFrame(slices.Clone(b[:len(b)-crcBytes]), 0))
		}
	})
}

func checkDecodeRecord(t *testing.T, b []byte) {
	r, _, err := decodeRecordFrame(b, nil)
	if err != nil {
		return
	}
	if again := appendRecordFrame(nil, &r); !bytes.Equal(again, b) {
		t.Fatalf("decoded %+v from\n%x\nbut it encodes to\n%x", r, b, again)
	}
	if r2, _, err := decodeRecordFrame(appendRecordFrame(nil, &r), nil); err != nil || !reflect.DeepEqual(r2, r) {
		t.Fatalf("re-decoding %+v: got %+v, %v", r, r2, err)
	}
}

// FuzzDecodeSnapshot does the same for snapshot frames.
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(appendSnapshotFrame(nil, goldenSnapshotSeq, []byte(goldenSnapshotState)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, sealFrame(slices.Clone(b[:max(len(b)-crcBytes, 0)]), 0)} {
			seq, state, err := decodeSnapshotFrame(in)
			if err != nil {
				continue
			}
			if again := appendSnapshotFrame(nil, seq, state); !bytes.Equal(again, in) {
				t.Fatalf("decoded seq %d %q from\n%x\nbut it encodes to\n%x", seq, state, in, again)
			}
		}
	})
}
