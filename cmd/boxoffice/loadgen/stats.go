package loadgen

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: latencies are recorded in microseconds from 1 µs to
// 10 minutes with 3 significant digits (0.1% resolution).
const (
	latencyLowestMicros  = 1
	latencyHighestMicros = int64(10 * time.Minute / time.Microsecond)
	latencySigFigs       = 3
)

func newLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(latencyLowestMicros, latencyHighestMicros, latencySigFigs)
}

func recordMicros(h *hdrhistogram.Histogram, d time.Duration) {
	us := max(int64(d/time.Microsecond), latencyLowestMicros)
	_ = h.RecordValue(min(us, latencyHighestMicros)) // clamped: cannot fail
}

// stats are the run's measurements; the run loop owns them.
type stats struct {
	latency   [endpointCount]*hdrhistogram.Histogram // whole run, from intended send time
	sendDelay *hdrhistogram.Histogram                // actual send − intended send
	// The current second, for the timeline and the live progress.
	windowHold, windowAll *hdrhistogram.Histogram

	errorsByCode  map[string]int64
	holdDecisions int64 // holds answered granted or refused
	grantedHolds  int64
	refusedHolds  int64
	bookings      int64 // payments answered booked
	seatsBooked   int64 // seats in those bookings
	unexpected    int64 // error answers that are not a normal part of a sale

	window   windowCounts // since the last timeline sample
	last     windowCounts // the last complete second, for progress
	lastHold int64        // p99 of holds in the last complete second, µs

	timeline []Sample
}

type windowCounts struct {
	decisions, granted, bookings int64
}

func newStats() *stats {
	s := &stats{
		sendDelay:    newLatencyHistogram(),
		windowHold:   newLatencyHistogram(),
		windowAll:    newLatencyHistogram(),
		errorsByCode: map[string]int64{},
	}
	for i := range s.latency {
		s.latency[i] = newLatencyHistogram()
	}
	return s
}

// record one answer of endpoint ep: its latency from the intended send
// time, and how late it was sent.
func (s *stats) record(ep endpoint, latency, sendDelay time.Duration) {
	recordMicros(s.latency[ep], latency)
	recordMicros(s.sendDelay, sendDelay)
	recordMicros(s.windowAll, latency)
	if ep == epHold {
		recordMicros(s.windowHold, latency)
	}
}

// sample closes the current second into a timeline sample.
func (s *stats) sample(t time.Duration, seatsSold, queueLength, backlog, inFlight int) {
	s.lastHold = s.windowHold.ValueAtQuantile(99)
	s.timeline = append(s.timeline, Sample{
		T:             t.Seconds(),
		HoldDecisions: s.window.decisions,
		GrantedHolds:  s.window.granted,
		Bookings:      s.window.bookings,
		SeatsSold:     seatsSold,
		HoldP99Ms:     micros(s.lastHold),
		P99Ms:         micros(s.windowAll.ValueAtQuantile(99)),
		QueueLength:   queueLength,
		Backlog:       backlog,
		InFlight:      inFlight,
	})
	s.last = s.window
	s.window = windowCounts{}
	s.windowHold.Reset()
	s.windowAll.Reset()
}

func micros(us int64) float64 { return float64(us) / 1000 }

// summary of one histogram in milliseconds.
func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count: h.TotalCount(),
		P50:   micros(h.ValueAtQuantile(50)),
		P90:   micros(h.ValueAtQuantile(90)),
		P99:   micros(h.ValueAtQuantile(99)),
		P999:  micros(h.ValueAtQuantile(99.9)),
		Max:   micros(h.Max()),
		Mean:  h.Mean() / 1000,
	}
}
