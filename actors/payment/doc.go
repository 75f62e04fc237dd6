// Package payment talks to payment service providers: it charges, voids and
// refunds one payment attempt of one reservation, and it verifies the
// providers' webhooks. It knows nothing about seats or reservations beyond
// the three ids it carries; the actors decide what an outcome means.
//
// # Providers
//
// Two implementations of Provider:
//
//   - Simulated ("simulated", the embedded default): an in-process provider
//     with Stripe's test tokens (tok_visa, tok_mastercard succeed,
//     tok_chargeDeclined is declined with "card_declined", tok_delayed and
//     tok_delayed_fail answer "processing" and settle later by webhook). Its
//     ledger is an append-only JSON-lines file, fsync'd before a call returns,
//     so a repeated Charge after a crash answers with the same charge.
//   - Stripe ("stripe"): Stripe's PaymentIntents API through
//     github.com/stripe/stripe-go/v82, tested against stripe-mock.
//
// # Contract
//
//  1. Every charge has one idempotency key, ChargeRequest.IdempotencyKey().
//     A provider charges at most once per key; every repeat of Charge, Void
//     or Refund with the same request answers about that one charge. This is
//     how the caller reconciles after a timeout or a crash: it asks again.
//  2. Amounts are int64 in the currency's minor unit (cents); currencies are
//     ISO 4217 codes (any case in, lowercase to Stripe).
//  3. A declined card is a Result (StatusFailed with a DeclineCode), never an
//     error. An error means the provider could not be asked or did not
//     answer (network, 5xx, timeout, provider closed): the caller retries
//     later with the same request. Requests rejected before the provider is
//     asked (unknown token, bad amount, an idempotency key reused with other
//     parameters at the simulated provider) are *engine.Error with code
//     invalid_request.
//  4. StatusProcessing means the outcome comes later by webhook.
//
// # Webhooks
//
// Both providers sign their webhooks with Stripe's webhook signature scheme
// (header Stripe-Signature: "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<raw body>">", see https://docs.stripe.com/webhooks#verify-manually),
// so the web layer has one path for both: VerifyWebhook on the raw request
// body, never on a re-serialised one. The signature is computed and checked
// by stripe-go's webhook package; this package does no HMAC of its own.
// Events are Stripe event objects whose data.object is a PaymentIntent
// carrying our metadata (boxoffice_event, boxoffice_reservation,
// boxoffice_attempt). VerifyWebhook's errors are sentinels:
//
//   - ErrSignature: missing or wrong signature, or a timestamp older than
//     the tolerance → 400;
//   - ErrNotOurs: verified, but an event type we do not handle or a charge
//     without our metadata → 200, ignored;
//   - ErrMalformed: verified, but not a usable event → 400.
//
// A provider repeats an event with the same id until it is acknowledged
// with a 2xx; the receiver de-duplicates by WebhookEvent.ID.
package payment
