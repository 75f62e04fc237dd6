package actors

import "github.com/boxoffice/boxoffice/engine"

// simulatedProvider is the built-in payment provider ("simulated"): it
// understands Stripe-style test tokens and answers synchronously.
// tok_visa is approved; tok_chargeDeclined is declined. Asynchronous tokens
// (tok_delayed) and real providers arrive with the payments work.
var simulatedProvider simulated

type simulated struct{}

type chargeOutcome struct {
	approved bool
	reason   string
}

var simulatedTokens = map[string]chargeOutcome{
	"tok_visa":           {approved: true},
	"tok_mastercard":     {approved: true},
	"tok_chargeDeclined": {reason: "card_declined"},
}

func (simulated) check(token string) error {
	if _, ok := simulatedTokens[token]; !ok {
		return engine.Errorf(engine.CodeInvalidRequest, "paymentToken %q is not a test token the simulated provider knows (tok_visa, tok_mastercard, tok_chargeDeclined)", token)
	}
	return nil
}

func (simulated) charge(token string, amountCents int64, currency string) chargeOutcome {
	return simulatedTokens[token]
}
