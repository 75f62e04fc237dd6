package payment

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v82"

	"github.com/boxoffice/boxoffice/engine"
)

// Simulated provider errors (errors.Is).
var (
	// ErrClosed: the provider was closed; nothing was done.
	ErrClosed = errors.New("payment: provider is closed")
	// ErrUnknownCharge: no charge has this idempotency key (Refund,
	// Settle) or the charge is not in a state the call needs (Refund of a
	// charge that did not succeed).
	ErrUnknownCharge = errors.New("payment: no such charge")
)

// Simulated provider bounds and defaults.
const (
	// DefaultSimulatedDelay is how long a tok_delayed or tok_delayed_fail
	// charge stays processing when SimulatedConfig.Delay is zero.
	DefaultSimulatedDelay = 3 * time.Second
	// SimulatedWebhookPath is appended to SimulatedConfig.WebhookURL() to
	// form the URL the simulated provider POSTs its webhooks to.
	SimulatedWebhookPath = "/v1/payments/webhooks/simulated"

	webhookBackoffMin      = 100 * time.Millisecond // first retry after a failed delivery
	webhookBackoffMax      = 30 * time.Second       // retries never wait longer
	webhookAttemptTimeout  = 10 * time.Second       // one POST, connect to last byte
	webhookAnswerBytesMax  = 64 << 10               // read (and drop) at most this much of an answer
	simulatedWorkers       = 4                      // concurrent webhook deliveries
	ledgerLineBytesMax     = 64 << 10               // a longer ledger line is corrupt
	simulatedTokenBytesMax = 255
	idempotencyKeyBytesMax = 255 // Stripe's limit, kept by both providers
	ledgerVersion          = 1
	simulatedDeclineCode   = "card_declined"
)

// SimulatedConfig configures OpenSimulated.
type SimulatedConfig struct {
	// LedgerPath is the ledger file (JSON lines, created when missing; its
	// directory must exist). Required.
	LedgerPath string
	// Delay is how long a tok_delayed / tok_delayed_fail charge stays
	// processing, from its creation (server flag --simulated-payment-delay).
	// Zero means DefaultSimulatedDelay; negative is an error.
	Delay time.Duration
	// WebhookSecret signs the webhooks (SignWebhook); the receiver verifies
	// with the same secret. Required.
	WebhookSecret string
	// WebhookURL returns the receiving server's base URL, e.g.
	// "http://127.0.0.1:8080" (known only once it listens); webhooks go to
	// WebhookURL() + SimulatedWebhookPath. Called at each delivery; an empty
	// answer is a failed delivery, retried. Required.
	WebhookURL func() string
	// Manual (tests): nothing happens in the background. A processing
	// charge settles, and a pending webhook (also the "canceled" one after
	// a Void) is sent, only when the test calls Settle, which delivers
	// once and synchronously.
	Manual bool
	// HTTPClient delivers the webhooks; nil means a client of the
	// provider's own whose idle connections Close closes.
	HTTPClient *http.Client
	// Logger receives delivery failures; nil means slog.Default().
	Logger *slog.Logger
}

// LedgerEntry is one charge of the simulated provider, one per idempotency
// key, as stored in its ledger (one JSON object per line, the whole entry
// after each change; the last line of a key wins on replay).
type LedgerEntry struct {
	Key         string            `json:"key"`                   // ChargeRequest.IdempotencyKey()
	Ref         string            `json:"ref"`                   // "pi_sim_<24 hex>"
	Status      Status            `json:"status"`                // current state
	AmountCents int64             `json:"amountCents"`           // minor unit of Currency; 0 for a Void of an unseen attempt
	Currency    string            `json:"currency"`              // ISO 4217 as requested, e.g. "EUR"
	Token       string            `json:"token"`                 // e.g. "tok_visa"; "" for a Void of an unseen attempt
	Metadata    map[string]string `json:"metadata"`              // MetadataEvent, MetadataReservation, MetadataAttempt
	CreatedAt   time.Time         `json:"createdAt"`             // when the charge was made (UTC)
	DeclineCode string            `json:"declineCode,omitempty"` // when Status is StatusFailed
	RefundRef   string            `json:"refundRef,omitempty"`   // "re_sim_<24 hex>" once refunded
	// WebhookEventID is the id ("evt_sim_<24 hex>") of the last event
	// about the charge (settled or canceled after processing); every
	// delivery of it carries this id.
	WebhookEventID string `json:"webhookEventId,omitempty"`
	// WebhookCreated is that event's "created" (Unix seconds).
	WebhookCreated int64 `json:"webhookCreated,omitempty"`
	// WebhookAcked: the receiver answered 2xx to that event.
	WebhookAcked bool `json:"webhookAcked,omitempty"`
}

