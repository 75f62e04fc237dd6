package loadgen

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progressState is what the live progress shows; the run loop publishes a
// fresh one every progressInterval.
type progressState struct {
	elapsed           time.Duration
	buyersDone        int
	buyersPlanned     int
	seatsSold         int
	sellable          int
	decisionsPerSec   int64   // in the last complete second
	holdP99Ms         float64 // in the last complete second
	queueLength       int
	backlog, inFlight int
}

func (s *progressState) line() string {
	return fmt.Sprintf("%6.1fs  buyers %s/%s done · seats sold %s/%s · %s decisions/s · hold p99 %s ms · queue %s · in flight %s",
		s.elapsed.Seconds(), thousands(int64(s.buyersDone)), thousands(int64(s.buyersPlanned)),
		thousands(int64(s.seatsSold)), thousands(int64(s.sellable)), thousands(s.decisionsPerSec), ms(s.holdP99Ms),
		thousands(int64(s.queueLength)), thousands(int64(s.inFlight)))
}

// progressNow is the loop's current progress.
func (r *run) progressNow(now time.Time) *progressState {
	done := 0
	for _, n := range r.outcomes {
		done += n
	}
	return &progressState{
		elapsed:         now.Sub(r.t0),
		buyersDone:      done,
		buyersPlanned:   r.cfg.Buyers,
		seatsSold:       r.seats.counts[stBooked],
		sellable:        r.progress.sellable,
		decisionsPerSec: r.st.last.decisions,
		holdP99Ms:       micros(r.st.lastHold),
		queueLength:     r.queueLen,
		backlog:         len(r.work),
		inFlight:        r.inFlight,
	}
}

// progressView draws the live progress: two mpb bars on a terminal (buyers
// done, seats sold, with elapsed time, decisions/s and p99 beside them),
// or a plain line every Config.ProgressEvery elsewhere. A nil writer shows
// nothing.
type progressView struct {
	w        io.Writer
	sellable int
	state    *atomic.Pointer[progressState]

	p             *mpb.Progress
	buyers, seats *mpb.Bar
	rates         *mpb.Bar // no bar: the line of rates
	every         time.Duration
	lastLine      time.Time
}

func newProgressView(cfg *Config, buyers, sellable int, state *atomic.Pointer[progressState]) *progressView {
	v := &progressView{w: cfg.Progress, sellable: sellable, state: state, every: cfg.ProgressEvery, lastLine: time.Now()}
	state.Store(&progressState{buyersPlanned: buyers, sellable: sellable})
	if v.w == nil || !cfg.ProgressTTY {
		return v
	}
	v.p = mpb.New(mpb.WithOutput(v.w), mpb.WithAutoRefresh(), mpb.WithRefreshRate(progressInterval), mpb.WithWidth(120))
	v.buyers = v.p.AddBar(int64(buyers), mpb.BarWidth(30),
		mpb.PrependDecorators(decor.Name("buyers", decor.WC{W: 8, C: decor.DindentRight}), decor.CountersNoUnit("%d / %d", decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.Any(func(decor.Statistics) string {
			return fmt.Sprintf("  elapsed %.1fs", state.Load().elapsed.Seconds())
		})))
	v.seats = v.p.AddBar(int64(max(sellable, 1)), mpb.BarWidth(30),
		mpb.PrependDecorators(decor.Name("sold", decor.WC{W: 8, C: decor.DindentRight}), decor.CountersNoUnit("%d / %d", decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)))
	v.rates = v.p.New(1, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
		s := state.Load()
		return fmt.Sprintf("        %s decisions/s · hold p99 %s ms · queue %s · in flight %s",
			thousands(s.decisionsPerSec), ms(s.holdP99Ms), thousands(int64(s.queueLength)), thousands(int64(s.inFlight)))
	})))
	return v
}

// update publishes s and redraws.
func (v *progressView) update(s *progressState) {
	if v == nil {
		return
	}
	v.state.Store(s)
	switch {
	case v.w == nil:
	case v.p != nil:
		v.buyers.SetCurrent(int64(s.buyersDone))
		v.seats.SetCurrent(int64(s.seatsSold))
	case time.Since(v.lastLine) >= v.every:
		v.lastLine = time.Now()
		fmt.Fprintln(v.w, s.line())
	}
}

// finish draws the final state and stops the bars.
func (v *progressView) finish(s *progressState) {
	if v == nil {
		return
	}
	v.state.Store(s)
	switch {
	case v.w == nil:
	case v.p != nil:
		// A bar that did not reach its total stays as it is (aborted,
		// not dropped) instead of claiming 100%.
		for _, b := range []struct {
			bar        *mpb.Bar
			cur, total int
		}{{v.buyers, s.buyersDone, s.buyersPlanned}, {v.seats, s.seatsSold, s.sellable}} {
			b.bar.SetCurrent(int64(b.cur))
			if b.cur >= b.total {
				b.bar.SetTotal(int64(b.cur), true)
			} else {
				b.bar.Abort(false)
			}
		}
		v.rates.SetTotal(1, true)
		v.p.Wait()
	default:
		fmt.Fprintln(v.w, s.line())
	}
}
