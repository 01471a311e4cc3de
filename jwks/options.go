package jwks

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Defaults. Each is documented at the option that overrides it.
const (
	DefaultLeeway             = 30 * time.Second
	DefaultMinRefresh         = time.Minute
	DefaultMaxRefresh         = time.Hour
	DefaultUnknownKIDInterval = 30 * time.Second
	DefaultExpectedType       = "at+jwt"
	DefaultClientKeyTTL       = 5 * time.Minute
)

// VerifierOption configures NewVerifier and NewClientKeyVerifier.
//
// (It is not called Option because the publication half of this package
// already uses that name for Publisher options.) Options that make no sense
// for a constructor, such as WithRefreshBounds for a client-key verifier,
// make that constructor fail instead of being silently ignored: a security
// setting that does nothing is worse than an error at startup.
type VerifierOption func(*verifierConfig)

type verifierConfig struct {
	issuer             string
	issuerSet          bool
	jwksURL            string
	audiences          []string
	leeway             time.Duration
	now                func() time.Time
	httpClient         *http.Client
	minRefresh         time.Duration
	maxRefresh         time.Duration
	unknownKIDInterval time.Duration
	expectedType       string
	requiredScopes     []string
	algorithms         []string
	logger             *slog.Logger
	keyTTL             time.Duration
	maxAge             time.Duration // client-signed tokens without exp: iat must be this recent

	used []string // names of the options given, to refuse inapplicable ones
	errs []error  // invalid option values
}

func (c *verifierConfig) mark(name string) { c.used = append(c.used, name) }

func (c *verifierConfig) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// newVerifierConfig applies opts over the defaults and refuses options not in
// allowed (named for the constructor in the error).
func newVerifierConfig(constructor string, allowed []string, opts []VerifierOption) (*verifierConfig, error) {
	c := &verifierConfig{
		leeway:             DefaultLeeway,
		now:                time.Now,
		minRefresh:         DefaultMinRefresh,
		maxRefresh:         DefaultMaxRefresh,
		unknownKIDInterval: DefaultUnknownKIDInterval,
		expectedType:       DefaultExpectedType,
		algorithms:         []string{"RS256"},
		keyTTL:             DefaultClientKeyTTL,
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	for _, name := range c.used {
		if !slices.Contains(allowed, name) {
			c.fail("%s does not apply to %s", name, constructor)
		}
	}
	if c.httpClient == nil {
		c.httpClient = &http.Client{Timeout: fetchTimeout}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if len(c.errs) > 0 {
		return nil, fmt.Errorf("jwks: %s: %w", constructor, errors.Join(c.errs...))
	}
	return c, nil
}

// WithIssuer sets the issuer that tokens' "iss" must equal exactly.
//
// By default it is the issuer URL given to NewVerifier. Set it when the
// verifier reaches the issuer under another address than the one in its
// tokens (e.g. http://keygate:8080 inside a cluster, https://id.example.com
// in tokens): discovery then requires the document's "issuer" to equal this
// value instead of the URL it was fetched from. It is required when
// NewVerifier is given a JWKS URL, since a key set alone does not say whose
// tokens to accept.
func WithIssuer(issuer string) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithIssuer")
		if issuer == "" {
			c.fail("WithIssuer: empty issuer")
		}
		c.issuer, c.issuerSet = issuer, true
	}
}

// WithJWKSURL makes NewVerifier use u as the key set and skip discovery; the
// URL given to NewVerifier is then only the expected issuer. Use it when the
// issuer serves no discovery document or the verifier must not depend on it.
func WithJWKSURL(u string) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithJWKSURL")
		if u == "" {
			c.fail("WithJWKSURL: empty URL")
		}
		c.jwksURL = u
	}
}

// WithAudience makes tokens acceptable only if their "aud" (a string or an
// array) contains at least one of audiences.
//
// Without it the audience is not checked, so any token of the issuer is
// accepted, including one minted for another service. A resource server
// that shares an issuer with others should always set it.
func WithAudience(audiences ...string) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithAudience")
		if len(audiences) == 0 || slices.Contains(audiences, "") {
			c.fail("WithAudience: give at least one non-empty audience")
		}
		c.audiences = append([]string(nil), audiences...)
	}
}

// WithLeeway sets the clock skew tolerated on exp, nbf and iat; the default,
// DefaultLeeway (30 s), covers hosts whose clocks are loosely synchronized
// while extending a token's life by at most that much.
func WithLeeway(d time.Duration) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithLeeway")
		if d < 0 {
			c.fail("WithLeeway: negative leeway %s", d)
		}
		c.leeway = d
	}
}

// WithClock replaces time.Now for claim validation and for the unknown-kid
// refetch interval (tests use it to step time deterministically). The
// background refresh of the key set, run by jwk.Cache, keeps real time.
func WithClock(now func() time.Time) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithClock")
		if now == nil {
			c.fail("WithClock: nil clock")
		}
		c.now = now
	}
}

