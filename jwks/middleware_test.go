package jwks_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/keygate/keygate/jwks"
)

// whoami answers 200 with the subject and the body it could still read.
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := jwks.ClaimsFromContext(r.Context())
	if !ok {
		http.Error(w, "no claims", http.StatusInternalServerError)
		return
	}
	body, _ := io.ReadAll(r.Body)
	_, _ = io.WriteString(w, c.Subject+"|"+string(body))
})

type mwCase struct {
	name       string
	opts       []jwks.MiddlewareOption
	req        func() *http.Request
	wantStatus int
	wantAuth   string // WWW-Authenticate, exactly
	wantError  string // "error" in the JSON body
	wantBody   string // for 200
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
		{name: "no token, realm", opts: []jwks.MiddlewareOption{jwks.WithRealm("api")}, req: get(""),
			wantStatus: 401, wantAuth: `Bearer realm="api"`, wantError: "unauthorized"},
		{name: "Basic credentials only", req: get("Basic dXNlcjpwYXNz"), wantStatus: 401, wantAuth: `Bearer`, wantError: "unauthorized"},
		{name: "Bearer without token", req: get("Bearer "), wantStatus: 400,
			wantAuth:  `Bearer error="invalid_request", error_description="the Authorization header must be 'Bearer <token>'"`,
			wantError: "invalid_request"},
		{name: "expired", req: get("Bearer " + expired), wantStatus: 401,
			wantAuth: `Bearer error="invalid_token", error_description="token has expired"`, wantError: "invalid_token"},
		{name: "garbage", opts: []jwks.MiddlewareOption{jwks.WithRealm("api")}, req: get("Bearer abc"), wantStatus: 401,
			wantAuth: `Bearer realm="api", error="invalid_token", error_description="token is malformed"`, wantError: "invalid_token"},
		{name: "insufficient scope", opts: []jwks.MiddlewareOption{jwks.RequireScopes("read", "admin")}, req: get("Bearer " + valid),
			wantStatus: 403, wantAuth: `Bearer error="insufficient_scope", error_description="token lacks a required scope", scope="read admin"`,
			wantError: "insufficient_scope"},
		{name: "valid", req: get("Bearer " + valid), wantStatus: 200, wantBody: "user-42|"},
		{name: "valid, scheme case", req: get("bearer  " + valid), wantStatus: 200, wantBody: "user-42|"},
		{name: "valid with scopes", opts: []jwks.MiddlewareOption{jwks.RequireScopes("read", "write")}, req: get("Bearer " + valid),
			wantStatus: 200, wantBody: "user-42|"},
		{name: "JWT scheme", req: get("JWT " + valid), wantStatus: 200, wantBody: "user-42|"},
		{name: "cookie", opts: []jwks.MiddlewareOption{jwks.FromCookie("at")}, req: func() *http.Request {
			r := get("")()
			r.AddCookie(&http.Cookie{Name: "at", Value: valid})
			return r
		}, wantStatus: 200, wantBody: "user-42|"},
		{name: "cookie not enabled", req: func() *http.Request {
			r := get("")()
			r.AddCookie(&http.Cookie{Name: "at", Value: valid})
			return r
		}, wantStatus: 401, wantAuth: "Bearer", wantError: "unauthorized"},
		{name: "header wins over cookie", opts: []jwks.MiddlewareOption{jwks.FromCookie("at")}, req: func() *http.Request {
			r := get("Bearer " + expired)()
			r.AddCookie(&http.Cookie{Name: "at", Value: valid})
			return r
		}, wantStatus: 401, wantAuth: `Bearer error="invalid_token", error_description="token has expired"`, wantError: "invalid_token"},
		{name: "form", opts: []jwks.MiddlewareOption{jwks.FromForm("access_token")}, req: func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/res", strings.NewReader(url.Values{"access_token": {valid}, "x": {"1"}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, wantStatus: 200, wantBody: "user-42|"},
		{name: "form field in the query is ignored", opts: []jwks.MiddlewareOption{jwks.FromForm("access_token")}, req: func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/res?access_token="+valid, nil)
		}, wantStatus: 401, wantAuth: "Bearer", wantError: "unauthorized"},
		{name: "application/jwt body", opts: []jwks.MiddlewareOption{jwks.FromJWTBody()}, req: func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/res", strings.NewReader(valid+"\n"))
			r.Header.Set("Content-Type", "application/jwt; charset=utf-8")
			return r
		}, wantStatus: 200, wantBody: "user-42|" + valid + "\n"},
		{name: "application/jwt body too large", opts: []jwks.MiddlewareOption{jwks.FromJWTBody()}, req: func() *http.Request {
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
	ti := newTestIssuer(t, 5*time.Minute, 0)
	clk := newFakeClock()
	v := newTestVerifier(t, ti, clk)
	for _, tc := range middlewareCases(t, ti, clk) {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			jwks.Middleware(v, tc.opts...)(whoami).ServeHTTP(rec, tc.req())
			checkResponse(t, tc, rec.Result())
		})
	}
}

func TestEchoMiddleware(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t, 5*time.Minute, 0)
	clk := newFakeClock()
	v := newTestVerifier(t, ti, clk)
	for _, tc := range middlewareCases(t, ti, clk) {
		t.Run(tc.name, func(t *testing.T) {
			e := echo.New()
			e.Any("/res", func(c echo.Context) error {
				fromCtx, ok := jwks.ClaimsFromContext(c.Request().Context())
				fromEcho, ok2 := c.Get(jwks.EchoClaimsKey).(*jwks.Claims)
				if !ok || !ok2 || fromCtx != fromEcho {
					return c.String(http.StatusInternalServerError, "claims missing")
				}
				body, _ := io.ReadAll(c.Request().Body)
				return c.String(http.StatusOK, fromEcho.Subject+"|"+string(body))
			}, jwks.EchoMiddleware(v, tc.opts...))
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, tc.req())
			res := rec.Result()
			if tc.wantStatus == 200 {
				res.Header.Set("Content-Type", "application/json") // echo's text/plain is fine
			}
			checkResponse(t, tc, res)
		})
	}
}

func TestMiddlewareVerifierScopes(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t, 5*time.Minute, 0)
	clk := newFakeClock()
	v := newTestVerifier(t, ti, clk, jwks.WithRequiredScopes("admin"))
	r := httptest.NewRequest(http.MethodGet, "/res", nil)
	r.Header.Set("Authorization", "Bearer "+accessToken(t, ti, 0, clk.Now()))
	rec := httptest.NewRecorder()
	jwks.Middleware(v, jwks.RequireScopes("read"))(whoami).ServeHTTP(rec, r)
	if rec.Code != 403 || rec.Header().Get("WWW-Authenticate") != `Bearer error="insufficient_scope", error_description="token lacks a required scope", scope="admin read"` {
		t.Errorf("%d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}
