package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Anonymous sessions (POST /v1/sessions).
const (
	sessionIssuer         = "boxoffice-session"
	sessionTTL            = 24 * time.Hour
	sessionCustomerIDTag  = "anon-"
	sessionSecretBytesMin = 32
)

// Bounds on identities.
const (
	customerIDBytesMax = 256 // as engine's bound on a customer id
	tokenBytesMax      = 8 << 10
	// jwtLeeway absorbs clock skew between the identity provider and us.
	jwtLeeway = 30 * time.Second
	// verifiedTokensMax bounds the cache of verified customer tokens: a
	// session token is ~250 bytes (~10 MB for a full cache); at most
	// tokenBytesMax each, 256 MiB in the worst case, and only tokens we or
	// the identity provider signed get in.
	verifiedTokensMax = 32 << 10
)

// identityKind says who sent a request.
type identityKind uint8

const (
	identityNone     identityKind = iota // no Authorization header
	identityInvalid                      // a token that failed verification
	identityCustomer                     // a valid customer JWT or session token
	identityAdmin                        // the admin token
)

// identity is the verified caller of a request. Verification runs once per
// request in a middleware (the rate limiter keys on it); the handlers decide
// when a missing or invalid identity is an error, so that a malformed body is
// reported before a missing token (API.md, error precedence).
type identity struct {
	kind       identityKind
	customerID string
	err        error // why the token is invalid
}

type identityKey struct{}

func identityFrom(ctx context.Context) identity {
	id, _ := ctx.Value(identityKey{}).(identity)
	return id
}

// authenticator verifies bearer tokens: the admin token, customer JWTs from
// the operator's identity provider, and anonymous session tokens.
type authenticator struct {
	now        func() time.Time
	adminHash  [sha256.Size]byte
	adminSet   bool
	sessionKey []byte // nil: anonymous sessions off
	session    *jwt.Parser

	idp       *jwt.Parser // nil: no identity provider configured
	idpHS256  []byte
	idpPublic any // *rsa.PublicKey or *ecdsa.PublicKey

	// verified caches tokens that passed verification, by their exact text,
	// with the window in which they stay valid: a buyer sends the same token
	// on every request of a sale, and parsing and checking it again costs
	// more than the hold itself. A token's signature and claims cannot
	// change, and the keys are fixed for the process's life, so a hit inside
	// the window is the answer a full verification would give; outside it the
	// token is verified again (and refused).
	verified *lru.Cache[string, verifiedToken]
}

// verifiedToken is a verified customer token's subject and the time window
// in which it is valid (exp and nbf with the parser's leeway applied).
type verifiedToken struct {
	subject   string
	notBefore time.Time // zero: no nbf claim
	expiresAt time.Time
}

func newAuthenticator(cfg Config, now func() time.Time) (*authenticator, error) {
	verified, err := lru.New[string, verifiedToken](verifiedTokensMax)
	if err != nil {
		return nil, err
	}
	a := &authenticator{now: now, verified: verified}
	if cfg.AdminToken != "" {
		a.adminHash, a.adminSet = sha256.Sum256([]byte(cfg.AdminToken)), true
	}
	if cfg.AnonymousSessions {
		if len(cfg.SessionSecret) < sessionSecretBytesMin {
			return nil, fmt.Errorf("web: anonymous sessions need a session secret of at least %d bytes", sessionSecretBytesMin)
		}
		a.sessionKey = cfg.SessionSecret
		a.session = jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(sessionIssuer),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(now),
		)
	}
	var methods []string
	if len(cfg.JWTHS256Secret) > 0 {
		a.idpHS256 = cfg.JWTHS256Secret
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if len(cfg.JWTPublicKeyPEM) > 0 {
		key, alg, err := parsePublicKey(cfg.JWTPublicKeyPEM)
		if err != nil {
			return nil, err
		}
		a.idpPublic = key
		methods = append(methods, alg)
	}
	if len(methods) > 0 {
		a.idp = jwt.NewParser(
			jwt.WithValidMethods(methods),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(jwtLeeway),
			jwt.WithTimeFunc(now),
		)
	}
	return a, nil
}

// parsePublicKey reads an RSA (RS256) or P-256 ECDSA (ES256) public key in PEM.
func parsePublicKey(pem []byte) (any, string, error) {
	if k, err := jwt.ParseRSAPublicKeyFromPEM(pem); err == nil {
		if k.N.BitLen() < 2048 {
			return nil, "", errors.New("web: the JWT RSA public key is shorter than 2048 bits")
		}
		return k, jwt.SigningMethodRS256.Alg(), nil
	}
	k, err := jwt.ParseECPublicKeyFromPEM(pem)
	if err != nil {
		return nil, "", errors.New("web: the JWT public key is neither an RSA nor an ECDSA public key in PEM")
	}
	if k.Curve != elliptic.P256() {
		return nil, "", errors.New("web: the JWT ECDSA public key is not on P-256 (ES256)")
	}
	return k, jwt.SigningMethodES256.Alg(), nil
}