// WithHTTPClient sets the client used for discovery and key fetches (for
// proxies, custom TLS roots or tests). Each fetch is limited to 10 s, or
// to the client's own Timeout if shorter. The default is a client with a
// 10 s timeout.
func WithHTTPClient(client *http.Client) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithHTTPClient")
		if client == nil {
			c.fail("WithHTTPClient: nil client")
		}
		c.httpClient = client
	}
}

// WithRefreshBounds bounds how long a fetched key set is used before the
// background refresh fetches it again: the issuer's Cache-Control max-age
// (or Expires) is honoured but clamped into [minInterval, maxInterval]. The
// lower bound protects the issuer from a tiny max-age; the upper bound makes
// sure revoked keys disappear even if the issuer asks for a day of caching.
// Defaults: DefaultMinRefresh (1 min) and DefaultMaxRefresh (1 h). A response
// without caching information is refreshed after minInterval.
func WithRefreshBounds(minInterval, maxInterval time.Duration) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithRefreshBounds")
		if minInterval < time.Second || maxInterval < minInterval {
			c.fail("WithRefreshBounds: want 1s <= min <= max, got min %s, max %s", minInterval, maxInterval)
		}
		c.minRefresh, c.maxRefresh = minInterval, maxInterval
	}
}

// WithUnknownKIDInterval sets the least time between two fetches caused by
// unknown kids (default DefaultUnknownKIDInterval, 30 s).
//
// A token whose kid is not in the cached set makes the verifier refetch the
// set once, because the issuer may have published a new key since the last
// fetch; the interval caps that, so a flood of tokens with made-up kids
// costs the issuer at most one request per interval. Keygate publishes keys
// well ahead of using them, so a legitimate new kid is normally already
// cached.
//
// For NewClientKeyVerifier it is the least time between two fetches of one
// identity's key (after a 404, a failure, or a signature that does not
// verify with the cached key).
func WithUnknownKIDInterval(d time.Duration) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithUnknownKIDInterval")
		if d < 0 {
			c.fail("WithUnknownKIDInterval: negative interval %s", d)
		}
		c.unknownKIDInterval = d
	}
}

// WithExpectedType sets the "typ" header tokens must carry (default
// DefaultExpectedType, "at+jwt", RFC 9068). The comparison ignores case and
// an "application/" prefix, as RFC 7515 §4.1.9 allows. The empty string
// disables the check, e.g. for an issuer that does not type its tokens.
//
// The check is what stops an ID token, signed by the same keys, from being
// accepted as an access token.
func WithExpectedType(typ string) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithExpectedType")
		c.expectedType = typ
	}
}

// WithRequiredScopes makes Verify refuse, with ErrInsufficientScope, tokens
// whose "scope" lacks any of scopes. Per-route requirements belong in the
// middleware (RequireScopes) instead.
func WithRequiredScopes(scopes ...string) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithRequiredScopes")
		if slices.Contains(scopes, "") {
			c.fail("WithRequiredScopes: empty scope")
		}
		c.requiredScopes = append([]string(nil), scopes...)
	}
}

// WithAlgorithms sets the JWS algorithms accepted in token headers (default:
// RS256 only, which is what Keygate signs with). Only RSA signature
// algorithms (RS256/384/512, PS256/384/512) can be given: the key set is
// read for RSA keys, and "none" or HMAC would let anyone who knows the public
// key mint tokens.
func WithAlgorithms(algs ...string) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithAlgorithms")
		if len(algs) == 0 {
			c.fail("WithAlgorithms: no algorithm given")
		}
		for _, a := range algs {
			if !isRSASignatureAlg(a) {
				c.fail("WithAlgorithms: %q is not accepted (only %s)", a, strings.Join(rsaAlgorithms, ", "))
			}
		}
		c.algorithms = append([]string(nil), algs...)
	}
}

// WithLogger sets where refresh failures (warn) and key-set changes (debug)
// are logged; the default is slog.Default(). Stats counts them either way.
func WithLogger(l *slog.Logger) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithLogger")
		if l == nil {
			c.fail("WithLogger: nil logger")
		}
		c.logger = l
	}
}

// WithKeyTTL sets how long NewClientKeyVerifier keeps a client's public key
// before asking the key server again (default DefaultClientKeyTTL, 5 min).
// It bounds how long a replaced or deleted client key keeps verifying.
func WithKeyTTL(d time.Duration) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithKeyTTL")
		if d <= 0 {
			c.fail("WithKeyTTL: want a positive TTL, got %s", d)
		}
		c.keyTTL = d
	}
}

// WithMaxAge lets NewClientKeyVerifier accept a client-signed token WITHOUT
// "exp", as seed 001's requests ({"query", "iss", "iat"}) are, provided its
// "iat" is at most d old (plus the leeway). Without this option such tokens are
// refused, since nothing else bounds how long a captured one can be replayed.
// Tokens that carry "exp" are checked against it as usual.
func WithMaxAge(d time.Duration) VerifierOption {
	return func(c *verifierConfig) {
		c.mark("WithMaxAge")
		if d <= 0 {
			c.fail("WithMaxAge: want a positive age, got %s", d)
		}
		c.maxAge = d
	}
}

var rsaAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
