package payment_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/boxoffice/boxoffice/actors/payment"
)

const testSecret = "whsec_test_boxoffice"

// intentEvent is a Stripe event body about a PaymentIntent. extra goes
// inside data.object (for example a last_payment_error).
func intentEvent(id, typ, pi string, metadata map[string]string, extra string) []byte {
	md, _ := json.Marshal(metadata)
	if extra != "" {
		extra = "," + extra
	}
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":%q,"created":1700000000,"type":%q,`+
		`"data":{"object":{"id":%q,"object":"payment_intent","amount":4200,"currency":"eur","status":"succeeded","metadata":%s%s}}}`,
		id, stripe.APIVersion, typ, pi, md, extra)
}

func ourMetadata() map[string]string {
	return map[string]string{"boxoffice_event": "ev1", "boxoffice_reservation": "r1", "boxoffice_attempt": "2"}
}

func TestVerifyWebhookTypes(t *testing.T) {
	declined := `"last_payment_error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds"}`
	codeOnly := `"last_payment_error":{"type":"card_error","code":"expired_card"}`
	for _, tc := range []struct {
		typ, extra string
		want       payment.Status
		decline    string
	}{
		{"payment_intent.succeeded", "", payment.StatusSucceeded, ""},
		{"payment_intent.payment_failed", declined, payment.StatusFailed, "insufficient_funds"},
		{"payment_intent.payment_failed", codeOnly, payment.StatusFailed, "expired_card"},
		{"payment_intent.canceled", "", payment.StatusCanceled, ""},
		{"payment_intent.processing", "", payment.StatusProcessing, ""},
	} {
		t.Run(tc.typ+tc.decline, func(t *testing.T) {
			body := intentEvent("evt_1", tc.typ, "pi_1", ourMetadata(), tc.extra)
			got, err := payment.VerifyWebhook(body, payment.SignWebhook(body, testSecret, time.Now()), testSecret, time.Minute)
			if err != nil {
				t.Fatalf("VerifyWebhook: %v", err)
			}
			want := payment.WebhookEvent{ID: "evt_1", Type: tc.typ, Status: tc.want, Ref: "pi_1",
				EventID: "ev1", ReservationID: "r1", Attempt: 2, DeclineCode: tc.decline}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// TestVerifyWebhookRawBody is case C11: the signature covers the raw bytes.
func TestVerifyWebhookRawBody(t *testing.T) {
	// Unusual whitespace and key order, as some senders write it.
	body := []byte("{ \"type\" :\t\"payment_intent.succeeded\",\n  \"data\": {\"object\": {\"metadata\": {\"boxoffice_attempt\": \"1\",  \"boxoffice_reservation\":\"r9\",\"boxoffice_event\":\"ev9\"},\r\n" +
		"\"amount\": 4200, \"object\":\"payment_intent\", \"id\":\"pi_9\"}},\n\"object\":\"event\", \"id\" : \"evt_9\" }\n")
	now := time.Now()
	header := payment.SignWebhook(body, testSecret, now)

	got, err := payment.VerifyWebhook(body, header, testSecret, time.Minute)
	want := payment.WebhookEvent{ID: "evt_9", Type: "payment_intent.succeeded", Status: payment.StatusSucceeded, Ref: "pi_9", EventID: "ev9", ReservationID: "r9", Attempt: 1}
	if err != nil || got != want {
		t.Fatalf("unusual body: got %+v, %v; want %+v", got, err, want)
	}

	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	reserialised, _ := json.Marshal(v)
	changedAmount := bytes.Replace(body, []byte("4200"), []byte("4201"), 1)
	for name, tc := range map[string]struct {
		body   []byte
		header string
	}{
		"re-serialised":         {reserialised, header},
		"changed amount":        {changedAmount, header},
		"stale":                 {body, payment.SignWebhook(body, testSecret, now.Add(-2*time.Minute))},
		"wrong secret":          {body, payment.SignWebhook(body, "whsec_other", now)},
		"no header":             {body, ""},
		"garbage header":        {body, "t=abc,v1=zz"},
		"signature of another ": {body, payment.SignWebhook(changedAmount, testSecret, now)},
	} {
		_, err := payment.VerifyWebhook(tc.body, tc.header, testSecret, time.Minute)
		if !errors.Is(err, payment.ErrSignature) {
			t.Errorf("%s: got %v, want ErrSignature", name, err)
		}
	}
	if _, err := payment.VerifyWebhook(body, header, "", time.Minute); !errors.Is(err, payment.ErrSignature) {
		t.Errorf("empty secret: got %v, want ErrSignature", err)
	}
}

func TestVerifyWebhookNotOursAndMalformed(t *testing.T) {
	md := ourMetadata()
	partial := map[string]string{"boxoffice_event": "ev1", "boxoffice_reservation": "r1"}
	badAttempt := map[string]string{"boxoffice_event": "ev1", "boxoffice_reservation": "r1", "boxoffice_attempt": "0"}
	words := map[string]string{"boxoffice_event": "ev1", "boxoffice_reservation": "r1", "boxoffice_attempt": "two"}
	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"other type", intentEvent("evt_1", "charge.refunded", "ch_1", md, ""), payment.ErrNotOurs},
		{"data.object not an object", []byte(`{"id":"evt_1","object":"event","type":"customer.created","data":{"object":"cus_1"}}`), payment.ErrMalformed},
		{"no metadata", intentEvent("evt_1", "payment_intent.succeeded", "pi_1", map[string]string{"order": "7"}, ""), payment.ErrNotOurs},
		{"not json", []byte(`not json at all`), payment.ErrMalformed},
		{"no id", []byte(`{"object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent"}}}`), payment.ErrMalformed},
		{"no data", []byte(`{"id":"evt_1","object":"event","type":"payment_intent.succeeded"}`), payment.ErrMalformed},
		{"object is an id", []byte(`{"id":"evt_1","object":"event","type":"payment_intent.succeeded","data":{"object":"pi_1"}}`), payment.ErrMalformed},
		{"object is a charge", []byte(`{"id":"evt_1","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"ch_1","object":"charge","metadata":{"boxoffice_event":"e","boxoffice_reservation":"r","boxoffice_attempt":"1"}}}}`), payment.ErrMalformed},
		{"metadata not strings", []byte(`{"id":"evt_1","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent","metadata":{"boxoffice_attempt":1}}}}`), payment.ErrMalformed},
		{"partial metadata", intentEvent("evt_1", "payment_intent.succeeded", "pi_1", partial, ""), payment.ErrMalformed},
		{"attempt 0", intentEvent("evt_1", "payment_intent.succeeded", "pi_1", badAttempt, ""), payment.ErrMalformed},
		{"attempt in words", intentEvent("evt_1", "payment_intent.succeeded", "pi_1", words, ""), payment.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := payment.VerifyWebhook(tc.body, payment.SignWebhook(tc.body, testSecret, time.Now()), testSecret, time.Minute)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %+v, %v; want %v", got, err, tc.want)
			}
			if errors.Is(err, payment.ErrSignature) {
				t.Fatalf("a correctly signed body reported as a signature error: %v", err)
			}
		})
	}
}