// identify verifies the request's bearer token, if any.
func (a *authenticator) identify(r *http.Request) identity {
	h := r.Header.Get("Authorization")
	if h == "" {
		return identity{kind: identityNone}
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return identity{kind: identityInvalid, err: errors.New("the Authorization header is not a Bearer token")}
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > tokenBytesMax {
		return identity{kind: identityInvalid, err: errors.New("the bearer token is empty or too long")}
	}
	if a.adminSet {
		// Compare digests so that neither content nor length leaks by timing.
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], a.adminHash[:]) == 1 {
			return identity{kind: identityAdmin}
		}
	}
	sub, err := a.verifyCustomer(token)
	if err != nil {
		return identity{kind: identityInvalid, err: err}
	}
	return identity{kind: identityCustomer, customerID: sub}
}

// verifyCustomer checks a customer JWT and returns its subject. A token whose
// (unverified) issuer is ours is checked as a session token only; any other
// as an identity-provider token only, with the provider's algorithms.
func (a *authenticator) verifyCustomer(token string) (string, error) {
	if v, ok := a.verified.Get(token); ok {
		now := a.now()
		if now.Before(v.expiresAt) && !now.Before(v.notBefore) {
			return v.subject, nil
		}
		a.verified.Remove(token)
	}
	var unverified jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &unverified); err != nil {
		return "", errors.New("the bearer token is not a valid JWT")
	}
	var (
		parser *jwt.Parser
		keyFn  jwt.Keyfunc
	)
	if unverified.Issuer == sessionIssuer {
		if a.session == nil {
			return "", errors.New("anonymous sessions are disabled on this server")
		}
		parser = a.session
		keyFn = func(*jwt.Token) (any, error) { return a.sessionKey, nil }
	} else {
		if a.idp == nil {
			return "", errors.New("no identity provider is configured on this server")
		}
		parser = a.idp
		keyFn = a.idpKey
	}
	var claims jwt.RegisteredClaims
	if _, err := parser.ParseWithClaims(token, &claims, keyFn); err != nil {
		return "", fmt.Errorf("the bearer token is invalid: %w", err)
	}
	if claims.Subject == "" || len(claims.Subject) > customerIDBytesMax {
		return "", errors.New("the bearer token has no usable sub (customer id)")
	}
	if claims.ExpiresAt != nil { // required by both parsers
		leeway := time.Duration(0)
		if parser == a.idp {
			leeway = jwtLeeway
		}
		v := verifiedToken{subject: claims.Subject, expiresAt: claims.ExpiresAt.Add(leeway)}
		if claims.NotBefore != nil {
			v.notBefore = claims.NotBefore.Add(-leeway)
		}
		a.verified.Add(token, v)
	}
	return claims.Subject, nil
}

// idpKey picks the key for the token's algorithm; the parser has already
// restricted the algorithm to the configured ones, and each key serves only
// its own algorithm, so an RS256 key can never verify an HS256 token.
func (a *authenticator) idpKey(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if a.idpHS256 != nil {
			return a.idpHS256, nil
		}
	case *jwt.SigningMethodRSA:
		if k, ok := a.idpPublic.(*rsa.PublicKey); ok {
			return k, nil
		}
	case *jwt.SigningMethodECDSA:
		if k, ok := a.idpPublic.(*ecdsa.PublicKey); ok {
			return k, nil
		}
	}
	return nil, errors.New("no key for this algorithm")
}

// newSession issues an anonymous session: a fresh random customer id in an
// HS256 token signed with the session secret.
func (a *authenticator) newSession() (token, customerID string, expiresAt time.Time, err error) {
	now := a.now().UTC().Truncate(time.Second)
	expiresAt = now.Add(sessionTTL)
	customerID = sessionCustomerIDTag + strings.ToLower(rand.Text())
	claims := jwt.RegisteredClaims{
		Issuer:    sessionIssuer,
		Subject:   customerID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(expiresAt),
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.sessionKey)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("sign session token: %w", err)
	}
	return token, customerID, expiresAt, nil
}

// requireCustomer returns the caller's customer id, or answers 401/403.
// customerSystem is requireCustomer, then the actor system (503 while not
// ready): the preamble of every customer endpoint.
func (s *Server) customerSystem(w http.ResponseWriter, r *http.Request) (customerID string, sys System, ok bool) {
	if customerID, ok = s.requireCustomer(w, r); !ok {
		return "", nil, false
	}
	if sys, ok = s.system(w, r); !ok {
		return "", nil, false
	}
	return customerID, sys, true
}

func (s *Server) requireCustomer(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := identityFrom(r.Context())
	switch id.kind {
	case identityCustomer:
		return id.customerID, true
	case identityAdmin:
		s.writeError(w, r, errorf(codeForbidden, "the admin token is not a customer token"))
	case identityInvalid:
		s.writeError(w, r, errorf(codeUnauthenticated, "%v", id.err))
	default:
		s.writeError(w, r, errorf(codeUnauthenticated, "this endpoint needs Authorization: Bearer <customer token>"))
	}
	return "", false
}

// requireAdmin answers 401/403 unless the caller presented the admin token.
func (s *Server) requireAdmin(w http.ResponseWriter, r *http.Request) bool {
	id := identityFrom(r.Context())
	switch id.kind {
	case identityAdmin:
		return true
	case identityCustomer:
		s.writeError(w, r, errorf(codeForbidden, "this endpoint is for operators; a customer token is not enough"))
	default:
		s.writeError(w, r, errorf(codeUnauthenticated, "this endpoint needs Authorization: Bearer <admin token>"))
	}
	return false
}
