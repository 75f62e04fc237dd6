package actors_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/engine/enginetest"
	"github.com/boxoffice/boxoffice/persistence"
)

// Deterministic simulation (issue 8): one seed drives an event actor, its
// engine and its Pebble journal on a crashable in-memory filesystem through
// random commands — holds, best-available holds, cancels, payments with the
// test provider (synchronous, declined, and confirmed later by webhook),
// expiries on the manual clock, blocks and unblocks, operators' changes
// and refunds — with clean restarts and crashes, many of them in the
// middle of a group commit (the crash is taken inside the write-ahead
// log's sync: the batch being synced is lost, kept, or torn). The harness is sequential: it issues one command, waits for its
// answer and for the actor to be quiet, checks, and goes on; so the
// sequence of commands, answers and states depends on the seed alone, and
// a failing seed reproduces with -simulation.seed=N.
//
// After every step:
//   - the journal replays (persistence.Store.Load + Recovered.Replay) into
//     an event that passes engine.Event.CheckInvariants and has nothing
//     left to expire (the expiry timer journaled every lapse);
//   - that replay (snapshot + tail) has the same snapshot bytes as a replay
//     of every record ever appended, from record 1;
//   - the live actor answers as the replay does: event info, every
//     customer's reservations, the bookings;
//   - no seat is in two live or booked reservations;
//   - every acknowledged hold is there and every acknowledged booking is
//     booked.
//
// After a crash, the recovered journal holds exactly the records that were
// synced before the crash point, plus the batch being synced when the crash
// kept it, and equals the journal as it was up to there.

var (
	simSeedFlag  = flag.Uint64("simulation.seed", 0, "run only this seed of TestSimulation")
	simSeedsFlag = flag.Int("simulation.seeds", 50, "how many seeds TestSimulation runs")
	simFromFlag  = flag.Uint64("simulation.from", 1, "the first seed TestSimulation runs")
	simStepsFlag = flag.Int("simulation.steps", 100, "steps per seed")
)

func TestSimulation(t *testing.T) {
	from, n := *simFromFlag, uint64(*simSeedsFlag)
	if *simSeedFlag != 0 {
		from, n = *simSeedFlag, 1
	}
	start := time.Now()
	var stats simStats
	for seed := from; seed < from+n; seed++ {
		res, err := runSimulation(seed, *simStepsFlag)
		if err != nil {
			t.Fatalf("seed %d: %v\nlast steps:\n%s\nreproduce: go test -race -run 'TestSimulation$' ./actors/ -simulation.seed=%d",
				seed, err, lastSteps(res.trace, 15), seed)
		}
		stats.add(res.stats)
	}
	t.Logf("%d seeds (%d…%d) × %d steps in %s: %s", n, from, from+n-1, *simStepsFlag, time.Since(start).Round(time.Millisecond), stats)
}

// TestSimulationDeterministic: a seed gives the same commands, answers and
// journal every time, whatever the goroutines do; that is what makes a
// failing seed reproducible.
func TestSimulationDeterministic(t *testing.T) {
	for _, seed := range []uint64{7, 29} {
		a, err := runSimulation(seed, 60)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		b, err := runSimulation(seed, 60)
		if err != nil {
			t.Fatalf("seed %d, second run: %v", seed, err)
		}
		if !slices.Equal(a.trace, b.trace) {
			for i := range min(len(a.trace), len(b.trace)) {
				if a.trace[i] != b.trace[i] {
					t.Fatalf("seed %d diverges at line %d:\n first: %s\nsecond: %s", seed, i, a.trace[i], b.trace[i])
				}
			}
			t.Fatalf("seed %d: traces of %d and %d lines", seed, len(a.trace), len(b.trace))
		}
	}
}

// TestSimulationCatchesLostRecord proves the durability check can fail: a
// store that acknowledges records before they are synced loses them in a
// crash (the test crashes to the filesystem as it was one or more steps
// earlier), and the simulation reports the acknowledged records missing.
func TestSimulationCatchesLostRecord(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		res, err := runSimulationWith(seed, 100, simOptions{loseAcked: true})
		if err != nil && strings.Contains(err.Error(), "acknowledged") {
			t.Logf("seed %d: %v", seed, err)
			return
		}
		if err != nil {
			t.Fatalf("seed %d failed otherwise: %v\n%s", seed, err, lastSteps(res.trace, 10))
		}
	}
	t.Fatal("a journal that lost acknowledged records passed 20 seeds")
}