// ledgerLine is the on-disk form of one ledger line.
type ledgerLine struct {
	V int `json:"v"` // ledgerVersion
	LedgerEntry
}

// Simulated is the built-in provider ("simulated"); see SimulatedConfig
// and the package doc. Safe for concurrent use. Open with OpenSimulated;
// Close stops its goroutines and closes the ledger.
type Simulated struct {
	cfg       SimulatedConfig
	log       *slog.Logger
	client    *http.Client
	ownClient bool

	// cancel ends the background goroutines (scheduler, workers) and the
	// deliveries in flight; done is closed with it so that schedule stops
	// waiting for the scheduler.
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan due    // schedule → scheduler (unbuffered)
	jobs   chan string // scheduler → workers: idempotency keys (unbuffered)
	wg     sync.WaitGroup

	mu       sync.Mutex
	file     *os.File
	size     int64 // bytes of whole lines in file
	broken   error // a failed ledger write: no more writes
	closed   bool
	entries  map[string]*LedgerEntry
	inFlight map[string]bool // keys a worker is delivering
	retries  map[string]int  // failed deliveries in a row, per key (not stored)
}

var _ Provider = (*Simulated)(nil)

// OpenSimulated opens (or creates) the ledger at cfg.LedgerPath, replays it,
// and, unless cfg.Manual, starts the background work: processing charges
// settle at CreatedAt + Delay (at once when that has passed) and webhooks
// not yet acknowledged are sent again.
//
// A torn last line (a crash in the middle of a write) is ignored and cut
// off; any other unreadable line is an error (the ledger is corrupt).
func OpenSimulated(cfg SimulatedConfig) (*Simulated, error) {
	switch {
	case cfg.LedgerPath == "":
		return nil, errors.New("simulated provider: no ledger path")
	case cfg.WebhookSecret == "":
		return nil, errors.New("simulated provider: no webhook secret")
	case cfg.WebhookURL == nil:
		return nil, errors.New("simulated provider: no webhook URL function")
	case cfg.Delay < 0:
		return nil, fmt.Errorf("simulated provider: negative delay %s", cfg.Delay)
	}
	if cfg.Delay == 0 {
		cfg.Delay = DefaultSimulatedDelay
	}
	s := &Simulated{
		cfg:      cfg,
		log:      cfg.Logger,
		client:   cfg.HTTPClient,
		done:     make(chan struct{}),
		wake:     make(chan due),
		jobs:     make(chan string),
		entries:  make(map[string]*LedgerEntry),
		inFlight: make(map[string]bool),
		retries:  make(map[string]int),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("provider", "simulated")
	if s.client == nil {
		s.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		s.ownClient = true
	}
	if err := s.openLedger(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if cfg.Manual {
		return s, nil
	}
	s.wg.Add(1 + simulatedWorkers)
	go s.runScheduler(ctx)
	for range simulatedWorkers {
		go s.runWorker(ctx)
	}
	for _, e := range s.Charges() {
		switch {
		case e.Status == StatusProcessing:
			s.schedule(e.Key, e.CreatedAt.Add(cfg.Delay))
		case e.WebhookEventID != "" && !e.WebhookAcked:
			s.schedule(e.Key, time.Now())
		}
	}
	return s, nil
}

// openLedger reads and replays the ledger file, cutting off a torn last
// line, and leaves it open for appending.
func (s *Simulated) openLedger() error {
	path := s.cfg.LedgerPath
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("simulated provider: open ledger: %w", err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// Make the new file's directory entry durable too.
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return fmt.Errorf("simulated provider: create ledger: %w", err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("simulated provider: read ledger: %w", err)
	}
	entries, good, err := replayLedger(data)
	if err != nil {
		f.Close()
		return fmt.Errorf("simulated provider: ledger %s: %w", path, err)
	}
	if good < int64(len(data)) {
		s.log.Warn("ignoring a torn last ledger line", "path", path, "bytes", int64(len(data))-good)
		if err := f.Truncate(good); err != nil {
			f.Close()
			return fmt.Errorf("simulated provider: cut torn ledger line: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("simulated provider: cut torn ledger line: %w", err)
		}
	}
	s.file, s.size, s.entries = f, good, entries
	return nil
}

// replayLedger parses ledger data and returns the entries and the length
// of the prefix made of whole, valid lines. Only the last line may be
// invalid (torn by a crash); an invalid line before another is an error.
func replayLedger(data []byte) (map[string]*LedgerEntry, int64, error) {
	entries := make(map[string]*LedgerEntry)
	var good int64
	for lineNo := 1; len(data) > 0; lineNo++ {
		line, rest, whole := bytes.Cut(data, []byte("\n"))
		e, err := decodeLedgerLine(line)
		if err != nil || !whole {
			if len(bytes.TrimSpace(rest)) == 0 {
				return entries, good, nil // torn last line
			}
			if err == nil {
				err = errors.New("no newline")
			}
			return nil, 0, fmt.Errorf("line %d: %w", lineNo, err)
		}
		entries[e.Key] = e
		good += int64(len(line)) + 1
		data = rest
	}
	return entries, good, nil
}

// decodeLedgerLine parses and checks one ledger line (without its newline).
func decodeLedgerLine(line []byte) (*LedgerEntry, error) {
	if len(line) > ledgerLineBytesMax {
		return nil, fmt.Errorf("longer than %d bytes", ledgerLineBytesMax)
	}
	var l ledgerLine
	if err := json.Unmarshal(line, &l); err != nil {
		return nil, err
	}
	if l.V != ledgerVersion {
		return nil, fmt.Errorf("version %d, want %d", l.V, ledgerVersion)
	}
	e := l.LedgerEntry
	if err := e.check(); err != nil {
		return nil, err
	}
	return &e, nil
}

// check says whether e is a well-formed entry (before writing it, after
// reading it back).
func (e *LedgerEntry) check() error {
	switch {
	case e.Key == "":
		return errors.New("entry without key")
	case !strings.HasPrefix(e.Ref, "pi_sim_"):
		return fmt.Errorf("entry %s: ref %q", e.Key, e.Ref)
	case e.Status != StatusSucceeded && e.Status != StatusProcessing && e.Status != StatusFailed && e.Status != StatusCanceled:
		return fmt.Errorf("entry %s: status %q", e.Key, e.Status)
	case e.AmountCents < 0:
		return fmt.Errorf("entry %s: amount %d", e.Key, e.AmountCents)
	case e.RefundRef != "" && e.Status != StatusSucceeded:
		return fmt.Errorf("entry %s: refund of a %s charge", e.Key, e.Status)
	case e.WebhookEventID != "" && !strings.HasPrefix(e.WebhookEventID, "evt_sim_"):
		return fmt.Errorf("entry %s: webhook event id %q", e.Key, e.WebhookEventID)
	}
	return nil
}

// appendLocked makes e the new state of its key: written and fsync'd, then
// applied in memory. On a failed write nothing changes in memory, the file
// is cut back, and the ledger takes no more writes.
func (s *Simulated) appendLocked(e *LedgerEntry) error {
	if s.broken != nil {
		return fmt.Errorf("simulated provider: ledger unusable after an earlier error: %w", s.broken)
	}
	if err := e.check(); err != nil {
		panic(fmt.Sprintf("simulated provider: writing a bad ledger entry: %v", err))
	}
	line, err := json.Marshal(ledgerLine{V: ledgerVersion, LedgerEntry: *e})
	if err != nil {
		return fmt.Errorf("simulated provider: encode ledger entry %s: %w", e.Key, err)
	}
	if len(line) > ledgerLineBytesMax {
		return engine.Errorf(engine.CodeInvalidRequest, "payment request too large (%d bytes encoded, at most %d)", len(line), ledgerLineBytesMax)
	}
	line = append(line, '\n')
	if _, err := s.file.Write(line); err != nil {
		return s.breakLedger(fmt.Errorf("write: %w", err))
	}
	if err := s.file.Sync(); err != nil {
		return s.breakLedger(fmt.Errorf("fsync: %w", err))
	}
	s.size += int64(len(line))
	s.entries[e.Key] = e
	return nil
}

// breakLedger records a failed write; callers get it from then on.
func (s *Simulated) breakLedger(err error) error {
	// Best effort: a partial line would otherwise sit before later ones.
	_ = s.file.Truncate(s.size)
	s.broken = err
	return fmt.Errorf("simulated provider: ledger: %w", err)
}

// Name returns "simulated".
func (s *Simulated) Name() string { return "simulated" }

// simulatedOutcome is what a token does: its state when charged, what a
// processing charge becomes when it settles, and the decline code of a
// failure.
func simulatedOutcome(token string) (now, later Status, ok bool) {
	switch token {
	case "tok_visa", "tok_mastercard":
		return StatusSucceeded, StatusSucceeded, true
	case "tok_chargeDeclined":
		return StatusFailed, StatusFailed, true
	case "tok_delayed":
		return StatusProcessing, StatusSucceeded, true
	case "tok_delayed_fail":
		return StatusProcessing, StatusFailed, true
	}
	return "", "", false
}

// SimulatedTokens lists the tokens the simulated provider accepts:
// tok_visa and tok_mastercard succeed; tok_chargeDeclined is declined
// ("card_declined"); tok_delayed answers processing and succeeds after the
// delay, tok_delayed_fail answers processing and fails after it.
func SimulatedTokens() []string {
	return []string{"tok_visa", "tok_mastercard", "tok_chargeDeclined", "tok_delayed", "tok_delayed_fail"}
}

// CheckToken accepts the tokens of SimulatedTokens; any other is an
// *engine.Error with code invalid_request naming them.
func (s *Simulated) CheckToken(token string) error {
	if _, _, ok := simulatedOutcome(token); ok {
		return nil
	}
	if len(token) > simulatedTokenBytesMax {
		token = token[:simulatedTokenBytesMax] + "…"
	}
	return engine.Errorf(engine.CodeInvalidRequest, "payment token %q is not known to the simulated provider (use one of %s)",
		token, strings.Join(SimulatedTokens(), ", "))
}

// checkRequest rejects a request no provider could charge.
func checkRequest(req ChargeRequest) error {
	switch {
	case req.EventID == "" || req.ReservationID == "" || req.Attempt == 0:
		return engine.Errorf(engine.CodeInvalidRequest, "payment request needs an event, a reservation and an attempt from 1")
	case len(req.IdempotencyKey()) > idempotencyKeyBytesMax:
		return engine.Errorf(engine.CodeInvalidRequest, "payment idempotency key longer than %d bytes", idempotencyKeyBytesMax)
	case req.AmountCents <= 0:
		return engine.Errorf(engine.CodeInvalidRequest, "payment amount must be positive, not %d", req.AmountCents)
	case len(req.Currency) != 3:
		return engine.Errorf(engine.CodeInvalidRequest, "currency %q is not an ISO 4217 code", req.Currency)
	}
	return nil
}

// Charge makes the charge of req, or, when req.IdempotencyKey() was seen
// before (also before a crash), answers with that charge's current state
// and Ref. The entry is fsync'd before Charge returns. A processing charge
// settles after the configured Delay and is reported by webhook.
//
// Errors: *engine.Error invalid_request for an unknown token, a malformed
// request or a key reused with a different amount, currency or token
// (Stripe's idempotency_error); ErrClosed; a ledger write failure.
func (s *Simulated) Charge(ctx context.Context, req ChargeRequest) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if err := s.CheckToken(req.Token); err != nil {
		return Result{}, err
	}
	if err := checkRequest(req); err != nil {
		return Result{}, err
	}
	key := req.IdempotencyKey()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Result{}, ErrClosed
	}
	if e := s.entries[key]; e != nil {
		// A Void before the attempt was ever seen leaves an entry without
		// token: the charge stays cancelled.
		if e.Token != "" && (e.AmountCents != req.AmountCents || e.Currency != req.Currency || e.Token != req.Token) {
			return Result{}, engine.Errorf(engine.CodeInvalidRequest,
				"idempotency key %s was used with %d %s %s, not %d %s %s",
				key, e.AmountCents, e.Currency, e.Token, req.AmountCents, req.Currency, req.Token)
		}
		return e.result(), nil
	}
	now, _, _ := simulatedOutcome(req.Token)
	e := &LedgerEntry{
		Key:         key,
		Ref:         "pi_sim_" + randomHex(),
		Status:      now,
		AmountCents: req.AmountCents,
		Currency:    req.Currency,
		Token:       req.Token,
		Metadata:    chargeMetadata(req),
		CreatedAt:   time.Now().UTC(),
	}
	if now == StatusFailed {
		e.DeclineCode = simulatedDeclineCode
	}
	if err := s.appendLocked(e); err != nil {
		return Result{}, err
	}
	if now == StatusProcessing && !s.cfg.Manual {
		s.scheduleLocked(key, e.CreatedAt.Add(s.cfg.Delay))
	}
	return e.result(), nil
}

// result is the Result of the charge e.
func (e *LedgerEntry) result() Result {
	return Result{Status: e.Status, Ref: e.Ref, DeclineCode: e.DeclineCode}
}

// Void cancels the charge of req: a processing charge becomes canceled (it
// will never succeed; a payment_intent.canceled webhook follows) →
// StatusCanceled; a succeeded one → StatusSucceeded (the caller refunds);
// a failed or canceled one → StatusCanceled. An attempt never charged is
// recorded as canceled, so that a late Charge with the same key does not
// charge → StatusCanceled. Errors: ErrClosed, a ledger write failure.
func (s *Simulated) Void(ctx context.Context, req ChargeRequest) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	key := req.IdempotencyKey()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Result{}, ErrClosed
	}
	e := s.entries[key]
	switch {
	case e == nil:
		e = &LedgerEntry{
			Key:       key,
			Ref:       "pi_sim_" + randomHex(),
			Status:    StatusCanceled,
			Currency:  req.Currency,
			Metadata:  chargeMetadata(req),
			CreatedAt: time.Now().UTC(),
		}
		if err := s.appendLocked(e); err != nil {
			return Result{}, err
		}
	case e.Status == StatusProcessing:
		next := *e
		next.Status = StatusCanceled
		next.WebhookEventID, next.WebhookCreated, next.WebhookAcked = "evt_sim_"+randomHex(), time.Now().Unix(), false
		if err := s.appendLocked(&next); err != nil {
			return Result{}, err
		}
		if !s.cfg.Manual {
			s.scheduleLocked(key, time.Now())
		}
		e = &next
	}
	r := e.result()
	if r.Status == StatusFailed {
		r.Status = StatusCanceled // no money moved
	}
	return r, nil
}

