// Package loadgen plays a flash sale against a running boxoffice server
// over its public HTTP and WebSocket API (API.md), measures it, and audits
// the result for overselling. `boxoffice load` is its command line; Run is
// the whole of it.
//
// # A run
//
//  1. Setup, not measured: wait up to 30 s for GET /readyz; optionally
//     create a fresh event (Config.CreateEvent, POST /v1/admin/events: the
//     plan, prices, hold TTL and, if asked, a waiting room; a server that
//     refuses the room with a 400 naming waitingRoom gets the event without
//     one, and the report's notes say so); read the event and its seat map;
//     connect to the live seat map (GET /v1/events/{id}/live: a run fails
//     to start without it); open the pool of customer sessions if
//     Config.Customers > 0; wait for onSaleAt.
//  2. The sale, from on-sale (t = 0): Config.Buyers virtual buyers arrive
//     open-loop on a fixed schedule (burst, steady or ramp), whatever the
//     server's speed.
//  3. When every buyer has finished (or arrivals were stopped and the
//     buyers in flight finished), the audit, then the Report.
//
// # Buyers
//
// A buyer is a small state machine, not a goroutine. Its visit: load the
// event page (GET /v1/events/{id}; Config.EventPage) or look at the live
// map; leave as soldOut when every seat is booked; when none is available
// but some are held, watch the live map for up to Config.Patience: seats
// coming back (a cancelled or expired hold), and once a second any seats
// still available, wake the longest-waiting watchers (those who want no
// more seats than are available first; the others settle for fewer), two
// per seat, after a reaction time of up to 300 ms (watchers cost no
// requests); make
// a session (POST /v1/sessions) unless it has one from the pool; queue in
// the waiting room when the event says it has one or a hold answers 403
// admission_required (POST /v1/events/{id}/queue, then GET
// .../queue/{ticket} never sooner than pollAfterSeconds, plus up to 5%
// jitter; admitted: hold with the Admission-Token header; sold_out: leave;
// a server without the queue endpoints (404) is noted and the buyers go
// straight to the hold); hold (POST /v1/reservations) hand-picked seats
// from the live map (Config.HandPickedShare: adjacent available seats in a
// row of its category) or best available {quantity, category}; the
// category is its preference (a Zipf draw over categories by price, dearest
// first, Config.CategorySkew), moved one cheaper per refused attempt, the
// nearest with enough seats available on the map, and any category on the
// last attempt, when a group also settles for fewer seats if the map has
// no run of adjacent seats long enough; then, after think time, pay (Idempotency-Key; a 202 is
// followed by GET /v1/reservations/{id} once a second), cancel, or walk
// away and let the hold expire (Config.PayShare, CancelShare,
// AbandonShare). The buyers' random choices come from one generator
// seeded with Config.Seed (the order of answers still varies run to run).
//
// # Open loop and latency
//
// One goroutine, the run loop, owns every buyer and all measurements. It
// keeps a min-heap of the buyers' next steps by due time, merged with the
// arrival schedule (arrivals are made lazily, so a million buyers cost
// nothing before they arrive), and hands due requests to a bounded pool of
// Config.Connections HTTP workers. A request's latency is measured from
// its due time (when the buyer meant to send it), not from when a worker
// got to it: when the server or the generator falls behind, the waiting
// counts (no coordinated omission). SendDelay reports how late requests
// left the generator; the timeline's backlog counts requests due but not
// sent. Percentiles come from HdrHistogram (1 µs to 10 min, 3 significant
// digits).
//
// # The client (the generator's own cost)
//
// Every CPU microsecond the generator spends per request is one the server
// under test does not get on a shared machine, so the hot path is lean
// (conn.go): each worker keeps one keep-alive HTTP/1.1 connection of a
// pool bounded by Config.Connections, and writes its request and reads the
// answer itself, one write and one read system call, with no goroutine
// of its own per connection (net/http's Transport has two and hands each
// request over between them). Requests are written and answers parsed by
// fasthttp (Request.Write, Response.ReadLimitBody) in a Request and
// Response each worker reuses; a hold's body is written without
// reflection, and a buyer's answer is decoded with fastjson for only the
// fields the buyer uses. A connection idle over 5 s is closed rather than
// reused, and a request that fails on a reused connection before any
// answer is sent once more on a new one when that is safe (GET, PUT,
// DELETE, or an Idempotency-Key). The run loop takes every answer already
// back in one turn and resets its timer only when the next due time moves.
// The live seat map stays on gorilla/websocket; setup and audit requests
// share the pool. `boxoffice load --cpu-profile FILE` profiles the
// generator.
//
// # The report (JSON names of Report; times in seconds, latencies in ms)
//
//   - holdDecisionsPerSecond: holds answered granted (201) or refused
//     (409 seat_unavailable, no_adjacent_seats, orphan_seat, 422
//     limit_exceeded), divided by saleSeconds (on-sale to the last hold or
//     payment answer); grantedHoldsPerSecond, bookingsPerSecond (payments
//     answered booked) over the same window; peakHoldDecisionsPerSecond:
//     the best one-second sample.
//   - latency: {endpoint: {count, p50, p90, p99, p999, max, mean}} for the
//     endpoints event, session, queueJoin, queuePoll, hold, pay,
//     reservation, cancel; sendDelay the same for the generator's lateness.
//   - errorsByCode: every error answer by problem code (refusals included;
//     transport_error: no answer; http_NNN: an error without a code);
//     unexpectedErrors: those that are not a normal part of a sale.
//   - timeToSellOutSeconds: on-sale until the live map showed no seat
//     available or held (null if never); soldOut, seatsSold, sellable.
//   - buyers: {planned, arrived, outcomes: booked, cancelled, abandoned,
//     soldOut, refused, holdExpired, paymentDeclined, queueExpired, failed,
//     interrupted, notArrived; watched, watchedBooked}.
//   - waitingRoom: {used, joined, admitted, maxQueueLength, maxPosition}.
//   - audit: {ok, bookings, bookedSeats, mapBookedSeats,
//     confirmedBookings, doubleSoldSeats, problems}.
//   - timeline: one sample per second {t, holdDecisions, grantedHolds,
//     bookings, seatsSold, holdP99Ms, p99Ms, queueLength, backlog,
//     inFlight}; notes; scenario (the settings played).
//
// Report.WriteText is the report for people, WriteJSON the above, and
// WriteHTML one self-contained page (inline CSS and SVG charts over time of
// decisions/s, p99 latency, seats sold and queue length; no scripts, nothing
// fetched).
//
// # The oversell audit
//
// After the sale the audit reads GET /v1/admin/events/{id}/bookings (with
// Config.AdminToken) and GET /v1/events/{id}/seats and checks (AuditSale):
// no seat is in two bookings; every booking a buyer was told of (pay
// answered booked) is listed with the same seats; the seats of the
// bookings are exactly the seats booked on the map. The map may lag a
// durable change by up to a second, so a mismatch between map and bookings
// is read again for up to 3 s before it counts; a double-sold seat counts
// at once. Report.Err names the first problems; `boxoffice load` exits 1
// with it.
//
// # Stopping
//
// Cancelling Run's context (Ctrl-C) or reaching Config.MaxDuration stops
// arrivals and every buyer not in flight (interrupted; buyers never made
// are notArrived); requests in flight finish; the audit and the report
// then cover the sale so far. Config.StopWhenSoldOut stops arrivals when
// the live map shows the sell-out. Every goroutine Run starts (workers,
// the live-map observer, the progress bars) has ended when it returns.
//
// # Bounds
//
// Buyers ≤ BuyersMax, Connections ≤ ConnectionsMax, MaxAttempts ≤
// MaxAttemptsMax, seats per buyer 1–SeatsPerBuyerMax; payment retries,
// payment polls and waiting-room joins per buyer are bounded; response
// bodies are read up to 64 MiB; one request lasts at most
// Config.RequestTimeout (its connection's deadline: waiting for a free
// connection and dialling count), dialling at most 5 s; the audit at most
// 2 minutes.
package loadgen
