package actors

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
)

// Clock is the only source of time for the actors: Now for every decision,
// SendAfter for the one expiry timer each event actor keeps. Tests inject a
// ManualClock and need no sleeps.
type Clock interface {
	Now() time.Time
	// SendAfter delivers msg to pid once d has elapsed on this clock,
	// unless cancel is called first.
	SendAfter(sender actor.SenderContext, d time.Duration, pid *actor.PID, msg any) (cancel func())
}

// RealClock is the wall clock, with timers from protoactor's scheduler.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now().UTC() }

func (realClock) SendAfter(sender actor.SenderContext, d time.Duration, pid *actor.PID, msg any) func() {
	return scheduler.NewTimerScheduler(sender).SendOnce(d, pid, msg)
}

// ManualClock is a Clock that moves only when told to. Timers due at or
// before the new time are delivered by Advance and Set, in due order.
// Safe for concurrent use.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	nextID int
	timers map[int]manualTimer
}

type manualTimer struct {
	at     time.Time
	sender actor.SenderContext
	pid    *actor.PID
	msg    any
}

// NewManualClock returns a ManualClock reading start.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{now: start.UTC(), timers: make(map[int]manualTimer)}
}

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// SendAfter registers a timer that Advance or Set delivers.
func (c *ManualClock) SendAfter(sender actor.SenderContext, d time.Duration, pid *actor.PID, msg any) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.nextID
	c.nextID++
	c.timers[id] = manualTimer{at: c.now.Add(d), sender: sender, pid: pid, msg: msg}
	return func() {
		c.mu.Lock()
		delete(c.timers, id)
		c.mu.Unlock()
	}
}

// Advance moves the clock forward by d and delivers every timer now due.
func (c *ManualClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Set moves the clock to t (never backwards) and delivers every timer due.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t.UTC()
	}
	var due []manualTimer
	for id, tm := range c.timers {
		if !tm.at.After(c.now) {
			due = append(due, tm)
			delete(c.timers, id)
		}
	}
	c.mu.Unlock()
	for _, tm := range due {
		tm.sender.Send(tm.pid, tm.msg)
	}
}

// PendingTimers is the number of timers not yet delivered.
func (c *ManualClock) PendingTimers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}