// Refund refunds the succeeded charge of req in full, once: a repeat
// answers with the same refund ("re_sim_<24 hex>"). Errors:
// ErrUnknownCharge when there is no succeeded charge for req; ErrClosed; a
// ledger write failure.
func (s *Simulated) Refund(ctx context.Context, req ChargeRequest) (Refund, error) {
	if err := ctx.Err(); err != nil {
		return Refund{}, err
	}
	key := req.IdempotencyKey()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Refund{}, ErrClosed
	}
	e := s.entries[key]
	switch {
	case e == nil:
		return Refund{}, fmt.Errorf("simulated provider: refund %s: %w", key, ErrUnknownCharge)
	case e.Status != StatusSucceeded:
		return Refund{}, fmt.Errorf("simulated provider: refund %s of a %s charge: %w", key, e.Status, ErrUnknownCharge)
	case e.RefundRef != "":
		return Refund{Ref: e.RefundRef}, nil
	}
	next := *e
	next.RefundRef = "re_sim_" + randomHex()
	if err := s.appendLocked(&next); err != nil {
		return Refund{}, err
	}
	return Refund{Ref: next.RefundRef}, nil
}

// Settle (tests) does now what would happen later for the charge with
// idempotency key key: a processing charge settles (tok_delayed succeeds,
// tok_delayed_fail fails), then its pending webhook (also the canceled
// event of a voided charge, or an earlier undelivered one) is delivered
// once, synchronously. It returns the delivery's error (for example the
// receiver's 404); calling Settle again sends the same event id again
// (without Manual, a failed delivery is also retried in the background).
// Errors: ErrUnknownCharge for an unknown key or when there is no webhook
// to send; ErrClosed; a ledger write failure; the delivery's error.
func (s *Simulated) Settle(ctx context.Context, key string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	e := s.entries[key]
	if e == nil {
		s.mu.Unlock()
		return fmt.Errorf("simulated provider: settle %s: %w", key, ErrUnknownCharge)
	}
	if e.Status == StatusProcessing {
		var err error
		if e, err = s.settleLocked(e); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	if e.WebhookEventID == "" || e.WebhookAcked {
		s.mu.Unlock()
		return fmt.Errorf("simulated provider: settle %s: a %s charge with no webhook to send: %w", key, e.Status, ErrUnknownCharge)
	}
	payload, err := webhookPayload(e)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.deliver(ctx, payload); err != nil {
		if !s.cfg.Manual {
			s.retryLater(key)
		}
		return err
	}
	s.acked(key, e.WebhookEventID)
	return nil
}

// settleLocked moves the processing charge e to its final state with a
// new webhook event to send, and returns the new entry.
func (s *Simulated) settleLocked(e *LedgerEntry) (*LedgerEntry, error) {
	_, later, _ := simulatedOutcome(e.Token)
	next := *e
	next.Status = later
	if later == StatusFailed {
		next.DeclineCode = simulatedDeclineCode
	}
	next.WebhookEventID, next.WebhookCreated, next.WebhookAcked = "evt_sim_"+randomHex(), time.Now().Unix(), false
	if err := s.appendLocked(&next); err != nil {
		return nil, err
	}
	return &next, nil
}

// acked records that the receiver acknowledged event eventID of key, if
// it is still the charge's last event.
func (s *Simulated) acked(key, eventID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.retries, key)
	e := s.entries[key]
	if s.closed || e == nil || e.WebhookEventID != eventID || e.WebhookAcked {
		return
	}
	next := *e
	next.WebhookAcked = true
	if err := s.appendLocked(&next); err != nil {
		// Not acknowledged in the ledger: the event is sent again after a
		// restart, which the receiver de-duplicates by its id.
		s.log.Error("recording a webhook acknowledgement", "key", key, "event", eventID, "err", err)
	}
}