func TestSignWebhookIsStripeScheme(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	at := time.Unix(1700000000, 0)
	header := payment.SignWebhook(body, testSecret, at)
	if !strings.HasPrefix(header, "t=1700000000,v1=") {
		t.Fatalf("header %q: want t=1700000000,v1=<hex>", header)
	}
	// stripe-go's own check, with the timestamp ignored, accepts it.
	if err := webhook.ValidatePayloadIgnoringTolerance(body, header, testSecret); err != nil {
		t.Fatalf("stripe-go rejects SignWebhook's header %q: %v", header, err)
	}
}

// FuzzVerifyWebhook: random bodies and headers never panic and verify only
// as stripe-go says; a body built from arbitrary fields and signed
// correctly verifies to exactly those fields, whatever its layout; a
// signed body changed in any byte does not verify.
func FuzzVerifyWebhook(f *testing.F) {
	seed := intentEvent("evt_1", "payment_intent.succeeded", "pi_1", ourMetadata(), "")
	f.Add(seed, payment.SignWebhook(seed, testSecret, time.Now()), "evt_1", "payment_intent.succeeded", "pi_1", "ev1", "r1", "1", "", uint8(0))
	f.Add([]byte(`{}`), "t=1,v1=00", "evt_2", "payment_intent.payment_failed", "pi_2", "ev2", "r2", "3", "card_declined", uint8(1))
	f.Add([]byte(`[`), "", "", "charge.succeeded", "", "", "", "", "", uint8(2))
	f.Add([]byte(`{"data":{"object":"pi"}}`), "t=9999999999,v1=zz,v0=", "evt_\u00e9", "payment_intent.canceled", "pi_\"x", "e\\v", "r\n", "4294967295", "x", uint8(3))
	f.Add([]byte(`{"type":"payment_intent.processing","id":"e","data":{"object":{"object":"payment_intent","id":"p","metadata":null}}}`), "t=,v1", "e", "payment_intent.processing", "p", "", "r", "01", "", uint8(4))
	f.Fuzz(func(t *testing.T, body []byte, header string, id, typ, pi, ev, res, attempt, decline string, layout uint8) {
		// 1. Anything: no panic; success and ErrSignature exactly as
		// stripe-go's own signature check says.
		got, err := payment.VerifyWebhook(body, header, testSecret, time.Minute)
		libErr := webhook.ValidatePayloadWithTolerance(body, header, testSecret, time.Minute)
		if errors.Is(err, payment.ErrSignature) != (libErr != nil) {
			t.Fatalf("VerifyWebhook %v, stripe-go %v", err, libErr)
		}
		if err == nil {
			checkConsistent(t, got)
		}

		// 2. The same random body, signed: never a signature error; a
		// verified event is consistent; one changed byte breaks it.
		signed := payment.SignWebhook(body, testSecret, time.Now())
		got, err = payment.VerifyWebhook(body, signed, testSecret, time.Minute)
		if errors.Is(err, payment.ErrSignature) {
			t.Fatalf("correctly signed body rejected: %v", err)
		}
		if err == nil {
			checkConsistent(t, got)
		}
		if len(body) > 0 {
			changed := bytes.Clone(body)
			changed[int(layout)%len(changed)] ^= 1 << (layout % 8)
			if _, err := payment.VerifyWebhook(changed, signed, testSecret, time.Minute); !errors.Is(err, payment.ErrSignature) {
				t.Fatalf("changed body verified: %v", err)
			}
		}

		// 3. A body built from the fields, in one of several layouts,
		// signed: it verifies to exactly the fields.
		for _, s := range []string{id, typ, pi, ev, res, attempt, decline} {
			if !utf8.ValidString(s) {
				return // JSON cannot carry it as it is
			}
		}
		built := buildEvent(id, typ, pi, ev, res, attempt, decline, layout)
		got, err = payment.VerifyWebhook(built, payment.SignWebhook(built, testSecret, time.Now()), testSecret, time.Minute)
		want, wantErr := expectEvent(id, typ, pi, ev, res, attempt, decline)
		if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
			t.Fatalf("body %s: got %v, want %v", built, err, wantErr)
		}
		if err == nil && got != want {
			t.Fatalf("body %s:\ngot  %+v\nwant %+v", built, got, want)
		}
	})
}

