package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gorilla/websocket"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/engine"
)

// BenchmarkLiveFanout measures the live feed's fan-out on loopback: 5,000
// WebSocket subscribers of the 48,568-seat stadium event while holds and
// cancels (two seats each) run open-loop at a fixed rate, for 10 s per rate.
// The subscribers run in a child process (this test binary, running
// TestLiveFanoutClients), so that the server's heap is measured alone; both
// processes share the machine's cores.
//
// Reported per rate:
//   - p50-ms, p99-ms, max-ms: commit-to-receipt latency of every seat change
//     committed after the warm-up (from the moment the event actor hands its
//     batch to the hub's Apply to the moment a subscriber has read and parsed
//     the frame carrying it), over all subscribers, weighted by changes;
//   - cold-p99-ms: the same over every change of the load, warm-up included;
//   - frame-p99-ms: the same for the oldest change in each frame (the
//     latency a frame adds at worst);
//   - KiB/sub: server heap and goroutine stacks per subscriber, idle, after
//     all have connected (live heap after two GCs, before − after);
//   - dropped: subscribers closed by the server (4000 or a write timeout);
//     lagging: subscribers that had not reached the final version 10 s after
//     the load stopped;
//   - ops/s: holds and cancels answered per second (the target rate when
//     the server keeps up).
//
// Every subscriber checks that each delta starts where the previous frame
// ended; 20 of them take a snapshot, decode every frame in full and compare
// their final state with GET seats. BOXOFFICE_FANOUT_SUBSCRIBERS,
// BOXOFFICE_FANOUT_RATES (comma-separated) and BOXOFFICE_FANOUT_SECONDS
// change the defaults; BOXOFFICE_FANOUT_FRAME_MS and
// BOXOFFICE_FANOUT_FRAMEMAX_MS set the feed's frame interval bounds (equal:
// a fixed interval), BOXOFFICE_FANOUT_GROUPS its number of groups (1, 100
// and 100: the feed as it was before the groups and the adaptive interval).
// The load runs BOXOFFICE_FANOUT_WARMUP_SECONDS (default 2; 0: none) before
// the measured seconds, at the same rate: in this VM the first second of
// load after an idle spell costs the machine ~1 core more (the client
// process's kernel-side receive copies, docs/BENCHMARKS.md "Start-up
// transient"), a cost of the VM's first touches that a long-running server
// on real hardware does not pay; cold-p99-ms reports the whole load. CPU
// figures cover the measured seconds. The client process faults in its
// connections' read buffers before the load (touchReadBuffer); BOXOFFICE_FANOUT_COLD_BUFFERS=1 leaves them cold,
// as before 2026-11-30, when their page faults in the first ~2 s of load
// starved the server (docs/BENCHMARKS.md). The subscribers that only read
// frame headers are read by BOXOFFICE_FANOUT_CLIENT_LOOPS (default 2) epoll
// loops (epollClients), which sleep BOXOFFICE_FANOUT_CLIENT_POLL_US
// (default 1,000) when nothing is ready; BOXOFFICE_FANOUT_GORILLA_CLIENTS=1
// gives each a goroutine and gorilla reader instead, as before 2026-12-01.
// The verifiers offer permessage-deflate as browsers do; the epoll-read
// subscribers too with BOXOFFICE_FANOUT_DEFLATE=1.
func BenchmarkLiveFanout(b *testing.B) {
	subscribers := envInt(b, "BOXOFFICE_FANOUT_SUBSCRIBERS", 5000)
	seconds := envInt(b, "BOXOFFICE_FANOUT_SECONDS", 10)
	warmup := 2
	if s := os.Getenv("BOXOFFICE_FANOUT_WARMUP_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			b.Fatalf("BOXOFFICE_FANOUT_WARMUP_SECONDS: %q", s)
		}
		warmup = n
	}
	rates := []int{1000, 2500, 5000, 10000, 20000}
	if s := os.Getenv("BOXOFFICE_FANOUT_RATES"); s != "" {
		rates = nil
		for f := range strings.SplitSeq(s, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r <= 0 {
				b.Fatalf("BOXOFFICE_FANOUT_RATES: %q", s)
			}
			rates = append(rates, r)
		}
	}
	raiseOpenFiles(b, 2*subscribers+1024)
	if os.Getenv("GOGC") == "" { // as boxoffice serve runs
		defer debug.SetGCPercent(debug.SetGCPercent(ServeGCPercent))
	}
	for _, rate := range rates {
		b.Run(fmt.Sprintf("subs=%d/rate=%d", subscribers, rate), func(b *testing.B) {
			for range b.N {
				runFanout(b, subscribers, rate, time.Duration(warmup)*time.Second, time.Duration(seconds)*time.Second)
			}
		})
	}
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s: %q", name, s)
	}
	return n
}

