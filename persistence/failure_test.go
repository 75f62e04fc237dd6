package persistence

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

func TestPebbleLoggerFatalfDoesNotExit(t *testing.T) {
	var fatal atomic.Pointer[string]
	var out strings.Builder
	l := pebbleLogger{log: slog.New(slog.NewTextHandler(&out, nil)), fatal: &fatal}
	l.Fatalf("pebble: fatal commit error: %v", "disk on fire")
	l.Fatalf("second")
	// Still running: Fatalf returned. The first message is kept.
	if got := fatal.Load(); got == nil || *got != "pebble: fatal commit error: disk on fire" {
		t.Fatalf("recorded fatal message: got %v, want the first one", got)
	}
	if !strings.Contains(out.String(), "level=ERROR") || !strings.Contains(out.String(), "disk on fire") {
		t.Fatalf("log output: got %q, want an ERROR line with the message", out.String())
	}
}

// TestWALWriteFailure makes the WAL unwritable under an open store. Pebble
// logs the failed commit with Fatalf and returns nil from Commit; Append must
// nevertheless report the failure, keep failing, and the store must close
// and reopen with every acknowledged record.
func TestWALWriteFailure(t *testing.T) {
	mem := vfs.NewMem()
	walBroken := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	})}
	s, err := Open("db", Options{FS: errorfs.Wrap(mem, walBroken), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	mustAppend(t, s, "ev", genRecords("ev", 1, 3))

	walBroken.On()
	err = s.Append("ev", 4, genRecords("ev", 4, 2))
	if err == nil {
		t.Fatalf("Append with a failing WAL: got nil error")
	}
	t.Logf("Append with a failing WAL: %v", err)
	if err := s.Append("other", 1, genRecords("other", 1, 1)); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append after the failure: got %v, want ErrFailed", err)
	}
	if err := s.SaveSnapshot("ev", 3, []byte("s")); !errors.Is(err, ErrFailed) {
		t.Fatalf("SaveSnapshot after the failure: got %v, want ErrFailed", err)
	}
	_ = s.Close() // may report the failure again; must not hang or exit
	walBroken.Off()

	r := openStore(t, "db", mem)
	got, err := r.Load("ev")
	if err != nil {
		t.Fatalf("Load after reopening: %v", err)
	}
	if last := max(got.SnapshotSeq, 1) + uint64(len(got.Tail)); last < 3 {
		t.Fatalf("after reopening the journal ends at %d, want at least the acknowledged 3", last)
	}
	checkRecords(t, "Tail", got.Tail[:2], genRecords("ev", 2, 2))
	mustAppend(t, r, "ev", genRecords("ev", max(got.SnapshotSeq, 1)+uint64(len(got.Tail))+1, 1))
}

// TestReopenAfterFailure: a failed store is reopened in place (no new Store,
// no process restart) once the storage takes writes again; until then
// Reopen fails and the store stays failed. Every acknowledged record is
// there after the reopen, and appends continue from the durable end.
func TestReopenAfterFailure(t *testing.T) {
	mem := vfs.NewMem()
	broken := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	})}
	s, err := Open("db", Options{FS: errorfs.Wrap(mem, broken), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Reopen(); err != nil {
		t.Fatalf("Reopen of a healthy store: %v", err)
	}
	mustAppend(t, s, "ev", genRecords("ev", 1, 3))
	broken.On()
	if err := s.Append("ev", 4, genRecords("ev", 4, 1)); err == nil {
		t.Fatal("Append with a failing disk: nil error")
	}
	if err := s.Reopen(); err == nil {
		t.Fatal("Reopen while the disk still fails: nil error")
	}
	if _, err := s.LastSeq("ev"); !errors.Is(err, ErrFailed) {
		t.Fatalf("LastSeq after a failed reopen: %v, want ErrFailed", err)
	}
	broken.Off()
	if err := s.Reopen(); err != nil {
		t.Fatalf("Reopen once the disk works: %v", err)
	}
	last, err := s.LastSeq("ev")
	if err != nil || last < 3 {
		t.Fatalf("after the reopen the journal ends at %d (%v), want at least the acknowledged 3", last, err)
	}
	mustAppend(t, s, "ev", genRecords("ev", last+1, 2))
	got, err := s.Load("ev")
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, "Tail", got.Tail[:2], genRecords("ev", 2, 2))
}
