// Package idp is Keygate's identity domain, in two parts: a Directory
// manages clients and users (registration, settings, secrets, passwords),
// and a Provider, over a Directory, runs the grants, sessions, and token
// issuance and validation. It knows nothing of HTTP routing (package web
// calls it), reaches storage through the store package's Store contract and
// signs through a small Signer interface it declares.
package idp

import (
	"errors"
	"fmt"
	"github.com/go-webauthn/webauthn/webauthn"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/throttle"
)

// Signer signs tokens with the active key and gives the published keys to
// verify them with; rotation.Signer implements it. It is all idp sees of the
// key set: no private key ever reaches this package.
type Signer interface {
	// Sign returns payload as a compact JWS signed with the active key, with
	// the key's kid and the given typ in its header.
	Sign(payload []byte, typ string) (string, error)
	// KeySet returns the published keys as a serialized JWKS, the same
	// pointer until the key set changes; nil while none is loaded. idp
	// verifies its own access tokens against it with the jwks package's
	// verifier, so the issuer and its resource servers apply the same checks.
	KeySet() *jwks.Document
}

// AlgorithmSigner is a Signer that also keeps ES256 and EdDSA keys beside
// RS256 (rotation.Signer does): a client registered with a SigningAlg gets
// its tokens signed by SignWith, and the provider's own verifiers accept
// every algorithm of Algorithms (each only with a key of its type).
type AlgorithmSigner interface {
	Signer
	// SignWith is Sign with the active key of alg ("" means RS256).
	SignWith(alg string, payload []byte, typ string) (string, error)
	// Algorithms are the configured signing algorithms, RS256 first.
	Algorithms() []string
}

// SigningAlgorithms are the algorithms a client may be registered to have
// its tokens signed with (keys.algorithms must also list it).
var SigningAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// signingAlgorithms returns the algorithms the provider signs with: the
// Signer's when it is an AlgorithmSigner, else RS256.
func (p *Provider) signingAlgorithms() []string {
	if as, ok := p.cfg.Signer.(AlgorithmSigner); ok {
		return as.Algorithms()
	}
	return []string{"RS256"}
}

// SigningAlgorithms are the algorithms this provider signs tokens with, RS256
// first: what discovery advertises.
func (p *Provider) SigningAlgorithms() []string { return slices.Clone(p.signingAlgorithms()) }

// Config holds the provider's settings and dependencies. The embedded
// DirectoryConfig builds the provider's Directory, whose store, hasher,
// clock and logger the provider uses too.
type Config struct {
	DirectoryConfig

	Issuer     string
	RefreshTTL time.Duration
	IDTokenTTL time.Duration // default 1h
	Leeway     time.Duration // clock skew allowed on assertions clients sign
	Signup     bool

	// Browser sessions end after SessionIdleTimeout without a request (default
	// 1h) and SessionAbsoluteTimeout after login in any case (default 24h).
	SessionIdleTimeout     time.Duration
	SessionAbsoluteTimeout time.Duration

	Signer       Signer         // required: signs with the active key
	UserThrottle store.Throttle // failed password attempts per username
	IPThrottle   store.Throttle // ... and per client IP
	HTTPClient   *http.Client   // for clients' jwks_uri

	DPoP DPoPConfig // proof-of-possession (RFC 9449): nonces and the iat window
	// Second factors (totp.go). Sealer seals TOTP secrets (the signing
	// keys' key-encryption key); without one, TOTP enrolment is refused.
	// SecondFactor is login.require_second_factor ("" is none); the
	// password grant is refused for users with a second factor unless
	// PasswordGrantWithSecondFactor.
	Sealer                        SecretSealer
	SecondFactor                  SecondFactorPolicy
	PasswordGrantWithSecondFactor bool
	// PasskeySignIns bounds how fast passkey sign-in ceremonies may begin,
	// all addresses together (zero: DefaultPasskeySignIns()). Each stores a
	// challenge for its 5 minutes; the per-address cap alone would let an
	// attacker with many addresses grow that table without bound.
	PasskeySignIns throttle.Limits
}

// DefaultPasskeySignIns is the default of Config.PasskeySignIns: 300 at
// once, then 10 per second, so at most about 3,300 sign-in challenges are
// outstanding per server.
func DefaultPasskeySignIns() throttle.Limits {
	return throttle.Limits{Burst: 300, Every: 100 * time.Millisecond}
}

