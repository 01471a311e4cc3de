package jwks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxJWTBodyBytes bounds an application/jwt request body read by
// MiddlewareConfig.JWTBody: a token is a few KiB at most, and reading an unbounded body
// before authentication would let anyone make the server buffer megabytes.
const maxJWTBodyBytes = 16 << 10

type claimsKey struct{}

// ClaimsFromContext returns the claims the middleware verified for the
// request whose context is ctx.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// ContextWithClaims returns ctx carrying c, as the middleware does; handler
// tests use it to skip the middleware.
func ContextWithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// TokenVerifier is what Middleware needs: something that turns a token
// into verified claims or an error wrapping one of the Err* sentinels.
// *Verifier (issuer-signed access tokens) and *ClientKeyVerifier
// (client-signed requests) both satisfy it, so one middleware serves
// either kind of route; tests can pass a stub.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*Claims, error)
}

// MiddlewareConfig configures Middleware; the zero value reads the token
// from the Authorization header only and requires no scope.
type MiddlewareConfig struct {
	// Scopes the route requires, on top of the verifier's: a valid token
	// lacking one gets 403 error="insufficient_scope" with the required
	// scopes in the challenge (RFC 6750 §3.1).
	Scopes []string
	// Realm, if set, is added as realm="..." to WWW-Authenticate.
	Realm string
	// Cookie, if set, names a cookie the token is also read from when the
	// Authorization header carries none. Mind CSRF: browsers attach cookies
	// to cross-site requests; use it with SameSite cookies or safe methods.
	Cookie string
	// FormField, if set, names a field of an x-www-form-urlencoded body the
	// token is also read from (RFC 6750 §2.2 uses "access_token"); never the
	// query string, which ends up in logs.
	FormField string
	// JWTBody also accepts a request whose Content-Type is application/jwt
	// and whose whole body (at most 16 KiB) is the token, as client-signed
	// requests are sent. The body is put back for the handler.
	JWTBody bool
	// OnRefusal, if set, writes the response to a refused request instead
	// of the default JSON body, for APIs whose clients expect their own
	// status codes or error format. The WWW-Authenticate challenge is set
	// before it is called. status is what the default would send; err
	// wraps an Err* sentinel when a token was found but did not verify.
	OnRefusal func(w http.ResponseWriter, r *http.Request, status int, err error)

	// DPoP (RFC 9449): "Authorization: DPoP <token>" with a "DPoP: <proof>"
	// header is always accepted; see Middleware. The settings below only
	// tune it.

	// RequireDPoP refuses tokens presented any other way (Bearer, JWT,
	// cookie, form, body), so that only key-bound tokens get through.
	// Default: bearer tokens without cnf.jkt keep working.
	RequireDPoP bool
	// ExternalURL is the scheme://host[:port] (and path prefix, if a proxy
	// strips one) clients address this server by, e.g.
	// "https://api.example.com"; a proof's htu must be it followed by the
	// request's path. Set it behind a reverse proxy or TLS terminator.
	// Default: the scheme of this connection (https when it is TLS) and the
	// Host header. X-Forwarded-* headers are never consulted: anyone can
	// send them.
	ExternalURL string
	// DPoPAlgorithms accepted in proofs. Default: DefaultDPoPAlgorithms().
	DPoPAlgorithms []string
	// DPoPWindow is how far a proof's iat may be from now, either way, and
	// so how long its jti is remembered. Default: DefaultDPoPWindow (60 s).
	DPoPWindow time.Duration
	// DPoPReplayCacheSize is the most proofs remembered at once against
	// replay; when that many are live, DPoP requests get 503 with
	// Retry-After until the oldest expire (evicting one instead would let
	// a flood make room for a replay). Each middleware value has its own
	// cache, and a proof names its URL, so a proof can only be replayed
	// against another replica of the same route. Default:
	// DefaultDPoPReplayCacheSize.
	DPoPReplayCacheSize int
	// DPoPNonceSecret, when set (at least 32 bytes), makes proofs carry a
	// server nonce (RFC 9449 §9), so that a proof cannot be made ahead of
	// time even by a thief holding the client's key. The nonce is an HMAC
	// of the current time slot under this secret: replicas given the same
	// secret agree without sharing state. A proof without the nonce of
	// this slot or the previous one gets 401 with "DPoP
	// error=use_dpop_nonce" and a DPoP-Nonce header to retry with; every
	// answer to a DPoP request carries the current DPoP-Nonce.
	DPoPNonceSecret []byte
	// DPoPNonceLifetime is the length of a nonce's time slot; a nonce
	// stays good for one to two of them. Default: 5 minutes.
	DPoPNonceLifetime time.Duration
}

