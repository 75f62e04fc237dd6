package loadgen

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkHTTPFloor measures the floor under every figure of the hot-event
// benchmark: what one HTTP round trip costs on this machine when neither
// side does any work. The generator's own client (64 workers, each on its
// kept-alive connection, as in a sale) posts a hold-sized body with a
// session-sized bearer token to a bare net/http server on loopback that
// answers 201 with a hold-sized JSON body. Both run in this process, so
// cpu-µs/op is server and generator together, as in the acceptance target;
// 2 cores ÷ that is the most requests per second this machine could carry
// if boxoffice itself cost nothing.
//
//	go test -run '^$' -bench BenchmarkHTTPFloor -benchtime 200000x ./cmd/boxoffice/loadgen
func BenchmarkHTTPFloor(b *testing.B) {
	answer := []byte(`{"id":"r-01JDZ8Q4K2M5N7P9R1S3T5V7X9","eventId":"harbour-stadium","status":"held","seats":["L112-14-7","L112-14-8"],"expiresAt":"2026-11-30T23:00:00Z","totalCents":17000,"currency":"EUR"}`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(answer)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	const workers = 64
	api := newAPIClient("http://"+ln.Addr().String(), workers, 10*time.Second)
	defer api.close()
	token := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + string(make([]byte, 140)) + ".0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
	for i := range token {
		if token[i] == 0 {
			token = token[:i] + "x" + token[i+1:]
		}
	}
	body := []byte(`{"eventId":"harbour-stadium","seatIds":["L112-14-7","L112-14-8"]}`)

	var wg sync.WaitGroup
	jobs := make(chan struct{}, workers)
	var failed sync.Once
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := api.newExchange(true)
			defer x.release()
			for range jobs {
				if a := x.do(context.Background(), http.MethodPost, "/v1/reservations", token, body, nil); a.status != http.StatusCreated {
					failed.Do(func() { b.Errorf("answer %d %s", a.status, a.code) })
				}
			}
		}()
	}
	for range b.N {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
