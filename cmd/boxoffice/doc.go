// Command boxoffice is the one boxoffice binary.
//
//	boxoffice serve [--demo] [--addr :8080] [--data ./data] ...
//	boxoffice verify [--data ./data]
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
package main