// TestSimulationBrokenEngine runs only in a child process built with the
// tag boxoffice_unsafe_double_sell, in which the engine sells seats that
// are taken: the simulation must then fail on a seat in two reservations.
// web.TestLinearizabilityCanFail starts it, with the linearizability
// check's own child test, in one build.
func TestSimulationBrokenEngine(t *testing.T) {
	if !simUnsafeDoubleSell {
		t.Skip("child-only test: web.TestLinearizabilityCanFail runs it with -tags boxoffice_unsafe_double_sell")
	}
	for seed := uint64(1); seed <= 20; seed++ {
		_, err := runSimulation(seed, 100)
		if err != nil && strings.Contains(err.Error(), "seat") {
			t.Logf("%s: seed %d: %v", simViolationMarker, seed, err)
			return
		}
		if err != nil {
			t.Fatalf("seed %d failed, but not on a seat: %v", seed, err)
		}
	}
	t.Fatal("20 seeds with the availability check skipped passed the simulation: it cannot catch a double sale")
}

const simViolationMarker = "SIMULATION VIOLATION FOUND"

func lastSteps(trace []string, n int) string {
	return "  " + strings.Join(trace[max(0, len(trace)-n):], "\n  ")
}

const (
	simEvent     = "sim"
	simCustomers = 5
	simSeatsMax  = 4 // per customer, at first (an operator's change may move it)
)

var simTokens = []string{"tok_visa", "tok_visa", "tok_visa", "tok_chargeDeclined", "tok_delayed"}

type simStats struct {
	steps, crashes, restarts, records, holds, bookings int
}

func (s *simStats) add(o simStats) {
	s.steps += o.steps
	s.crashes += o.crashes
	s.restarts += o.restarts
	s.records += o.records
	s.holds += o.holds
	s.bookings += o.bookings
}

func (s simStats) String() string {
	return fmt.Sprintf("%d steps, %d crashes, %d clean restarts, %d journal records, %d holds acknowledged, %d bookings",
		s.steps, s.crashes, s.restarts, s.records, s.holds, s.bookings)
}

type simResult struct {
	trace []string
	stats simStats
}

type simOptions struct {
	// loseAcked makes a crash go back to the filesystem as it was at the
	// end of an earlier step, losing acknowledged records
	// (TestSimulationCatchesLostRecord).
	loseAcked bool
}

func runSimulation(seed uint64, steps int) (simResult, error) {
	return runSimulationWith(seed, steps, simOptions{})
}

// sim is one seed's world: the harness's view and the current "process"
// (store, actor system) on the current filesystem.
type sim struct {
	seed  uint64
	opts  simOptions
	rng   *rand.Rand
	ctx   context.Context
	clock *actors.ManualClock
	prov  *fakeProvider

	mem     *vfs.MemFS
	journal *simJournal
	sys     *actors.System
	// crash is the crash point armed for this step, or nil; the
	// committer reads it.
	crash atomic.Pointer[simCrash]

	// acked is how many records of journal.records were acknowledged: all
	// that was durable when the last step that completed before a crash
	// ended.
	acked   int
	replay  *engine.Event // every record of journal.records applied, from record 1
	checked *engine.Event // the journal's replay (Load + Replay) at the last check, this process
	applied int           // records applied to replay
	res     []*simRes     // every reservation a hold asked for, in order
	// baseline is the provider's call counts when the process started.
	baseline map[string]int
	// fresh and stale are the filesystem as of the last two step ends
	// with different acknowledged records (simOptions.loseAcked).
	fresh, stale simClone
	step         int
	trace        []string
	stats        simStats
}

type simClone struct {
	acked int
	clone *vfs.MemFS
}

// simRes is a reservation the harness asked for.
type simRes struct {
	id, customer string
	acked        bool // its hold was acknowledged
	booked       bool // a payment was acknowledged booked: it stays booked
}

// simJournal is the store as the actors see it, keeping a copy of every
// record appended: the journal itself drops the records behind a snapshot.
type simJournal struct {
	*persistence.Store
	mu      sync.Mutex
	records []engine.Record
	pending int // records of the Append in progress
}

func (j *simJournal) Append(eventID string, expectedSeq uint64, recs []engine.Record) error {
	j.mu.Lock()
	j.pending = len(recs)
	j.mu.Unlock()
	err := j.Store.Append(eventID, expectedSeq, recs)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.pending = 0
	if err == nil {
		for _, r := range recs {
			r.Seats, r.Definition, r.Plan = slices.Clone(r.Seats), slices.Clone(r.Definition), slices.Clone(r.Plan)
			j.records = append(j.records, r)
		}
	}
	return err
}