// Charges returns a copy of every ledger entry, oldest first (by
// CreatedAt, then Key).
func (s *Simulated) Charges() []LedgerEntry {
	s.mu.Lock()
	out := make([]LedgerEntry, 0, len(s.entries))
	for _, e := range s.entries {
		c := *e
		c.Metadata = make(map[string]string, len(e.Metadata))
		for k, v := range e.Metadata {
			c.Metadata[k] = v
		}
		out = append(out, c)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b LedgerEntry) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

// Close stops the background work (a delivery in flight is abandoned and
// sent again after the next open), waits for its goroutines and closes the
// ledger. Later calls return ErrClosed; Close itself is idempotent.
func (s *Simulated) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	close(s.done)
	s.wg.Wait()
	if s.ownClient {
		s.client.CloseIdleConnections()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.file.Close(); err != nil {
		return fmt.Errorf("simulated provider: close ledger: %w", err)
	}
	return nil
}

// due is a scheduled look at one charge.
type due struct {
	at  time.Time
	key string
}

// schedule asks the scheduler to look at key at time at (earlier requests
// for the same key win). It returns at once when the provider is closing.
func (s *Simulated) schedule(key string, at time.Time) {
	select {
	case s.wake <- due{at: at, key: key}:
	case <-s.done:
	}
}

// scheduleLocked is schedule while holding s.mu: the scheduler never takes
// s.mu, so waiting for it cannot deadlock.
func (s *Simulated) scheduleLocked(key string, at time.Time) { s.schedule(key, at) }

// retryLater schedules the next delivery of key's webhook after a failed
// one: 100 ms, doubling, at most 30 s.
func (s *Simulated) retryLater(key string) {
	s.mu.Lock()
	n := s.retries[key]
	s.retries[key] = n + 1
	s.mu.Unlock()
	s.schedule(key, time.Now().Add(webhookBackoff(n)))
}

// webhookBackoff is the wait after the n-th failed delivery in a row
// (from 0).
func webhookBackoff(n int) time.Duration {
	d := webhookBackoffMin
	for range n {
		d *= 2
		if d >= webhookBackoffMax {
			return webhookBackoffMax
		}
	}
	return d
}

// runScheduler hands each key to a worker when its time comes. It owns
// the queue; it never takes s.mu.
func (s *Simulated) runScheduler(ctx context.Context) {
	defer s.wg.Done()
	var q dueQueue
	pending := make(map[string]time.Time) // the earliest time asked per key
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		for q.Len() > 0 {
			if at, ok := pending[q[0].key]; ok && at.Equal(q[0].at) {
				break
			}
			heap.Pop(&q) // superseded by an earlier time, or handed out
		}
		var jobs chan<- string
		var head string
		var tick <-chan time.Time
		if q.Len() > 0 {
			if wait := time.Until(q[0].at); wait <= 0 {
				jobs, head = s.jobs, q[0].key
			} else {
				timer.Reset(wait)
				tick = timer.C
			}
		}
		select {
		case <-ctx.Done():
			return
		case d := <-s.wake:
			if at, ok := pending[d.key]; !ok || d.at.Before(at) {
				pending[d.key] = d.at
				heap.Push(&q, d)
			}
		case <-tick:
		case jobs <- head:
			heap.Pop(&q)
			delete(pending, head)
		}
	}
}