// raiseOpenFiles raises the soft limit of open files to n if it is lower
// (each subscriber costs a descriptor on both sides); the child inherits it.
func raiseOpenFiles(b *testing.B, n int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur >= uint64(n) {
		return
	}
	if lim.Max < uint64(n) {
		b.Fatalf("open files: hard limit %d, need %d", lim.Max, n)
	}
	lim.Cur = uint64(n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
}

// commitClock is the seat feed between the event actor and the hub: it
// notes when each batch is handed to Apply, and its size.
type commitClock struct {
	*Hub
	at      []atomic.Int64 // UnixNano, by version
	changes []atomic.Int32 // by version
}

func (c *commitClock) Apply(eventID string, version uint64, changes []engine.SeatChange) {
	if version < uint64(len(c.at)) {
		c.at[version].Store(time.Now().UnixNano())
		c.changes[version].Store(int32(len(changes)))
	}
	c.Hub.Apply(eventID, version, changes)
}

// fanoutSample is one frame a subscriber read: the versions it took the
// subscriber from and to, and when it had been read and parsed.
type fanoutSample struct {
	From, To uint64
	RecvNano int64
}

// fanoutResult is what the client process reports.
type fanoutResult struct {
	Frames, Gaps, Dropped, Lagging, Mismatched int
	CloseCodes                                 map[string]int
	CPUSeconds                                 float64 // from ready to stop
}

func runFanout(b *testing.B, subscribers, rate int, warmup, run time.Duration) {
	b.StopTimer()
	plan, err := os.ReadFile("../testdata/venues/harbour-stadium.json")
	if err != nil {
		b.Fatal(err)
	}
	const versionsMax = 1 << 21
	clock := &commitClock{at: make([]atomic.Int64, versionsMax), changes: make([]atomic.Int32, versionsMax)}
	e := newEnvWith(b, func(c *actors.Config) {
		clock.Hub = c.Feed.(*Hub)
		if ms := os.Getenv("BOXOFFICE_FANOUT_FRAME_MS"); ms != "" {
			n, _ := strconv.Atoi(ms)
			clock.Hub.cfg.frameInterval = time.Duration(n) * time.Millisecond
		}
		if n := os.Getenv("BOXOFFICE_FANOUT_GROUPS"); n != "" {
			clock.Hub.cfg.frameGroups, _ = strconv.Atoi(n)
		}
		if ms := os.Getenv("BOXOFFICE_FANOUT_FRAMEMAX_MS"); ms != "" {
			n, _ := strconv.Atoi(ms)
			clock.Hub.cfg.frameMax = time.Duration(n) * time.Millisecond
		}
		c.Feed = clock
		if n := os.Getenv("BOXOFFICE_FANOUT_SNAPSHOT_EVERY"); n != "" {
			c.SnapshotEveryRecords, _ = strconv.Atoi(n)
		}
	})
	b.Cleanup(e.srv.Close)
	def := engine.EventDefinition{
		ID: "stadium", Name: "Fan-out test at Harbour Stadium",
		StartsAt: e.clock.Now().AddDate(0, 1, 0), OnSaleAt: e.clock.Now(),
		HoldTTLSeconds: 600, MaxSeatsPerCustomer: 8, Currency: "EUR",
		Prices:      map[string]int64{"Floor": 15000, "Lower Bowl": 9500, "Club": 18000, "Upper Bowl": 5500, "Accessible": 9500},
		SeatingPlan: json.RawMessage(plan),
	}
	if _, err := e.sys.CreateEvent(context.Background(), def); err != nil {
		b.Fatal(err)
	}
	parsed, err := engine.ParsePlan(plan)
	if err != nil {
		b.Fatal(err)
	}
	start := e.hubVersion("stadium")
	before := serverMemory()

	// The client process.
	dir := b.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestLiveFanoutClients$", "-test.count=1")
	child.Env = append(os.Environ(),
		"BOXOFFICE_FANOUT_CHILD=1",
		"BOXOFFICE_FANOUT_URL="+e.liveURL("stadium", ""),
		"BOXOFFICE_FANOUT_SEATS_URL="+e.http.URL+"/v1/events/stadium/seats",
		"BOXOFFICE_FANOUT_N="+strconv.Itoa(subscribers),
		"BOXOFFICE_FANOUT_SINCE="+strconv.FormatUint(start, 10),
		"BOXOFFICE_FANOUT_OUT="+dir,
	)
	stdin, err := child.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	waitLine := func(want string) {
		for lines.Scan() {
			if lines.Text() == want {
				return
			}
		}
		_ = child.Process.Kill()
		b.Fatalf("the client process ended before %q: %v", want, lines.Err())
	}
	connectStart := time.Now()
	waitLine("ready")
	connectTook := time.Since(connectStart)
	if n := e.srv.hub.liveSubscribers(); n != subscribers {
		b.Fatalf("%d subscribers, want %d", n, subscribers)
	}
	after := serverMemory()

	// The load: open-loop at rate, each operation a hold of two seats or
	// the cancel of the worker's hold; warmup first, then run measured.
	var cpu0, cliCPU0 time.Duration
	var busy0, total0 int64
	var io0, cio0 [2]int64
	var st0 []float64
	warmVersion := start
	warm := func() {
		warmVersion = e.hubVersion("stadium")
		cpu0, cliCPU0 = processCPU(), childCPU(child.Process.Pid)
		busy0, total0 = machineBusy()
		io0, cio0 = procIO("self"), procIO(strconv.Itoa(child.Process.Pid))
		st0 = statFields()
	}
	stopSampling := make(chan struct{})
	var trace []string
	var traceWG sync.WaitGroup
	traceWG.Go(func() { // the pump's adaptive interval, every 500 ms
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
			e.srv.hub.mu.RLock()
			if f := e.srv.hub.live.feeds["stadium"]; f != nil {
				trace = append(trace, time.Duration(f.interval.Load()).Round(time.Millisecond).String())
			}
			e.srv.hub.mu.RUnlock()
		}
	})
	tl := &fanoutTimeline{}
	traceWG.Go(func() { tl.sample(e, child.Process.Pid, stopSampling) })
	ops, misses := fanoutLoad(e, parsed, rate, warmup, run, tl, warm)
	cliCPU := childCPU(child.Process.Pid) - cliCPU0
	close(stopSampling)
	traceWG.Wait()
	b.Logf("frame interval every 500 ms of the load: %v", trace)
	tl.log(b)
	var interval time.Duration
	e.srv.hub.mu.RLock()
	if f := e.srv.hub.live.feeds["stadium"]; f != nil {
		interval = time.Duration(f.interval.Load())
	}
	e.srv.hub.mu.RUnlock()
	b.Logf("frame interval at the end of the load: %v", interval)
	serverCPU := (processCPU() - cpu0).Seconds() / run.Seconds()
	busy1, total1 := machineBusy()
	io1, cio1 := procIO("self"), procIO(strconv.Itoa(child.Process.Pid))
	st1 := statFields()
	b.Logf("machine during the load, cores: user %.2f sys %.2f idle %.2f irq %.2f softirq %.2f steal %.2f", (st1[0]-st0[0])/run.Seconds()/100, (st1[2]-st0[2])/run.Seconds()/100, (st1[3]-st0[3])/run.Seconds()/100, (st1[5]-st0[5])/run.Seconds()/100, (st1[6]-st0[6])/run.Seconds()/100, (st1[7]-st0[7])/run.Seconds()/100)
	b.Logf("syscalls during the load: server writes %d reads %d; client writes %d reads %d", io1[1]-io0[1], io1[0]-io0[0], cio1[1]-cio0[1], cio1[0]-cio0[0])
	machineCores := float64(runtime.NumCPU()) * float64(busy1-busy0) / float64(max(total1-total0, 1))
	final := e.hubVersion("stadium")
	if _, err := fmt.Fprintf(stdin, "stop %d\n", final); err != nil {
		b.Fatal(err)
	}
	waitLine("done")
	_ = stdin.Close()
	_, _ = io.Copy(io.Discard, stdout)
	if err := child.Wait(); err != nil {
		b.Fatalf("client process: %v", err)
	}
	var res fanoutResult
	data, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(data, &res); err != nil {
		b.Fatal(err)
	}
	samples, err := os.ReadFile(filepath.Join(dir, "samples.bin"))
	if err != nil {
		b.Fatal(err)
	}

	// Latencies: every change of every version a frame covered.
	var changes, oldest, newest, cold latencyHistogram
	for rec := samples; len(rec) >= 24; rec = rec[24:] {
		s := fanoutSample{
			From:     binary.LittleEndian.Uint64(rec),
			To:       binary.LittleEndian.Uint64(rec[8:]),
			RecvNano: int64(binary.LittleEndian.Uint64(rec[16:])),
		}
		if s.To < versionsMax && s.To > warmVersion && clock.at[s.To].Load() != 0 {
			newest.add(time.Duration(s.RecvNano-clock.at[s.To].Load()), 1)
		}
		first := true
		for v := s.From + 1; v <= s.To && v < versionsMax; v++ {
			at := clock.at[v].Load()
			if at == 0 {
				continue // a batch without seat changes
			}
			d := time.Duration(s.RecvNano - at)
			cold.add(d, int64(clock.changes[v].Load()))
			if v <= warmVersion {
				continue // committed during the warm-up
			}
			changes.add(d, int64(clock.changes[v].Load()))
			if first {
				oldest.add(d, 1)
				first = false
			}
		}
	}
	{ // per second of the load (by receipt): the oldest change of each frame
		var secs [30]latencyHistogram
		t0 := clock.at[start+1].Load()
		for rec := samples; len(rec) >= 24; rec = rec[24:] {
			from := binary.LittleEndian.Uint64(rec)
			recv := int64(binary.LittleEndian.Uint64(rec[16:]))
			i := int((recv - t0) / 1e9)
			if i < 0 || i >= 30 || from+1 >= versionsMax || clock.at[from+1].Load() == 0 {
				continue
			}
			secs[i].add(time.Duration(recv-clock.at[from+1].Load()), 1)
		}
		var out []string
		for i := range secs {
			if secs[i].total > 0 {
				out = append(out, fmt.Sprintf("%d:%v/%v", i, secs[i].quantile(.5), secs[i].quantile(.99)))
			}
		}
		b.Logf("per second, oldest change per frame p50/p99: %v", out)
	}
	perSub := float64(after.heap+after.stack-before.heap-before.stack) / float64(subscribers) / 1024
	heapPerSub := float64(after.heap-before.heap) / float64(subscribers) / 1024
	b.ReportMetric(changes.quantile(0.50).Seconds()*1000, "p50-ms")
	b.ReportMetric(changes.quantile(0.99).Seconds()*1000, "p99-ms")
	b.ReportMetric(changes.quantile(1).Seconds()*1000, "max-ms")
	b.ReportMetric(cold.quantile(0.99).Seconds()*1000, "cold-p99-ms")
	b.ReportMetric(oldest.quantile(0.99).Seconds()*1000, "frame-p99-ms")
	b.ReportMetric(perSub, "KiB/sub")
	b.ReportMetric(float64(res.Dropped), "dropped")
	b.ReportMetric(float64(res.Lagging), "lagging")
	b.ReportMetric(float64(ops)/run.Seconds(), "ops/s")
	b.Logf("%d subscribers connected in %v; server %.1f KiB/subscriber (heap %.1f KiB, stacks %.1f KiB), %d goroutines",
		subscribers, connectTook.Round(time.Millisecond), perSub, heapPerSub,
		float64(after.stack-before.stack)/float64(subscribers)/1024, after.goroutines)
	b.Logf("rate %d/s: %d ops answered after the %v warm-up (%d not issued: workers busy); versions %d→%d→%d (warm-up, measured); %d frames (%.0f/s per subscriber); %d changes measured",
		rate, ops, warmup, misses, start, warmVersion, final, res.Frames, float64(res.Frames)/float64(subscribers)/(warmup+run).Seconds(), changes.total)
	b.Logf("latency per change p50 %v p90 %v p99 %v p99.9 %v max %v; per frame, oldest change p50 %v p99 %v, newest change p50 %v p99 %v",
		changes.quantile(.5), changes.quantile(.9), changes.quantile(.99), changes.quantile(.999), changes.quantile(1),
		oldest.quantile(.5), oldest.quantile(.99), newest.quantile(.5), newest.quantile(.99))
	b.Logf("whole load, warm-up included: latency per change p50 %v p99 %v max %v", cold.quantile(.5), cold.quantile(.99), cold.quantile(1))
	b.Logf("dropped %d (resyncs %d, write timeouts %d; close codes %v), lagging %d, gaps %d, snapshot subscribers differing from GET seats %d",
		res.Dropped, e.srv.hub.live.resyncs.Load(), e.srv.hub.live.writeTimeouts.Load(), res.CloseCodes, res.Lagging, res.Gaps, res.Mismatched)
	clientCPU := cliCPU.Seconds() / run.Seconds()
	b.Logf("CPU during the load: server process (with the load generator) %.2f cores, client process %.2f cores, whole machine %.2f of %d cores (others: %.2f)",
		serverCPU, clientCPU, machineCores, runtime.NumCPU(), max(machineCores-serverCPU-clientCPU, 0))
	b.ReportMetric(max(machineCores-serverCPU-clientCPU, 0), "other-cores")
	if res.Gaps > 0 || res.Mismatched > 0 {
		b.Fatalf("protocol broken: %d gaps, %d snapshot subscribers differ from GET seats", res.Gaps, res.Mismatched)
	}
}

