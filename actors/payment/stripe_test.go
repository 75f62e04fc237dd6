package payment_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"go/build"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxoffice/boxoffice/actors/payment"
	"github.com/boxoffice/boxoffice/engine"
)

const stripeMockInstall = "go install github.com/stripe/stripe-mock@v0.203.0"

// stripeMockBinary finds stripe-mock on PATH, else in $GOBIN or each
// $(go env GOPATH)/bin.
func stripeMockBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	dirs := []string{os.Getenv("GOBIN")}
	gopaths := build.Default.GOPATH
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		gopaths = strings.TrimSpace(string(out)) // also a GOPATH set with go env -w
	}
	for _, gopath := range filepath.SplitList(gopaths) {
		dirs = append(dirs, filepath.Join(gopath, "bin"))
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "stripe-mock")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	t.Fatalf("stripe-mock is not installed (looked on PATH and in %v); the Stripe adapter is tested against it. Install it with: %s", dirs, stripeMockInstall)
	return ""
}

// startStripeMock runs stripe-mock on free loopback ports (the system
// picks them; stripe-mock prints the HTTP one) and returns its base URL.
// It is stopped at the end of the test.
func startStripeMock(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(stripeMockBinary(t), "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stripe-mock: %v", err)
	}
	addr := make(chan string, 1)
	drained := make(chan struct{})
	var log bytes.Buffer
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			if a, ok := strings.CutPrefix(line, "Listening for HTTP at address: "); ok {
				addr <- a
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-drained
		_ = cmd.Wait()
	}
	select {
	case a := <-addr:
		t.Cleanup(stop)
		return "http://" + a
	case <-time.After(30 * time.Second):
		stop()
		t.Fatalf("stripe-mock printed no HTTP address within 30 s; its output:\n%s", log.String())
	}
	return ""
}

// recorder is an http.RoundTripper that passes requests on and notes
// what the adapter sent.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []sent
}

type sent struct {
	method, path, key string
	form              url.Values
	status            int
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	s := sent{method: req.Method, path: req.URL.Path, key: req.Header.Get("Idempotency-Key")}
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		s.form, _ = url.ParseQuery(string(body))
	}
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		s.status = resp.StatusCode
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, s)
	r.mu.Unlock()
	return resp, err
}

// take returns the requests sent since the last take.
func (r *recorder) take() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

// newStripe returns an adapter for base whose requests rec records.
func newStripe(t *testing.T, base string) (*payment.Stripe, *recorder) {
	t.Helper()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	rec := &recorder{next: transport}
	s, err := payment.NewStripe(payment.StripeConfig{Key: "sk_test_boxoffice", APIBase: base, HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return s, rec
}

// calls is the method, path and idempotency key of each request.
func calls(reqs []sent) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.method+" "+r.path+" "+r.key)
	}
	return out
}

func equalCalls(t *testing.T, what string, got []sent, want ...string) {
	t.Helper()
	g := calls(got)
	if strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s sent\n  %s\nwant\n  %s", what, strings.Join(g, "\n  "), strings.Join(want, "\n  "))
	}
	for _, r := range got {
		if r.status/100 != 2 {
			t.Errorf("%s: %s %s answered %d", what, r.method, r.path, r.status)
		}
	}
}

