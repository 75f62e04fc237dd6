package actors_test

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/boxoffice/boxoffice/actors"
	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
)

// fakeProvider is a payment provider under the test's control: a ledger of
// charges by idempotency key that outlives the actor systems of a test
// (like a real provider across a crash of ours). tok_visa succeeds,
// tok_chargeDeclined fails, tok_delayed stays processing until the test
// settles it; failing makes every call fail (the provider is unreachable).
type fakeProvider struct {
	mu      sync.Mutex
	charges map[string]*fakeCharge
	calls   map[string]int // per method and key: "charge/<key>"
	failing bool
	gate    chan struct{} // when set, Charge waits for it to close
}

type fakeCharge struct {
	req      payment.ChargeRequest
	status   payment.Status
	ref      string
	refunded string
}

func newFakeProvider() *fakeProvider {
	return &fakeProvider{charges: map[string]*fakeCharge{}, calls: map[string]int{}}
}

var errUnreachable = errors.New("fake provider: unreachable")

func (p *fakeProvider) Name() string { return "fake" }

func (p *fakeProvider) CheckToken(token string) error {
	switch token {
	case "tok_visa", "tok_chargeDeclined", "tok_delayed":
		return nil
	}
	return engine.Errorf(engine.CodeInvalidRequest, "unknown test token %q", token)
}

func (p *fakeProvider) Charge(ctx context.Context, req payment.ChargeRequest) (payment.Result, error) {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return payment.Result{}, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := req.IdempotencyKey()
	p.calls["charge/"+k]++
	if p.failing {
		return payment.Result{}, errUnreachable
	}
	c := p.charges[k]
	if c == nil {
		c = &fakeCharge{req: req, ref: fmt.Sprintf("pi_%d", len(p.charges)+1)}
		switch req.Token {
		case "tok_visa":
			c.status = payment.StatusSucceeded
		case "tok_delayed":
			c.status = payment.StatusProcessing
		default:
			c.status = payment.StatusFailed
		}
		p.charges[k] = c
	}
	res := payment.Result{Status: c.status, Ref: c.ref}
	if c.status == payment.StatusFailed {
		res.DeclineCode = "card_declined"
	}
	return res, nil
}

func (p *fakeProvider) Void(_ context.Context, req payment.ChargeRequest) (payment.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := req.IdempotencyKey()
	p.calls["void/"+k]++
	if p.failing {
		return payment.Result{}, errUnreachable
	}
	c := p.charges[k]
	switch {
	case c == nil:
		return payment.Result{Status: payment.StatusCanceled}, nil
	case c.status == payment.StatusProcessing:
		c.status = payment.StatusCanceled
	}
	return payment.Result{Status: c.status, Ref: c.ref}, nil
}

func (p *fakeProvider) Refund(_ context.Context, req payment.ChargeRequest) (payment.Refund, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := req.IdempotencyKey()
	p.calls["refund/"+k]++
	if p.failing {
		return payment.Refund{}, errUnreachable
	}
	c := p.charges[k]
	if c == nil || c.status != payment.StatusSucceeded {
		return payment.Refund{}, fmt.Errorf("fake provider: no succeeded charge %s to refund", k)
	}
	if c.refunded == "" {
		c.refunded = "re_" + c.ref
	}
	return payment.Refund{Ref: c.refunded}, nil
}

// settle completes a processing charge as the provider would, returning
// the webhook event it would send.
func (p *fakeProvider) settle(key string, st payment.Status, eventID string) payment.WebhookEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.charges[key]
	c.status = st
	return payment.WebhookEvent{
		ID: eventID, Type: "payment_intent." + string(st), Status: st, Ref: c.ref,
		EventID: c.req.EventID, ReservationID: c.req.ReservationID, Attempt: c.req.Attempt,
	}
}

func (p *fakeProvider) setFailing(v bool) {
	p.mu.Lock()
	p.failing = v
	p.mu.Unlock()
}

func (p *fakeProvider) count(call string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[call]
}

func (p *fakeProvider) charge(key string) (fakeCharge, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.charges[key]
	if !ok {
		return fakeCharge{}, false
	}
	return *c, true
}

// withProvider gives the system the provider p.
func withProvider(p payment.Provider) func(*actors.Config) {
	return func(c *actors.Config) { c.Payments = p }
}