func (j *simJournal) snapshot() ([]engine.Record, int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.records), j.pending
}

// simCrash is a crash point: at the atSync-th sync of the write-ahead log
// during a step (0: after the step), the filesystem is cloned as a crash
// would leave it. The step's command still completes in the doomed process
// (its answer is not acknowledged: it came after the crash), then the
// process is abandoned and a new one recovers from the clone.
type simCrash struct {
	atSync int
	mode   string // lose (unsynced data dropped), keep (kept), torn (a prefix of the batch being synced kept)
	tornAt float64
	steps  int // steps run with this crash point armed

	mu       sync.Mutex
	syncs    int
	clone    *vfs.MemFS
	synced   int // records synced before the crash
	inflight int // records of the batch being synced at the crash
}

func runSimulationWith(seed uint64, steps int, opts simOptions) (res simResult, err error) {
	s := &sim{
		seed: seed, opts: opts, rng: rand.New(rand.NewPCG(seed, 0x5eed)), ctx: context.Background(),
		clock: actors.NewManualClock(t0), prov: newFakeProvider(), mem: vfs.NewCrashableMem(),
	}
	defer func() {
		s.stop()
		res = simResult{trace: s.trace, stats: s.stats}
	}()
	if err := s.open(nil); err != nil {
		return res, err
	}
	def := definition(simEvent, enginetest.GridPlan(2, 6))
	def.MaxSeatsPerCustomer = simSeatsMax
	def.PaymentGraceSeconds = engine.HoldTTLSecondsMax // longer than a seed's clock moves: a payment never lapses
	if _, err := s.sys.CreateEvent(s.ctx, def); err != nil {
		return res, fmt.Errorf("create the event: %w", err)
	}
	if err := s.afterStep(); err != nil {
		return res, err
	}
	for s.step = 1; s.step <= steps; s.step++ {
		if err := s.doStep(); err != nil {
			return res, fmt.Errorf("step %d: %w", s.step, err)
		}
		s.stats.steps++
	}
	recs, _ := s.journal.snapshot()
	s.stats.records += len(recs)
	var types []string
	for _, r := range recs {
		types = append(types, r.Type.String())
	}
	s.logf("journal: %s", strings.Join(types, " "))
	return res, nil
}

func (s *sim) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%3d ", s.step)+fmt.Sprintf(format, args...))
}

// open starts a process on s.mem: a store whose write-ahead-log syncs pass
// the crash point, and an actor system recovering from it. records are
// the records the store holds (every one appended before, from record 1).
func (s *sim) open(records []engine.Record) error {
	mem, j := s.mem, &simJournal{records: records}
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.HasSuffix(op.Path, ".log") {
				s.atSync(mem, j, op.Path)
			}
		}
		return nil
	}))
	store, err := persistence.Open("db", persistence.Options{FS: fs, Logger: quietLogger()})
	if err != nil {
		return fmt.Errorf("open the store: %w", err)
	}
	j.Store = store
	s.journal, s.checked = j, nil
	// Recovery asks the provider again for every payment in flight; quiet
	// waits for those calls.
	s.prov.mu.Lock()
	s.baseline = maps.Clone(s.prov.calls)
	s.prov.mu.Unlock()
	sys, err := actors.Start(s.ctx, actors.Config{
		Journal: s.journal, Clock: s.clock, Logger: quietLogger(), Payments: s.prov, SnapshotEveryRecords: 7,
	})
	if err != nil {
		_ = store.Close()
		return fmt.Errorf("start the actors: %w", err)
	}
	s.sys = sys
	return nil
}

// stop ends the current process, if any.
func (s *sim) stop() {
	if s.sys != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.sys.Close(ctx)
		cancel()
		s.sys = nil
	}
	if s.journal != nil {
		_ = s.journal.Store.Close()
		s.journal = nil
	}
}

// atSync runs in the committer, before a sync of the write-ahead log
// (mem's, for journal j).
func (s *sim) atSync(mem *vfs.MemFS, j *simJournal, path string) {
	c := s.crash.Load()
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clone != nil || c.atSync == 0 {
		return
	}
	if c.syncs++; c.syncs < c.atSync {
		return
	}
	recs, pending := j.snapshot()
	c.synced, c.inflight = len(recs), pending
	c.take(mem, path)
	// The process is dead from here on: nothing it still does reaches
	// the payment provider.
	s.prov.setFailing(true)
}