type memory struct {
	heap, stack int64
	goroutines  int
}

func serverMemory() memory {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return memory{heap: int64(m.HeapAlloc), stack: int64(m.StackInuse), goroutines: runtime.NumGoroutine()}
}

// fanoutLoad issues holds and cancels at rate per second for run through
// the actor system (the HTTP layer in front of it is not what is measured
// here) and returns how many were answered and how many could not be
// issued because every worker was busy.
//
// The first warmup of the load is not measured: warm is called when it
// ends (at once when warmup is 0), and ops and misses count only run.
func fanoutLoad(e *env, plan *engine.Plan, rate int, warmup, run time.Duration, tl *fanoutTimeline, warm func()) (ops, misses int64) {
	const workers = 1024
	tokens := make(chan struct{}, max(rate/10, 16))
	var answered atomic.Int64
	var measuring atomic.Bool
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			customer := "fanout-" + strconv.Itoa(w)
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			held := ""
			for range tokens {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				t0 := time.Now()
				if held != "" {
					_ = e.sys.Cancel(ctx, customer, held)
					held = ""
				} else {
					i := rng.IntN(plan.Capacity() - 1)
					if r, err := e.sys.Hold(ctx, "stadium", customer, []string{plan.Seats[i].ID, plan.Seats[i+1].ID}); err == nil {
						held = r.ID
					}
				}
				cancel()
				tl.answered(t0, time.Since(t0))
				if measuring.Load() {
					answered.Add(1)
				}
			}
		})
	}
	start := time.Now()
	tl.start(start)
	if warmup == 0 {
		warm()
		measuring.Store(true)
	}
	tick := time.NewTicker(time.Millisecond)
	issued := int64(0)
	for now := range tick.C {
		elapsed := now.Sub(start)
		if elapsed >= warmup+run {
			break
		}
		if !measuring.Load() && elapsed >= warmup {
			warm()
			measuring.Store(true)
		}
		due := int64(float64(rate) * elapsed.Seconds())
		for ; issued < due; issued++ {
			select {
			case tokens <- struct{}{}:
			default:
				if measuring.Load() {
					misses++
				}
				tl.missed(now)
			}
		}
	}
	tick.Stop()
	close(tokens)
	wg.Wait()
	return answered.Load(), misses
}

