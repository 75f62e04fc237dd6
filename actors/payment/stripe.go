package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/stripe/stripe-go/v82"

	"github.com/boxoffice/boxoffice/engine"
)

// StripeConfig configures NewStripe.
type StripeConfig struct {
	// Key is the Stripe secret (or restricted) API key, "sk_..." or
	// "rk_...". Required.
	Key string
	// APIBase is the API's base URL, for example a stripe-mock address
	// "http://127.0.0.1:12111"; empty means Stripe's own
	// (https://api.stripe.com).
	APIBase string
	// HTTPClient makes the API calls; nil means stripe-go's default client
	// (80 s timeout). The caller's context bounds each call as well.
	HTTPClient *http.Client
	// Logger receives stripe-go's own log lines (at their level); nil means
	// none.
	Logger *slog.Logger
}

// Stripe is the Stripe adapter ("stripe"): one PaymentIntent per payment
// attempt, created and confirmed at once with automatic capture, with the
// attempt's idempotency key. Safe for concurrent use; it holds no
// goroutines and needs no Close.
//
// Every call is idempotent at Stripe: Charge sends the key
// req.IdempotencyKey() (and "<key>-pm" for turning a tok_ token into a
// PaymentMethod), Void cancels with "<key>-void", Refund refunds with
// "<key>-refund". Stripe keeps idempotency keys for 24 hours; see
// ChargeRequest.Ref for finding a charge after that.
//
// stripe-go does not retry on its own here (MaxNetworkRetries 0): an error
// goes back to the caller, who retries with the same request.
type Stripe struct {
	client *stripe.Client
}

var _ Provider = (*Stripe)(nil)

// NewStripe returns the Stripe adapter. Errors: no key, an APIBase that is
// not an absolute http(s) URL.
func NewStripe(cfg StripeConfig) (*Stripe, error) {
	if cfg.Key == "" {
		return nil, errors.New("stripe: no API key")
	}
	bc := &stripe.BackendConfig{
		HTTPClient:        cfg.HTTPClient,
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if cfg.Logger != nil {
		bc.LeveledLogger = stripeLog{cfg.Logger.With("provider", "stripe")}
	}
	if cfg.APIBase != "" {
		u, err := url.Parse(cfg.APIBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("stripe: API base %q is not an http(s) URL", cfg.APIBase)
		}
		bc.URL = stripe.String(cfg.APIBase)
	}
	return &Stripe{client: stripe.NewClient(cfg.Key, stripe.WithBackends(stripe.NewBackendsWithConfig(bc)))}, nil
}

// Name returns "stripe".
func (s *Stripe) Name() string { return "stripe" }

// CheckToken accepts a Stripe token ("tok_...") or PaymentMethod id
// ("pm_...") of at most 255 bytes of letters, digits and underscores;
// anything else is an *engine.Error with code invalid_request. Whether Stripe
// knows it is only learnt by charging.
func (s *Stripe) CheckToken(token string) error {
	ok := (strings.HasPrefix(token, "tok_") || strings.HasPrefix(token, "pm_")) && len(token) <= simulatedTokenBytesMax
	if ok {
		_, rest, _ := strings.Cut(token, "_")
		ok = rest != "" && strings.IndexFunc(rest, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
		}) < 0
	}
	if !ok {
		if len(token) > 64 {
			token = token[:64] + "…"
		}
		return engine.Errorf(engine.CodeInvalidRequest, "payment token %q is not a Stripe token (tok_...) or PaymentMethod id (pm_...)", token)
	}
	return nil
}

