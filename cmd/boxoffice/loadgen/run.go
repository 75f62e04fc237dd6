package loadgen

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"
)

// Timing of the run loop.
const (
	sampleInterval   = time.Second            // one timeline sample
	progressInterval = 200 * time.Millisecond // live progress refresh
	timerFloor       = 100 * time.Microsecond // the loop sleeps at least this long
	// A watcher reacts to seats coming back on the map within this long
	// (uniform), as a person would.
	watcherReactionMax = 300 * time.Millisecond
	// watchersPerSeat: how many watchers each returned seat wakes (some
	// lose the race for it, as on a real sold-out page).
	watchersPerSeat = 2
	// watchersScanPerSeat bounds the watchers looked at per freed seat.
	watchersScanPerSeat = 16
	soldOutGrace        = 2 * time.Second // after the last buyer, wait this long for the map to show a sell-out
	auditTimeout        = 2 * time.Minute
	framesBuffered      = 256
	readyTimeout        = 30 * time.Second // how long a run waits for the server to become ready
)

// refusals are the hold answers that are decisions (API.md): the seats
// were not available to this buyer right now.
var refusals = map[string]bool{
	"seat_unavailable": true, "no_adjacent_seats": true, "orphan_seat": true, "limit_exceeded": true,
}

// expectedCodes are error answers that are a normal part of a flash sale.
var expectedCodes = map[string]bool{
	"seat_unavailable": true, "no_adjacent_seats": true, "orphan_seat": true, "limit_exceeded": true,
	"admission_required": true, "sales_not_open": true, "reservation_expired": true,
	"reservation_released": true, "payment_declined": true, "ticket_not_found": true,
}

// run is one sale in progress. The run loop (one goroutine) owns every
// field below except api, work and done; workers only do HTTP.
type run struct {
	cfg     Config
	api     *apiClient
	eventID string
	info    eventInfo
	seats   *seatMap
	rng     *rand.Rand
	prefCDF []float64 // cumulative Zipf weights over category ranks
	payBody []byte    // of every payment

	t0          time.Time
	queue       buyerHeap
	nextArrival int // arrivals not yet made: nextArrival..Buyers-1
	stopArrival bool
	stopping    bool // interrupted: no new steps
	live        int  // arrived buyers not yet done
	inFlight    int  // with a worker or in work
	seq         uint64

	work   chan *buyer
	done   chan *buyer
	frames chan *liveFrame

	watchers        []*buyer // buyers waiting for seats to come back, in arrival order
	watched         int      // buyers who became watchers
	watchedBooked   int      // of them, those who booked
	pool            []string // customer tokens (Config.Customers)
	room            bool     // buyers queue before holding
	roomUnsupported bool
	queueLen        int
	roomReport      WaitingRoom

	outcomes      map[string]int
	confirmed     []ConfirmedBooking
	st            *stats
	soldOutAt     time.Duration // -1: not yet
	lastSaleEvent time.Time
	lastBooking   time.Time
	notes         []string

	progress *progressView
	state    atomic.Pointer[progressState]
}

