package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testIdPSecret = []byte("identity-provider-hs256-secret-0123456789")

func idpToken(t *testing.T, method jwt.SigningMethod, key any, sub string, exp time.Time, edit func(*jwt.RegisteredClaims)) string {
	t.Helper()
	c := jwt.RegisteredClaims{Subject: sub, Issuer: "https://idp.example", IssuedAt: jwt.NewNumericDate(exp.Add(-time.Hour))}
	if !exp.IsZero() {
		c.ExpiresAt = jwt.NewNumericDate(exp)
	}
	if edit != nil {
		edit(&c)
	}
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func publicPEM(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestAuth: who may call what, over HTTP.
func TestAuth(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	e := newEnv(t, func(c *Config) {
		c.JWTHS256Secret = testIdPSecret
		c.JWTPublicKeyPEM = publicPEM(t, &ecKey.PublicKey)
	})
	now := e.clock.Now()
	session, _ := e.session()
	hs := idpToken(t, jwt.SigningMethodHS256, testIdPSecret, "customer-1", now.Add(time.Hour), nil)
	es := idpToken(t, jwt.SigningMethodES256, ecKey, "customer-2", now.Add(time.Hour), nil)

	// Forge a session token: right issuer, wrong key.
	forgedSession := idpToken(t, jwt.SigningMethodHS256, []byte("not-the-session-secret-0123456789abc"), "anon-x", now.Add(time.Hour),
		func(c *jwt.RegisteredClaims) { c.Issuer = sessionIssuer })
	noneToken, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{Subject: "x", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)

	const customerPath, adminPath = "/v1/reservations", "/v1/admin/events/none/bookings"
	tests := []struct {
		name  string
		path  string
		token string
		want  int
		code  string
	}{
		{"session token", customerPath, session, 200, ""},
		{"HS256 identity provider", customerPath, hs, 200, ""},
		{"ES256 identity provider", customerPath, es, 200, ""},
		{"no token", customerPath, "", 401, "unauthenticated"},
		{"garbage", customerPath, "not-a-jwt", 401, "unauthenticated"},
		{"wrong HS256 key", customerPath, idpToken(t, jwt.SigningMethodHS256, []byte("wrong-secret-wrong-secret-wrong-secret"), "c", now.Add(time.Hour), nil), 401, "unauthenticated"},
		{"wrong ES256 key", customerPath, idpToken(t, jwt.SigningMethodES256, otherEC, "c", now.Add(time.Hour), nil), 401, "unauthenticated"},
		{"forged session", customerPath, forgedSession, 401, "unauthenticated"},
		{"expired", customerPath, idpToken(t, jwt.SigningMethodHS256, testIdPSecret, "c", now.Add(-time.Hour), nil), 401, "unauthenticated"},
		{"no exp", customerPath, idpToken(t, jwt.SigningMethodHS256, testIdPSecret, "c", time.Time{}, nil), 401, "unauthenticated"},
		{"no sub", customerPath, idpToken(t, jwt.SigningMethodHS256, testIdPSecret, "", now.Add(time.Hour), nil), 401, "unauthenticated"},
		{"alg none", customerPath, noneToken, 401, "unauthenticated"},
		{"HS384 not configured", customerPath, idpToken(t, jwt.SigningMethodHS384, testIdPSecret, "c", now.Add(time.Hour), nil), 401, "unauthenticated"},
		{"admin token on customer endpoint", customerPath, testAdminToken, 403, "forbidden"},
		{"admin token", adminPath, testAdminToken, 404, "event_not_found"},
		{"customer token on admin endpoint", adminPath, session, 403, "forbidden"},
		{"IdP token on admin endpoint", adminPath, hs, 403, "forbidden"},
		{"no token on admin endpoint", adminPath, "", 401, "unauthenticated"},
		{"wrong admin token", adminPath, testAdminToken + "x", 401, "unauthenticated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(http.MethodGet, tt.path, tt.token, nil)
			if tt.code == "" {
				res.want(t, tt.want)
				return
			}
			res.wantProblem(t, tt.want, engineCode(tt.code))
			if tt.want == 401 && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: %v", res.header)
			}
		})
	}
	// "Basic" is not a bearer token.
	res := e.do(http.MethodGet, customerPath, "", nil, "Authorization", "Basic dXNlcjpwYXNz")
	res.wantProblem(t, 401, codeUnauthenticated)

	// Session tokens expire after 24 h.
	e.clock.Advance(sessionTTL + time.Minute)
	e.do(http.MethodGet, customerPath, session, nil).wantProblem(t, 401, codeUnauthenticated)
}