// checkConsistent checks what every successful VerifyWebhook returns.
func checkConsistent(t *testing.T, ev payment.WebhookEvent) {
	t.Helper()
	status := map[string]payment.Status{
		"payment_intent.succeeded": payment.StatusSucceeded, "payment_intent.payment_failed": payment.StatusFailed,
		"payment_intent.canceled": payment.StatusCanceled, "payment_intent.processing": payment.StatusProcessing,
	}[ev.Type]
	if ev.ID == "" || ev.Ref == "" || ev.EventID == "" || ev.ReservationID == "" || ev.Attempt == 0 || status == "" || ev.Status != status ||
		(ev.DeclineCode != "" && ev.Status != payment.StatusFailed) {
		t.Fatalf("inconsistent event %+v", ev)
	}
}

// buildEvent writes an event body from its fields, with whitespace and
// key order chosen by layout.
func buildEvent(id, typ, pi, ev, res, attempt, decline string, layout uint8) []byte {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	ws := []string{"", " ", "\n\t", "  \r\n "}[layout%4]
	kv := func(k, v string) string { return ws + q(k) + ws + ":" + ws + v + ws }
	obj := func(pairs ...string) string {
		if layout&4 != 0 { // reversed key order
			for i, j := 0, len(pairs)-1; i < j; i, j = i+1, j-1 {
				pairs[i], pairs[j] = pairs[j], pairs[i]
			}
		}
		return "{" + strings.Join(pairs, ",") + "}"
	}
	md := obj(kv("boxoffice_event", q(ev)), kv("boxoffice_reservation", q(res)), kv("boxoffice_attempt", q(attempt)))
	intent := []string{kv("id", q(pi)), kv("object", q("payment_intent")), kv("amount", "4200"), kv("metadata", md)}
	if decline != "" {
		intent = append(intent, kv("last_payment_error", obj(kv("type", q("card_error")), kv("decline_code", q(decline)))))
	}
	return []byte(ws + obj(kv("id", q(id)), kv("object", q("event")), kv("type", q(typ)), kv("data", obj(kv("object", obj(intent...))))) + ws)
}

// expectEvent is what VerifyWebhook must make of buildEvent's body.
func expectEvent(id, typ, pi, ev, res, attempt, decline string) (payment.WebhookEvent, error) {
	status, ok := map[string]payment.Status{
		"payment_intent.succeeded": payment.StatusSucceeded, "payment_intent.payment_failed": payment.StatusFailed,
		"payment_intent.canceled": payment.StatusCanceled, "payment_intent.processing": payment.StatusProcessing,
	}[typ]
	switch {
	case id == "" || typ == "":
		return payment.WebhookEvent{}, payment.ErrMalformed
	case !ok:
		return payment.WebhookEvent{}, payment.ErrNotOurs
	case pi == "":
		return payment.WebhookEvent{}, payment.ErrMalformed
	}
	n, err := strconv.ParseUint(attempt, 10, 32)
	if ev == "" || res == "" || err != nil || n == 0 {
		return payment.WebhookEvent{}, payment.ErrMalformed
	}
	out := payment.WebhookEvent{ID: id, Type: typ, Status: status, Ref: pi, EventID: ev, ReservationID: res, Attempt: uint32(n)}
	if status == payment.StatusFailed {
		out.DeclineCode = decline
	}
	return out, nil
}
