package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer answers each request on a connection with whatever respond
// writes, byte for byte: for answers net/http would not send.
type rawServer struct {
	ln      net.Listener
	accepts atomic.Int32
	open    atomic.Int32
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

func startRawServer(t *testing.T, respond func(conn int32, n int, r *http.Request, w *bufio.Writer) (closeAfter bool)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			id := s.accepts.Add(1)
			s.open.Add(1)
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					c.Close()
					s.open.Add(-1)
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
				}()
				br, bw := bufio.NewReader(c), bufio.NewWriter(c)
				for n := 0; ; n++ {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, r.Body)
					closeAfter := respond(id, n, r, bw)
					if bw.Flush() != nil || closeAfter {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() }

// answerWith writes a 200 whose body is body, with a Content-Length.
func answerWith(w *bufio.Writer, body string) {
	fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// TestReviewLateAnswerNotReadAsNext: request A times out; its answer comes
// later on the same connection. Request B must get B's answer, never A's.
func TestReviewLateAnswerNotReadAsNext(t *testing.T) {
	srv := startRawServer(t, func(_ int32, _ int, r *http.Request, w *bufio.Writer) bool {
		if r.URL.Path == "/slow" {
			time.Sleep(150 * time.Millisecond)
		}
		answerWith(w, "answer to "+r.URL.Path)
		return false
	})
	api := newAPIClient(srv.url(), 1, 50*time.Millisecond)
	defer api.close()
	x := api.newExchange(true)
	defer x.release()
	ctx := context.Background()
	if a := x.do(ctx, http.MethodGet, "/slow", "", nil, nil); a.code != codeTransport {
		t.Fatalf("slow: %+v %q", a, a.body)
	}
	time.Sleep(200 * time.Millisecond) // the late answer has arrived by now
	api.timeout = time.Second
	for _, p := range []string{"/b", "/c"} {
		a := x.do(ctx, http.MethodGet, p, "", nil, nil)
		if string(a.body) != "answer to "+p {
			t.Fatalf("GET %s got %q (status %d)", p, a.body, a.status)
		}
	}
	// The same through a cancelled context.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(30*time.Millisecond, cancel)
	if a := x.do(cctx, http.MethodGet, "/slow", "", nil, nil); a.code != codeTransport {
		t.Fatalf("cancelled slow: %+v", a)
	}
	time.Sleep(200 * time.Millisecond)
	if a := x.do(ctx, http.MethodGet, "/d", "", nil, nil); string(a.body) != "answer to /d" {
		t.Fatalf("after a cancelled request got %q", a.body)
	}
}

// TestReviewUnusualAnswers: 1xx before the answer, chunked bodies with
// trailers, a body delimited by the connection's close, HTTP/1.0 without
// keep-alive, Connection: close, 204 and 304 without a body — each answer
// is read whole, and the next request gets its own answer.
func TestReviewUnusualAnswers(t *testing.T) {
	srv := startRawServer(t, func(_ int32, _ int, r *http.Request, w *bufio.Writer) bool {
		p := r.URL.Path
		switch p {
		case "/early-hints":
			w.WriteString("HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n")
			w.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			answerWith(w, "answer to "+p)
		case "/chunked":
			w.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n")
			w.WriteString("5\r\nanswe\r\n")
			fmt.Fprintf(w, "%x\r\n%s\r\n", len("r to "+p), "r to "+p)
			w.WriteString("0\r\nX-T: 1\r\n\r\n")
		case "/until-close":
			w.WriteString("HTTP/1.1 200 OK\r\n\r\nanswer to " + p)
			return true
		case "/http10":
			fmt.Fprintf(w, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s", len("answer to "+p), "answer to "+p)
			return true
		case "/conn-close":
			fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len("answer to "+p), "answer to "+p)
			return true
		case "/no-content":
			w.WriteString("HTTP/1.1 204 No Content\r\n\r\n")
		case "/not-modified":
			w.WriteString("HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n")
		default:
			answerWith(w, "answer to "+p)
		}
		return false
	})
	api := newAPIClient(srv.url(), 1, 2*time.Second)
	defer api.close()
	x := api.newExchange(true)
	defer x.release()
	ctx := context.Background()
	for _, p := range []string{"/early-hints", "/chunked", "/until-close", "/http10", "/conn-close", "/no-content", "/not-modified"} {
		a := x.do(ctx, http.MethodGet, p, "", nil, nil)
		switch p {
		case "/no-content", "/not-modified":
			if a.status != map[string]int{"/no-content": 204, "/not-modified": 304}[p] || len(a.body) != 0 {
				t.Fatalf("GET %s: %+v %q", p, a, a.body)
			}
		default:
			if a.status != 200 || string(a.body) != "answer to "+p {
				t.Fatalf("GET %s: status %d %s body %q", p, a.status, a.code, a.body)
			}
		}
		next := p + "/next"
		if a := x.do(ctx, http.MethodGet, next, "", nil, nil); string(a.body) != "answer to "+next {
			t.Fatalf("after %s, GET %s got %q (%s)", p, next, a.body, a.code)
		}
	}
}

// TestReviewHead: an answer to HEAD carries the Content-Length of the GET
// but no body; the client must not wait for one.
func TestReviewHead(t *testing.T) {
	srv := startRawServer(t, func(_ int32, _ int, r *http.Request, w *bufio.Writer) bool {
		if r.Method == http.MethodHead {
			w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
			return false
		}
		answerWith(w, "answer to "+r.URL.Path)
		return false
	})
	api := newAPIClient(srv.url(), 1, 300*time.Millisecond)
	defer api.close()
	x := api.newExchange(true)
	defer x.release()
	ctx := context.Background()
	if a := x.do(ctx, http.MethodHead, "/h", "", nil, nil); a.status != 200 || len(a.body) != 0 {
		t.Fatalf("HEAD: %+v", a)
	}
	if a := x.do(ctx, http.MethodGet, "/g", "", nil, nil); string(a.body) != "answer to /g" {
		t.Fatalf("GET after HEAD: %+v %q", a, a.body)
	}
}

// TestReviewNoLeaks: after timeouts, server closes, cancellations and
// ordinary answers from many goroutines, giving everything back and closing
// the client leaves no connection open and no goroutine behind.
func TestReviewNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	var served atomic.Int32
	srv := startRawServer(t, func(_ int32, _ int, r *http.Request, w *bufio.Writer) bool {
		served.Add(1)
		switch {
		case strings.HasPrefix(r.URL.Path, "/slow"):
			time.Sleep(80 * time.Millisecond)
		case strings.HasPrefix(r.URL.Path, "/close"):
			w.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
			return true
		case strings.HasPrefix(r.URL.Path, "/drop"):
			return true // no answer at all
		}
		answerWith(w, "answer to "+r.URL.Path)
		return false
	})
	const conns = 4
	api := newAPIClient(srv.url(), conns, 40*time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			x := api.newExchange(g%2 == 0)
			defer x.release()
			for i := range 40 {
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if i%7 == 3 {
					ctx, cancel = context.WithTimeout(ctx, 10*time.Millisecond)
				}
				p := []string{"/ok", "/slow", "/close", "/drop", "/ok"}[(g+i)%5]
				p = fmt.Sprintf("%s-%d-%d", p, g, i)
				a := x.do(ctx, http.MethodGet, p, "", nil, nil)
				cancel()
				if a.status == 200 && strings.HasPrefix(p, "/ok") && string(a.body) != "answer to "+p {
					t.Errorf("GET %s got %q", p, a.body)
				}
			}
		})
	}
	wg.Wait()
	if n := len(api.pool.slots); n > conns || n != len(api.pool.idle) {
		t.Errorf("%d slots taken, %d idle connections: every connection should be idle now", n, len(api.pool.idle))
	}
	api.close()
	if n := len(api.pool.slots); n != 0 {
		t.Errorf("%d slots still taken after close", n)
	}
	deadline := time.Now().Add(2 * time.Second)
	for srv.open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.open.Load(); n != 0 {
		t.Errorf("%d connections still open at the server after close", n)
	}
	srv.ln.Close()
	srv.wg.Wait()
	deadline = time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