type middleware struct {
	v       TokenVerifier
	scopes  []string
	realm   string
	sources []func(*http.Request) (string, *authError)
	logger  *slog.Logger
	vScopes []string // the verifier's own required scopes, for the challenge
	refused func(http.ResponseWriter, *http.Request, int, error)
	now     func() time.Time
	dpop    dpopSettings
}

func fromCookie(name string) func(*http.Request) (string, *authError) {
	return func(r *http.Request) (string, *authError) {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return c.Value, nil
		}
		return "", nil
	}
}

func fromForm(field string) func(*http.Request) (string, *authError) {
	return func(r *http.Request) (string, *authError) {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "application/x-www-form-urlencoded" || r.Method == http.MethodGet {
			return "", nil
		}
		return r.PostFormValue(field), nil
	}
}

func fromJWTBody(r *http.Request) (string, *authError) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/jwt" || r.Body == nil {
		return "", nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJWTBodyBytes+1))
	r.Body.Close()
	if err != nil {
		return "", &authError{status: http.StatusBadRequest, code: "invalid_request", desc: "the request body could not be read"}
	}
	if len(body) > maxJWTBodyBytes {
		return "", &authError{status: http.StatusBadRequest, code: "invalid_request", desc: "the application/jwt body is larger than a token can be"}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return strings.TrimSpace(string(body)), nil
}

// configured is implemented by this package's verifiers, whose logger and
// required scopes the middleware reuses.
type configured interface{ config() *verifierConfig }

func (v *Verifier) config() *verifierConfig           { return v.cfg }
func (cv *ClientKeyVerifier) config() *verifierConfig { return cv.cfg }

// authError is a refusal: status, RFC 6750 error code ("" for a request
// without credentials), a description safe to send, and the verification
// error if a token was refused.
type authError struct {
	status int
	code   string
	desc   string
	scope  string
	err    error
	dpop   bool // the error is about DPoP credentials: it goes on the DPoP challenge
}

func newMiddleware(v TokenVerifier, mc MiddlewareConfig) *middleware {
	if v == nil || v == (*Verifier)(nil) || v == (*ClientKeyVerifier)(nil) {
		panic("jwks: middleware needs a verifier, got nil") // fail at startup, not per request
	}
	m := &middleware{v: v, scopes: slices.Clone(mc.Scopes), realm: mc.Realm, logger: slog.Default(),
		refused: mc.OnRefusal, now: time.Now, dpop: newDPoPSettings(mc)}
	if c, ok := v.(configured); ok {
		m.logger, m.vScopes, m.now = c.config().logger, c.config().requiredScopes, c.config().now
	}
	if mc.Cookie != "" {
		m.sources = append(m.sources, fromCookie(mc.Cookie))
	}
	if mc.FormField != "" {
		m.sources = append(m.sources, fromForm(mc.FormField))
	}
	if mc.JWTBody {
		m.sources = append(m.sources, fromJWTBody)
	}
	return m
}

