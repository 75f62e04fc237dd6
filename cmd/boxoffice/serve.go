package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/cmd/boxoffice/demo"
	"github.com/boxoffice/boxoffice/engine"
	"github.com/boxoffice/boxoffice/persistence"
	"github.com/boxoffice/boxoffice/web"
)

// Options are the settings of `boxoffice serve`; each flag has a BOXOFFICE_*
// environment variable.
type Options struct {
	Addr               string `default:":8080" env:"BOXOFFICE_ADDR" help:"Listen address (host:port; port 0 picks one)."`
	Data               string `default:"./data" env:"BOXOFFICE_DATA" help:"Data directory: the journal and the server's own secrets."`
	Demo               bool   `env:"BOXOFFICE_DEMO" help:"Create the two demo events if missing, enable anonymous sessions, print the admin token."`
	AdminToken         string `env:"BOXOFFICE_ADMIN_TOKEN" help:"Operators' bearer token (default: generated once into DATA/secrets/admin-token)."`
	SessionSecret      string `env:"BOXOFFICE_SESSION_SECRET" help:"Key signing anonymous session tokens, at least 32 bytes (default: generated once into DATA/secrets/session-secret)."`
	JWTHS256Secret     string `name:"jwt-hs256-secret" env:"BOXOFFICE_JWT_HS256_SECRET" help:"Verify customer JWTs signed with HS256 by this secret."`
	JWTPublicKey       string `name:"jwt-public-key" env:"BOXOFFICE_JWT_PUBLIC_KEY" help:"Verify customer JWTs signed with RS256 or ES256 by the public key in this PEM file."`
	AnonymousSessions  bool   `env:"BOXOFFICE_ANONYMOUS_SESSIONS" help:"Allow POST /v1/sessions (always on with --demo)."`
	RateLimitPerSecond int    `default:"50" env:"BOXOFFICE_RATE_LIMIT_PER_SECOND" help:"Requests per second per customer (or client IP without a token); 0 turns it off."`
	LogFormat          string `default:"text" enum:"text,json" env:"BOXOFFICE_LOG_FORMAT" help:"Log format: text or json."`
	DebugAddr          string `env:"BOXOFFICE_DEBUG_ADDR" help:"Serve Go's runtime profiles (net/http/pprof, /debug/pprof/) on this address, for example 127.0.0.1:6060; empty: off. Never expose it publicly."`
	SnapshotEvery      int    `default:"20000" env:"BOXOFFICE_SNAPSHOT_EVERY" help:"Snapshot an event every this many journal records (bounds recovery time)."`

	PaymentProvider       string        `default:"simulated" enum:"simulated,stripe" env:"BOXOFFICE_PAYMENT_PROVIDER" help:"Payment provider: simulated (built in; Stripe-style test tokens, ledger in DATA/payments) or stripe."`
	SimulatedPaymentDelay time.Duration `default:"3s" env:"BOXOFFICE_SIMULATED_PAYMENT_DELAY" help:"How long the simulated provider takes to confirm tok_delayed (and fail tok_delayed_fail) by webhook."`
	StripeKey             string        `env:"BOXOFFICE_STRIPE_KEY" help:"Stripe secret API key (sk_...); required with --payment-provider stripe."`
	StripeWebhookSecret   string        `env:"BOXOFFICE_STRIPE_WEBHOOK_SECRET" help:"Stripe webhook signing secret (whsec_...); required with --payment-provider stripe."`
	StripeAPIBase         string        `name:"stripe-api-base" env:"BOXOFFICE_STRIPE_API_BASE" help:"Stripe API base URL (default Stripe's own; for example a stripe-mock address)."`
}

// Bounds of the HTTP server and of shutdown.
const (
	readHeaderTimeout = 10 * time.Second
	// readTimeout covers a 16 MiB venue upload on a slow link.
	readTimeout = 2 * time.Minute
	idleTimeout = 2 * time.Minute
	// writeTimeout bounds writing a response, so a client that never reads
	// cannot pin a handler: 30 s is ample for the 6.3 MB stadium map on a
	// slow link. (A WebSocket upgrade resets its own deadlines.)
	writeTimeout = 30 * time.Second
	// drainTimeout bounds waiting for requests in flight at shutdown; those
	// still running then are cut off. flushTimeout then bounds making every
	// decided record durable: each phase has its own budget.
	drainTimeout = 10 * time.Second
	flushTimeout = 10 * time.Second
)

// Main is the `boxoffice serve` process: Run starts it and returns once it
// serves; Close stops it. End-to-end tests run it on port 0.
type Main struct {
	Options Options
	// Logger is where logs go; nil: stderr in Options.LogFormat.
	Logger *slog.Logger

	log        *slog.Logger
	web        *web.Server
	listener   net.Listener
	debug      *http.Server // --debug-addr; nil when off
	httpServer *http.Server
	served     chan error // the result of http.Server.Serve
	store      *persistence.Store
	system     *actors.System
	payments   payment.Provider
	closePay   func() error // stops the simulated provider; nil for others
	adminToken string

	ready bool // Run finished: Close then reports a stop, not a failed start

	closeOnce sync.Once
	closeErr  error
}

