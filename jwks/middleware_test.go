package jwks_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/keygate/keygate/jwks"
)

// whoami answers 200 with the subject and the body it could still read, and
// the key the token is bound to in the header Bound-To.
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := jwks.ClaimsFromContext(r.Context())
	if !ok {
		http.Error(w, "no claims", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Bound-To", c.JKT)
	body, _ := io.ReadAll(r.Body)
	_, _ = io.WriteString(w, c.Subject+"|"+string(body))
})

type mwCase struct {
	name       string
	mc         jwks.MiddlewareConfig
	req        func() *http.Request
	wantStatus int
	wantAuth   string // WWW-Authenticate, exactly
	wantError  string // "error" in the JSON body
	wantBody   string // for 200
}

// middlewareSetup returns a verifier on a fresh test issuer and the
// middleware cases for it.
func middlewareSetup(t *testing.T) (*jwks.Verifier, []mwCase) {
	ti := newTestIssuer(t, 5*time.Minute, 0)
	clk := newFakeClock()
	return newTestVerifier(t, ti, clk), middlewareCases(t, ti, clk)
}

// runMiddlewareCases runs each of middlewareCases as a subtest: serve answers
// the case's request through the middleware under test, built with v and the
// case's config, and checkResponse checks the answer against the case.
func runMiddlewareCases(t *testing.T, serve func(v *jwks.Verifier, tc mwCase) *http.Response) {
	t.Helper()
	v, cases := middlewareSetup(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkResponse(t, tc, serve(v, tc))
		})
	}
}

func middlewareCases(t *testing.T, ti *testIssuer, clk *fakeClock) []mwCase {
	now := clk.Now()
	valid := accessToken(t, ti, 0, now)
	expiredClaims := claims(ti, now)
	expiredClaims["exp"] = now.Add(-time.Hour).Unix()
	expired := signJWT(t, jwa.RS256, vkeys(t)[0], header(kidOf(0)), expiredClaims)
	get := func(auth string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/res", nil)
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			return r
		}
	}
	return []mwCase{
		{name: "no token", req: get(""), wantStatus: 401, wantAuth: `Bearer`, wantError: "unauthorized"},
		{name: "no token, realm", mc: jwks.MiddlewareConfig{Realm: "api"}, req: get(""),
			wantStatus: 401, wantAuth: `Bearer realm="api"`, wantError: "unauthorized"},
		{name: "Basic credentials only", req: get("Basic dXNlcjpwYXNz"), wantStatus: 401, wantAuth: `Bearer`, wantError: "unauthorized"},
		{name: "Bearer without token", req: get("Bearer "), wantStatus: 400,
			wantAuth:  `Bearer error="invalid_request", error_description="the Authorization header must be 'Bearer <token>'"`,
			wantError: "invalid_request"},
		{name: "expired", req: get("Bearer " + expired), wantStatus: 401,
			wantAuth: `Bearer error="invalid_token", error_description="token has expired"`, wantError: "invalid_token"},
		{name: "garbage", mc: jwks.MiddlewareConfig{Realm: "api"}, req: get("Bearer abc"), wantStatus: 401,
			wantAuth: `Bearer realm="api", error="invalid_token", error_description="token is malformed"`, wantError: "invalid_token"},
		{name: "insufficient scope", mc: jwks.MiddlewareConfig{Scopes: []string{"read", "admin"}}, req: get("Bearer " + valid),
			wantStatus: 403, wantAuth: `Bearer error="insufficient_scope", error_description="token lacks a required scope", scope="read admin"`,
			wantError: "insufficient_scope"},
		{name: "valid", req: get("Bearer " + valid), wantStatus: 200, wantBody: "user-42|"},
		{name: "valid, scheme case", req: get("bearer  " + valid), wantStatus: 200, wantBody: "user-42|"},
		{name: "valid with scopes", mc: jwks.MiddlewareConfig{Scopes: []string{"read", "write"}}, req: get("Bearer " + valid),
			wantStatus: 200, wantBody: "user-42|"},
		{name: "JWT scheme", req: get("JWT " + valid), wantStatus: 200, wantBody: "user-42|"},
		{name: "cookie", mc: jwks.MiddlewareConfig{Cookie: "at"}, req: func() *http.Request {
			r := get("")()
			r.AddCookie(&http.Cookie{Name: "at", Value: valid})
			return r
		}, wantStatus: 200, wantBody: "user-42|"},
		{name: "cookie not enabled", req: func() *http.Request {
			r := get("")()
			r.AddCookie(&http.Cookie{Name: "at", Value: valid})
			return r
		}, wantStatus: 401, wantAuth: "Bearer", wantError: "unauthorized"},
		{name: "header wins over cookie", mc: jwks.MiddlewareConfig{Cookie: "at"}, req: func() *http.Request {
			r := get("Bearer " + expired)()
			r.AddCookie(&http.Cookie{Name: "at", Value: valid})
			return r
		}, wantStatus: 401, wantAuth: `Bearer error="invalid_token", error_description="token has expired"`, wantError: "invalid_token"},
		{name: "form", mc: jwks.MiddlewareConfig{FormField: "access_token"}, req: func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/res", strings.NewReader(url.Values{"access_token": {valid}, "x": {"1"}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, wantStatus: 200, wantBody: "user-42|"},
		{name: "form field in the query is ignored", mc: jwks.MiddlewareConfig{FormField: "access_token"}, req: func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/res?access_token="+valid, nil)
		}, wantStatus: 401, wantAuth: "Bearer", wantError: "unauthorized"},
		{name: "application/jwt body", mc: jwks.MiddlewareConfig{JWTBody: true}, req: func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/res", strings.NewReader(valid+"\n"))
			r.Header.Set("Content-Type", "application/jwt; charset=utf-8")
			return r
		}, wantStatus: 200, wantBody: "user-42|" + valid + "\n"},
		{name: "application/jwt body too large", mc: jwks.MiddlewareConfig{JWTBody: true}, req: func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/res", strings.NewReader(strings.Repeat("a", 17<<10)))
			r.Header.Set("Content-Type", "application/jwt")
			return r
		}, wantStatus: 400, wantAuth: `Bearer error="invalid_request", error_description="the application/jwt body is larger than a token can be"`,
			wantError: "invalid_request"},
	}
}

