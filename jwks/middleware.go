package jwks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// EchoClaimsKey is the echo.Context key under which EchoMiddleware stores
// the verified *Claims (c.Get(EchoClaimsKey)).
const EchoClaimsKey = "keygate.claims"

// maxJWTBodyBytes bounds an application/jwt request body read by
// FromJWTBody: a token is a few KiB at most, and reading an unbounded body
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

// MiddlewareOption configures Middleware and EchoMiddleware.
type MiddlewareOption func(*middleware)

// RequireScopes makes the route require every one of scopes; a valid token
// lacking one gets 403 with error="insufficient_scope" and the required
// scopes in the scope attribute (RFC 6750 §3.1).
func RequireScopes(scopes ...string) MiddlewareOption {
	return func(m *middleware) { m.scopes = append(m.scopes, scopes...) }
}

// WithRealm adds realm="..." to WWW-Authenticate challenges.
func WithRealm(realm string) MiddlewareOption {
	return func(m *middleware) { m.realm = realm }
}

// FromCookie also accepts the token from the named cookie, when the request
// has no Authorization header carrying one. Mind CSRF: a browser attaches
// cookies to cross-site requests, so use it only with SameSite cookies or
// for safe methods.
func FromCookie(name string) MiddlewareOption {
	return func(m *middleware) {
		m.sources = append(m.sources, func(r *http.Request) (string, *authError) {
			if c, err := r.Cookie(name); err == nil && c.Value != "" {
				return c.Value, nil
			}
			return "", nil
		})
	}
}

// FromForm also accepts the token from the named field of an
// application/x-www-form-urlencoded request body (RFC 6750 §2.2 uses
// "access_token"); never from the query string, which ends up in logs.
func FromForm(field string) MiddlewareOption {
	return func(m *middleware) {
		m.sources = append(m.sources, func(r *http.Request) (string, *authError) {
			mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if mt != "application/x-www-form-urlencoded" || r.Method == http.MethodGet {
				return "", nil
			}
			return r.PostFormValue(field), nil
		})
	}
}

// FromJWTBody also accepts a request whose Content-Type is application/jwt
// and whose whole body (at most 16 KiB) is the token, as Keygate's
// client-facing endpoints do. The body is put back for the handler.
func FromJWTBody() MiddlewareOption {
	return func(m *middleware) {
		m.sources = append(m.sources, func(r *http.Request) (string, *authError) {
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
		})
	}
}

type middleware struct {
	v       *Verifier
	scopes  []string
	realm   string
	sources []func(*http.Request) (string, *authError)
}

// authError is a refusal: status, RFC 6750 error code ("" for a request
// without credentials) and a description safe to send.
type authError struct {
	status int
	code   string
	desc   string
	scope  string
}

func newMiddleware(v *Verifier, opts []MiddlewareOption) *middleware {
	if v == nil {
		panic("jwks: middleware needs a Verifier, got nil") // fail at startup, not per request
	}
	m := &middleware{v: v}
	for _, o := range opts {
		if o != nil {
			o(m)
		}
	}
	return m
}

// Middleware returns net/http middleware that lets a request through only
// with a valid access token, and puts its claims in the request context
// (ClaimsFromContext).
//
// The token is read from "Authorization: Bearer <token>" (or the scheme
// "JWT", which older Keygate clients send), then from the sources given as
// options, in order; the first found is used. Refusals follow RFC 6750 §3:
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
func Middleware(v *Verifier, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	m := newMiddleware(v, opts)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ae := m.authenticate(r)
			if ae != nil {
				m.refuse(w, ae)
				return
			}
			next.ServeHTTP(w, r.WithContext(ContextWithClaims(r.Context(), c)))
		})
	}
}

// EchoMiddleware is Middleware for Echo. The claims are in the request
// context (ClaimsFromContext(c.Request().Context())) and under
// EchoClaimsKey (c.Get(EchoClaimsKey).(*jwks.Claims)).
func EchoMiddleware(v *Verifier, opts ...MiddlewareOption) echo.MiddlewareFunc {
	m := newMiddleware(v, opts)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			claims, ae := m.authenticate(c.Request())
			if ae != nil {
				// Written directly rather than returned as an echo.HTTPError
				// so that the challenge header and body are the same as with
				// net/http, whatever the application's error handler does.
				m.refuse(c.Response(), ae)
				return nil
			}
			c.SetRequest(c.Request().WithContext(ContextWithClaims(c.Request().Context(), claims)))
			c.Set(EchoClaimsKey, claims)
			return next(c)
		}
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
		m.v.cfg.logger.Debug("jwks: request refused", "method", r.Method, "path", r.URL.Path, "err", err)
		if errors.Is(err, ErrInsufficientScope) {
			// scope= lists everything the resource requires (RFC 6750 §3),
			// i.e. the verifier's and the route's requirements.
			scopes := append(append([]string(nil), m.v.cfg.requiredScopes...), m.scopes...)
			return nil, &authError{status: http.StatusForbidden, code: "insufficient_scope",
				desc: errorDescription(err), scope: strings.Join(scopes, " ")}
		}
		return nil, &authError{status: http.StatusUnauthorized, code: "invalid_token", desc: errorDescription(err)}
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

// refuse writes the RFC 6750 challenge and a JSON body.
func (m *middleware) refuse(w http.ResponseWriter, ae *authError) {
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