// TestStripeAgainstStripeMock: every call the adapter makes is accepted by
// stripe-mock (which checks each against Stripe's OpenAPI spec) and its
// answer is parsed. stripe-mock is stateless and answers fixtures, so the
// statuses are not the story here; the fake below covers them.
func TestStripeAgainstStripeMock(t *testing.T) {
	s, rec := newStripe(t, startStripeMock(t))
	ctx := context.Background()
	req := chargeReq("r1", 2, "tok_visa")
	key := req.IdempotencyKey()

	t.Run("charge with a token", func(t *testing.T) {
		r, err := s.Charge(ctx, req)
		if err != nil {
			t.Fatalf("Charge: %v", err)
		}
		if !strings.HasPrefix(r.Ref, "pi_") || r.Status == "" {
			t.Errorf("Charge: %+v, want a pi_ ref and a status", r)
		}
		got := rec.take()
		equalCalls(t, "Charge", got, "POST /v1/payment_methods "+key+"-pm", "POST /v1/payment_intents "+key)
		if len(got) == 2 {
			pm, pi := got[0].form, got[1].form
			for field, want := range map[string]string{"type": "card", "card[token]": "tok_visa"} {
				if pm.Get(field) != want {
					t.Errorf("payment method %s = %q, want %q", field, pm.Get(field), want)
				}
			}
			for field, want := range map[string]string{
				"amount": "4200", "currency": "eur", "confirm": "true", "payment_method_types[0]": "card",
				"metadata[boxoffice_event]": "ev1", "metadata[boxoffice_reservation]": "r1", "metadata[boxoffice_attempt]": "2",
			} {
				if pi.Get(field) != want {
					t.Errorf("payment intent %s = %q, want %q (form %v)", field, pi.Get(field), want, pi)
				}
			}
			if !strings.HasPrefix(pi.Get("payment_method"), "pm_") {
				t.Errorf("payment intent payment_method = %q, want the pm_ made from the token", pi.Get("payment_method"))
			}
		}
	})
	t.Run("charge with a payment method", func(t *testing.T) {
		pmReq := chargeReq("r2", 1, "pm_card_visa")
		if _, err := s.Charge(ctx, pmReq); err != nil {
			t.Fatalf("Charge: %v", err)
		}
		got := rec.take()
		equalCalls(t, "Charge", got, "POST /v1/payment_intents "+pmReq.IdempotencyKey())
		if len(got) == 1 && got[0].form.Get("payment_method") != "pm_card_visa" {
			t.Errorf("payment_method = %q, want pm_card_visa", got[0].form.Get("payment_method"))
		}
	})
	t.Run("void", func(t *testing.T) {
		r, err := s.Void(ctx, req)
		if err != nil {
			t.Fatalf("Void: %v", err)
		}
		if r.Status != payment.StatusCanceled || !strings.HasPrefix(r.Ref, "pi_") {
			t.Errorf("Void: %+v, want canceled with a pi_ ref", r)
		}
		got := rec.take()
		equalCalls(t, "Void", got, "POST /v1/payment_methods "+key+"-pm", "POST /v1/payment_intents "+key,
			"POST /v1/payment_intents/"+r.Ref+"/cancel "+key+"-void")
	})
	t.Run("void by ref", func(t *testing.T) {
		byRef := req
		byRef.Ref = "pi_known"
		if _, err := s.Void(ctx, byRef); err != nil {
			t.Fatalf("Void: %v", err)
		}
		equalCalls(t, "Void by ref", rec.take(), "GET /v1/payment_intents/pi_known ", "POST /v1/payment_intents/pi_known/cancel "+key+"-void")
	})
	t.Run("refund", func(t *testing.T) {
		r, err := s.Refund(ctx, req)
		if err != nil {
			t.Fatalf("Refund: %v", err)
		}
		if !strings.HasPrefix(r.Ref, "re_") {
			t.Errorf("Refund: %+v, want a re_ ref", r)
		}
		got := rec.take()
		equalCalls(t, "Refund", got, "POST /v1/payment_methods "+key+"-pm", "POST /v1/payment_intents "+key, "POST /v1/refunds "+key+"-refund")
		if len(got) == 3 && got[2].form.Get("payment_intent") == "" {
			t.Errorf("refund without payment_intent: %v", got[2].form)
		}
	})
	t.Run("refund by ref", func(t *testing.T) {
		byRef := req
		byRef.Ref = "pi_known"
		if _, err := s.Refund(ctx, byRef); err != nil {
			t.Fatalf("Refund: %v", err)
		}
		got := rec.take()
		equalCalls(t, "Refund by ref", got, "POST /v1/refunds "+key+"-refund")
		if len(got) == 1 && got[0].form.Get("payment_intent") != "pi_known" {
			t.Errorf("refund of %q, want pi_known", got[0].form.Get("payment_intent"))
		}
	})
}