// Middleware returns net/http middleware that lets a request through only
// with a valid access token, and puts its claims in the request context
// (ClaimsFromContext).
//
// The token is read from "Authorization: Bearer <token>" (or the scheme
// "JWT", which older Keygate clients send), then from the cookie, the form
// field and the application/jwt body, as mc enables them; the first found
// is used. Refusals follow RFC 6750 §3:
//
//   - no token: 401, "WWW-Authenticate: Bearer" without an error code (the
//     client may simply not have known authentication was needed);
//   - a malformed Authorization header: 400, error="invalid_request";
//   - a token that does not verify: 401, error="invalid_token" and an
//     error_description such as "token has expired";
//   - a valid token lacking a required scope: 403,
//     error="insufficient_scope", scope="<required scopes>".
//
// Each refusal also has a JSON body {"error": ..., "error_description": ...}
// and Cache-Control: no-store.
//
// DPoP (RFC 9449): "Authorization: DPoP <token>" with one "DPoP: <proof>"
// header is accepted when the token is bound to a key (cnf.jkt, in
// Claims.JKT) and the proof is signed by that key, for this request's
// method and URL (see MiddlewareConfig.ExternalURL), carries the token's
// hash (ath), was issued within MiddlewareConfig.DPoPWindow and has not been
// seen before (a replay cache with a hard bound, DPoPReplayCacheSize). A
// bound token presented any other way is refused, as is an unbound one
// under the DPoP scheme; with RequireDPoP, only DPoP is accepted. Every
// refusal carries a "DPoP algs=..." challenge beside the Bearer one (RFC
// 9449 §7.1), the error on the challenge of the scheme the request used,
// which comes first: error="invalid_dpop_proof" for a bad proof,
// "invalid_token" for a bad token, "use_dpop_nonce" for a proof without the
// current server nonce when MiddlewareConfig.DPoPNonceSecret is set. When
// the replay cache is full of live proofs, DPoP requests get 503 with
// Retry-After.
//
// For Echo, use package jwks/echojwks, which wraps this.
func Middleware(v TokenVerifier, mc MiddlewareConfig) func(http.Handler) http.Handler {
	m := newMiddleware(v, mc)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ae := m.authenticate(r)
			m.dpop.sendNonce(w, r, m.now())
			if ae != nil {
				m.refuse(w, r, ae)
				return
			}
			next.ServeHTTP(w, r.WithContext(ContextWithClaims(r.Context(), c)))
		})
	}
}

func (m *middleware) authenticate(r *http.Request) (*Claims, *authError) {
	token, presentedDPoP, ae := m.token(r)
	if ae != nil {
		return nil, ae
	}
	c, err := m.v.Verify(r.Context(), token)
	if err != nil {
		return nil, m.tokenRefused(r, err, presentedDPoP)
	}
	// The binding comes before the scopes: without its key, a bound token
	// says nothing, not even which scopes it lacks.
	if ae := m.dpop.bind(r, token, c, presentedDPoP, m.now()); ae != nil {
		m.logger.Debug("jwks: request refused", "method", r.Method, "path", r.URL.Path, "err", ae.err)
		return nil, ae
	}
	if missing := c.missingScopes(m.scopes); len(missing) > 0 {
		return nil, m.tokenRefused(r, errorf(ErrInsufficientScope, "missing %q", missing), presentedDPoP)
	}
	return c, nil
}

// tokenRefused is the refusal of a token that did not verify or lacks a
// scope.
func (m *middleware) tokenRefused(r *http.Request, err error, presentedDPoP bool) *authError {
	m.logger.Debug("jwks: request refused", "method", r.Method, "path", r.URL.Path, "err", err)
	if errors.Is(err, ErrInsufficientScope) {
		// scope= lists everything the resource requires (RFC 6750 §3),
		// i.e. the verifier's and the route's requirements.
		scopes := append(append([]string(nil), m.vScopes...), m.scopes...)
		return &authError{status: http.StatusForbidden, code: "insufficient_scope",
			desc: errorDescription(err), scope: strings.Join(scopes, " "), err: err, dpop: presentedDPoP}
	}
	return &authError{status: http.StatusUnauthorized, code: "invalid_token", desc: errorDescription(err), err: err, dpop: presentedDPoP}
}