// TestAuthRS256 verifies RS256 tokens with a PEM RSA public key, and that
// the key never verifies an HS256 token made with its PEM bytes as secret
// (algorithm confusion).
func TestAuthRS256(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub := publicPEM(t, &key.PublicKey)
	e := newEnv(t, func(c *Config) { c.JWTPublicKeyPEM = pub; c.AnonymousSessions = false })
	now := e.clock.Now()
	e.do(http.MethodGet, "/v1/reservations", idpToken(t, jwt.SigningMethodRS256, key, "c1", now.Add(time.Hour), nil), nil).want(t, 200)
	confused := idpToken(t, jwt.SigningMethodHS256, pub, "c1", now.Add(time.Hour), nil)
	e.do(http.MethodGet, "/v1/reservations", confused, nil).wantProblem(t, 401, codeUnauthenticated)

	// Anonymous sessions off: no new sessions, and session tokens are refused.
	e.do(http.MethodPost, "/v1/sessions", "", nil).wantProblem(t, 403, codeSessionsDisabled)
	a, err := newAuthenticator(Config{AnonymousSessions: true, SessionSecret: testSessionSecret}, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _, err := a.newSession()
	if err != nil {
		t.Fatal(err)
	}
	e.do(http.MethodGet, "/v1/reservations", tok, nil).wantProblem(t, 401, codeUnauthenticated)
}

func TestAuthConfig(t *testing.T) {
	if _, err := NewServer(Config{AnonymousSessions: true, SessionSecret: []byte("short")}); err == nil {
		t.Error("a short session secret was accepted")
	}
	if _, err := NewServer(Config{JWTPublicKeyPEM: []byte("not pem")}); err == nil {
		t.Error("a bad public key was accepted")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewServer(Config{JWTPublicKeyPEM: publicPEM(t, &p384.PublicKey)}); err == nil {
		t.Error("a P-384 key was accepted for ES256")
	}
}

// TestAuthVerifiedTokenCache: a token answered from the cache of verified
// tokens is refused the moment a full verification would refuse it — at
// its exp (plus the identity provider's leeway), and before its nbf — and a
// token is cached only once it verified.
func TestAuthVerifiedTokenCache(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.JWTHS256Secret = testIdPSecret })
	now := e.clock.Now()
	session, _ := e.session()
	idp := idpToken(t, jwt.SigningMethodHS256, testIdPSecret, "c-cache", now.Add(time.Minute), nil)
	later := idpToken(t, jwt.SigningMethodHS256, testIdPSecret, "c-later", now.Add(2*time.Hour), func(c *jwt.RegisteredClaims) {
		c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour))
	})
	for range 2 { // the second round is answered from the cache
		e.do(http.MethodGet, "/v1/reservations", session, nil).want(t, 200)
		e.do(http.MethodGet, "/v1/reservations", idp, nil).want(t, 200)
		e.do(http.MethodGet, "/v1/reservations", later, nil).wantProblem(t, 401, codeUnauthenticated)
	}
	if e.srv.auth.verified.Len() != 2 {
		t.Fatalf("%d tokens cached, want the 2 that verified", e.srv.auth.verified.Len())
	}
	// Inside the identity provider's leeway the token is still good.
	e.clock.Advance(time.Minute + jwtLeeway - time.Second)
	e.do(http.MethodGet, "/v1/reservations", idp, nil).want(t, 200)
	e.clock.Advance(time.Second)
	e.do(http.MethodGet, "/v1/reservations", idp, nil).wantProblem(t, 401, codeUnauthenticated)
	// nbf (less the leeway) reached: good from then on, cached or not.
	e.clock.Advance(time.Hour - time.Minute - 2*jwtLeeway)
	e.do(http.MethodGet, "/v1/reservations", later, nil).want(t, 200)
	e.do(http.MethodGet, "/v1/reservations", later, nil).want(t, 200)
	// The session token (24 h, no leeway) expires exactly at its exp.
	e.clock.Advance(sessionTTL)
	e.do(http.MethodGet, "/v1/reservations", session, nil).wantProblem(t, 401, codeUnauthenticated)
}
