package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// The generator's HTTP/1.1 client. Requests and answers are written and
// parsed by fasthttp (Request.Write, Response.ReadLimitBody); connections
// are the generator's own: a bounded pool of plain keep-alive connections
// (Config.Connections of them at most), each used by one goroutine at a
// time, which writes the request and reads the answer itself. Unlike
// net/http's Transport (two goroutines per connection and a hand-over
// between them per request) a request costs one write and one read
// system call and no goroutine switch besides the wake-up on the answer;
// unlike fasthttp's HostClient it starts no goroutine that outlives Run.

// Connection timings.
const (
	dialTimeout = 5 * time.Second
	// idleReuseMax: a connection idle longer than this is closed rather
	// than reused (the server may have closed it meanwhile; its idle
	// timeout is minutes, a proxy's may be shorter).
	idleReuseMax    = 5 * time.Second
	readBufferSize  = 16 << 10
	writeBufferSize = 4 << 10
)

// conn is one keep-alive connection to the target.
type conn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUse  time.Time
	answered int // requests answered on it
}

// connPool bounds the connections to the target and keeps the idle ones.
type connPool struct {
	network, addr string
	tls           *tls.Config   // nil: plain TCP
	slots         chan struct{} // one token per open connection
	idle          chan *conn    // idle connections, newest last
}

func newConnPool(u *url.URL, connections int) *connPool {
	p := &connPool{
		network: "tcp",
		addr:    u.Host,
		slots:   make(chan struct{}, connections),
		idle:    make(chan *conn, connections),
	}
	port := u.Port()
	if u.Scheme == "https" {
		p.tls = &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}
		if port == "" {
			port = "443"
		}
	} else if port == "" {
		port = "80"
	}
	p.addr = net.JoinHostPort(u.Hostname(), port)
	return p
}

// get returns an idle connection or dials a new one when fewer than the
// bound are open; else it waits for one to come back.
func (p *connPool) get(ctx context.Context, deadline time.Time) (*conn, error) {
	for {
		select {
		case c := <-p.idle:
			if c = p.fresh(c); c != nil {
				return c, nil
			}
			continue
		default:
		}
		wait := time.NewTimer(time.Until(deadline))
		select {
		case c := <-p.idle:
			wait.Stop()
			if c = p.fresh(c); c != nil {
				return c, nil
			}
		case p.slots <- struct{}{}:
			wait.Stop()
			c, err := p.dial(ctx, deadline)
			if err != nil {
				<-p.slots
				return nil, err
			}
			return c, nil
		case <-ctx.Done():
			wait.Stop()
			return nil, ctx.Err()
		case <-wait.C:
			return nil, os.ErrDeadlineExceeded
		}
	}
}

// fresh returns c if it has not been idle too long, else closes it.
func (p *connPool) fresh(c *conn) *conn {
	if time.Since(c.lastUse) > idleReuseMax {
		p.discard(c)
		return nil
	}
	return c
}

func (p *connPool) dial(ctx context.Context, deadline time.Time) (*conn, error) {
	d := net.Dialer{Timeout: dialTimeout, Deadline: deadline, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, p.network, p.addr)
	if err != nil {
		return nil, err
	}
	if p.tls != nil {
		tc := tls.Client(nc, p.tls)
		hctx, cancel := context.WithDeadline(ctx, deadline)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, readBufferSize), bw: bufio.NewWriterSize(nc, writeBufferSize)}, nil
}

// put gives back a connection that can be reused.
func (p *connPool) put(c *conn) {
	c.lastUse = time.Now()
	select {
	case p.idle <- c:
	default: // cannot happen: every idle connection holds a slot
		p.discard(c)
	}
}

// discard closes a connection and frees its slot.
func (p *connPool) discard(c *conn) {
	c.nc.Close()
	<-p.slots
}

// close closes the idle connections.
func (p *connPool) close() {
	for {
		select {
		case c := <-p.idle:
			p.discard(c)
		default:
			return
		}
	}
}