// latencyHistogram counts durations in 100 µs buckets up to 30 s, weighted.
type latencyHistogram struct {
	counts []int64
	total  int64
}

const latencyBucket = 100 * time.Microsecond

func (h *latencyHistogram) add(d time.Duration, weight int64) {
	if h.counts == nil {
		h.counts = make([]int64, 30*time.Second/latencyBucket+1)
	}
	i := int(max(d, 0) / latencyBucket)
	i = min(i, len(h.counts)-1)
	h.counts[i] += weight
	h.total += weight
}

// quantile returns the upper bound of the bucket holding quantile q.
func (h *latencyHistogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := int64(q * float64(h.total))
	rank = max(1, min(rank, h.total))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(i+1) * latencyBucket
		}
	}
	return time.Duration(len(h.counts)) * latencyBucket
}

// TestLiveFanoutClients is the client process of BenchmarkLiveFanout and
// does nothing on its own: the benchmark starts this test binary with the
// BOXOFFICE_FANOUT_* variables set.
func TestLiveFanoutClients(t *testing.T) {
	if os.Getenv("BOXOFFICE_FANOUT_CHILD") == "" {
		t.Skip("the client process of BenchmarkLiveFanout; runs only when the benchmark starts it")
	}
	url, seatsURL, out := os.Getenv("BOXOFFICE_FANOUT_URL"), os.Getenv("BOXOFFICE_FANOUT_SEATS_URL"), os.Getenv("BOXOFFICE_FANOUT_OUT")
	n, _ := strconv.Atoi(os.Getenv("BOXOFFICE_FANOUT_N"))
	since := os.Getenv("BOXOFFICE_FANOUT_SINCE")
	const verifiers = 20 // take a snapshot and decode every frame in full

	// The subscribers past the verifiers are read by epoll loops
	// (epollClients) unless BOXOFFICE_FANOUT_GORILLA_CLIENTS=1: then each
	// has its goroutine and gorilla reader, as before 2026-12-01.
	gorillaClients := os.Getenv("BOXOFFICE_FANOUT_GORILLA_CLIENTS") == "1"
	loops := 2
	if s := os.Getenv("BOXOFFICE_FANOUT_CLIENT_LOOPS"); s != "" {
		loops, _ = strconv.Atoi(s)
		loops = max(loops, 1)
	}

	poll := time.Millisecond
	if s := os.Getenv("BOXOFFICE_FANOUT_CLIENT_POLL_US"); s != "" {
		us, _ := strconv.Atoi(s)
		poll = time.Duration(max(us, 1)) * time.Microsecond
	}

	subs := make([]*fanoutSubscriber, n)
	// The verifiers offer permessage-deflate, as browsers do, so that the
	// compressed feed is checked against GET seats too. The header-only
	// subscribers read it plain unless BOXOFFICE_FANOUT_DEFLATE=1 (epoll
	// clients only; they inflate a frame's first bytes): inflating costs
	// the clients' machines, here the server's cores, more than the
	// smaller writes save the server (docs/BENCHMARKS.md, 2026-12-01).
	// gorilla-read header-only subscribers never offer it: gorilla's
	// inflater decodes up to 32 KiB of a frame to give its first 64 bytes.
	deflate := os.Getenv("BOXOFFICE_FANOUT_DEFLATE") == "1"
	verifierDialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 64 << 10, EnableCompression: true}
	dialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 64 << 10}
	rawDialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 4 << 10, EnableCompression: deflate}
	var wg sync.WaitGroup
	next := atomic.Int64{}
	errs := make(chan error, n)
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				u := url + "?since=" + since
				if i < verifiers {
					u = url
				}
				d := dialer
				switch {
				case i < verifiers:
					d = verifierDialer
				case !gorillaClients:
					d = rawDialer // its buffer serves the handshake only
				}
				conn, _, err := d.Dial(u, nil)
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				subs[i] = &fanoutSubscriber{conn: conn, verify: i < verifiers}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Fault in every connection's read buffer before the load (see
	// touchReadBuffer): 5,000 × 64 KiB touched for the first time by the
	// first frames cost this process about 1.5 cores for 2 s, on the cores
	// the server needs.
	gorillaRead := subs
	if !gorillaClients {
		gorillaRead = subs[:min(verifiers, n)]
	}
	if os.Getenv("BOXOFFICE_FANOUT_COLD_BUFFERS") == "" {
		for _, s := range gorillaRead {
			if err := touchReadBuffer(s.conn); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range subs {
		if !s.verify {
			s.version.Store(parseUintOr(since, 0))
		}
	}
	var readers sync.WaitGroup
	for _, s := range gorillaRead {
		readers.Go(s.read)
	}
	var epoll *epollClients
	if !gorillaClients && n > verifiers {
		var err error
		if epoll, err = startEpollClients(subs[verifiers:], loops, poll); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range subs[:min(verifiers, n)] {
		for s.version.Load() == 0 && !s.ended.Load() { // until the snapshot
			time.Sleep(10 * time.Millisecond)
		}
	}
	cpu0 := processCPU()
	fmt.Println("ready")

	in := bufio.NewScanner(os.Stdin)
	var final uint64
	for in.Scan() {
		if v, ok := strings.CutPrefix(in.Text(), "stop "); ok {
			final = parseUintOr(v, 0)
			break
		}
	}
	res := fanoutResult{CloseCodes: map[string]int{}, CPUSeconds: (processCPU() - cpu0).Seconds()}
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range subs {
		for s.version.Load() < final && !s.ended.Load() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	want := fanoutSeatMap(seatsURL, final)
	reached := make([]bool, n)
	for i, s := range subs {
		reached[i] = !s.ended.Load() && s.version.Load() == final
	}
	for _, s := range gorillaRead {
		_ = s.conn.Close()
	}
	readers.Wait()
	if epoll != nil {
		epoll.stopAndClose()
	}
	for i, s := range subs[:min(verifiers, n)] {
		if reached[i] && (!s.decode() || !maps.Equal(s.seats, want)) {
			res.Mismatched++
		}
	}
	var samples bytes.Buffer
	for _, s := range subs {
		res.Frames += len(s.samples)
		res.Gaps += s.gaps
		switch {
		case s.closeCode != 0:
			res.Dropped++
			res.CloseCodes[strconv.Itoa(s.closeCode)]++
		case s.version.Load() < final:
			res.Lagging++
		}
		for _, smp := range s.samples {
			_ = binary.Write(&samples, binary.LittleEndian, smp)
		}
	}
	data, _ := json.Marshal(res)
	if err := os.WriteFile(filepath.Join(out, "result.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "samples.bin"), samples.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	fmt.Println("done")
}

// touchReadBuffer writes the free part of c's read buffer (gorilla's
// bufio.Reader, unexported: reached by reflection), so that the kernel maps
// its pages now instead of when the first frames arrive. A fresh 64 KiB buffer is untouched memory: its first reads fault
// in up to 16 pages, about 80,000 page faults over 5,000 connections, which
// this VM (pti=on, Firecracker) serves at ~20 µs each. Only bytes past
// what is buffered are written. Call it before c's reader runs.
func touchReadBuffer(c *websocket.Conn) error {
	br, err := gorillaReader(c)
	if err != nil {
		return err
	}
	r := reflect.ValueOf(br).Elem()
	buf, w := r.FieldByName("buf"), r.FieldByName("w")
	if !buf.IsValid() || buf.Kind() != reflect.Slice || buf.Type().Elem().Kind() != reflect.Uint8 || !w.IsValid() || w.Kind() != reflect.Int {
		return fmt.Errorf("bufio.Reader has no buf []byte and w int fields any more: touchReadBuffer needs updating")
	}
	b := unsafe.Slice((*byte)(buf.UnsafePointer()), buf.Len())
	clear(b[w.Int():]) // nothing is buffered past w
	return nil
}

// gorillaReader returns c's read buffer (gorilla's unexported br field).
func gorillaReader(c *websocket.Conn) (*bufio.Reader, error) {
	br := reflect.ValueOf(c).Elem().FieldByName("br")
	if !br.IsValid() || br.Type() != reflect.TypeFor[*bufio.Reader]() {
		return nil, fmt.Errorf("websocket.Conn has no br *bufio.Reader field any more: the fan-out client needs updating")
	}
	return (*bufio.Reader)(br.UnsafePointer()), nil
}

func parseUintOr(s string, def uint64) uint64 {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return def
	}
	return v
}

// fanoutSubscriber is one client of the fan-out benchmark. Most parse only
// a frame's header (type, from, version); verifiers decode it in full and
// keep the seat map.
type fanoutSubscriber struct {
	conn    *websocket.Conn
	verify  bool
	version atomic.Uint64
	ended   atomic.Bool
	// Owned by read until it returns.
	seats     map[string]string
	deltas    [][]byte // a verifier's delta frames, decoded after the run
	samples   []fanoutSample
	gaps      int
	closeCode int

	raw *rawFeed // the subscriber's parse state when an epoll loop reads it (epollClients)
}

var deltaHeader = []byte(`{"type":"delta","from":`)

// read follows the feed. A verifier reads and decodes each frame in full;
// the others read the first 64 bytes (the versions) and leave the rest to
// NextReader, which skips it without decoding, as a browser's own decoding
// is no work of the server's.
func (s *fanoutSubscriber) read() {
	defer s.ended.Store(true)
	var head [64]byte
	for {
		_, r, err := s.conn.NextReader()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				s.closeCode = ce.Code
			}
			return
		}
		var data []byte
		if s.verify {
			data, err = io.ReadAll(r)
		} else {
			var n int
			n, err = io.ReadFull(r, head[:])
			data = head[:n]
			if err == io.ErrUnexpectedEOF {
				err = nil // a frame shorter than the header buffer
			}
		}
		if err != nil {
			return
		}
		if s.verify && !bytes.HasPrefix(data, deltaHeader) { // a snapshot
			var m liveMsg
			if json.Unmarshal(data, &m) != nil || m.Type != "snapshot" {
				s.gaps++
				return
			}
			s.seats = m.Seats
			s.version.Store(m.Version)
			continue
		}
		if s.verify {
			s.deltas = append(s.deltas, data) // io.ReadAll's own copy
		}
		if !s.delta(data, time.Now()) {
			return
		}
	}
}

// delta checks the versions of a delta frame received at now (its first
// 64 bytes suffice): it must start at the version the subscriber has. It
// records the frame's receipt and moves the subscriber to the frame's
// version; false (a gap counted) when the frame is not such a delta: only
// verifiers ask for a snapshot.
func (s *fanoutSubscriber) delta(data []byte, now time.Time) bool {
	if !bytes.HasPrefix(data, deltaHeader) {
		s.gaps++
		return false
	}
	from, rest := leadingUint(data[len(deltaHeader):])
	rest, ok := bytes.CutPrefix(rest, []byte(`,"version":`))
	to, _ := leadingUint(rest)
	if !ok || from != s.version.Load() || to <= from {
		s.gaps++
		return false
	}
	s.samples = append(s.samples, fanoutSample{From: from, To: to, RecvNano: now.UnixNano()})
	s.version.Store(to)
	return true
}

// decode applies a verifier's delta frames to its snapshot, in order;
// false if one is not a strictly valid delta. Decoding is left until after
// the run so that the 20 verifiers' JSON decoding (about a tenth of the
// machine at 5,000 holds and cancels per second) does not compete with the
// server for the cores; each frame's versions were checked as it arrived.
func (s *fanoutSubscriber) decode() bool {
	for _, data := range s.deltas {
		var m liveMsg
		if json.Unmarshal(data, &m) != nil || m.Type != "delta" || m.From == nil {
			return false
		}
		maps.Copy(s.seats, m.Changes)
	}
	s.deltas = nil
	return true
}

func leadingUint(b []byte) (uint64, []byte) {
	i := 0
	var v uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		v = v*10 + uint64(b[i]-'0')
		i++
	}
	return v, b[i:]
}

// fanoutSeatMap reads GET seats once it shows version v (a body may be
// reused for 200 ms); nil if it does not within 5 s.
func fanoutSeatMap(seatsURL string, v uint64) map[string]string {
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	for range 100 {
		res, err := client.Get(seatsURL)
		if err != nil {
			return nil
		}
		var m struct {
			Version uint64
			Seats   []struct{ ID, Status string }
		}
		err = json.NewDecoder(res.Body).Decode(&m)
		res.Body.Close()
		if err != nil || m.Version > v {
			return nil
		}
		if m.Version == v {
			out := make(map[string]string, len(m.Seats))
			for _, s := range m.Seats {
				out[s.ID] = s.Status
			}
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy returns the busy and total jiffies of all CPUs (/proc/stat),
// to tell how much of the machine others used during a measurement.
func machineBusy() (busy, total int64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	fields := strings.Fields(string(line))
	for i, f := range fields[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// procIO returns syscr, syscw of /proc/<pid>/io.
func procIO(pid string) [2]int64 {
	data, _ := os.ReadFile("/proc/" + pid + "/io")
	var out [2]int64
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "syscr: "); ok {
			out[0], _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(l, "syscw: "); ok {
			out[1], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return out
}

func statFields() []float64 {
	data, _ := os.ReadFile("/proc/stat")
	line, _, _ := bytes.Cut(data, []byte("\n"))
	var out []float64
	for _, f := range strings.Fields(string(line))[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		out = append(out, v)
	}
	return out
}

// fanoutTimeline records the load and the machine per slot of 250 ms of the
// load, to see where the time goes in its first seconds; printed to stderr
// (a benchmark's log keeps only 10 lines without -test.v). Per slot: minor
// page faults per second of the server and client processes, their user
// and system cores, holds and cancels issued and not issued (every worker
// busy), their mean/max latency, both processes' cores, the machine's idle
// cores, versions and server write syscalls per second, the pump's interval.
type fanoutTimeline struct {
	t0   atomic.Int64 // UnixNano of the load's start
	mu   sync.Mutex
	slot [200]struct {
		ops, misses      int64
		latSum, latMax   time.Duration
		serverCPU, child time.Duration
		idle             float64
		faults, cfaults  [3]int64 // minflt, utime, stime (ticks)
		version          uint64
		writes           int64
		interval         time.Duration
	}
}

const timelineSlot = 250 * time.Millisecond

func (tl *fanoutTimeline) start(t time.Time) { tl.t0.Store(t.UnixNano()) }

func (tl *fanoutTimeline) index(t time.Time) int {
	i := int(t.Sub(time.Unix(0, tl.t0.Load())) / timelineSlot)
	return min(max(i, 0), len(tl.slot)-1)
}

func (tl *fanoutTimeline) answered(start time.Time, took time.Duration) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	s := &tl.slot[tl.index(start)]
	s.ops++
	s.latSum += took
	s.latMax = max(s.latMax, took)
}

func (tl *fanoutTimeline) missed(t time.Time) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.slot[tl.index(t)].misses++
}

// childCPU reads a process's user+system time from /proc/<pid>/stat.
func childCPU(pid int) time.Duration {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	_, rest, _ := bytes.Cut(data, []byte(") "))
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

func (tl *fanoutTimeline) sample(e *env, pid int, stop chan struct{}) {
	t := time.NewTicker(timelineSlot)
	defer t.Stop()
	for i := 0; i < len(tl.slot); i++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		st := statFields()
		s := &tl.slot[i]
		s.serverCPU, s.child, s.idle = processCPU(), childCPU(pid), st[3]
		s.faults, s.cfaults = procFaults(os.Getpid()), procFaults(pid)
		s.version = e.hubVersion("stadium")
		s.writes = procIO("self")[1]
		e.srv.hub.mu.RLock()
		if f := e.srv.hub.live.feeds["stadium"]; f != nil {
			s.interval = time.Duration(f.interval.Load())
		}
		e.srv.hub.mu.RUnlock()
	}
}

func (tl *fanoutTimeline) log(b *testing.B) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var out []string
	for i := 1; i < len(tl.slot) && tl.slot[i].version != 0; i++ {
		// Samples are taken at the end of each slot; ops are counted by
		// when they were issued, slots from the load's start.
		s, p, o := &tl.slot[i], &tl.slot[i-1], &tl.slot[i]
		sec := timelineSlot.Seconds()
		mean := time.Duration(0)
		if o.ops > 0 {
			mean = o.latSum / time.Duration(o.ops)
		}
		out = append(out, fmt.Sprintf("%.2fs flt/s srv %.0f cli %.0f cli u/s %.2f/%.2f srv u/s %.2f/%.2f ops %d miss %d lat %v/%v srv %.2f cli %.2f idle %.2f v/s %.0f wr/s %.0f iv %v",
			float64(i)*sec, float64(s.faults[0]-p.faults[0])/sec, float64(s.cfaults[0]-p.cfaults[0])/sec,
			float64(s.cfaults[1]-p.cfaults[1])/100/sec, float64(s.cfaults[2]-p.cfaults[2])/100/sec,
			float64(s.faults[1]-p.faults[1])/100/sec, float64(s.faults[2]-p.faults[2])/100/sec,
			o.ops, o.misses, mean.Round(time.Millisecond), o.latMax.Round(time.Millisecond),
			(s.serverCPU-p.serverCPU).Seconds()/sec, (s.child-p.child).Seconds()/sec, (s.idle-p.idle)/100/sec,
			float64(s.version-p.version)/sec, float64(s.writes-p.writes)/sec, s.interval.Round(time.Millisecond)))
	}
	fmt.Fprintf(os.Stderr, "timeline (250 ms slots):\n%s\n", strings.Join(out, "\n"))
}

// procFaults reads minflt, utime and stime of /proc/<pid>/stat.
func procFaults(pid int) [3]int64 {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	_, rest, _ := bytes.Cut(data, []byte(") "))
	f := strings.Fields(string(rest))
	var out [3]int64
	if len(f) < 13 {
		return out
	}
	out[0], _ = strconv.ParseInt(f[7], 10, 64)
	out[1], _ = strconv.ParseInt(f[11], 10, 64)
	out[2], _ = strconv.ParseInt(f[12], 10, 64)
	return out
}
