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

// AccessTokenType is the JOSE "typ" of an access token (RFC 9068). Keygate
// puts it on every access token it signs, and verifiers expect it by
// default, so that an ID token signed by the same keys is never accepted as
// an access token. The issuer uses this constant too, so both sides agree.
const AccessTokenType = "at+jwt"

// Defaults that a zero field of Config stands for.
const (
	DefaultLeeway             = 30 * time.Second
	DefaultMinRefresh         = time.Minute
	DefaultMaxRefresh         = time.Hour
	DefaultUnknownKIDInterval = 30 * time.Second
	DefaultClientKeyTTL       = 5 * time.Minute
)

// Config configures NewVerifier, NewLocalVerifier and NewClientKeyVerifier.
// The zero value is usable: every zero field stands for the default named in
// its comment. A field that does not apply to a constructor must be left
// zero; the constructor refuses it otherwise, because a security setting
// that silently does nothing is worse than an error at startup.
type Config struct {
	// Issuer is what "iss" must equal exactly. Default: the URL given to
	// NewVerifier. Set it when the issuer is reached under another address
	// than the one in its tokens; discovery then also requires the
	// document's "issuer" to equal it. Required when NewVerifier is given a
	// key set URL, and for NewLocalVerifier. (Not for client-signed tokens,
	// whose iss names the client.)
	Issuer string
	// JWKSURL makes NewVerifier fetch the key set from here and skip
	// discovery, for issuers without a discovery document.
	JWKSURL string
	// Audience: if set, "aud" must contain one of these. If empty, aud is not
	// checked, so a token minted for another service of the same issuer is
	// accepted; a resource server sharing an issuer should always set it.
	Audience []string
	// Algorithms accepted in token headers. Default: RS256, what Keygate
	// signs with unless a client is registered for ES256 or EdDSA. Only
	// asymmetric signature algorithms (RS/PS 256/384/512, ES256, EdDSA) may
	// be given: "none" or HMAC would let anyone knowing the public key mint
	// tokens. Whatever is accepted, a token verifies only with a key of the
	// matching type (an RSA key for RS256, a P-256 key for ES256, an Ed25519
	// key for EdDSA) whose published "alg", if any, equals the header's.
	// Client-signed tokens are always RS256.
	Algorithms []string
	// ExpectedType is the "typ" header tokens must carry (case-insensitive,
	// "application/" prefix optional). Default: AccessTokenType.
	ExpectedType string
	// SkipTypeCheck disables the typ check, for issuers that do not type
	// their tokens.
	SkipTypeCheck bool
	// RequiredScopes: Verify refuses with ErrInsufficientScope a token whose
	// "scope" lacks one of these. Per-route needs belong in MiddlewareConfig.
	RequiredScopes []string
	// Leeway is the clock skew tolerated on exp, nbf and iat. Default:
	// DefaultLeeway, which covers loosely synchronized hosts.
	Leeway time.Duration
	// NoLeeway checks times exactly, for a verifier whose clock is the
	// issuer's own.
	NoLeeway bool
	// MaxAgeWithoutExpiry, for client-signed tokens only: if positive, a
	// token WITHOUT "exp" is accepted when its "iat" is at most this old
	// (plus the leeway). Default: such tokens are refused, since nothing
	// else bounds how long a captured one can be replayed.
	MaxAgeWithoutExpiry time.Duration
	// Now replaces time.Now for claim checks and the unknown-kid interval
	// (tests step time with it). Background refreshes keep real time.
	Now func() time.Time
	// HTTPClient is used for discovery and key fetches (proxies, private
	// CAs, tests). Each fetch is limited to 10 s, or the client's Timeout if
	// shorter. Default: a client with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives refresh failures (warn), refusals and key-set changes
	// (debug). Default: slog.Default(). Stats counts them either way.
	Logger *slog.Logger
	// MinRefresh and MaxRefresh clamp the issuer's Cache-Control max-age
	// (or Expires): the lower bound protects the issuer from a tiny max-age,
	// the upper one makes revoked keys disappear even if the issuer asks
	// for long caching. A response without caching information is refetched
	// after MinRefresh. Defaults: DefaultMinRefresh, DefaultMaxRefresh.
	MinRefresh, MaxRefresh time.Duration
	// UnknownKIDInterval is the least time between two fetches caused by an
	// unknown kid (for client-signed tokens: by a 404, a failure or a
	// signature not verifying, per client), so made-up kids cannot turn the
	// verifier into a request amplifier. For client-signed tokens it is also
	// the refill period of the global limit on key lookups for clients
	// without a cached key (a burst of 5, then one per interval), so
	// made-up client identities cannot either. Default:
	// DefaultUnknownKIDInterval.
	UnknownKIDInterval time.Duration
	// KeyTTL, for client-signed tokens only, is how long a client's key is
	// cached, which bounds how long a replaced or deleted key keeps
	// verifying. Default: DefaultClientKeyTTL.
	KeyTTL time.Duration
}

// verifierConfig is a validated Config with the defaults filled in.
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
}

// The Config fields each constructor accepts; the others must be zero.
const (
	forRemote = iota
	forLocal
	forClient
)