// runWorker settles due charges and delivers their webhooks.
func (s *Simulated) runWorker(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case key := <-s.jobs:
			s.work(ctx, key)
		}
	}
}

// work settles the charge of key if it is due, then delivers its pending
// webhook once; a failed delivery is scheduled again with backoff.
func (s *Simulated) work(ctx context.Context, key string) {
	s.mu.Lock()
	e := s.entries[key]
	if s.closed || e == nil || s.inFlight[key] {
		// A worker already delivering this key sends the latest event.
		s.mu.Unlock()
		return
	}
	if e.Status == StatusProcessing {
		if at := e.CreatedAt.Add(s.cfg.Delay); time.Now().Before(at) {
			s.mu.Unlock()
			s.schedule(key, at)
			return
		}
		var err error
		if e, err = s.settleLocked(e); err != nil {
			s.mu.Unlock()
			s.log.Error("settling a charge", "key", key, "err", err)
			return
		}
	}
	if e.WebhookEventID == "" || e.WebhookAcked {
		s.mu.Unlock()
		return
	}
	payload, err := webhookPayload(e)
	if err != nil {
		s.mu.Unlock()
		s.log.Error("encoding a webhook", "key", key, "err", err)
		return
	}
	s.inFlight[key] = true
	s.mu.Unlock()

	err = s.deliver(ctx, payload)

	s.mu.Lock()
	delete(s.inFlight, key)
	s.mu.Unlock()
	switch {
	case ctx.Err() != nil:
		// Closing: sent again after the next open.
	case err != nil:
		s.log.Warn("webhook not delivered; retrying", "key", key, "event", e.WebhookEventID, "err", err)
		s.retryLater(key)
	default:
		s.acked(key, e.WebhookEventID)
		// A newer event may have been made while this one was in flight.
		s.mu.Lock()
		next := s.entries[key]
		again := next != nil && next.WebhookEventID != e.WebhookEventID && !next.WebhookAcked
		s.mu.Unlock()
		if again {
			s.schedule(key, time.Now())
		}
	}
}