// take clones mem as the crash leaves it. Pebble's CrashClone draws its
// random numbers in map order, so only 0 and 100 percent of unsynced data
// give a clone that a seed reproduces; a torn write is made here instead,
// by keeping a prefix of the log's unsynced bytes.
func (c *simCrash) take(mem *vfs.MemFS, walPath string) {
	switch c.mode {
	case "keep":
		c.clone = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(1, 1))})
		return
	default:
		c.clone = mem.CrashClone(vfs.CrashCloneCfg{})
	}
	if c.mode != "torn" || walPath == "" {
		return
	}
	live, err := readAll(mem, walPath)
	if err != nil {
		return
	}
	synced, err := readAll(c.clone, walPath)
	if err != nil || len(live) <= len(synced) {
		return
	}
	tail := live[len(synced):]
	keep := tail[:int(float64(len(tail))*c.tornAt)]
	f, err := c.clone.OpenReadWrite(walPath, vfs.WriteCategoryUnspecified)
	if err != nil {
		return
	}
	_, _ = f.WriteAt(keep, int64(len(synced)))
	_ = f.Sync()
	_ = f.Close()
}

func readAll(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (s *sim) customer() string { return fmt.Sprintf("c%d", 1+s.rng.IntN(simCustomers)) }

func (s *sim) seats(n int) []string {
	var out []string
	for len(out) < n {
		id := fmt.Sprintf("%c%d", 'A'+s.rng.IntN(2), 1+s.rng.IntN(6))
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// pick returns a reservation the harness asked for, or nil.
func (s *sim) pick() *simRes {
	if len(s.res) == 0 {
		return nil
	}
	// Recent reservations more often: they are more likely live.
	n := len(s.res)
	return s.res[max(0, n-1-s.rng.IntN(min(n, 8)))]
}

func statusOf(v engine.ReservationView, err error) string {
	if v.ID == "" {
		return ""
	}
	return v.Status.String()
}

func answer(err error) string {
	if err == nil {
		return "ok"
	}
	return string(engine.CodeOf(err))
}

// doStep draws one step and runs it.
func (s *sim) doStep() error {
	c := s.crash.Load()
	switch p := s.rng.IntN(100); {
	case c != nil:
	case p < 1:
		s.logf("restart")
		s.stats.restarts++
		j := s.journal
		s.stop() // drains: every decided record is durable first
		recs, _ := j.snapshot()
		if err := s.open(recs); err != nil {
			return err
		}
		return s.afterRestart()
	case p < 5:
		// A crash point: at the atSync-th log sync of the next steps (0:
		// after this one), and after the third step at the latest.
		c = &simCrash{atSync: []int{0, 1, 1, 1, 2}[s.rng.IntN(5)], mode: []string{"lose", "keep", "torn"}[s.rng.IntN(3)], tornAt: s.rng.Float64()}
		s.crash.Store(c)
		if c.atSync == 0 {
			s.logf("crash armed: after this step")
		} else {
			s.logf("crash armed: at log sync %d of a step (%s)", c.atSync, c.mode)
		}
	}
	if c == nil {
		if err := s.command(s.rng.IntN(100)); err != nil {
			return err
		}
		return s.afterStep()
	}
	// A command that usually writes, so that the crash point is met.
	c.steps++
	if err := s.command([]int{0, 30, 48, 50, 74, 99}[s.rng.IntN(6)]); err != nil {
		return err
	}
	c.mu.Lock()
	c.syncs = 0 // counted per step
	taken := c.clone != nil
	c.mu.Unlock()
	if !taken && c.atSync > 0 && c.steps < 3 {
		return s.afterStep()
	}
	s.crash.Store(nil)
	return s.crashRestart(c)
}

// command runs one command of kind p (0–99, drawn by the caller) against
// the current process.
func (s *sim) command(p int) error {
	ctx := s.ctx
	switch {
	case p < 30:
		c, seats := s.customer(), s.seats([]int{1, 1, 2, 2, 3}[s.rng.IntN(5)])
		// With an Idempotency-Key the reservation id derives from it: the
		// same for every run of the seed.
		v, err := s.sys.HoldIdempotent(ctx, simEvent, c, fmt.Sprintf("k%d", s.step), seats)
		r := &simRes{id: v.ID, customer: c}
		s.logf("hold %s %v → %s %s %s", c, seats, answer(err), v.ID, statusOf(v, err))
		if err == nil {
			s.track(r, v)
		}
	case p < 40:
		c, n := s.customer(), 1+s.rng.IntN(2)
		v, err := s.sys.HoldBest(ctx, simEvent, c, fmt.Sprintf("k%d", s.step), engine.BestAvailable{Quantity: n})
		r := &simRes{id: v.ID, customer: c}
		s.logf("hold best %s %d → %s %s %v", c, n, answer(err), v.ID, v.Seats)
		if err == nil {
			s.track(r, v)
		}
	case p < 48:
		r := s.pick()
		if r == nil {
			return s.clockStep()
		}
		err := s.sys.Cancel(ctx, r.customer, r.id)
		s.logf("cancel %s %s → %s", r.customer, r.id, answer(err))
	case p < 66:
		r := s.pick()
		if r == nil {
			return s.clockStep()
		}
		token := simTokens[s.rng.IntN(len(simTokens))]
		v, err := s.sys.Pay(ctx, r.customer, r.id, token)
		s.logf("pay %s %s %s → %s %s", r.customer, r.id, token, answer(err), statusOf(v, err))
		if err == nil && v.Status == engine.StatusBooked && s.acknowledged() && !r.booked {
			r.booked = true
			s.stats.bookings++
		}
	case p < 72:
		return s.settleStep()
	case p < 82:
		return s.clockStep()
	case p < 89:
		seats := s.seats(1 + s.rng.IntN(2))
		if s.rng.IntN(2) == 0 {
			err := s.sys.Block(ctx, simEvent, seats)
			s.logf("block %v → %s", seats, answer(err))
		} else {
			err := s.sys.Unblock(ctx, simEvent, seats)
			s.logf("unblock %v → %s", seats, answer(err))
		}
	case p < 93:
		return s.refundStep()
	default:
		var patch engine.EventPatch
		switch s.rng.IntN(4) {
		case 0:
			patch.HoldTTLSeconds = ptr([]int{30, 60, 90, 120}[s.rng.IntN(4)])
		case 1:
			patch.MaxSeatsPerCustomer = ptr(3 + s.rng.IntN(4))
		case 2:
			patch.OrphanSeats = ptr([]string{engine.OrphanAllow, engine.OrphanPrevent}[s.rng.IntN(2)])
		default:
			patch.Name = ptr(fmt.Sprintf("Simulated night %d", s.step))
		}
		info, err := s.sys.UpdateEvent(ctx, simEvent, patch)
		s.logf("update %s → %s v%d", patchString(patch), answer(err), info.Version)
	}
	return nil
}

func patchString(p engine.EventPatch) string {
	switch {
	case p.HoldTTLSeconds != nil:
		return fmt.Sprintf("holdTtlSeconds=%d", *p.HoldTTLSeconds)
	case p.MaxSeatsPerCustomer != nil:
		return fmt.Sprintf("maxSeatsPerCustomer=%d", *p.MaxSeatsPerCustomer)
	case p.OrphanSeats != nil:
		return "orphanSeats=" + *p.OrphanSeats
	case p.Name != nil:
		return "name"
	}
	return "{}"
}

// acknowledged reports whether the answer just received counts: not when
// the process crashed while deciding it.
func (s *sim) acknowledged() bool {
	c := s.crash.Load()
	if c == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clone == nil
}

// track notes a reservation a hold answered with.
func (s *sim) track(r *simRes, v engine.ReservationView) {
	for _, old := range s.res {
		if old.id == v.ID {
			return // an idempotent repeat or a re-hold's unchanged answer
		}
	}
	r.acked = s.acknowledged()
	if r.acked {
		s.stats.holds++
	}
	s.res = append(s.res, r)
}

// clockStep moves the clock; the actor's expiry timer fires on it.
func (s *sim) clockStep() error {
	d := time.Duration(1+s.rng.IntN(60)) * time.Second
	s.clock.Advance(d)
	// A request queues behind the timer's message and is answered once
	// the expiries it journaled are durable.
	info, err := s.sys.Event(s.ctx, simEvent)
	s.logf("clock +%s → %s reserved=%d", d, answer(err), info.Counts.Reserved)
	return nil
}

// settleStep lets the provider confirm or decline one delayed payment, by
// webhook.
func (s *sim) settleStep() error {
	for _, a := range s.openAttempts() {
		if a.token != "tok_delayed" {
			continue
		}
		key, _ := simCharge(s.prov, a.id, a.n)
		if key == "" {
			return fmt.Errorf("reservation %s is paying attempt %d, but the provider has no charge for it", a.id, a.n)
		}
		st := payment.StatusSucceeded
		if s.rng.IntN(3) == 0 {
			st = payment.StatusFailed
		}
		err := s.sys.PaymentWebhook(s.ctx, s.prov.settle(key, st, fmt.Sprintf("evt_%d", s.step)))
		after, _ := s.sys.AdminReservation(s.ctx, a.id)
		s.logf("settle %s attempt %d %s → %s %s", a.id, a.n, st, answer(err), statusOf(after, nil))
		if err == nil && after.Status == engine.StatusBooked && s.acknowledged() {
			for _, r := range s.res {
				if r.id == a.id && !r.booked {
					r.booked = true
					s.stats.bookings++
				}
			}
		}
		return nil
	}
	return s.clockStep()
}

func (s *sim) baselineOf(key string) int { return s.baseline["charge/"+key] }

// refundStep has an operator refund a booking (the oldest still booked):
// the seats go back on sale.
func (s *sim) refundStep() error {
	now := s.clock.Now()
	for _, r := range s.res {
		v, err := s.replay.ReservationByID(now, r.id)
		if err != nil || v.Status != engine.StatusBooked {
			continue
		}
		after, err := s.sys.RefundBooking(s.ctx, v.BookingID)
		s.logf("refund %s → %s %s", r.id, answer(err), statusOf(after, err))
		if err == nil && after.Status == engine.StatusReleased && s.acknowledged() {
			r.booked = false
		}
		return nil
	}
	return s.clockStep()
}

// simCharge finds the provider's charge of a reservation's attempt: its
// idempotency key and how often it was asked for.
func simCharge(p *fakeProvider, reservationID string, attempt uint32) (string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.charges {
		if c.req.EventID == simEvent && c.req.ReservationID == reservationID && c.req.Attempt == attempt {
			return k, p.calls["charge/"+k]
		}
	}
	return "", 0
}

// crashRestart abandons the process at the crash point c and recovers a
// new one from the filesystem the crash left.
func (s *sim) crashRestart(c *simCrash) error {
	c.mu.Lock()
	if c.clone == nil {
		// The command synced nothing (or less than the crash point): the
		// crash comes after it, its answer acknowledged.
		c.mu.Unlock()
		if err := s.quiet(); err != nil {
			return err
		}
		if _, err := s.sys.Event(s.ctx, simEvent); err != nil { // everything decided is durable
			return fmt.Errorf("event info: %w", err)
		}
		recs, _ := s.journal.snapshot()
		s.acked = len(recs)
		c.mu.Lock()
		c.synced, c.inflight, c.mode = len(recs), 0, "lose"
		c.clone = s.mem.CrashClone(vfs.CrashCloneCfg{})
		s.prov.setFailing(true)
	}
	clone, synced, inflight, mode := c.clone, c.synced, c.inflight, c.mode
	c.mu.Unlock()
	s.stats.crashes++
	before, _ := s.journal.snapshot()
	s.stop()
	s.prov.setFailing(false)

	if s.opts.loseAcked && s.stale.clone != nil && s.stale.acked < s.acked {
		// A store that acknowledged before its data was synced: the crash
		// takes back what the last steps wrote.
		clone, synced, inflight, mode = s.stale.clone, s.stale.acked, 0, "lose"
	}

	// What survived, read before any process touches it.
	store, err := persistence.Open("db", persistence.Options{FS: clone, Logger: quietLogger()})
	if err != nil {
		return fmt.Errorf("open the crashed store: %w", err)
	}
	last, err := store.LastSeq(simEvent)
	if err == nil && last == 0 {
		err = fmt.Errorf("the event is gone")
	}
	var rec persistence.Recovered
	if err == nil {
		rec, err = store.Load(simEvent)
	}
	_ = store.Close()
	if err != nil {
		return fmt.Errorf("after the crash: %w", err)
	}
	s.logf("crash (%s): %d records synced, %d being synced, %d recovered", mode, synced, inflight, last)
	L := int(last)
	switch {
	case L < s.acked:
		return fmt.Errorf("after the crash the journal ends at seq %d, but %d records were acknowledged", L, s.acked)
	case L < synced:
		return fmt.Errorf("after the crash the journal ends at seq %d, but %d records were synced before it", L, synced)
	// keep: the batch being appended may not have reached the log yet when
	// the sync the crash interrupts is not its own — a snapshot is committed
	// by its own goroutine alongside the Appends, so a sync can be the
	// snapshot's (seed 49 once ended at synced, flakily): then there is
	// nothing of it in the file to keep.
	case mode == "lose" && L != synced,
		(mode == "keep" || mode == "torn") && L != synced && L != synced+inflight:
		return fmt.Errorf("after the crash (%s) the journal ends at seq %d; synced %d, being synced %d", mode, L, synced, inflight)
	case L > len(before):
		return fmt.Errorf("after the crash the journal ends at seq %d, but only %d records were ever appended", L, len(before))
	}
	got, err := rec.Replay(simEvent)
	if err != nil {
		return fmt.Errorf("replay after the crash: %w", err)
	}
	want, err := replayRecords(before[:L])
	if err != nil {
		return err
	}
	if string(got.MarshalSnapshot()) != string(want.MarshalSnapshot()) {
		return fmt.Errorf("after the crash the journal does not replay to the state it had at seq %d", L)
	}
	tail := before[max(rec.SnapshotSeq, 1) : max(rec.SnapshotSeq, 1)+uint64(len(rec.Tail))]
	if len(rec.Tail) != len(tail) || !reflect.DeepEqual(rec.Tail, tail) && len(tail) > 0 {
		return fmt.Errorf("after the crash the records %d… differ from those appended", max(rec.SnapshotSeq, 1)+1)
	}
	if err := s.checkAcked(got); err != nil {
		return fmt.Errorf("after the crash: %w", err)
	}

	// A new process on the crashed filesystem, its journal continuing the
	// recovered records.
	s.mem = clone
	s.replay, s.applied = nil, 0
	if err := s.open(slices.Clone(before[:L])); err != nil {
		return err
	}
	return s.afterRestart()
}

func replayRecords(recs []engine.Record) (*engine.Event, error) {
	ev, err := engine.NewEvent(recs[0])
	if err != nil {
		return nil, fmt.Errorf("replay record 1: %w", err)
	}
	for _, r := range recs[1:] {
		if err := ev.Apply(r); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
	}
	return ev, nil
}

// afterRestart waits for what recovery hands to the payment worker, then
// checks.
func (s *sim) afterRestart() error {
	if err := s.quiet(); err != nil {
		return err
	}
	return s.afterStep()
}

// quiet waits, in real time and for at most 5 s, until the actor has
// nothing left to do on its own: every payment whose provider answers at
// once has its outcome journaled, and every delayed one was asked of the
// provider again since the process started (so that its answer, still
// "processing", cannot overtake a later webhook). It reads the journal,
// not the actor.
func (s *sim) quiet() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		busy := s.busy()
		if busy == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the actor is not quiet after 5 s: %s", busy)
		}
		time.Sleep(time.Millisecond)
	}
}