func checkResponse(t *testing.T, tc mwCase, res *http.Response) {
	t.Helper()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != tc.wantStatus {
		t.Fatalf("status %d, want %d (body %s)", res.StatusCode, tc.wantStatus, body)
	}
	if tc.wantStatus == 200 {
		if string(body) != tc.wantBody {
			t.Errorf("body %q, want %q", body, tc.wantBody)
		}
		return
	}
	if got := res.Header.Get("WWW-Authenticate"); got != tc.wantAuth {
		t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, tc.wantAuth)
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error != tc.wantError || e.Description == "" {
		t.Errorf("body %s: want error %q with a description", body, tc.wantError)
	}
	if res.Header.Get("Content-Type") != "application/json" || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", res.Header)
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	runMiddlewareCases(t, func(v *jwks.Verifier, tc mwCase) *http.Response {
		rec := httptest.NewRecorder()
		jwks.Middleware(v, tc.mc)(whoami).ServeHTTP(rec, tc.req())
		return rec.Result()
	})
}

func TestMiddlewareVerifierScopes(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t, 5*time.Minute, 0)
	clk := newFakeClock()
	v := newTestVerifier(t, ti, clk, jwks.Config{RequiredScopes: []string{"admin"}})
	r := httptest.NewRequest(http.MethodGet, "/res", nil)
	r.Header.Set("Authorization", "Bearer "+accessToken(t, ti, 0, clk.Now()))
	rec := httptest.NewRecorder()
	jwks.Middleware(v, jwks.MiddlewareConfig{Scopes: []string{"read"}})(whoami).ServeHTTP(rec, r)
	if rec.Code != 403 || rec.Header().Get("WWW-Authenticate") != `Bearer error="insufficient_scope", error_description="token lacks a required scope", scope="admin read"` {
		t.Errorf("%d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}

func TestMiddlewareOnRefusal(t *testing.T) {
	t.Parallel()
	ti, clk, v := newVerified(t, 5*time.Minute, 0)
	var gotStatus int
	var gotErr error
	mw := jwks.Middleware(v, jwks.MiddlewareConfig{OnRefusal: func(w http.ResponseWriter, _ *http.Request, status int, err error) {
		gotStatus, gotErr = status, err
		w.WriteHeader(http.StatusTeapot)
	}})
	r := httptest.NewRequest(http.MethodGet, "/res", nil)
	r.Header.Set("Authorization", "Bearer "+accessToken(t, ti, 0, clk.Now().Add(-time.Hour)))
	rec := httptest.NewRecorder()
	mw(whoami).ServeHTTP(rec, r)
	if rec.Code != http.StatusTeapot || gotStatus != 401 || !errors.Is(gotErr, jwks.ErrExpired) ||
		!strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("expired: %d, hook got %d %v, challenge %q", rec.Code, gotStatus, gotErr, rec.Header().Get("WWW-Authenticate"))
	}
	rec = httptest.NewRecorder()
	mw(whoami).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/res", nil))
	if rec.Code != http.StatusTeapot || gotStatus != 401 || gotErr == nil {
		t.Errorf("no token: %d, hook got %d %v", rec.Code, gotStatus, gotErr)
	}
}