// deliver POSTs one signed webhook (signed now, as Stripe signs each
// attempt) and succeeds on a 2xx answer.
func (s *Simulated) deliver(ctx context.Context, payload []byte) error {
	base := s.cfg.WebhookURL()
	if base == "" {
		return errors.New("simulated provider: no webhook URL yet")
	}
	ctx, cancel := context.WithTimeout(ctx, webhookAttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+SimulatedWebhookPath, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("simulated provider: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", SignWebhook(payload, s.cfg.WebhookSecret, time.Now()))
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("simulated provider: webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, webhookAnswerBytesMax))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("simulated provider: webhook: %s answered %s", req.URL, resp.Status)
	}
	return nil
}

// simEvent is a Stripe event object about a PaymentIntent, as Stripe
// sends it to a webhook endpoint (the fields this package's readers use,
// plus the envelope).
type simEvent struct {
	ID              string `json:"id"`
	Object          string `json:"object"` // "event"
	APIVersion      string `json:"api_version"`
	Created         int64  `json:"created"` // Unix seconds
	Livemode        bool   `json:"livemode"`
	PendingWebhooks int    `json:"pending_webhooks"`
	Type            string `json:"type"`
	Data            struct {
		Object simIntent `json:"object"`
	} `json:"data"`
}

// simIntent is a Stripe PaymentIntent object.
type simIntent struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"` // "payment_intent"
	Amount             int64             `json:"amount"`
	AmountReceived     int64             `json:"amount_received"`
	Currency           string            `json:"currency"` // lowercase
	Created            int64             `json:"created"`
	Livemode           bool              `json:"livemode"`
	Status             string            `json:"status"`
	CancellationReason *string           `json:"cancellation_reason"`
	LastPaymentError   *simPaymentError  `json:"last_payment_error"`
	Metadata           map[string]string `json:"metadata"`
	PaymentMethodTypes []string          `json:"payment_method_types"`
}