// token finds the request's token and whether it came under the DPoP
// scheme; ("", false, nil) means none at all.
func (m *middleware) token(r *http.Request) (string, bool, *authError) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		dpop := strings.EqualFold(scheme, "DPoP")
		bearer := strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "JWT")
		if dpop || (bearer && !m.dpop.required) {
			tok := strings.TrimSpace(rest)
			if tok == "" || strings.ContainsAny(tok, " \t") {
				want := "Bearer"
				if dpop {
					want = "DPoP"
				}
				return "", dpop, &authError{status: http.StatusBadRequest, code: "invalid_request", dpop: dpop,
					desc: "the Authorization header must be \"" + want + " <token>\""}
			}
			return tok, dpop, nil
		}
		// Another scheme (Basic...): for this resource, no credentials.
	}
	if m.dpop.required {
		return "", false, &authError{status: http.StatusUnauthorized, desc: "this resource requires a DPoP-bound access token"}
	}
	for _, src := range m.sources {
		if tok, ae := src(r); ae != nil || tok != "" {
			return tok, false, ae
		}
	}
	return "", false, &authError{status: http.StatusUnauthorized, desc: "this resource requires an access token"}
}

// refuse writes the challenges (RFC 6750 §3, RFC 9449 §7.1) and a JSON body,
// or lets OnRefusal write the response.
func (m *middleware) refuse(w http.ResponseWriter, r *http.Request, ae *authError) {
	h := w.Header()
	if ae.status == http.StatusServiceUnavailable {
		// Not an authentication failure: the client should retry as is.
		h.Set("Retry-After", strconv.Itoa(int(m.dpop.window.Seconds())))
	} else {
		for _, c := range m.challenges(ae) {
			h.Add("WWW-Authenticate", c)
		}
	}
	if m.refused != nil {
		err := ae.err
		if err == nil {
			err = errors.New(ae.desc)
		}
		m.refused(w, r, ae.status, err)
		return
	}
	code := ae.code
	if code == "" {
		code = "unauthorized"
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, ae.desc})
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(ae.status)
	_, _ = w.Write(body)
}

// challenges are the WWW-Authenticate values for a refusal: a Bearer
// challenge unless DPoP is required, and a DPoP challenge with the accepted
// proof algorithms. The error goes on the challenge of the scheme the
// request used, which comes first (so a Bearer client reading one header
// sees its own).
func (m *middleware) challenges(ae *authError) []string {
	dpop := m.challenge("DPoP", ae, ae.dpop)
	switch {
	case m.dpop.required:
		return []string{dpop}
	case ae.dpop:
		return []string{dpop, m.challenge("Bearer", ae, false)}
	}
	return []string{m.challenge("Bearer", ae, true), dpop}
}

// challenge is one challenge for scheme, with the refusal's error if
// withError.
func (m *middleware) challenge(scheme string, ae *authError, withError bool) string {
	var ch strings.Builder
	ch.WriteString(scheme)
	sep := " "
	attr := func(name, value string) {
		ch.WriteString(sep)
		ch.WriteString(name)
		ch.WriteString(`="`)
		ch.WriteString(challengeValue(value))
		ch.WriteString(`"`)
		sep = ", "
	}
	if m.realm != "" {
		attr("realm", m.realm)
	}
	if withError && ae.code != "" {
		attr("error", ae.code)
		attr("error_description", ae.desc)
	}
	if withError && ae.scope != "" {
		attr("scope", ae.scope)
	}
	if scheme == "DPoP" {
		attr("algs", m.dpop.algs)
	}
	return ch.String()
}

// challengeValue makes s fit an RFC 6750 attribute value, which allows
// printable ASCII except the double quote and the backslash (§3,
// error-description), so that the quoting cannot be broken out of: a double
// quote becomes a single quote, a backslash a slash, and other bytes
// outside the range are dropped.
func challengeValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			b.WriteByte('\'')
		case c == '\\':
			b.WriteByte('/')
		case c >= 0x20 && c <= 0x7e:
			b.WriteByte(c)
		}
	}
	return b.String()
}