// fakeStripe answers each path with a canned status and body, for what
// stripe-mock cannot say (declines, server errors, other statuses).
func fakeStripe(t *testing.T, answers map[string]fakeAnswer) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.Method+" "+r.URL.Path]
		if !ok {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type fakeAnswer struct {
	status int
	body   string
}

func intentAnswer(status string) fakeAnswer {
	return fakeAnswer{200, `{"id":"pi_fake","object":"payment_intent","amount":4200,"currency":"eur","status":"` + status + `","metadata":{}}`}
}

const cardDeclined = `{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.",` +
	`"payment_intent":{"id":"pi_declined","object":"payment_intent","status":"requires_payment_method"}}}`

func TestStripeOutcomes(t *testing.T) {
	ctx := context.Background()
	req := chargeReq("r1", 1, "pm_card_visa")
	for _, tc := range []struct {
		name   string
		answer fakeAnswer
		want   payment.Result
	}{
		{"succeeded", intentAnswer("succeeded"), payment.Result{Status: payment.StatusSucceeded, Ref: "pi_fake"}},
		{"processing", intentAnswer("processing"), payment.Result{Status: payment.StatusProcessing, Ref: "pi_fake"}},
		{"requires_capture", intentAnswer("requires_capture"), payment.Result{Status: payment.StatusProcessing, Ref: "pi_fake"}},
		{"canceled", intentAnswer("canceled"), payment.Result{Status: payment.StatusCanceled, Ref: "pi_fake"}},
		{"requires_action", intentAnswer("requires_action"), payment.Result{Status: payment.StatusFailed, Ref: "pi_fake", DeclineCode: "requires_action"}},
		{"card error 402", fakeAnswer{402, cardDeclined}, payment.Result{Status: payment.StatusFailed, Ref: "pi_declined", DeclineCode: "insufficient_funds"}},
		{"card error without decline code", fakeAnswer{402, `{"error":{"type":"card_error","code":"expired_card","message":"Your card has expired."}}`},
			payment.Result{Status: payment.StatusFailed, DeclineCode: "expired_card"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStripe(t, fakeStripe(t, map[string]fakeAnswer{"POST /v1/payment_intents": tc.answer}))
			got, err := s.Charge(ctx, req)
			if err != nil || got != tc.want {
				t.Errorf("Charge: got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		answer fakeAnswer
	}{
		{"server error", fakeAnswer{500, `{"error":{"type":"api_error","message":"Something went wrong."}}`}},
		{"rate limited", fakeAnswer{429, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests."}}`}},
		{"idempotency conflict", fakeAnswer{409, `{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters."}}`}},
		{"not json", fakeAnswer{502, `<html>bad gateway</html>`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStripe(t, fakeStripe(t, map[string]fakeAnswer{"POST /v1/payment_intents": tc.answer}))
			got, err := s.Charge(ctx, req)
			if err == nil {
				t.Fatalf("Charge: got %+v, want an error", got)
			}
			if engine.CodeOf(err) != "" {
				t.Errorf("Charge: %v is a request error; want a plain error (retry later)", err)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		s, _ := newStripe(t, "http://127.0.0.1:1")
		if got, err := s.Charge(ctx, req); err == nil {
			t.Fatalf("Charge: got %+v, want an error", got)
		}
	})
}

func TestStripeVoidOutcomes(t *testing.T) {
	ctx := context.Background()
	req := chargeReq("r1", 1, "pm_card_visa")
	key := req.IdempotencyKey()
	for _, tc := range []struct {
		name    string
		answers map[string]fakeAnswer
		want    payment.Result
		calls   []string
	}{
		{"succeeded: refund instead", map[string]fakeAnswer{"POST /v1/payment_intents": intentAnswer("succeeded")},
			payment.Result{Status: payment.StatusSucceeded, Ref: "pi_fake"}, []string{"POST /v1/payment_intents " + key}},
		{"processing: later", map[string]fakeAnswer{"POST /v1/payment_intents": intentAnswer("processing")},
			payment.Result{Status: payment.StatusProcessing, Ref: "pi_fake"}, []string{"POST /v1/payment_intents " + key}},
		{"canceled already", map[string]fakeAnswer{"POST /v1/payment_intents": intentAnswer("canceled")},
			payment.Result{Status: payment.StatusCanceled, Ref: "pi_fake"}, []string{"POST /v1/payment_intents " + key}},
		{"requires_capture: cancelled", map[string]fakeAnswer{"POST /v1/payment_intents": intentAnswer("requires_capture"), "POST /v1/payment_intents/pi_fake/cancel": intentAnswer("canceled")},
			payment.Result{Status: payment.StatusCanceled, Ref: "pi_fake"}, []string{"POST /v1/payment_intents " + key, "POST /v1/payment_intents/pi_fake/cancel " + key + "-void"}},
		{"declined: intent cancelled", map[string]fakeAnswer{"POST /v1/payment_intents": {402, cardDeclined}, "POST /v1/payment_intents/pi_declined/cancel": intentAnswer("canceled")},
			payment.Result{Status: payment.StatusCanceled, Ref: "pi_declined"}, []string{"POST /v1/payment_intents " + key, "POST /v1/payment_intents/pi_declined/cancel " + key + "-void"}},
		{"declined without intent", map[string]fakeAnswer{"POST /v1/payment_intents": {402, `{"error":{"type":"card_error","code":"card_declined"}}`}},
			payment.Result{Status: payment.StatusCanceled}, []string{"POST /v1/payment_intents " + key}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rec := newStripe(t, fakeStripe(t, tc.answers))
			got, err := s.Void(ctx, req)
			if err != nil || got != tc.want {
				t.Errorf("Void: got %+v, %v; want %+v", got, err, tc.want)
			}
			if g := calls(rec.take()); strings.Join(g, "\n") != strings.Join(tc.calls, "\n") {
				t.Errorf("Void sent %q, want %q", g, tc.calls)
			}
		})
	}
	t.Run("server error", func(t *testing.T) {
		s, _ := newStripe(t, fakeStripe(t, map[string]fakeAnswer{"POST /v1/payment_intents": {500, `{"error":{"type":"api_error"}}`}}))
		if got, err := s.Void(ctx, req); err == nil {
			t.Errorf("Void: got %+v, want an error", got)
		}
	})
	t.Run("refund of a declined attempt", func(t *testing.T) {
		s, _ := newStripe(t, fakeStripe(t, map[string]fakeAnswer{"POST /v1/payment_intents": {402, `{"error":{"type":"card_error","code":"card_declined"}}`}}))
		if _, err := s.Refund(ctx, req); !errors.Is(err, payment.ErrUnknownCharge) {
			t.Errorf("Refund: %v, want ErrUnknownCharge", err)
		}
	})
}

func TestStripeCheckToken(t *testing.T) {
	s, err := payment.NewStripe(payment.StripeConfig{Key: "sk_test_x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"tok_visa", "tok_chargeDeclined", "pm_card_visa", "pm_1PqRsTuVwXyZ", "tok_" + strings.Repeat("a", 251)} {
		if err := s.CheckToken(ok); err != nil {
			t.Errorf("CheckToken(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "tok_", "pm_", "visa", "card_123", "tok_visa;drop", "tok_ visa", "pm_é", "src_123", "tok_" + strings.Repeat("a", 252)} {
		if err := s.CheckToken(bad); engine.CodeOf(err) != engine.CodeInvalidRequest {
			t.Errorf("CheckToken(%q): got %v, want invalid_request", bad, err)
		}
	}
	if s.Name() != "stripe" {
		t.Errorf("Name %q", s.Name())
	}
}

func TestNewStripeConfig(t *testing.T) {
	for name, cfg := range map[string]payment.StripeConfig{
		"no key":          {},
		"relative base":   {Key: "sk_test_x", APIBase: "localhost:12111"},
		"other scheme":    {Key: "sk_test_x", APIBase: "ftp://example.com"},
		"unparsable base": {Key: "sk_test_x", APIBase: "http://[::1"},
	} {
		if _, err := payment.NewStripe(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