// simPaymentError is a PaymentIntent's last_payment_error.
type simPaymentError struct {
	Type        string `json:"type"` // "card_error"
	Code        string `json:"code"`
	DeclineCode string `json:"decline_code"`
	Message     string `json:"message"`
}

// webhookPayload is the Stripe-shaped event JSON for e's last event.
func webhookPayload(e *LedgerEntry) ([]byte, error) {
	ev := simEvent{
		ID:              e.WebhookEventID,
		Object:          "event",
		APIVersion:      stripe.APIVersion,
		Created:         e.WebhookCreated,
		PendingWebhooks: 1,
		Type:            eventType(e.Status),
	}
	pi := simIntent{
		ID:                 e.Ref,
		Object:             "payment_intent",
		Amount:             e.AmountCents,
		Currency:           strings.ToLower(e.Currency),
		Created:            e.CreatedAt.Unix(),
		Metadata:           e.Metadata,
		PaymentMethodTypes: []string{"card"},
	}
	switch e.Status {
	case StatusSucceeded:
		pi.Status, pi.AmountReceived = "succeeded", e.AmountCents
	case StatusFailed:
		// After a failed attempt Stripe asks for another payment method.
		pi.Status = "requires_payment_method"
		pi.LastPaymentError = &simPaymentError{Type: "card_error", Code: "card_declined", DeclineCode: e.DeclineCode, Message: "Your card was declined."}
	case StatusCanceled:
		reason := "requested_by_customer"
		pi.Status, pi.CancellationReason = "canceled", &reason
	default:
		pi.Status = "processing"
	}
	ev.Data.Object = pi
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("simulated provider: encode webhook %s: %w", e.WebhookEventID, err)
	}
	return b, nil
}

// randomHex is 24 random hex digits for ids.
func randomHex() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// syncDir fsyncs a directory, making a new entry in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// dueQueue is a min-heap of due by time.
type dueQueue []due

func (q dueQueue) Len() int           { return len(q) }
func (q dueQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q dueQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *dueQueue) Push(x any)        { *q = append(*q, x.(due)) }
func (q *dueQueue) Pop() any {
	old := *q
	d := old[len(old)-1]
	*q = old[:len(old)-1]
	return d
}