// Charge creates and confirms the PaymentIntent of req (amount, lowercase
// currency, card only, metadata MetadataEvent/MetadataReservation/
// MetadataAttempt) with idempotency key req.IdempotencyKey(); a tok_ token
// first becomes a PaymentMethod (key "<key>-pm"). A repeat within Stripe's
// 24 hours answers with the same PaymentIntent.
//
// PaymentIntent status → Status: succeeded → StatusSucceeded; processing,
// requires_capture → StatusProcessing; requires_payment_method (and a card
// error, HTTP 402) → StatusFailed with DeclineCode the decline_code, else
// the error code; requires_action, requires_confirmation → StatusFailed
// (no customer is there to authenticate); canceled → StatusCanceled.
//
// Errors: *engine.Error invalid_request for a bad token or request; any
// other Stripe error (invalid request, 409 idempotency conflict, 429, 5xx)
// or network error, wrapped.
func (s *Stripe) Charge(ctx context.Context, req ChargeRequest) (Result, error) {
	if err := s.CheckToken(req.Token); err != nil {
		return Result{}, err
	}
	if err := checkRequest(req); err != nil {
		return Result{}, err
	}
	pi, err := s.create(ctx, req)
	if r, ok := declined(err); ok {
		return r, nil
	}
	if err != nil {
		return Result{}, err
	}
	return intentResult(pi)
}

// create creates (or, for a repeat, finds) the PaymentIntent of req.
func (s *Stripe) create(ctx context.Context, req ChargeRequest) (*stripe.PaymentIntent, error) {
	key := req.IdempotencyKey()
	method := req.Token
	if strings.HasPrefix(method, "tok_") {
		// A PaymentIntent cannot take a card token in payment_method_data
		// (the API allows no card there), so the token becomes a
		// PaymentMethod first, as Stripe documents for legacy tokens.
		p := &stripe.PaymentMethodCreateParams{
			Type: stripe.String(string(stripe.PaymentMethodTypeCard)),
			Card: &stripe.PaymentMethodCreateCardParams{Token: stripe.String(req.Token)},
		}
		p.SetIdempotencyKey(key + "-pm")
		pm, err := s.client.V1PaymentMethods.Create(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("stripe: payment method from token for %s: %w", key, err)
		}
		method = pm.ID
	}
	p := &stripe.PaymentIntentCreateParams{
		Amount:             stripe.Int64(req.AmountCents),
		Currency:           stripe.String(strings.ToLower(req.Currency)),
		PaymentMethod:      stripe.String(method),
		PaymentMethodTypes: []*string{stripe.String(string(stripe.PaymentMethodTypeCard))},
		Confirm:            stripe.Bool(true),
	}
	p.SetIdempotencyKey(key)
	for k, v := range chargeMetadata(req) {
		p.AddMetadata(k, v)
	}
	pi, err := s.client.V1PaymentIntents.Create(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("stripe: create payment intent %s: %w", key, err)
	}
	return pi, nil
}

// declined turns a card error (HTTP 402, type card_error) into a failed
// Result.
func declined(err error) (Result, bool) {
	var se *stripe.Error
	if !errors.As(err, &se) || se.Type != stripe.ErrorTypeCard {
		return Result{}, false
	}
	r := Result{Status: StatusFailed, DeclineCode: string(se.DeclineCode)}
	if r.DeclineCode == "" {
		r.DeclineCode = string(se.Code)
	}
	if se.PaymentIntent != nil {
		r.Ref = se.PaymentIntent.ID
	}
	return r, true
}

// intentResult maps a PaymentIntent to a Result.
func intentResult(pi *stripe.PaymentIntent) (Result, error) {
	r := Result{Ref: pi.ID}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		r.Status = StatusSucceeded
	case stripe.PaymentIntentStatusProcessing, stripe.PaymentIntentStatusRequiresCapture:
		r.Status = StatusProcessing
	case stripe.PaymentIntentStatusCanceled:
		r.Status = StatusCanceled
	case stripe.PaymentIntentStatusRequiresPaymentMethod, stripe.PaymentIntentStatusRequiresAction,
		stripe.PaymentIntentStatusRequiresConfirmation:
		r.Status = StatusFailed
		if e := pi.LastPaymentError; e != nil {
			r.DeclineCode = string(e.DeclineCode)
			if r.DeclineCode == "" {
				r.DeclineCode = string(e.Code)
			}
		}
		if r.DeclineCode == "" {
			r.DeclineCode = string(pi.Status)
		}
	default:
		return Result{}, fmt.Errorf("stripe: payment intent %s in unknown status %q", pi.ID, pi.Status)
	}
	return r, nil
}

