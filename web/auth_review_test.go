package web

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestReviewTokenCacheMatchesFullVerification: at every instant around
// tokens' exp and nbf (whole and fractional seconds, with and without the
// identity provider's leeway), an authenticator answering from its cache of
// verified tokens gives exactly the answer of one that verifies every token
// from scratch — whatever order the instants come in (the clock may even go
// back). Forged variants of a cached token never hit.
func TestReviewTokenCacheMatchesFullVerification(t *testing.T) {
	base := time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC)
	var now time.Time
	clock := func() time.Time { return now }
	cfg := Config{JWTHS256Secret: testIdPSecret, AnonymousSessions: true, SessionSecret: testSessionSecret}
	cached, err := newAuthenticator(cfg, clock)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() *authenticator {
		a, err := newAuthenticator(cfg, clock)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	rng := rand.New(rand.NewPCG(1, 2))
	type tok struct {
		text string
		desc string
	}
	var toks []tok
	sign := func(key []byte, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	secs := func(d time.Duration) float64 { return float64(base.Add(d).UnixNano()) / 1e9 }
	for i := range 40 {
		exp := time.Duration(rng.IntN(240)-60)*time.Second + time.Duration(rng.IntN(1000))*time.Millisecond*time.Duration(i%2)
		c := jwt.MapClaims{"sub": fmt.Sprint("c", i), "exp": secs(exp)}
		if i%3 == 0 {
			c["nbf"] = secs(exp - time.Duration(rng.IntN(120))*time.Second - time.Duration(rng.IntN(1000))*time.Millisecond)
		}
		if i%5 == 0 {
			c["iat"] = secs(exp + time.Hour) // issued in the future
		}
		var key []byte = testIdPSecret
		if i%4 == 1 {
			c["iss"] = sessionIssuer
			key = testSessionSecret
		}
		text := sign(key, c)
		toks = append(toks, tok{text, fmt.Sprintf("%v", c)})
		// Forged: signed with the other configuration's key, or with a
		// broken signature.
		other := testSessionSecret
		if i%4 == 1 {
			other = testIdPSecret
		}
		toks = append(toks, tok{sign(other, c), "other key " + fmt.Sprint(c)})
		toks = append(toks, tok{text[:len(text)-2] + "AA", "broken signature"})
	}
	instants := make([]time.Duration, 0, 600)
	for range 600 {
		instants = append(instants, time.Duration(rng.IntN(400)-150)*time.Second+time.Duration(rng.IntN(4)*250)*time.Millisecond)
	}
	for _, d := range instants {
		now = base.Add(d)
		f := fresh()
		for _, tk := range toks {
			gotSub, gotErr := cached.verifyCustomer(tk.text)
			wantSub, wantErr := f.verifyCustomer(tk.text)
			if (gotErr == nil) != (wantErr == nil) || gotSub != wantSub {
				t.Fatalf("at %s, token %s: cached answer %q, %v; full verification %q, %v", d, tk.desc, gotSub, gotErr, wantSub, wantErr)
			}
		}
	}
	if n := cached.verified.Len(); n > verifiedTokensMax {
		t.Fatalf("%d tokens cached", n)
	}
}