// simAttempt is a payment attempt without an outcome in the journal.
type simAttempt struct {
	id    string
	n     uint32
	token string
}

// openAttempts lists the payment attempts the journal started and has no
// outcome for, oldest first.
func (s *sim) openAttempts() []simAttempt {
	s.journal.mu.Lock()
	defer s.journal.mu.Unlock()
	var open []simAttempt
	for _, r := range s.journal.records {
		switch r.Type {
		case engine.RecordPaymentStarted:
			open = append(open, simAttempt{r.ReservationID, r.Attempt, r.PaymentToken})
		case engine.RecordSeatsBooked, engine.RecordPaymentFailed, engine.RecordPaymentVoided, engine.RecordRefundRequested:
			open = slices.DeleteFunc(open, func(a simAttempt) bool { return a.id == r.ReservationID && a.n == r.Attempt })
		}
	}
	return open
}

// busy names a payment attempt the process still owes an outcome, or
// a refund it still owes, or "".
func (s *sim) busy() string {
	s.journal.mu.Lock()
	owed := map[string]bool{}
	for _, r := range s.journal.records {
		switch r.Type {
		case engine.RecordRefundRequested:
			owed[fmt.Sprintf("%s attempt %d", r.ReservationID, r.Attempt)] = true
		case engine.RecordPaymentRefunded:
			delete(owed, fmt.Sprintf("%s attempt %d", r.ReservationID, r.Attempt))
		}
	}
	s.journal.mu.Unlock()
	for k := range owed {
		return k + " is owed a refund"
	}
	for _, a := range s.openAttempts() {
		if a.token != "tok_delayed" {
			return fmt.Sprintf("%s attempt %d (%s) has no outcome", a.id, a.n, a.token)
		}
		if key, calls := simCharge(s.prov, a.id, a.n); key == "" || calls <= s.baselineOf(key) {
			return fmt.Sprintf("%s attempt %d (tok_delayed) was not asked of the provider again", a.id, a.n)
		}
	}
	return ""
}

