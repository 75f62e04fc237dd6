// Command boxoffice is the one boxoffice binary.
//
//	boxoffice serve [--demo] [--addr :8080] [--data ./data] ...
//	boxoffice verify [--data ./data]
//	boxoffice snapshot --target URL --out snap.tar --admin-token T
//	boxoffice restore --from snap.tar --data NEWDIR
//	boxoffice load --target URL [--event ID | --create-event-from PLAN.json] ...
//
// serve wires the parts together (Main): it listens first, so /healthz and
// /readyz answer during recovery; opens the journal (persistence) in
// DATA/journal; starts the actor system with the web layer's seat-map hub as
// its feed, which recovers every event; then marks the server ready and, with
// --demo, creates the two demo events (riverside-concert-hall and
// harbour-stadium, on sale from start-up) unless they exist. Every flag has a
// BOXOFFICE_* environment variable. Secrets the server makes for itself — the
// admin token and the session-signing key — are generated once with
// crypto/rand into DATA/secrets (mode 0600) and reused on restart, so tokens
// issued before a restart stay valid; flags override them. On SIGINT or
// SIGTERM it stops accepting connections, drains the requests in flight,
// closes the actor system (everything decided becomes durable) and then the
// journal.
//
// verify replays every event's journal through the engine (EventCreated,
// snapshot, tail), checks the engine's invariants and prints one line per
// event; a corrupt record is reported with its event, sequence and key, and
// the exit status is 1.
//
// snapshot downloads a consistent copy of a running server's journal (a tar
// of a Pebble checkpoint); restore unpacks one into a new data directory,
// verifying every event before it takes the journal's place.
//
// load (package loadgen) plays a flash sale of virtual buyers against a
// running server over HTTP and WebSocket, reports throughput and latency
// percentiles (stdout, --json, --report HTML) and audits the result for
// overselling: a failed audit exits 1, naming the seat. With --debug-addr,
// serve also answers Go's pprof profiles on a separate listener.
package main
