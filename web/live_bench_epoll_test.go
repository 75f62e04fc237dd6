//go:build linux

package web

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// epollClients follows the live feed of many fan-out subscribers from a
// few goroutines, each waiting on its own epoll set, instead of a goroutine
// per connection. It is the client side of BenchmarkLiveFanout only: a real
// subscriber is a browser on its own machine, while here the 5,000
// subscribers share the server's two cores, and with a goroutine per
// connection every frame cost the client process two read(2) calls (the
// frame, then EAGAIN before parking), a park and a wake-up through the
// netpoller: 0.60 cores at 5,000 holds+cancels/s, a third of the machine
// (docs/BENCHMARKS.md, 2026-12-01 "client"). Here a ready connection is
// read once, into the loop's buffer; frames are parsed with gobwas/ws's
// header reader, only their first bytes are kept (the versions), and their
// receipt is timed when their last byte has been read.
//
// The connections are dialled by gorilla/websocket like the verifiers';
// detach then takes the socket over from gorilla and Go's netpoller.
type epollClients struct {
	epfds []int
	byFD  []*fanoutSubscriber // read-only once the loops run
	poll  time.Duration       // how long a loop sleeps when no connection is ready
	// inflaters[i] serves the connections of loop i (i%loops), which the
	// loop alone uses once it runs.
	inflaters []*headInflater
	stop      atomic.Bool
	wg        sync.WaitGroup
}

// rawFeed is the parse state of one detached subscriber's connection. It
// is owned by the loop that serves the connection.
type rawFeed struct {
	fd      int
	pending []byte // a frame header split across reads

	// The frame being read.
	left int64 // its payload bytes still to come
	ctl  bool  // a control frame (its payload is kept whole in ctlBuf)
	op   ws.OpCode
	fin  bool

	msgOp    ws.OpCode // the data message being read (continuation frames keep it)
	deflated bool      // it is compressed (RSV1 on its first frame: permessage-deflate)
	head     [512]byte // the first bytes of its payload: enough to inflate the versions from
	headN    int
	inflate  *headInflater // the loop's
	ctlBuf   [125]byte
	ctlN     int
}

// detach takes c's socket from gorilla and Go's netpoller: it duplicates
// the descriptor (non-blocking, as Go left it), keeps the bytes gorilla had
// already buffered, and closes c, which removes the original descriptor
// from the netpoller; the socket stays open through the duplicate.
func detach(c *websocket.Conn) (fd int, buffered []byte, err error) {
	br, err := gorillaReader(c)
	if err != nil {
		return -1, nil, err
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		buffered = bytes.Clone(b)
	}
	tcp, ok := c.NetConn().(*net.TCPConn)
	if !ok {
		return -1, nil, fmt.Errorf("detach: %T is not a TCP connection", c.NetConn())
	}
	sc, err := tcp.SyscallConn()
	if err != nil {
		return -1, nil, err
	}
	ctlErr := sc.Control(func(orig uintptr) {
		fd, err = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	})
	if ctlErr != nil {
		return -1, nil, ctlErr
	}
	if err != nil {
		return -1, nil, fmt.Errorf("detach: dup: %w", err)
	}
	_ = c.Close() // gorilla sends nothing on Close
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return -1, nil, err
	}
	return fd, buffered, nil
}

// startEpollClients detaches subs' connections and follows them from loops
// goroutines. Call stopAndClose when done.
func startEpollClients(subs []*fanoutSubscriber, loops int, poll time.Duration) (*epollClients, error) {
	ec := &epollClients{poll: poll}
	for range loops {
		ec.inflaters = append(ec.inflaters, new(headInflater))
	}
	maxFD := 0
	for i, s := range subs {
		fd, buffered, err := detach(s.conn)
		if err != nil {
			return nil, err
		}
		s.raw = &rawFeed{fd: fd, inflate: ec.inflaters[i%loops]}
		s.consume(buffered, time.Now())
		maxFD = max(maxFD, fd)
	}
	ec.byFD = make([]*fanoutSubscriber, maxFD+1)
	for range loops {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return nil, err
		}
		ec.epfds = append(ec.epfds, epfd)
	}
	for i, s := range subs {
		ec.byFD[s.raw.fd] = s
		if s.ended.Load() {
			continue
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(s.raw.fd)}
		if err := unix.EpollCtl(ec.epfds[i%loops], unix.EPOLL_CTL_ADD, s.raw.fd, &ev); err != nil {
			return nil, err
		}
	}
	for _, epfd := range ec.epfds {
		ec.wg.Go(func() { ec.loop(epfd) })
	}
	return ec, nil
}