// Run opens the data directory, starts listening (so /healthz and /readyz
// answer during recovery), recovers every event, creates the demo events
// with --demo, and returns once the server is ready. On error everything
// started is stopped again.
func (m *Main) Run(ctx context.Context) (err error) {
	o := &m.Options
	m.log = m.Logger
	if m.log == nil {
		m.log = newLogger(os.Stderr, o.LogFormat, slog.LevelInfo)
	}
	defer func() {
		if err != nil {
			_ = m.Close()
		}
	}()
	if o.Demo {
		o.AnonymousSessions = true
	}
	if o.SnapshotEvery < 0 {
		return fmt.Errorf("--snapshot-every must be a positive number of records, not %d", o.SnapshotEvery)
	}
	if err := os.MkdirAll(o.Data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	secrets := filepath.Join(o.Data, "secrets")
	m.adminToken = o.AdminToken
	if m.adminToken == "" {
		if m.adminToken, err = loadOrCreateSecret(filepath.Join(secrets, "admin-token")); err != nil {
			return err
		}
	}
	sessionSecret := o.SessionSecret
	if sessionSecret == "" && o.AnonymousSessions {
		if sessionSecret, err = loadOrCreateSecret(filepath.Join(secrets, "session-secret")); err != nil {
			return err
		}
	}
	provider, webhookSecret, err := m.openPayments(secrets)
	if err != nil {
		return err
	}
	// Admission tokens stay valid across restarts: the key is kept.
	admissionKey, err := loadOrCreateSecret(filepath.Join(secrets, "admission-key"))
	if err != nil {
		return err
	}
	var publicKey []byte
	if o.JWTPublicKey != "" {
		if publicKey, err = os.ReadFile(o.JWTPublicKey); err != nil {
			return fmt.Errorf("JWT public key: %w", err)
		}
	}
	m.web, err = web.NewServer(web.Config{
		Logger:             m.log,
		AdminToken:         m.adminToken,
		AnonymousSessions:  o.AnonymousSessions,
		SessionSecret:      []byte(sessionSecret),
		JWTHS256Secret:     []byte(o.JWTHS256Secret),
		JWTPublicKeyPEM:    publicKey,
		RateLimitPerSecond: o.RateLimitPerSecond,
		PaymentProvider:    provider,
		WebhookSecret:      webhookSecret,
		AdmissionKey:       []byte(admissionKey),
		WriteSnapshot: func(w io.Writer) error {
			if m.store == nil {
				return errors.New("the journal is not open yet")
			}
			return writeSnapshot(m.store, o.Data, w)
		},
	})
	if err != nil {
		return err
	}

	if m.listener, err = net.Listen("tcp", o.Addr); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.httpServer = &http.Server{
		Handler:           m.web.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	m.served = make(chan error, 1)
	go func() { m.served <- m.httpServer.Serve(m.listener) }()
	if o.DebugAddr != "" {
		if err := m.serveDebug(o.DebugAddr); err != nil {
			return err
		}
	}

	if m.store, err = persistence.Open(filepath.Join(o.Data, "journal"), persistence.Options{Logger: m.log}); err != nil {
		return err
	}
	m.system, err = actors.Start(ctx, actors.Config{
		Journal:              m.store,
		Logger:               m.log,
		Feed:                 m.web.Hub(),
		SnapshotEveryRecords: o.SnapshotEvery,
		Payments:             m.payments,
	})
	if err != nil {
		return err
	}
	if o.Demo {
		if err := m.createDemoEvents(ctx); err != nil {
			return err
		}
	}
	// Ready only now: every event recovered, the demo events created, and
	// each one's seat map published to the hub.
	m.web.SetSystem(m.system)
	attrs := []any{"addr", m.Addr(), "data", o.Data, "events", len(m.system.EventIDs()), "anonymousSessions", o.AnonymousSessions}
	if o.Demo {
		attrs = append(attrs, "adminToken", m.adminToken)
	} else if o.AdminToken == "" {
		attrs = append(attrs, "adminTokenFile", filepath.Join(secrets, "admin-token"))
	}
	m.log.Info("boxoffice is serving", attrs...)
	m.ready = true
	return nil
}

// serveDebug serves net/http/pprof's handlers on their own listener, apart
// from the public API (so no route, middleware or rate limit of the API
// applies to them, and they are never reachable through its address).
func (m *Main) serveDebug(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	m.debug = &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	go func() { _ = m.debug.Serve(ln) }()
	m.log.Info("profiles served", "debugAddr", ln.Addr().String())
	return nil
}

// openPayments opens the configured payment provider and returns its name
// and the secret its webhooks are signed with. The simulated provider keeps
// its ledger in DATA/payments/ledger.jsonl and signs with a secret generated
// once into DATA/secrets/webhook-secret; its webhooks go to this server's
// own listen address.
func (m *Main) openPayments(secrets string) (name, webhookSecret string, err error) {
	o := &m.Options
	switch o.PaymentProvider {
	case "stripe":
		if o.StripeKey == "" || o.StripeWebhookSecret == "" {
			return "", "", errors.New("--payment-provider stripe needs --stripe-key and --stripe-webhook-secret")
		}
		m.payments, err = payment.NewStripe(payment.StripeConfig{Key: o.StripeKey, APIBase: o.StripeAPIBase})
		if err != nil {
			return "", "", fmt.Errorf("stripe: %w", err)
		}
		return "stripe", o.StripeWebhookSecret, nil
	case "simulated", "":
		if o.SimulatedPaymentDelay < 0 {
			return "", "", fmt.Errorf("--simulated-payment-delay must not be negative, not %s", o.SimulatedPaymentDelay)
		}
		if webhookSecret, err = loadOrCreateSecret(filepath.Join(secrets, "webhook-secret")); err != nil {
			return "", "", err
		}
		if err := os.MkdirAll(filepath.Join(o.Data, "payments"), 0o700); err != nil {
			return "", "", fmt.Errorf("payments directory: %w", err)
		}
		sim, err := payment.OpenSimulated(payment.SimulatedConfig{
			LedgerPath:    filepath.Join(o.Data, "payments", "ledger.jsonl"),
			Delay:         o.SimulatedPaymentDelay,
			WebhookSecret: webhookSecret,
			WebhookURL:    m.selfURL,
			Logger:        m.log,
		})
		if err != nil {
			return "", "", fmt.Errorf("simulated payment provider: %w", err)
		}
		m.payments, m.closePay = sim, sim.Close
		return "simulated", webhookSecret, nil
	}
	return "", "", fmt.Errorf("unknown payment provider %q (simulated or stripe)", o.PaymentProvider)
}

// selfURL is this server's own base URL, for the simulated provider's
// webhooks: the listen address, with a wildcard host made loopback.
func (m *Main) selfURL() string {
	addr := m.Addr()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// createDemoEvents creates the demo events that do not exist yet.
func (m *Main) createDemoEvents(ctx context.Context) error {
	for _, def := range demo.Events(time.Now()) {
		_, err := m.system.CreateEvent(ctx, def)
		switch engine.CodeOf(err) {
		case "":
			m.log.Info("demo event created", "event", def.ID, "name", def.Name)
		case engine.CodeEventExists:
		default:
			return fmt.Errorf("demo event %s: %w", def.ID, err)
		}
	}
	return nil
}

// Addr is the address the server listens on (the real port when asked for 0).
func (m *Main) Addr() string {
	if m.listener == nil {
		return ""
	}
	return m.listener.Addr().String()
}

// AdminToken is the operators' token in use (from the flag or the data directory).
func (m *Main) AdminToken() string { return m.adminToken }

// Close stops accepting connections, drains the requests in flight, then
// closes the actor system (which makes everything decided durable) and the
// journal, in that order.
func (m *Main) Close() error {
	m.closeOnce.Do(func() {
		var errs []error
		if m.debug != nil {
			_ = m.debug.Close()
		}
		if m.httpServer != nil {
			drainCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
			if err := m.httpServer.Shutdown(drainCtx); err != nil {
				// Requests still running are cut off; what they decided is
				// flushed below, and an unacknowledged decision is allowed.
				if m.log != nil {
					m.log.Warn("requests still running after the drain timeout are cut off", "timeout", drainTimeout)
				}
				_ = m.httpServer.Close()
			}
			cancel()
			if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, fmt.Errorf("serve HTTP: %w", err))
			}
		} else if m.listener != nil {
			_ = m.listener.Close()
		}
		if m.web != nil {
			// http.Server.Shutdown does not see hijacked (WebSocket)
			// connections: the web server ends its live subscribers itself.
			m.web.Close()
			m.web.SetSystem(nil)
		}
		if m.system != nil {
			ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			defer cancel()
			if err := m.system.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("close actors: %w", err))
			}
		}
		if m.closePay != nil {
			// The simulated provider is "elsewhere": its ledger keeps what
			// it owes (webhooks not yet delivered) for the next start.
			if err := m.closePay(); err != nil {
				errs = append(errs, fmt.Errorf("close the simulated payment provider: %w", err))
			}
		}
		if m.store != nil {
			if err := m.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close journal: %w", err))
			}
		}
		m.closeErr = errors.Join(errs...)
		switch {
		case m.log == nil:
		case m.closeErr != nil:
			m.log.Error("boxoffice stopped uncleanly", "err", m.closeErr)
		case !m.ready:
			m.log.Info("boxoffice did not start") // the caller reports why
		default:
			m.log.Info("boxoffice stopped cleanly")
		}
	})
	return m.closeErr
}

// newLogger returns a slog logger writing text or JSON from level up.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