// Provider implements the grants, browser sessions and token operations; its
// Directory manages the clients and users they are for.
type Provider struct {
	cfg    Config
	dir    *Directory
	now    func() time.Time
	log    *slog.Logger
	remote *remoteKeys

	// access verifies the access tokens this provider issued; revocable
	// accepts them whatever their time window (see newVerifiers).
	access, revocable *jwks.Verifier
	sealed            *jwks.Verifier // the login form's sealed authorization requests
	hints             *jwks.Verifier // RP-initiated logout's id_token_hint (logout.go)

	browser store.BrowserStore // sessions and codes: the Store's BrowserStore part

	rp            *webauthn.WebAuthn // the WebAuthn relying party; nil when the issuer's host cannot be an RP ID (passkeys.go)
	passkeyStarts *throttle.Throttle // one bucket: sign-in ceremonies begun, all addresses together
}

// New checks cfg, builds the Directory from cfg.DirectoryConfig, and returns
// a Provider.
func New(cfg Config) (*Provider, error) {
	if cfg.Signer == nil || cfg.UserThrottle == nil || cfg.IPThrottle == nil {
		return nil, errors.New("idp: Signer and both throttles are required")
	}
	if cfg.Issuer == "" || cfg.RefreshTTL <= 0 {
		return nil, errors.New("idp: Issuer and RefreshTTL are required")
	}
	dir, err := NewDirectory(cfg.DirectoryConfig)
	if err != nil {
		return nil, err
	}
	cfg.DirectoryConfig = dir.cfg // with its defaults
	if cfg.PasskeySignIns == (throttle.Limits{}) {
		cfg.PasskeySignIns = DefaultPasskeySignIns()
	}
	if err := cfg.PasskeySignIns.Validate(); err != nil {
		return nil, fmt.Errorf("idp: PasskeySignIns: %w", err)
	}
	p := &Provider{cfg: cfg, dir: dir, now: dir.now, log: dir.log}
	p.initBrowser()
	if p.rp, err = newRelyingParty(cfg.Issuer); err != nil {
		return nil, err
	}
	p.passkeyStarts = throttle.New(cfg.PasskeySignIns, 1)
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	p.remote = newRemoteKeys(hc)
	if err := p.newVerifiers(); err != nil {
		return nil, err
	}
	return p, nil
}

// Directory is the provider's directory of clients and users.
func (p *Provider) Directory() *Directory { return p.dir }

// Issuer is the "iss" of every token.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// TokenEndpoint is the URL of POST /token, an acceptable "aud" of client assertions.
func (p *Provider) TokenEndpoint() string { return p.cfg.Issuer + "/token" }

// SignupEnabled reports whether POST /users is open.
func (p *Provider) SignupEnabled() bool { return p.cfg.Signup }

// Error is an OAuth 2.0 error (RFC 6749 §5.2): a code, a description for
// people, and the HTTP status to answer with.
type Error struct {
	Code        string
	Description string
	Status      int
	RetryAfter  time.Duration // for 429
	cause       error
}

func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// Unwrap exposes the underlying cause for errors.Is.
func (e *Error) Unwrap() error { return e.cause }

func oauthErr(status int, code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...), Status: status}
}

// The RFC 6749 error codes, with their usual statuses.
func invalidRequest(f string, a ...any) *Error {
	return oauthErr(http.StatusBadRequest, "invalid_request", f, a...)
}
func invalidClient(f string, a ...any) *Error {
	return oauthErr(http.StatusUnauthorized, "invalid_client", f, a...)
}
func invalidGrant(f string, a ...any) *Error {
	return oauthErr(http.StatusBadRequest, "invalid_grant", f, a...)
}
func unauthorizedClient(f string, a ...any) *Error {
	return oauthErr(http.StatusBadRequest, "unauthorized_client", f, a...)
}
func invalidScope(f string, a ...any) *Error {
	return oauthErr(http.StatusBadRequest, "invalid_scope", f, a...)
}
func serverError(err error) *Error {
	return &Error{Code: "server_error", Description: "internal error", Status: http.StatusInternalServerError, cause: err}
}

// ErrThrottled marks a refusal because of too many failed attempts.
var ErrThrottled = errors.New("too many failed attempts")

// ErrInvalidCredentials is the one answer to a wrong username or a wrong
// password: callers cannot tell them apart.
var ErrInvalidCredentials = errors.New("invalid username or password")
