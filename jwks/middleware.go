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
	"strings"
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
}

type middleware struct {
	v       TokenVerifier
	scopes  []string
	realm   string
	sources []func(*http.Request) (string, *authError)
	logger  *slog.Logger
	vScopes []string // the verifier's own required scopes, for the challenge
	refused func(http.ResponseWriter, *http.Request, int, error)
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
}

func newMiddleware(v TokenVerifier, mc MiddlewareConfig) *middleware {
	if v == nil || v == (*Verifier)(nil) || v == (*ClientKeyVerifier)(nil) {
		panic("jwks: middleware needs a verifier, got nil") // fail at startup, not per request
	}
	m := &middleware{v: v, scopes: slices.Clone(mc.Scopes), realm: mc.Realm, logger: slog.Default(),
		refused: mc.OnRefusal}
	if c, ok := v.(configured); ok {
		m.logger, m.vScopes = c.config().logger, c.config().requiredScopes
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
// For Echo, use package jwks/echojwks, which wraps this.
func Middleware(v TokenVerifier, mc MiddlewareConfig) func(http.Handler) http.Handler {
	m := newMiddleware(v, mc)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ae := m.authenticate(r)
			if ae != nil {
				m.refuse(w, r, ae)
				return
			}
			next.ServeHTTP(w, r.WithContext(ContextWithClaims(r.Context(), c)))
		})
	}
}

func (m *middleware) authenticate(r *http.Request) (*Claims, *authError) {
	token, ae := m.token(r)
	if ae != nil {
		return nil, ae
	}
	c, err := m.v.Verify(r.Context(), token)
	if err == nil {
		if missing := c.missingScopes(m.scopes); len(missing) > 0 {
			err = errorf(ErrInsufficientScope, "missing %q", missing)
		}
	}
	if err != nil {
		m.logger.Debug("jwks: request refused", "method", r.Method, "path", r.URL.Path, "err", err)
		if errors.Is(err, ErrInsufficientScope) {
			// scope= lists everything the resource requires (RFC 6750 §3),
			// i.e. the verifier's and the route's requirements.
			scopes := append(append([]string(nil), m.vScopes...), m.scopes...)
			return nil, &authError{status: http.StatusForbidden, code: "insufficient_scope",
				desc: errorDescription(err), scope: strings.Join(scopes, " "), err: err}
		}
		return nil, &authError{status: http.StatusUnauthorized, code: "invalid_token", desc: errorDescription(err), err: err}
	}
	return c, nil
}

// token finds the request's token; ("", nil) means none at all.
func (m *middleware) token(r *http.Request) (string, *authError) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "JWT") {
			tok := strings.TrimSpace(rest)
			if tok == "" || strings.ContainsAny(tok, " \t") {
				return "", &authError{status: http.StatusBadRequest, code: "invalid_request",
					desc: "the Authorization header must be \"Bearer <token>\""}
			}
			return tok, nil
		}
		// Another scheme (Basic...): for this resource, no credentials.
	}
	for _, src := range m.sources {
		if tok, ae := src(r); ae != nil || tok != "" {
			return tok, ae
		}
	}
	return "", &authError{status: http.StatusUnauthorized, desc: "this resource requires an access token"}
}

// refuse writes the RFC 6750 challenge and a JSON body, or lets OnRefusal
// write the response.
func (m *middleware) refuse(w http.ResponseWriter, r *http.Request, ae *authError) {
	var ch strings.Builder
	ch.WriteString("Bearer")
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
	if ae.code != "" {
		attr("error", ae.code)
		attr("error_description", ae.desc)
	}
	if ae.scope != "" {
		attr("scope", ae.scope)
	}
	if m.refused != nil {
		w.Header().Set("WWW-Authenticate", ch.String())
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
	h := w.Header()
	h.Set("WWW-Authenticate", ch.String())
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(ae.status)
	_, _ = w.Write(body)
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