// loop serves the connections of one epoll set until stop: one read per
// ready connection per wait, level-triggered (what is left is reported
// again).
func (ec *epollClients) loop(epfd int) {
	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	clear(buf) // fault its pages in now
	for !ec.stop.Load() {
		n, err := unix.EpollWait(epfd, events, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			panic(fmt.Sprintf("epoll_wait: %v", err))
		}
		if n == 0 {
			time.Sleep(ec.poll)
			continue
		}
		for _, ev := range events[:n] {
			s := ec.byFD[ev.Fd]
			m, err := unix.Read(int(ev.Fd), buf)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if m > 0 {
				s.consume(buf[:m], time.Now())
			} else {
				s.ended.Store(true) // the server closed the connection, or it failed
			}
			if s.ended.Load() {
				_ = unix.EpollCtl(epfd, unix.EPOLL_CTL_DEL, int(ev.Fd), nil)
			}
		}
	}
}

// stopAndClose ends the loops, then closes every connection.
func (ec *epollClients) stopAndClose() {
	ec.stop.Store(true)
	ec.wg.Wait()
	for fd, s := range ec.byFD {
		if s != nil {
			_ = unix.Close(fd)
		}
	}
	for _, epfd := range ec.epfds {
		_ = unix.Close(epfd)
	}
}

// consume parses the bytes p read from s's connection at now.
func (s *fanoutSubscriber) consume(p []byte, now time.Time) {
	f := s.raw
	if len(f.pending) > 0 {
		p = append(f.pending, p...)
		f.pending = nil
	}
	for len(p) > 0 && !s.ended.Load() {
		if f.left == 0 { // a frame header
			r := bytes.NewReader(p)
			h, err := ws.ReadHeader(r)
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				f.pending = bytes.Clone(p)
				return
			}
			first := !h.OpCode.IsControl() && h.OpCode != ws.OpContinuation
			if err != nil || h.Masked || (h.Rsv != 0 && (!first || h.Rsv != ws.Rsv(true, false, false))) {
				s.ended.Store(true) // a protocol error: gorilla's reader would fail too
				return
			}
			p = p[len(p)-r.Len():]
			f.op, f.fin, f.left = h.OpCode, h.Fin, h.Length
			f.ctl = h.OpCode.IsControl()
			if f.ctl {
				f.ctlN = 0
			} else if first {
				f.msgOp, f.headN, f.deflated = h.OpCode, 0, h.Rsv1()
			}
			if f.left == 0 {
				s.frameDone(now)
			}
			continue
		}
		k := int(min(int64(len(p)), f.left))
		if f.ctl {
			f.ctlN += copy(f.ctlBuf[f.ctlN:], p[:k])
		} else {
			f.headN += copy(f.head[f.headN:], p[:k])
		}
		p, f.left = p[k:], f.left-int64(k)
		if f.left == 0 {
			s.frameDone(now)
		}
	}
}

// frameDone acts on a frame read in full: a data message's last frame is
// checked and sampled as read does; a ping is answered, a close frame
// recorded and answered.
func (s *fanoutSubscriber) frameDone(now time.Time) {
	f := s.raw
	switch {
	case f.op == ws.OpPing:
		s.writeFrame(ws.NewPongFrame(bytes.Clone(f.ctlBuf[:f.ctlN])))
	case f.op == ws.OpClose:
		code, _ := ws.ParseCloseFrameData(f.ctlBuf[:f.ctlN])
		s.closeCode = int(code)
		s.writeFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(code, "")))
		s.ended.Store(true)
	case f.ctl: // a pong: nothing to do
	case f.fin:
		head := f.head[:f.headN]
		if f.deflated {
			head = f.inflate.head(head)
		}
		if !s.delta(head, now) {
			s.ended.Store(true)
		}
	}
}

// headInflater inflates the first bytes of permessage-deflate messages
// (RFC 7692, no context takeover: each message on its own), reusing one
// decompressor. Given a prefix of a message's compressed payload, Go's
// inflater returns what it decoded before the input ran out (~4.5 µs for
// a 64-byte header here) instead of decoding the whole message.
type headInflater struct {
	src bytes.Reader
	r   io.ReadCloser
	out [64]byte
	buf []byte
}

// head returns up to 64 bytes inflated from the start of compressed; the
// empty stored block the sender stripped (RFC 7692 7.2.2) is put back, so a
// message given whole inflates to its end.
func (in *headInflater) head(compressed []byte) []byte {
	in.buf = append(append(in.buf[:0], compressed...), 0x00, 0x00, 0xff, 0xff)
	in.src.Reset(in.buf)
	if in.r == nil {
		in.r = flate.NewReader(&in.src)
	} else if err := in.r.(flate.Resetter).Reset(&in.src, nil); err != nil {
		return nil
	}
	n, _ := io.ReadFull(in.r, in.out[:])
	return in.out[:n]
}

// writeFrame sends a (masked) client frame; small, so one write does it.
func (s *fanoutSubscriber) writeFrame(fr ws.Frame) {
	var b bytes.Buffer
	if ws.WriteFrame(&b, ws.MaskFrameInPlace(fr)) == nil {
		_, _ = unix.Write(s.raw.fd, b.Bytes())
	}
}
