// Package ui is boxoffice's browser UI: one page of plain HTML, CSS and
// JavaScript (no build step, no external scripts), embedded into the binary
// and served by package web at "/" with its assets under /ui/.
//
// The page lists the events (GET /v1/events) and draws an event's seat map
// on a canvas from GET /v1/events/{id}, .../plan and .../seats. It keeps the
// map current from the live feed (.../live, a WebSocket: a snapshot, then
// deltas; on close code 4000 or a drop it reconnects with ?since=<last
// version> after a backoff) and, while the socket is down, polls .../seats
// with If-None-Match every 500 ms from a worker (poller.js: the stadium's
// map is 6 MB of JSON to parse), so a durable change shows within a second
// either way. The page's ?feed=poll never opens the socket. A buyer selects seats (mouse, touch or keyboard), holds them
// (POST /v1/reservations), sees the hold's countdown and pays with a test
// card (POST /v1/reservations/{id}/pay). The anonymous session token (POST
// /v1/sessions) is kept in localStorage, and the buyer's reservations are
// read back from GET /v1/reservations, so a reload loses nothing.
//
// An event whose waiting room is on opens on a waiting page instead: the
// buyer joins (POST .../queue; the ticket is kept in sessionStorage), sees
// the pre-queue, their position, the estimated wait and a progress bar,
// polls no sooner than pollAfterSeconds (with backoff on errors), and once
// admitted gets the seat map with a countdown to the claim deadline; every
// hold then carries the Admission-Token header, and a 403
// admission_required sends the buyer back to the queue. Sold out and
// expired places get their own messages.
//
// Files: index.html, app.css, app.js (pages, buyer flow, messages for the
// API's problem codes), seatmap.js (the canvas: an offscreen layer of seats
// redrawn only when the view leaves it or the zoom settles, a grid for
// hit-testing, one requestAnimationFrame pass per frame), live.js (seat
// state, live feed, polling), api.js (requests, session), poller.js.
//
// For tests the page exposes window.boxoffice (see installTestHooks in
// app.js: seatStatus, seatChangedAt, seatClientPoint, liveMode, animate,
// queue, admission, admissionState, ...). The browser tests (build tag browser, `make test-browser`) run the
// real binary and several chromium instances against it.
package ui