// validate checks c for the constructor kind and fills in the defaults. It
// is the one place where Config is interpreted.
func (c Config) validate(constructor string, kind int) (*verifierConfig, error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	refuse := func(name string, set bool) {
		if set {
			fail("Config.%s does not apply to %s", name, constructor)
		}
	}
	refuse("JWKSURL", kind != forRemote && c.JWKSURL != "")
	refuse("HTTPClient", kind == forLocal && c.HTTPClient != nil)
	refuse("MinRefresh/MaxRefresh", kind != forRemote && (c.MinRefresh != 0 || c.MaxRefresh != 0))
	refuse("UnknownKIDInterval", kind == forLocal && c.UnknownKIDInterval != 0)
	refuse("Issuer", kind == forClient && c.Issuer != "")
	refuse("Algorithms", kind == forClient && c.Algorithms != nil)
	refuse("ExpectedType/SkipTypeCheck", kind == forClient && (c.ExpectedType != "" || c.SkipTypeCheck))
	refuse("RequiredScopes", kind == forClient && c.RequiredScopes != nil)
	refuse("KeyTTL", kind != forClient && c.KeyTTL != 0)
	refuse("MaxAgeWithoutExpiry", kind != forClient && c.MaxAgeWithoutExpiry != 0)
	if kind == forLocal && c.Issuer == "" {
		fail("Config.Issuer is required: a key set alone does not say whose tokens to accept")
	}

	vc := &verifierConfig{
		issuer:             c.Issuer,
		issuerSet:          c.Issuer != "",
		jwksURL:            c.JWKSURL,
		audiences:          slices.Clone(c.Audience),
		leeway:             orDefault(c.Leeway, DefaultLeeway),
		now:                c.Now,
		httpClient:         c.HTTPClient,
		minRefresh:         orDefault(c.MinRefresh, DefaultMinRefresh),
		maxRefresh:         orDefault(c.MaxRefresh, DefaultMaxRefresh),
		unknownKIDInterval: orDefault(c.UnknownKIDInterval, DefaultUnknownKIDInterval),
		expectedType:       c.ExpectedType,
		requiredScopes:     slices.Clone(c.RequiredScopes),
		algorithms:         []string{"RS256"},
		logger:             c.Logger,
		keyTTL:             orDefault(c.KeyTTL, DefaultClientKeyTTL),
		maxAge:             c.MaxAgeWithoutExpiry,
	}
	if c.Audience != nil && (len(c.Audience) == 0 || slices.Contains(c.Audience, "")) {
		fail("Config.Audience: give at least one non-empty audience")
	}
	switch {
	case c.Leeway < 0:
		fail("Config.Leeway: negative leeway %s", c.Leeway)
	case c.NoLeeway && c.Leeway != 0:
		fail("Config.Leeway and Config.NoLeeway both set")
	case c.NoLeeway:
		vc.leeway = 0
	}
	if c.MinRefresh != 0 || c.MaxRefresh != 0 {
		if vc.minRefresh < time.Second || vc.maxRefresh < vc.minRefresh {
			fail("Config.MinRefresh/MaxRefresh: want 1s <= min <= max, got min %s, max %s", vc.minRefresh, vc.maxRefresh)
		}
	}
	if c.UnknownKIDInterval < 0 {
		fail("Config.UnknownKIDInterval: negative interval %s", c.UnknownKIDInterval)
	}
	if c.KeyTTL < 0 {
		fail("Config.KeyTTL: want a positive TTL, got %s", c.KeyTTL)
	}
	if c.MaxAgeWithoutExpiry < 0 {
		fail("Config.MaxAgeWithoutExpiry: want a positive age, got %s", c.MaxAgeWithoutExpiry)
	}
	switch {
	case c.SkipTypeCheck && c.ExpectedType != "":
		fail("Config.ExpectedType and Config.SkipTypeCheck both set")
	case c.SkipTypeCheck:
		vc.expectedType = ""
	case c.ExpectedType == "":
		vc.expectedType = AccessTokenType
	}
	if slices.Contains(c.RequiredScopes, "") {
		fail("Config.RequiredScopes: empty scope")
	}
	if c.Algorithms != nil {
		if len(c.Algorithms) == 0 {
			fail("Config.Algorithms: no algorithm given")
		}
		for _, a := range c.Algorithms {
			if !isSignatureAlg(a) {
				fail("Config.Algorithms: %q is not accepted (only %s)", a, strings.Join(signatureAlgorithms, ", "))
			}
		}
		vc.algorithms = slices.Clone(c.Algorithms)
	}
	if vc.now == nil {
		vc.now = time.Now
	}
	if vc.httpClient == nil {
		vc.httpClient = &http.Client{Timeout: fetchTimeout}
	}
	if vc.logger == nil {
		vc.logger = slog.Default()
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("jwks: %s: %w", constructor, errors.Join(errs...))
	}
	return vc, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// rsaAlgorithms are the RSA signature algorithms (RFC 7518 §3.3, §3.5) the
// verifier checks and NewDocument publishes; isRSASignatureAlg tests them.
var rsaAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// signatureAlgorithms are all the algorithms Config.Algorithms may name;
// isSignatureAlg tests them.
var signatureAlgorithms = append(slices.Clone(rsaAlgorithms), "ES256", "EdDSA")