// afterStep checks the state once the step's answer is in.
func (s *sim) afterStep() error {
	if err := s.quiet(); err != nil {
		return err
	}
	// Requests queue behind whatever the actor still decides on its own
	// (a timer's expiries): this one is answered once all of it is durable.
	live, err := s.sys.Event(s.ctx, simEvent)
	if err != nil {
		return fmt.Errorf("event info: %w", err)
	}
	recs, _ := s.journal.snapshot()
	s.acked = len(recs)
	if s.opts.loseAcked && (s.fresh.clone == nil || s.fresh.acked != s.acked) {
		s.stale, s.fresh = s.fresh, simClone{s.acked, s.mem.CrashClone(vfs.CrashCloneCfg{})}
	}
	if s.replay == nil {
		if s.replay, err = replayRecords(recs[:1]); err != nil {
			return err
		}
		s.applied = 1
	}
	for _, r := range recs[s.applied:] {
		if err := s.replay.Apply(r); err != nil {
			return fmt.Errorf("replay every record: %w", err)
		}
	}
	s.applied = len(recs)

	now := s.clock.Now()
	ev := s.checked
	changed := ev == nil || ev.Seq() != uint64(len(recs))
	if changed {
		// The journal changed since the last check (or the process did).
		rec, err := s.journal.Load(simEvent)
		if err != nil {
			return fmt.Errorf("load the journal: %w", err)
		}
		if ev, err = rec.Replay(simEvent); err != nil {
			return fmt.Errorf("replay the journal: %w", err)
		}
		if err := ev.CheckInvariants(time.Time{}); err != nil {
			return fmt.Errorf("invariants of the replayed journal (seq %d): %w", ev.Seq(), err)
		}
		if got, want := ev.MarshalSnapshot(), s.replay.MarshalSnapshot(); string(got) != string(want) {
			return fmt.Errorf("the journal (snapshot at %d + %d records) replays to another state than its %d records from record 1",
				rec.SnapshotSeq, len(rec.Tail), len(recs))
		}
		s.checked = ev
	}
	if info := ev.Info(); !reflect.DeepEqual(live, info) {
		return fmt.Errorf("the actor says %+v, the replayed journal %+v", live, info)
	}
	// Every reservation and booking, when the journal changed; after a
	// step that journaled nothing (a refusal) the event info above shows
	// a change made in memory only.
	for c := 1; c <= simCustomers && changed; c++ {
		id := fmt.Sprintf("c%d", c)
		got, err := s.sys.Reservations(s.ctx, id, simEvent)
		if err != nil {
			return fmt.Errorf("list reservations: %w", err)
		}
		if want := ev.Reservations(now, id); !reflect.DeepEqual(got, want) && (len(got) > 0 || len(want) > 0) {
			return fmt.Errorf("customer %s: the actor lists %+v, the replayed journal %+v", id, got, want)
		}
	}
	if changed {
		got, err := s.sys.Bookings(s.ctx, simEvent)
		if want := ev.Bookings(); err != nil || !reflect.DeepEqual(got, want) && (len(got) > 0 || len(want) > 0) {
			return fmt.Errorf("bookings: the actor says %+v (%v), the replayed journal %+v", got, err, want)
		}
	}
	if err := s.checkAcked(ev); err != nil {
		return err
	}
	if lapsed := ev.Tick(now); len(lapsed) > 0 {
		return fmt.Errorf("%d holds lapsed at %s but their expiry was not journaled", len(lapsed), now.Format(time.RFC3339))
	}
	if err := ev.CheckInvariants(now); err != nil {
		return fmt.Errorf("invariants at %s: %w", now.Format(time.RFC3339), err)
	}
	return nil
}

// checkAcked: no seat in two live or booked reservations; every
// acknowledged hold is there, every acknowledged booking booked.
func (s *sim) checkAcked(ev *engine.Event) error {
	now := s.clock.Now()
	owner := map[string]string{}
	for c := 1; c <= simCustomers; c++ {
		for _, v := range ev.Reservations(now, fmt.Sprintf("c%d", c)) {
			if v.Status != engine.StatusHeld && v.Status != engine.StatusPaying && v.Status != engine.StatusBooked {
				continue
			}
			for _, seat := range v.Seats {
				if other, dup := owner[seat]; dup {
					return fmt.Errorf("seat %s is in reservations %s and %s", seat, other, v.ID)
				}
				owner[seat] = v.ID
			}
		}
	}
	for _, r := range s.res {
		if !r.acked {
			continue
		}
		v, err := ev.ReservationByID(now, r.id)
		if err != nil {
			return fmt.Errorf("acknowledged hold %s is gone: %w", r.id, err)
		}
		if r.booked && v.Status != engine.StatusBooked {
			return fmt.Errorf("acknowledged booking %s is %s", r.id, v.Status)
		}
	}
	return nil
}