// find returns the PaymentIntent of req: by req.Ref when known, else by
// re-issuing its create (Stripe answers a repeat with the stored response,
// a card error included). nil without error: the attempt was declined
// before a PaymentIntent existed.
func (s *Stripe) find(ctx context.Context, req ChargeRequest) (*stripe.PaymentIntent, error) {
	if req.Ref != "" {
		pi, err := s.client.V1PaymentIntents.Retrieve(ctx, req.Ref, nil)
		if err != nil {
			return nil, fmt.Errorf("stripe: retrieve payment intent %s: %w", req.Ref, err)
		}
		return pi, nil
	}
	if err := s.CheckToken(req.Token); err != nil {
		return nil, err
	}
	pi, err := s.create(ctx, req)
	if r, ok := declined(err); ok {
		if r.Ref == "" {
			return nil, nil
		}
		return &stripe.PaymentIntent{ID: r.Ref, Status: stripe.PaymentIntentStatusRequiresPaymentMethod}, nil
	}
	return pi, err
}

// Void cancels the PaymentIntent of req (found by req.Ref, else by
// re-issuing its create: an attempt Stripe never saw is created then, and
// cancelled or, if it succeeded, reported so) with idempotency key
// "<key>-void". Result: StatusSucceeded when the money was taken (the
// caller refunds); StatusProcessing while Stripe is still processing it
// (card payments cannot be cancelled then; try later); else
// StatusCanceled. Errors: as Charge.
func (s *Stripe) Void(ctx context.Context, req ChargeRequest) (Result, error) {
	pi, err := s.find(ctx, req)
	if err != nil {
		return Result{}, err
	}
	if pi == nil {
		return Result{Status: StatusCanceled}, nil
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		return Result{Status: StatusSucceeded, Ref: pi.ID}, nil
	case stripe.PaymentIntentStatusProcessing:
		return Result{Status: StatusProcessing, Ref: pi.ID}, nil
	case stripe.PaymentIntentStatusCanceled:
		return Result{Status: StatusCanceled, Ref: pi.ID}, nil
	}
	p := &stripe.PaymentIntentCancelParams{CancellationReason: stripe.String(string(stripe.PaymentIntentCancellationReasonAbandoned))}
	p.SetIdempotencyKey(req.IdempotencyKey() + "-void")
	if _, err := s.client.V1PaymentIntents.Cancel(ctx, pi.ID, p); err != nil {
		return Result{}, fmt.Errorf("stripe: cancel payment intent %s: %w", pi.ID, err)
	}
	return Result{Status: StatusCanceled, Ref: pi.ID}, nil
}

// Refund refunds the whole PaymentIntent of req (req.Ref, else found by
// re-issuing its create) with idempotency key "<key>-refund": a repeat
// answers with the same refund ("re_..."). Stripe refuses to refund a
// charge that did not succeed (an error). Errors: ErrUnknownCharge when
// the attempt was declined before a PaymentIntent existed; else as Charge.
func (s *Stripe) Refund(ctx context.Context, req ChargeRequest) (Refund, error) {
	ref := req.Ref
	if ref == "" {
		pi, err := s.find(ctx, req)
		if err != nil {
			return Refund{}, err
		}
		if pi == nil {
			return Refund{}, fmt.Errorf("stripe: refund %s: declined before a payment intent existed: %w", req.IdempotencyKey(), ErrUnknownCharge)
		}
		ref = pi.ID
	}
	p := &stripe.RefundCreateParams{PaymentIntent: stripe.String(ref)}
	p.SetIdempotencyKey(req.IdempotencyKey() + "-refund")
	re, err := s.client.V1Refunds.Create(ctx, p)
	if err != nil {
		return Refund{}, fmt.Errorf("stripe: refund payment intent %s: %w", ref, err)
	}
	return Refund{Ref: re.ID}, nil
}

// stripeLog passes stripe-go's log lines to slog.
type stripeLog struct{ l *slog.Logger }

func (s stripeLog) Debugf(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s stripeLog) Infof(format string, v ...any)  { s.l.Info(fmt.Sprintf(format, v...)) }
func (s stripeLog) Warnf(format string, v ...any)  { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s stripeLog) Errorf(format string, v ...any) { s.l.Error(fmt.Sprintf(format, v...)) }
