package web

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/boxoffice/boxoffice/web/ui"
)

// ServeGCPercent is the Go GC target `boxoffice serve` runs with unless
// GOGC is set (its --gc-percent default): a server holding whole events in
// memory allocates far more per second than it keeps, so collecting at 5×
// the live heap instead of 2× takes CPU off the request and fan-out paths.
// Measured in docs/BENCHMARKS.md (live seat map fan-out, 2026-12-01).
const ServeGCPercent = 400

// Config configures a Server.
type Config struct {
	// System is the actor system; it may also be given later with
	// SetSystem (the system needs the server's Hub as its seat feed).
	// Until it is set, /readyz and the endpoints that need it answer 503.
	System System
	// Logger receives request failures (5xx) and panics; nil discards.
	Logger *slog.Logger
	// AdminToken is the operators' bearer token; "" disables the admin API.
	AdminToken string
	// AnonymousSessions enables POST /v1/sessions and its tokens.
	AnonymousSessions bool
	// SessionSecret signs anonymous session tokens (HS256, at least 32
	// bytes); required when AnonymousSessions is set.
	SessionSecret []byte
	// JWTHS256Secret verifies customer JWTs of the identity provider signed
	// with HS256; nil: none.
	JWTHS256Secret []byte
	// JWTPublicKeyPEM verifies customer JWTs signed with RS256 (an RSA key)
	// or ES256 (a P-256 key); nil: none.
	JWTPublicKeyPEM []byte
	// RateLimitPerSecond bounds the requests of one customer (or, without a
	// token, one client IP) per second; 0 turns rate limiting off.
	RateLimitPerSecond int
	// Now is the clock for token expiry and issue; nil: time.Now.
	Now func() time.Time
	// RequestTimeout bounds every request; 0: DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Registry receives the server's metrics and is served at /metrics; nil:
	// a new registry with the Go and process collectors.
	Registry *prometheus.Registry
	// PaymentProvider names the provider whose webhooks POST
	// /v1/payments/webhooks/{provider} accepts ("simulated", "stripe");
	// "" turns the endpoint off (404).
	PaymentProvider string
	// WebhookSecret verifies the provider's webhook signatures (Stripe's
	// scheme: "whsec_..." or the simulated provider's secret).
	WebhookSecret string
	// WebhookTolerance is how old a webhook's signed timestamp may be;
	// 0: DefaultWebhookTolerance.
	WebhookTolerance time.Duration
	// AdmissionKey signs and verifies waiting-room admission tokens (HS256,
	// at least 32 bytes); kept across restarts so that tokens issued
	// before one stay valid. Nil: a random key for this process only.
	AdmissionKey []byte
	// WriteSnapshot writes a consistent snapshot of the journal to w as a
	// tar archive (POST /v1/admin/snapshots); nil: that endpoint answers
	// 404.
	WriteSnapshot func(w io.Writer) error
}

// DefaultWebhookTolerance is Stripe's default tolerance for a webhook's
// signed timestamp.
const DefaultWebhookTolerance = 5 * time.Minute

// DefaultRequestTimeout bounds a request when Config.RequestTimeout is 0. It
// is longer than the actor system's own request timeout (5 s), so that the
// system's "timeout" answer, not ours, is what a caller normally sees.
const DefaultRequestTimeout = 10 * time.Second

// adminCreateTimeout bounds POST /v1/admin/events: reading and importing a
// 16 MiB plan takes longer than a hold.
const adminCreateTimeout = 60 * time.Second

// Server serves API.md over HTTP.
type Server struct {
	log         *slog.Logger
	now         func() time.Time
	timeout     time.Duration
	auth        *authenticator
	hub         *Hub
	idempotency *idempotencyStore
	metrics     *metrics
	router      *chi.Mux
	limiter     *httprate.RateLimiter // nil: off
	webhooks    webhookConfig
	snapshot    func(io.Writer) error

	admissionKey    []byte
	admissionParser *jwt.Parser

	sys atomic.Pointer[systemRef]
}

// webhookConfig is what the payment webhook endpoint verifies with.
type webhookConfig struct {
	provider, secret string
	tolerance        time.Duration
}

type systemRef struct{ System }

// NewServer returns a server for cfg. It fails on an unusable configuration
// (a short session secret, an unreadable public key).
func NewServer(cfg Config) (*Server, error) {
	s := &Server{
		log: cfg.Logger, now: cfg.Now, timeout: cfg.RequestTimeout,
		webhooks: webhookConfig{provider: cfg.PaymentProvider, secret: cfg.WebhookSecret, tolerance: cfg.WebhookTolerance},
	}
	s.snapshot = cfg.WriteSnapshot
	s.admissionKey = cfg.AdmissionKey
	if s.admissionKey == nil {
		s.admissionKey = make([]byte, 32)
		_, _ = rand.Read(s.admissionKey)
	}
	if len(s.admissionKey) < 32 {
		return nil, errors.New("web: the admission key must be at least 32 bytes")
	}
	s.admissionParser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(admissionIssuer), jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.now))
	if s.webhooks.tolerance <= 0 {
		s.webhooks.tolerance = DefaultWebhookTolerance
	}
	if cfg.PaymentProvider != "" && cfg.WebhookSecret == "" {
		return nil, errors.New("web: a payment provider's webhooks need a webhook secret")
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.timeout <= 0 {
		s.timeout = DefaultRequestTimeout
	}
	if cfg.RateLimitPerSecond < 0 {
		return nil, errors.New("web: the rate limit per second must not be negative")
	}
	auth, err := newAuthenticator(cfg, s.now)
	if err != nil {
		return nil, err
	}
	s.auth = auth
	s.hub = NewHub(s.log)
	s.idempotency = newIdempotencyStore(s.now)
	s.metrics, err = newMetrics(cfg.Registry, s.hub)
	if err != nil {
		return nil, err
	}
	if cfg.RateLimitPerSecond > 0 {
		s.limiter = httprate.NewRateLimiter(cfg.RateLimitPerSecond, time.Second,
			httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
				writeProblem(w, problemFor(errorf(codeRateLimited, "more than %d requests per second; retry after the Retry-After delay", cfg.RateLimitPerSecond)))
			}))
	}
	if cfg.System != nil {
		s.SetSystem(cfg.System)
	}
	s.router = s.routes()
	return s, nil
}

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler { return s.router }