// Run plays cfg's flash sale against the server and audits it. It returns
// the report also when the audit fails (Report.Err says so) and when ctx
// is cancelled mid-sale: then arrivals stop, requests in flight finish,
// and the report covers the sale so far. The error is for a sale that
// could not start (bad config, unknown event, no live feed) or an audit
// that could not read the server.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 5 * time.Second
	}
	r := &run{
		cfg:       cfg,
		api:       newAPIClient(cfg.Target, cfg.Connections, cfg.RequestTimeout),
		eventID:   cfg.EventID,
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		outcomes:  map[string]int{},
		st:        newStats(),
		soldOutAt: -1,
		work:      make(chan *buyer, cfg.Connections),
		done:      make(chan *buyer, 2*cfg.Connections), // everything dispatched fits: workers never wait
		frames:    make(chan *liveFrame, framesBuffered),
	}
	defer r.api.close()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}

	liveCtx, stopLive := context.WithCancel(context.WithoutCancel(ctx))
	connected := make(chan error, 1)
	var observer sync.WaitGroup
	observer.Go(func() { observe(liveCtx, r.api, r.eventID, r.frames, connected) })
	stopObserver := func() {
		stopLive()
		for range r.frames { // observe closes frames when it returns
		}
		observer.Wait()
	}
	if err := <-connected; err != nil {
		stopObserver()
		return nil, fmt.Errorf("live seat map of %s: %w", r.eventID, err)
	}
	if err := r.makeCustomers(ctx); err != nil {
		stopObserver()
		return nil, err
	}
	if wait := time.Until(r.info.OnSaleAt); wait > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}

	var workers sync.WaitGroup
	reqCtx := context.WithoutCancel(ctx) // Ctrl-C lets requests in flight finish
	for range cfg.Connections {
		workers.Go(func() { r.worker(reqCtx) })
	}
	r.progress = newProgressView(&r.cfg, r.cfg.Buyers, r.seats.counts[stAvailable]+r.seats.counts[stReserved], &r.state)
	sellable := r.seats.counts[stAvailable] + r.seats.counts[stReserved]
	r.t0 = time.Now()
	r.lastSaleEvent = r.t0
	r.loop(ctx)
	end := time.Now()
	close(r.work)
	workers.Wait()
	r.settleSoldOut()
	stopObserver()
	r.progress.finish(r.progressNow(end))

	auditCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	audit, mapStatus, err := r.audit(auditCtx)
	if err != nil {
		return nil, err
	}
	return r.report(end, sellable, audit, mapStatus), nil
}

// setup waits for the server to be ready, creates the event if asked,
// then reads it and its seat map.
func (r *run) setup(ctx context.Context) error {
	if err := r.waitReady(ctx); err != nil {
		return err
	}
	if r.cfg.CreateEvent != nil {
		id, note, err := r.api.createEvent(ctx, r.cfg.AdminToken, r.cfg.EventID, r.cfg.CreateEvent, time.Now())
		if err != nil {
			return err
		}
		r.eventID = id
		if note != "" {
			r.notes = append(r.notes, note)
		}
	}
	id := url.PathEscape(r.eventID)
	if err := r.api.getJSON(ctx, "/v1/events/"+id, "", &r.info); err != nil {
		return fmt.Errorf("event %s: %w", r.eventID, err)
	}
	var list seatList
	if err := r.api.getJSON(ctx, "/v1/events/"+id+"/seats", "", &list); err != nil {
		return fmt.Errorf("seat map of %s: %w", r.eventID, err)
	}
	r.seats = newSeatMap(&list, &r.info)
	r.room = r.cfg.WaitingRoom == WaitingRoomAuto && r.info.hasRoom()
	n := len(r.seats.categories)
	r.prefCDF = make([]float64, n)
	var sum float64
	for i := range n {
		sum += 1 / math.Pow(float64(i+1), r.cfg.CategorySkew)
		r.prefCDF[i] = sum
	}
	return nil
}

