package actors

import "sync/atomic"

// workerDispatcher runs one actor's mailbox on one long-lived goroutine.
// protoactor's default dispatcher starts a new goroutine every time a
// mailbox goes from idle to busy; a hot event actor goes idle between group
// commits thousands of times a second, and each new goroutine regrows its
// stack to the engine's depth. One worker per event actor avoids both.
//
// The mailbox schedules at most one run at a time, so runs never holds more
// than one waiting run; should it ever be full, or the worker be stopped,
// Schedule falls back to a goroutine, as protoactor's own dispatcher does.
type workerDispatcher struct {
	runs       chan func()
	quit       chan struct{}
	done       chan struct{}
	stopped    atomic.Bool
	throughput int
}

func newWorkerDispatcher(throughput int) *workerDispatcher {
	d := &workerDispatcher{runs: make(chan func(), 1), quit: make(chan struct{}), done: make(chan struct{}), throughput: throughput}
	go d.loop()
	return d
}

func (d *workerDispatcher) loop() {
	defer close(d.done)
	for {
		select {
		case fn := <-d.runs:
			fn()
		case <-d.quit:
			return
		}
	}
}

// Schedule runs fn on the worker.
func (d *workerDispatcher) Schedule(fn func()) {
	if !d.stopped.Load() {
		select {
		case d.runs <- fn:
			return
		default:
		}
	}
	go fn()
}

// Throughput is how many messages the mailbox processes before yielding.
func (d *workerDispatcher) Throughput() int { return d.throughput }

// stop ends the worker once its current run is over; a run still queued
// is handed to a goroutine of its own.
func (d *workerDispatcher) stop() {
	if d.stopped.Swap(true) {
		return
	}
	close(d.quit)
	<-d.done
	select {
	case fn := <-d.runs:
		go fn()
	default:
	}
}