// Hub returns the seat-map hub; hand it to the actor system as its seat
// feed (actors.Config.Feed).
func (s *Server) Hub() *Hub { return s.hub }

// SetSystem sets the actor system once it has started (recovered every
// event); from then on /readyz answers 200.
func (s *Server) SetSystem(sys System) {
	if sys == nil {
		s.sys.Store(nil)
		return
	}
	s.sys.Store(&systemRef{sys})
}

// system returns the actor system, or answers 503 not_ready.
func (s *Server) system(w http.ResponseWriter, r *http.Request) (System, bool) {
	if ref := s.sys.Load(); ref != nil {
		return ref.System, true
	}
	s.writeError(w, r, errorf(codeNotReady, "the server is still recovering its events"))
	return nil, false
}

func (s *Server) routes() *chi.Mux {
	r := chi.NewRouter()
	r.Use(s.metrics.middleware, s.recoverer, s.identify)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(codeNotFound, "no endpoint %s", r.URL.Path))
	})
	r.MethodNotAllowed(s.methodNotAllowed(r))

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", s.metrics.handler)

	// The browser UI (package ui): its page at "/", its assets under /ui/.
	page := ui.Handler(r.NotFoundHandler())
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		r.Method(method, "/", page)
		r.Method(method, "/ui/*", page)
	}

	r.Route("/v1", func(r chi.Router) {
		r.Use(s.rateLimit)
		r.Group(func(r chi.Router) {
			r.Use(s.withTimeout(s.timeout))
			r.Get("/openapi.json", s.openAPI)
			r.Post("/sessions", s.createSession)

			r.Get("/events", s.listEvents)
			r.Get("/events/{eventId}", s.getEvent)
			r.Get("/events/{eventId}/seats", s.getSeats)
			r.Get("/events/{eventId}/plan", s.getPlan)

			r.Post("/reservations", s.hold)
			r.Get("/reservations", s.listReservations)
			r.Get("/reservations/{reservationId}", s.getReservation)
			r.Delete("/reservations/{reservationId}", s.cancelReservation)
			r.Post("/reservations/{reservationId}/pay", s.pay)
			r.Post("/events/{eventId}/queue", s.joinQueue)
			r.Get("/events/{eventId}/queue/{ticket}", s.pollQueue)
			r.Delete("/events/{eventId}/queue/{ticket}", s.leaveQueue)

			r.Patch("/admin/events/{eventId}", s.updateEvent)
			r.Post("/admin/events/{eventId}/block", s.blockSeats)
			r.Post("/admin/events/{eventId}/unblock", s.unblockSeats)
			r.Get("/admin/events/{eventId}/bookings", s.listBookings)
			r.Get("/admin/reservations/{reservationId}", s.adminReservation)
			r.Post("/admin/bookings/{bookingId}/refund", s.refundBooking)
		})
		r.With(s.withTimeout(adminCreateTimeout)).Post("/admin/events", s.createEvent)
		// A snapshot streams for as long as the archive takes.
		r.Post("/admin/snapshots", s.adminSnapshot)
		// The provider authenticates by signature, not by token, and is
		// not rate limited per customer.
		r.Post("/payments/webhooks/{provider}", s.paymentWebhook)
		r.Get("/events/{eventId}/live", s.live) // a WebSocket: no request timeout
	})
	return r
}

// identify verifies the bearer token once per request (see identity).
func (s *Server) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := s.auth.identify(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// rateLimit bounds requests per customer, or per client IP without a valid
// customer token. Operators are not limited.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := identityFrom(r.Context())
		var key string
		switch id.kind {
		case identityAdmin:
			next.ServeHTTP(w, r)
			return
		case identityCustomer:
			key = "customer:" + id.customerID
		default:
			key = "ip:" + clientIP(r)
		}
		if s.limiter.RespondOnLimit(w, r, key) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientIP is the peer address; proxies' forwarding headers are not trusted.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return httprate.CanonicalizeIP(host)
}

// withTimeout bounds a request's context.
func (s *Server) withTimeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// recoverer turns a panic into a logged 500 problem, the last resort: no
// handler is meant to panic on any input.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
				panic(v)
			}
			s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			s.metrics.panics.Inc()
			writeProblem(w, problemFor(errorf(codeInternal, "internal error")))
		}()
		next.ServeHTTP(w, r)
	})
}

// methodNotAllowed answers 405 with the Allow header listing the methods the
// path has.
func (s *Server) methodNotAllowed(mux *chi.Mux) http.HandlerFunc {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range methods {
			if mux.Match(chi.NewRouteContext(), m, r.URL.Path) {
				allowed = append(allowed, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		s.writeError(w, r, errorf(codeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.system(w, r); ok {
		s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
	}
}