// waitReady polls GET /readyz until it answers 200 (a server just started
// is still recovering its events), for up to readyTimeout.
func (r *run) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var buf bytes.Buffer
	for {
		a := r.api.do(ctx, http.MethodGet, "/readyz", "", nil, nil, &buf)
		if a.status == http.StatusOK {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is not ready after %s: GET /readyz: %s", r.cfg.Target, readyTimeout, describe(a))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// makeCustomers opens the pool of anonymous sessions, Connections at a time.
func (r *run) makeCustomers(ctx context.Context) error {
	n := r.cfg.Customers
	if n == 0 {
		return nil
	}
	r.pool = make([]string, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(r.cfg.Connections, n) {
		wg.Go(func() {
			var buf bytes.Buffer
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				a := r.api.do(ctx, http.MethodPost, "/v1/sessions", "", nil, nil, &buf)
				a.decodeCode()
				var s struct {
					Token string `json:"token"`
				}
				if a.status != http.StatusCreated || json.Unmarshal(a.body, &s) != nil || s.Token == "" {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("customer sessions: POST /v1/sessions: %s", describe(a))
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
				r.pool[i] = s.Token
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// worker sends the requests of the buyers handed to it, one at a time,
// on a connection of its own (kept while it works).
func (r *run) worker(ctx context.Context) {
	x := r.api.newExchange(true)
	defer x.release()
	var p fastjson.Parser
	for b := range r.work {
		token := b.token
		if b.step == stepSession {
			token = ""
		}
		b.sent = time.Now()
		a := x.do(ctx, b.method, b.path, token, b.body, b.hdr)
		b.end = time.Now()
		b.dec.decode(&p, a.body) // a body that is not JSON leaves the zero answer
		a.setCode(b.dec.Code)
		a.body = nil
		b.ans = a
		r.done <- b
	}
}

// loop is the scheduler: it starts each buyer's next step when it is due,
// hands requests to the workers, and advances buyers with their answers.
// Arrivals are made lazily in time order and merged with the heap of
// buyers' next steps, so a million buyers cost nothing until they arrive.
func (r *run) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sample := time.NewTicker(sampleInterval)
	defer sample.Stop()
	refresh := time.NewTicker(progressInterval)
	defer refresh.Stop()
	var deadline <-chan time.Time
	if r.cfg.MaxDuration > 0 {
		t := time.NewTimer(r.cfg.MaxDuration)
		defer t.Stop()
		deadline = t.C
	}
	ctxDone := ctx.Done()
	frames := (<-chan *liveFrame)(r.frames)
	var timerAt time.Time // when timer fires (zero: stopped or fired)
	for {
		now := time.Now()
		r.dispatch(now)
		if r.finished() {
			return
		}
		// Wake for the next due step, unless the workers are all busy:
		// then an answer coming back is what frees a slot. The timer is
		// left alone when it already fires then (most turns of a busy
		// loop are answers coming back).
		if due, ok := r.nextDue(); ok && len(r.work) < cap(r.work) {
			if at := maxTime(due, now.Add(timerFloor)); !at.Equal(timerAt) {
				timer.Reset(at.Sub(now))
				timerAt = at
			}
		} else if !timerAt.IsZero() {
			timer.Stop()
			timerAt = time.Time{}
		}
		select {
		case b := <-r.done:
			r.inFlight--
			r.answered(b)
			// Take the other answers already back before dispatching
			// again: one turn of the loop for many answers.
			for range answersPerTurn {
				select {
				case b := <-r.done:
					r.inFlight--
					r.answered(b)
					continue
				default:
				}
				break
			}
		case f, ok := <-frames:
			if !ok {
				frames = nil // the observer stopped
				r.notes = append(r.notes, "the live seat map feed ended during the sale")
				continue
			}
			r.applyFrame(f, time.Now())
		case <-timer.C:
			timerAt = time.Time{}
		case t := <-sample.C:
			r.sample(t)
		case <-refresh.C:
			r.progress.update(r.progressNow(time.Now()))
		case <-ctxDone:
			ctxDone = nil
			r.interrupt("interrupted: arrivals stopped, requests in flight finished")
		case <-deadline:
			deadline = nil
			r.interrupt(fmt.Sprintf("--max-duration %s reached: arrivals stopped, requests in flight finished", r.cfg.MaxDuration))
		}
	}
}

// answersPerTurn bounds the answers the loop takes in one turn before it
// dispatches again.
const answersPerTurn = 64

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (r *run) finished() bool {
	return (r.stopArrival || r.nextArrival >= r.cfg.Buyers) && r.live == 0
}

// nextDue is the time of the earliest pending step or arrival.
func (r *run) nextDue() (time.Time, bool) {
	var due time.Time
	ok := false
	if len(r.queue) > 0 {
		due, ok = r.queue[0].due, true
	}
	if !r.stopArrival && r.nextArrival < r.cfg.Buyers {
		a := r.arrivalTime(r.nextArrival)
		if !ok || a.Before(due) {
			due, ok = a, true
		}
	}
	return due, ok
}

func (r *run) arrivalTime(k int) time.Time {
	return r.t0.Add(arrivalOffset(r.cfg.Arrival, r.cfg.ArrivalOver, k, r.cfg.Buyers))
}

// dispatch starts every step that is due, as long as workers can take
// requests.
func (r *run) dispatch(now time.Time) {
	for len(r.work) < cap(r.work) {
		var b *buyer
		arr := !r.stopArrival && r.nextArrival < r.cfg.Buyers && !r.arrivalTime(r.nextArrival).After(now)
		switch {
		case len(r.queue) > 0 && !r.queue[0].due.After(now) && (!arr || !r.arrivalTime(r.nextArrival).Before(r.queue[0].due)):
			b = heap.Pop(&r.queue).(*buyer)
		case arr:
			b = r.arrive(r.nextArrival)
			r.nextArrival++
		default:
			return
		}
		r.begin(b, now)
	}
}

// arrive makes buyer k with its random wishes.
func (r *run) arrive(k int) *buyer {
	r.live++
	r.seq++
	b := &buyer{due: r.arrivalTime(k), seq: r.seq, step: stepArrive}
	b.want = int8(r.cfg.SeatsPerBuyer.Sample(r.rng.Float64()))
	if n := len(r.prefCDF); n > 0 {
		u := r.rng.Float64() * r.prefCDF[n-1]
		for i, c := range r.prefCDF {
			if u < c {
				b.pref = int8(min(i, 127))
				break
			}
		}
	}
	switch u := r.rng.Float64(); {
	case u < r.cfg.PayShare:
		b.fate = fatePay
	case u < r.cfg.PayShare+r.cfg.CancelShare:
		b.fate = fateCancel
	default:
		b.fate = fateAbandon
	}
	b.handPicked = r.rng.Float64() < r.cfg.HandPickedShare
	if len(r.pool) > 0 {
		b.token = r.pool[k%len(r.pool)]
	}
	return b
}

// schedule puts b's next step at due.
func (r *run) schedule(b *buyer, s step, due time.Time) {
	if r.stopping {
		r.finish(b, OutcomeInterrupted)
		return
	}
	b.step, b.due = s, due
	heap.Push(&r.queue, b)
}

// begin performs b's due step: local steps at once, requests by handing
// b to a worker.
func (r *run) begin(b *buyer, now time.Time) {
	switch b.step {
	case stepArrive:
		if r.cfg.EventPage {
			b.step = stepEvent
		} else {
			r.look(b, now)
			return
		}
	case stepLook:
		r.look(b, now)
		return
	}
	r.prepare(b)
	r.inFlight++
	r.work <- b // never blocks: dispatch checked for room
}

// look: a buyer looks at the live map and goes on if anything is
// available.
func (r *run) look(b *buyer, now time.Time) {
	if r.seats.counts[stAvailable] > 0 {
		r.proceed(b, now)
		return
	}
	r.nothingAvailable(b, now, r.seats.counts[stReserved])
}

// nothingAvailable: with no seat held either the event is sold out and the
// buyer leaves; else it becomes a watcher: it keeps the live map open for
// up to Patience and tries again when seats come back (wakeWatchers).
func (r *run) nothingAvailable(b *buyer, now time.Time, held int) {
	if held == 0 || r.cfg.Patience <= 0 {
		r.finish(b, OutcomeSoldOut)
		return
	}
	if b.watchUntil.IsZero() {
		b.watchUntil = now.Add(r.cfg.Patience)
		r.watched++
	} else if now.After(b.watchUntil) {
		r.finish(b, OutcomeSoldOut)
		return
	}
	b.step = stepLook
	r.watchers = append(r.watchers, b)
}

// wakeWatchers: freed seats turned available on the live map; up to
// watchersPerSeat·freed watchers react, longest waiting first, those who
// want no more seats than are available first. It looks at no more than
// watchersScanPerSeat·freed of them; those whose patience ran out leave.
// (A watcher who wants more settles for fewer: see holdBody.)
func (r *run) wakeWatchers(freed int, now time.Time) {
	available := r.seats.counts[stAvailable]
	wake, scan := freed*watchersPerSeat, min(freed*watchersScanPerSeat, len(r.watchers))
	kept := r.watchers[:0:0]
	for _, b := range r.watchers[:scan] {
		switch {
		case now.After(b.watchUntil):
			r.finish(b, OutcomeSoldOut)
		case wake > 0 && int(b.want) <= available:
			wake--
			r.schedule(b, stepLook, now.Add(time.Duration(r.rng.Int64N(int64(watcherReactionMax)))))
		default:
			kept = append(kept, b)
		}
	}
	// Too few wanted so little: the longest-waiting of the others settle.
	for i := 0; wake > 0 && i < len(kept); i++ {
		wake--
		r.schedule(kept[i], stepLook, now.Add(time.Duration(r.rng.Int64N(int64(watcherReactionMax)))))
		kept[i] = nil
	}
	kept = slices.DeleteFunc(kept, func(b *buyer) bool { return b == nil })
	// The watchers not woken keep their place in front of the rest.
	rest := r.watchers[scan:]
	r.watchers = append(kept, rest...)
}

func (r *run) popWatcher() *buyer {
	b := r.watchers[0]
	r.watchers[0] = nil
	r.watchers = r.watchers[1:]
	return b
}

// expireWatchers lets go the watchers whose patience ran out (they joined
// in time order, so they are at the front), or all of them once the map
// shows the sell-out.
func (r *run) expireWatchers(now time.Time) {
	outcome := OutcomeSoldOut
	for len(r.watchers) > 0 && (r.seats.soldOut() || r.stopping || now.After(r.watchers[0].watchUntil)) {
		if r.stopping {
			outcome = OutcomeInterrupted
		}
		r.finish(r.popWatcher(), outcome)
	}
}

// proceed moves b towards a hold: a session, the waiting room, then hold.
func (r *run) proceed(b *buyer, now time.Time) {
	switch {
	case b.token == "":
		r.schedule(b, stepSession, now)
	case r.room && !r.roomUnsupported && b.admission == "":
		r.schedule(b, stepQueueJoin, now)
	default:
		r.schedule(b, stepHold, now)
	}
}

// think is one draw of think time, uniform in [T/2, 3T/2].
func (r *run) think() time.Duration {
	t := r.cfg.Think
	if t <= 0 {
		return 0
	}
	return t/2 + time.Duration(r.rng.Int64N(int64(t)+1))
}

// prepare fills in b's request for its step.
func (r *run) prepare(b *buyer) {
	id := url.PathEscape(r.eventID)
	b.body, b.hdr = nil, nil
	switch b.step {
	case stepEvent:
		b.method, b.path = http.MethodGet, "/v1/events/"+id
	case stepSession:
		b.method, b.path = http.MethodPost, "/v1/sessions"
	case stepQueueJoin:
		b.method, b.path = http.MethodPost, "/v1/events/"+id+"/queue"
	case stepQueuePoll:
		b.method, b.path = http.MethodGet, "/v1/events/"+id+"/queue/"+url.PathEscape(b.ticket)
	case stepHold:
		b.method, b.path = http.MethodPost, "/v1/reservations"
		b.body = r.holdBody(b)
		if b.admission != "" {
			b.hdr = [][2]string{{"Admission-Token", b.admission}}
		}
	case stepPay:
		b.method, b.path = http.MethodPost, "/v1/reservations/"+url.PathEscape(b.resID)+"/pay"
		if r.payBody == nil {
			r.payBody, _ = json.Marshal(map[string]string{"paymentToken": r.cfg.PaymentToken})
		}
		b.body = r.payBody // only read
		b.hdr = [][2]string{{"Idempotency-Key", "load-pay-" + b.resID}}
	case stepPayPoll:
		b.method, b.path = http.MethodGet, "/v1/reservations/"+url.PathEscape(b.resID)
	case stepCancel:
		b.method, b.path = http.MethodDelete, "/v1/reservations/"+url.PathEscape(b.resID)
	case stepQueueLeave:
		b.method, b.path = http.MethodDelete, "/v1/events/"+id+"/queue/"+url.PathEscape(b.ticket)
	}
}

// holdBody: hand-picked seats from the live map, or best available, in the
// category this attempt asks for. On its last attempt a group settles for
// fewer seats when the map shows no run of adjacent seats long enough
// (the seats left at the end of a sale are scattered).
func (r *run) holdBody(b *buyer) []byte {
	// A watcher back for returned seats takes what is there, as on a last
	// attempt.
	last := b.attempts > 0 && int(b.attempts) >= r.cfg.MaxAttempts-1 || !b.watchUntil.IsZero()
	qty := int(b.want)
	if last {
		qty = max(min(qty, r.seats.largestRun()), 1)
	}
	cat, rank := r.seats.chooseCategory(int(b.pref), int(b.attempts), qty, last)
	req := holdRequest{EventID: r.eventID}
	if b.handPicked && rank >= 0 {
		req.SeatIDs = r.seats.pick(rank, qty, r.rng)
	}
	if req.SeatIDs == nil {
		req.BestAvailable = &bestAvailable{Quantity: qty, Category: cat}
	}
	return appendHoldRequest(make([]byte, 0, 128), &req)
}

// answered records b's answer and moves b on.
func (r *run) answered(b *buyer) {
	ep := stepEndpoint[b.step]
	r.st.record(ep, b.end.Sub(b.due), max(b.sent.Sub(b.due), 0))
	a := b.ans
	if a.status >= 400 || a.status == 0 {
		r.st.errorsByCode[a.code]++
		if !expectedCodes[a.code] {
			r.st.unexpected++
		}
	}
	now := b.end
	switch b.step {
	case stepEvent:
		r.afterEventPage(b, now)
	case stepSession:
		if a.status == http.StatusCreated && b.dec.Token != "" {
			b.token = b.dec.Token
			r.proceed(b, now)
			return
		}
		r.retry(b, stepSession, now, a)
	case stepQueueJoin, stepQueuePoll:
		r.afterTicket(b, now)
	case stepHold:
		r.lastSaleEvent = now
		r.afterHold(b, now)
	case stepPay, stepPayPoll:
		r.lastSaleEvent = now
		r.afterPay(b, now)
	case stepQueueLeave:
		b.ticket = "" // left, or could not leave: either way done with the room
		r.finish(b, b.outcome)
	case stepCancel:
		switch {
		case a.status == http.StatusNoContent:
			r.finish(b, OutcomeCancelled)
		case b.tries < payTriesMax:
			b.tries++
			r.schedule(b, stepCancel, now.Add(500*time.Millisecond))
		default:
			r.finish(b, OutcomeFailed)
		}
	}
}

// retry repeats a failed step after a pause (Retry-After when given), up
// to MaxAttempts; then the buyer has failed.
func (r *run) retry(b *buyer, s step, now time.Time, a answer) {
	b.attempts++
	if int(b.attempts) >= r.cfg.MaxAttempts {
		r.finish(b, OutcomeFailed)
		return
	}
	pause := max(a.retryAfter, r.think(), 200*time.Millisecond)
	r.schedule(b, s, now.Add(pause))
}

func (r *run) afterEventPage(b *buyer, now time.Time) {
	d := b.dec
	if b.ans.status != http.StatusOK || d.Counts == nil {
		r.look(b, now) // no page: the live map has to do
		return
	}
	if d.WaitingRoom != nil && d.WaitingRoom.Enabled && r.cfg.WaitingRoom == WaitingRoomAuto {
		r.room = true
	}
	if d.Counts.Available == 0 {
		r.nothingAvailable(b, now, d.Counts.Reserved)
		return
	}
	r.proceed(b, now)
}

func (r *run) afterTicket(b *buyer, now time.Time) {
	a, d := b.ans, b.dec
	switch {
	case b.step == stepQueueJoin && (a.code == "not_found" || a.code == "method_not_allowed" || a.status == http.StatusNotFound && a.code != "event_not_found" && a.code != "ticket_not_found"):
		// A server without the waiting room: sell without it.
		if !r.roomUnsupported {
			r.roomUnsupported = true
			r.notes = append(r.notes, "the server has no waiting room yet (POST /v1/events/{id}/queue: "+a.code+"); buyers went straight to the hold")
		}
		r.schedule(b, stepHold, now)
		return
	case a.code == "ticket_not_found" && b.joins < queueJoinsMax:
		r.leaveQueue(b)
		b.ticket = ""
		r.schedule(b, stepQueueJoin, now)
		return
	case a.status != http.StatusOK && a.status != http.StatusCreated:
		r.leaveQueue(b)
		r.retry(b, b.step, now, a)
		return
	}
	if b.step == stepQueueJoin {
		b.joins++
		r.roomReport.Joined++
		r.roomReport.Used = true
	}
	if d.Position != nil {
		r.roomReport.MaxPosition = max(r.roomReport.MaxPosition, *d.Position)
	}
	if d.Ticket != "" {
		b.ticket = d.Ticket
	}
	switch d.Status {
	case "admitted":
		r.leaveQueue(b)
		r.roomReport.Admitted++
		b.admission = d.AdmissionToken
		r.schedule(b, stepHold, now)
	case "pre_queue", "waiting":
		if !b.waiting {
			b.waiting = true
			r.queueLen++
			r.roomReport.MaxQueueLength = max(r.roomReport.MaxQueueLength, r.queueLen)
		}
		b.polls++
		if b.polls > queuePollsMax {
			r.finish(b, OutcomeFailed)
			return
		}
		// Never sooner than the server asks; a little later spreads the
		// polls of buyers who joined together.
		wait := time.Duration(d.PollAfterSeconds * float64(time.Second))
		if wait <= 0 {
			wait = time.Second
		}
		wait += time.Duration(r.rng.Int64N(int64(wait)/20 + 1))
		r.schedule(b, stepQueuePoll, now.Add(wait))
	case "sold_out":
		b.ticket = "" // the room ended it
		r.finish(b, OutcomeSoldOut)
	case "expired", "left":
		b.ticket = ""
		r.finish(b, OutcomeQueueExpired)
	default:
		r.leaveQueue(b)
		r.retry(b, b.step, now, a)
	}
}

func (r *run) leaveQueue(b *buyer) {
	if b.waiting {
		b.waiting = false
		r.queueLen--
	}
}

func (r *run) afterHold(b *buyer, now time.Time) {
	a, d := b.ans, b.dec
	switch {
	case a.status == http.StatusCreated:
		r.st.holdDecisions++
		r.st.grantedHolds++
		r.st.window.decisions++
		r.st.window.granted++
		b.resID, b.resSeats = d.ID, d.Seats
		b.admission = "" // claimed
		switch b.fate {
		case fatePay:
			r.schedule(b, stepPay, now.Add(r.think()))
		case fateCancel:
			r.schedule(b, stepCancel, now.Add(r.think()))
		default:
			r.finish(b, OutcomeAbandoned) // the hold expires on the server
		}
	case refusals[a.code]:
		r.st.holdDecisions++
		r.st.refusedHolds++
		r.st.window.decisions++
		b.attempts++
		switch {
		case a.code == "limit_exceeded":
			r.finish(b, OutcomeRefused)
		case r.seats.counts[stAvailable] == 0:
			// Everything is gone or held: watch for returns (within
			// Patience), whatever attempts are left.
			r.nothingAvailable(b, now, r.seats.counts[stReserved])
		case int(b.attempts) >= r.cfg.MaxAttempts:
			r.finish(b, OutcomeRefused)
		default:
			r.schedule(b, stepHold, now.Add(r.think()))
		}
	case a.code == "admission_required" && r.cfg.WaitingRoom == WaitingRoomAuto && !r.roomUnsupported && b.joins < queueJoinsMax:
		r.room = true
		b.admission = ""
		r.schedule(b, stepQueueJoin, now)
	case a.code == "sales_not_open":
		r.retry(b, stepHold, now, answer{retryAfter: time.Second})
	case a.code == "sales_closed" || a.code == "event_cancelled" || a.code == "event_not_found":
		r.finish(b, OutcomeFailed)
	default:
		r.retry(b, stepHold, now, a)
	}
}

func (r *run) afterPay(b *buyer, now time.Time) {
	a, d := b.ans, b.dec
	switch {
	case a.status == http.StatusOK && d.Status == "booked":
		r.booked(b, d, now)
	case a.status == http.StatusAccepted || a.status == http.StatusOK && d.Status == "paying" || a.code == "payment_in_progress":
		b.polls++
		if b.polls > payPollsMax {
			r.finish(b, OutcomeFailed)
			return
		}
		r.schedule(b, stepPayPoll, now.Add(time.Second))
	case a.status == http.StatusOK && d.Status == "held":
		r.finish(b, OutcomePaymentDeclined) // failed later, back to held until it expires
	case a.status == http.StatusOK && d.Status == "released", a.code == "reservation_expired", a.code == "reservation_released":
		r.finish(b, OutcomeHoldExpired)
	case a.code == "payment_declined":
		r.finish(b, OutcomePaymentDeclined)
	case b.tries < payTriesMax:
		b.tries++ // the same Idempotency-Key makes a retried payment safe
		r.schedule(b, b.step, now.Add(500*time.Millisecond))
	default:
		r.finish(b, OutcomeFailed)
	}
}

func (r *run) booked(b *buyer, d buyerAnswer, now time.Time) {
	seats := d.Seats
	if len(seats) == 0 {
		seats = b.resSeats
	}
	r.st.bookings++
	r.st.seatsBooked += int64(len(seats))
	r.st.window.bookings++
	r.lastBooking = now
	r.confirmed = append(r.confirmed, ConfirmedBooking{BookingID: d.BookingID, ReservationID: b.resID, Seats: seats})
	if !b.watchUntil.IsZero() {
		r.watchedBooked++
	}
	r.finish(b, OutcomeBooked)
}

// finish ends b's visit.
func (r *run) finish(b *buyer, outcome string) {
	r.leaveQueue(b)
	// A buyer done with the waiting room without a booking leaves it
	// (DELETE .../queue/{ticket}), so that the room admits the next
	// visitor now instead of when the admission lapses.
	// (A booking ends the admission on the server; a ticket the room
	// ended, sold_out or expired, is cleared before.)
	// Buyers who walk away (abandoned) do not bother.
	if b.ticket != "" && outcome != OutcomeBooked && outcome != OutcomeAbandoned && !r.stopping {
		b.outcome = outcome
		r.schedule(b, stepQueueLeave, time.Now())
		return
	}
	r.outcomes[outcome]++
	r.live--
}

// interrupt stops arrivals and every buyer not in flight; buyers in
// flight end when their answer comes back.
func (r *run) interrupt(note string) {
	if r.stopping {
		return
	}
	r.stopping, r.stopArrival = true, true
	r.notes = append(r.notes, note)
	for len(r.queue) > 0 {
		r.finish(heap.Pop(&r.queue).(*buyer), OutcomeInterrupted)
	}
	r.expireWatchers(time.Now())
	for {
		select {
		case b := <-r.work: // not sent yet
			r.inFlight--
			r.finish(b, OutcomeInterrupted)
		default:
			return
		}
	}
}

func (r *run) applyFrame(f *liveFrame, now time.Time) {
	if freed := r.seats.apply(f); freed > 0 && !r.stopping {
		r.wakeWatchers(freed, now)
	}
	if r.soldOutAt < 0 && r.seats.soldOut() {
		r.soldOutAt = now.Sub(r.t0)
		if r.cfg.StopWhenSoldOut && !r.stopArrival {
			r.stopArrival = true
			r.notes = append(r.notes, fmt.Sprintf("sold out: arrivals stopped after %d of %d buyers (--stop-when-sold-out)", r.nextArrival, r.cfg.Buyers))
		}
	}
	if r.seats.soldOut() {
		r.expireWatchers(now)
	}
}

// settleSoldOut waits a little for the live map to show a sell-out that
// the last bookings made.
func (r *run) settleSoldOut() {
	if r.soldOutAt >= 0 || r.seats.counts[stAvailable] > 0 {
		return
	}
	deadline := time.After(soldOutGrace)
	for r.soldOutAt < 0 {
		select {
		case f, ok := <-r.frames:
			if !ok {
				return
			}
			r.applyFrame(f, time.Now())
		case <-deadline:
			return
		}
	}
}

// sample closes one second of the timeline.
func (r *run) sample(now time.Time) {
	r.expireWatchers(now)
	// Watchers look at their map: seats available that the ones woken
	// before did not get (they lost a race, or wanted more) draw others.
	if avail := r.seats.counts[stAvailable]; avail > 0 && len(r.watchers) > 0 && !r.stopping {
		r.wakeWatchers(avail, now)
	}
	backlog := len(r.work)
	for _, b := range r.queue {
		if !b.due.After(now) {
			backlog++
		}
	}
	if !r.stopArrival {
		backlog += max(arrivalsDue(r.cfg.Arrival, r.cfg.ArrivalOver, r.cfg.Buyers, now.Sub(r.t0))-r.nextArrival, 0)
	}
	r.st.sample(now.Sub(r.t0), r.seats.counts[stBooked], r.queueLen, backlog, r.inFlight-len(r.work))
}

// buyerHeap orders buyers by due time, then arrival.
type buyerHeap []*buyer

func (h buyerHeap) Len() int { return len(h) }
func (h buyerHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h buyerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *buyerHeap) Push(x any)   { *h = append(*h, x.(*buyer)) }
func (h *buyerHeap) Pop() any {
	old := *h
	b := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return b
}
