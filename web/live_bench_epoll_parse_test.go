//go:build linux

package web

import (
	"bytes"
	"compress/flate"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// TestEpollClientParsesFrames: the fan-out benchmark's epoll client
// (consume) follows a stream of server frames however it is cut into reads:
// deltas whose headers and payloads are split at every byte, a fragmented
// message with a ping between its fragments (answered by a masked pong), and
// a close frame (its code recorded, answered, the subscriber ended). A delta
// that does not start at the subscriber's version is a gap.
func TestEpollClientParsesFrames(t *testing.T) {
	delta := func(from, to uint64) []byte {
		return []byte(`{"type":"delta","from":` + strconv.FormatUint(from, 10) + `,"version":` + strconv.FormatUint(to, 10) +
			`,"changes":{"A-1-1":"reserved"` + string(bytes.Repeat([]byte(`,"A-1-2":"available"`), 400)) + `}}`)
	}
	var stream bytes.Buffer
	put := func(f ws.Frame) {
		if err := ws.WriteFrame(&stream, f); err != nil {
			t.Fatal(err)
		}
	}
	put(ws.NewTextFrame(delta(10, 12))) // 8 KiB: a 16-bit length
	put(ws.NewTextFrame(delta(12, 13)))
	d := delta(13, 20)
	put(ws.NewFrame(ws.OpText, false, d[:30])) // the versions straddle two fragments
	put(ws.NewPingFrame([]byte("hi")))
	put(ws.NewFrame(ws.OpContinuation, true, d[30:]))
	put(ws.NewCloseFrame(ws.NewCloseFrameBody(4000, "resync")))
	put(ws.NewTextFrame(delta(20, 21))) // after the close: not read
	all := stream.Bytes()

	for _, cut := range []int{1, 2, 3, 7, 100, 4096, len(all)} {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		s := &fanoutSubscriber{raw: &rawFeed{fd: fds[0]}}
		s.version.Store(10)
		for p := all; len(p) > 0 && !s.ended.Load(); {
			n := min(cut, len(p))
			s.consume(bytes.Clone(p[:n]), time.Unix(0, int64(len(all)-len(p))))
			p = p[n:]
		}
		if !s.ended.Load() || s.closeCode != 4000 || s.gaps != 0 || s.version.Load() != 20 || len(s.samples) != 3 {
			t.Fatalf("cut %d: ended %v close %d gaps %d version %d samples %d, want ended, 4000, 0 gaps, version 20, 3 samples",
				cut, s.ended.Load(), s.closeCode, s.gaps, s.version.Load(), len(s.samples))
		}
		for i, want := range [][2]uint64{{10, 12}, {12, 13}, {13, 20}} {
			if smp := s.samples[i]; smp.From != want[0] || smp.To != want[1] {
				t.Fatalf("cut %d: sample %d is %d→%d, want %d→%d", cut, i, smp.From, smp.To, want[0], want[1])
			}
		}
		// What the client wrote: a masked pong "hi", then a masked close 4000.
		_ = unix.Close(fds[0])
		var got bytes.Buffer
		buf := make([]byte, 256)
		for {
			n, err := unix.Read(fds[1], buf)
			if n <= 0 || err != nil {
				break
			}
			got.Write(buf[:n])
		}
		_ = unix.Close(fds[1])
		pong, err := ws.ReadFrame(&got)
		if err != nil || pong.Header.OpCode != ws.OpPong || !pong.Header.Masked || string(ws.UnmaskFrame(pong).Payload) != "hi" {
			t.Fatalf("cut %d: first client frame %+v %v, want a masked pong \"hi\"", cut, pong.Header, err)
		}
		cl, err := ws.ReadFrame(&got)
		if code, _ := ws.ParseCloseFrameData(ws.UnmaskFrame(cl).Payload); err != nil || cl.Header.OpCode != ws.OpClose || !cl.Header.Masked || code != 4000 {
			t.Fatalf("cut %d: second client frame %+v %v, want a masked close 4000", cut, cl.Header, err)
		}
	}

	// A delta from another version is a gap and ends the subscriber.
	s := &fanoutSubscriber{raw: &rawFeed{fd: -1}}
	s.version.Store(11)
	var one bytes.Buffer
	_ = ws.WriteFrame(&one, ws.NewTextFrame(delta(10, 12)))
	s.consume(one.Bytes(), time.Now())
	if !s.ended.Load() || s.gaps != 1 || len(s.samples) != 0 {
		t.Fatalf("a delta from 10 at version 11: ended %v gaps %d samples %d, want ended, 1 gap, none", s.ended.Load(), s.gaps, len(s.samples))
	}
}

// TestEpollClientInflatesHeads: permessage-deflate frames (RSV1 on a
// message's first frame, the compressor's empty stored block stripped) are
// followed too: a large delta through the first 512 bytes of its payload
// only, a small one whole across two fragments. RSV1 on a continuation
// frame is a protocol error.
func TestEpollClientInflatesHeads(t *testing.T) {
	compress := func(p []byte) []byte {
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, flate.BestSpeed)
		_, _ = w.Write(p)
		_ = w.Flush()
		return bytes.TrimSuffix(z.Bytes(), []byte{0, 0, 0xff, 0xff})
	}
	var big bytes.Buffer
	big.WriteString(`{"type":"delta","from":10,"version":12,"changes":{`)
	for i := range 3000 {
		if i > 0 {
			big.WriteByte(',')
		}
		fmt.Fprintf(&big, `"%d-%d-%d":"reserved"`, 100+i%40, i%30, i%50)
	}
	big.WriteString("}}")
	bigZ := compress(big.Bytes())
	if len(bigZ) <= 512 {
		t.Fatalf("the large delta compresses to %d bytes: not past the kept head", len(bigZ))
	}
	smallZ := compress([]byte(`{"type":"delta","from":12,"version":13,"changes":{"A-1-1":"booked"}}`))
	var stream bytes.Buffer
	put := func(op ws.OpCode, fin, rsv1 bool, p []byte) {
		f := ws.NewFrame(op, fin, p)
		f.Header.Rsv = ws.Rsv(rsv1, false, false)
		if err := ws.WriteFrame(&stream, f); err != nil {
			t.Fatal(err)
		}
	}
	put(ws.OpText, true, true, bigZ)
	put(ws.OpText, false, true, smallZ[:5])
	put(ws.OpContinuation, true, false, smallZ[5:])
	for _, cut := range []int{1, 13, 4096, stream.Len()} {
		s := &fanoutSubscriber{raw: &rawFeed{fd: -1, inflate: new(headInflater)}}
		s.version.Store(10)
		for p := stream.Bytes(); len(p) > 0; {
			n := min(cut, len(p))
			s.consume(bytes.Clone(p[:n]), time.Now())
			p = p[n:]
		}
		if s.ended.Load() || s.gaps != 0 || s.version.Load() != 13 || len(s.samples) != 2 {
			t.Fatalf("cut %d: ended %v gaps %d version %d samples %d, want 0 gaps, version 13, 2 samples",
				cut, s.ended.Load(), s.gaps, s.version.Load(), len(s.samples))
		}
	}
	var bad bytes.Buffer
	stream = bad
	put(ws.OpText, false, true, smallZ[:5])
	put(ws.OpContinuation, true, true, smallZ[5:])
	s := &fanoutSubscriber{raw: &rawFeed{fd: -1, inflate: new(headInflater)}}
	s.version.Store(12)
	s.consume(stream.Bytes(), time.Now())
	if !s.ended.Load() || len(s.samples) != 0 {
		t.Fatalf("RSV1 on a continuation frame: ended %v, samples %d; want ended, none", s.ended.Load(), len(s.samples))
	}
}