// exchange is one goroutine's request and answer, reused request after
// request. A worker's exchange keeps its connection between requests;
// others give it back to the pool after each.
type exchange struct {
	api  *apiClient
	req  fasthttp.Request
	res  fasthttp.Response
	c    *conn
	keep bool // keep c between requests
}

func (api *apiClient) newExchange(keep bool) *exchange {
	return &exchange{api: api, keep: keep}
}

// release gives a kept connection back to the pool.
func (x *exchange) release() {
	if x.c != nil {
		x.api.pool.put(x.c)
		x.c = nil
	}
}

// do sends one request and reads its answer; the answer's body is valid
// until x's next request. A transport error is an answer with code
// transport_error, not an error: it is part of the measurement.
func (x *exchange) do(ctx context.Context, method, path, token string, body []byte, hdr [][2]string) answer {
	deadline := time.Now().Add(x.api.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	req := &x.req
	req.Reset()
	req.Header.SetNoDefaultContentType(true) // no Content-Type on a request without a body
	req.Header.SetMethod(method)
	req.Header.SetRequestURI(x.api.basePath + path)
	req.Header.SetHost(x.api.host)
	if body != nil {
		req.Header.SetContentType("application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range hdr {
		req.Header.Set(h[0], h[1])
	}
	if body != nil {
		req.SetBodyRaw(body)
	}
	// An answer to HEAD has the GET's Content-Length but no body: without
	// SkipBody the read waits for bytes that never come (a timeout).
	x.res.SkipBody = method == http.MethodHead
	retryable := method == http.MethodGet || method == http.MethodHead || method == http.MethodPut ||
		method == http.MethodDelete || hasHeader(hdr, "Idempotency-Key")
	for attempt := 0; ; attempt++ {
		reused, err := x.roundTrip(ctx, deadline)
		if err == nil {
			break
		}
		// A kept-alive connection the server closed meanwhile fails before
		// any answer: try once more on a new one when that is safe.
		if reused && attempt == 0 && retryable && staleConnError(err) && time.Now().Before(deadline) {
			continue
		}
		return answer{code: codeTransport}
	}
	res := &x.res
	a := answer{status: res.StatusCode(), body: res.Body()}
	if a.status >= 400 {
		if s, err := strconv.Atoi(string(res.Header.Peek("Retry-After"))); err == nil && s >= 0 {
			a.retryAfter = time.Duration(s) * time.Second
		}
	}
	return a
}

func hasHeader(hdr [][2]string, name string) bool {
	for _, h := range hdr {
		if h[0] == name {
			return true
		}
	}
	return false
}

// staleConnError: the connection ended before the answer began.
func staleConnError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// roundTrip writes x.req on a connection and reads the answer into x.res.
// reused: the connection had answered before.
func (x *exchange) roundTrip(ctx context.Context, deadline time.Time) (reused bool, err error) {
	c := x.c
	x.c = nil
	if c != nil && time.Since(c.lastUse) > idleReuseMax {
		x.api.pool.discard(c)
		c = nil
	}
	if c == nil {
		if c, err = x.api.pool.get(ctx, deadline); err != nil {
			return false, err
		}
	}
	reused = c.answered > 0
	if err = c.nc.SetDeadline(deadline); err != nil {
		x.api.pool.discard(c)
		return reused, err
	}
	if ctx.Done() != nil {
		// Cancelling ctx ends the request now: the deadline passes.
		stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	if err = x.req.Write(c.bw); err == nil {
		err = c.bw.Flush()
	}
	if err == nil {
		err = x.res.ReadLimitBody(c.br, responseBytesMax)
	}
	if err != nil || x.res.ConnectionClose() || ctx.Err() != nil {
		// (Cancelled, the connection may have been given a past deadline.)
		x.api.pool.discard(c)
		return reused, err
	}
	c.answered++
	c.lastUse = time.Now()
	if x.keep {
		x.c = c
	} else {
		x.api.pool.put(c)
	}
	return reused, nil
}
