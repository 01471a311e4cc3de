package jwks_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/keygate/keygate/internal/jwtforge"
	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/jwks"
)

// dpopFixture is a test issuer, a verifier on a fake clock, a client's DPoP
// key and an access token bound to it.
type dpopFixture struct {
	ti    *testIssuer
	clk   *fakeClock
	v     *jwks.Verifier
	key   *jwtforge.DPoPKey
	bound string // access token with cnf.jkt = key.JKT
}

func newDPoPFixture(t *testing.T) *dpopFixture {
	t.Helper()
	ti, clk, v := newVerified(t, 5*time.Minute, 0)
	f := &dpopFixture{ti: ti, clk: clk, v: v, key: jwtforge.NewDPoPKey(t, "ES256", "")}
	f.bound = f.token(t, map[string]any{"cnf": map[string]any{"jkt": f.key.JKT}})
	return f
}

// token is an access token from the issuer with changes to its claims.
func (f *dpopFixture) token(t *testing.T, changes map[string]any) string {
	return signJWT(t, jwa.RS256, vkeys(t)[0], header(kidOf(0)), jwtforge.With(claims(f.ti, f.clk.Now()), changes))
}

// serve starts the middleware with mc in front of whoami on a real
// server, as a resource server runs it.
func (f *dpopFixture) serve(t *testing.T, mc jwks.MiddlewareConfig) *httptest.Server {
	srv := httptest.NewServer(jwks.Middleware(f.v, mc)(whoami))
	t.Cleanup(srv.Close)
	return srv
}

// dpopRequest is what a case sends: method and path on the server, the
// Authorization header, the DPoP headers (from the server's URL), and other
// headers.
type dpopRequest struct {
	method, path string
	auth         func(f *dpopFixture) string
	proofs       func(t *testing.T, f *dpopFixture, srvURL string) []string
	headers      map[string]string
}

func (f *dpopFixture) do(t *testing.T, srv *httptest.Server, dr dpopRequest) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(cmpOr(dr.method, "GET"), srv.URL+cmpOr(dr.path, "/res"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if dr.auth != nil {
		req.Header.Set("Authorization", dr.auth(f))
	}
	if dr.proofs != nil {
		for _, p := range dr.proofs(t, f, srv.URL) {
			req.Header.Add("DPoP", p)
		}
	}
	for k, v := range dr.headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

const defaultAlgs = `algs="ES256 ES384 EdDSA RS256 PS256"`

// TestMiddlewareDPoP presents DPoP-bound and bearer tokens, with genuine and
// forged proofs, to the middleware on a real server.
func TestMiddlewareDPoP(t *testing.T) {
	t.Parallel()
	f := newDPoPFixture(t)
	other := jwtforge.NewDPoPKey(t, "ES256", "")
	now := f.clk.Now()
	dpopAuth := func(f *dpopFixture) string { return "DPoP " + f.bound }
	proof := func(k func(f *dpopFixture) *jwtforge.DPoPKey, method, path string, at time.Time, changes map[string]any) func(*testing.T, *dpopFixture, string) []string {
		return func(t *testing.T, f *dpopFixture, srvURL string) []string {
			return []string{k(f).Forge(t, nil, changes, method, srvURL+path, at, f.bound)}
		}
	}
	mine := func(f *dpopFixture) *jwtforge.DPoPKey { return f.key }
	genuine := proof(mine, "GET", "/res", now, nil)
	bearerTok := func(f *dpopFixture) string { return "Bearer " + accessToken(t, f.ti, 0, now) }
	invalidProof := `DPoP error="invalid_dpop_proof", error_description="DPoP proof is invalid", ` + defaultAlgs
	for _, tc := range []struct {
		name       string
		mc         jwks.MiddlewareConfig
		req        dpopRequest
		wantStatus int
		wantAuth   []string // every WWW-Authenticate, in order
		wantError  string
	}{
		{name: "token and proof", req: dpopRequest{auth: dpopAuth, proofs: genuine}, wantStatus: 200},
		{name: "scheme in lower case, POST", req: dpopRequest{method: "POST", auth: func(f *dpopFixture) string { return "dpop " + f.bound },
			proofs: proof(mine, "POST", "/res", now, nil)}, wantStatus: 200},
		{name: "proof from another key", req: dpopRequest{auth: dpopAuth, proofs: proof(func(*dpopFixture) *jwtforge.DPoPKey { return other }, "GET", "/res", now, nil)},
			wantStatus: 401, wantAuth: []string{invalidProof, "Bearer"}, wantError: "invalid_dpop_proof"},
		{name: "proof for another URL", req: dpopRequest{auth: dpopAuth, proofs: proof(mine, "GET", "/admin", now, nil)},
			wantStatus: 401, wantAuth: []string{invalidProof, "Bearer"}, wantError: "invalid_dpop_proof"},
		{name: "proof for another method", req: dpopRequest{auth: dpopAuth, proofs: proof(mine, "POST", "/res", now, nil)},
			wantStatus: 401, wantAuth: []string{invalidProof, "Bearer"}, wantError: "invalid_dpop_proof"},
		{name: "stale iat", req: dpopRequest{auth: dpopAuth, proofs: proof(mine, "GET", "/res", now.Add(-2*time.Minute), nil)},
			wantStatus: 401, wantAuth: []string{invalidProof, "Bearer"}, wantError: "invalid_dpop_proof"},
		{name: "missing ath", req: dpopRequest{auth: dpopAuth, proofs: proof(mine, "GET", "/res", now, map[string]any{"ath": nil})},
			wantStatus: 401, wantAuth: []string{invalidProof, "Bearer"}, wantError: "invalid_dpop_proof"},
		{name: "ath of another token", req: dpopRequest{auth: dpopAuth, proofs: proof(mine, "GET", "/res", now, map[string]any{"ath": jwks.DPoPAccessTokenHash("x")})},
			wantStatus: 401, wantAuth: []string{invalidProof, "Bearer"}, wantError: "invalid_dpop_proof"},
		{name: "no proof", req: dpopRequest{auth: dpopAuth}, wantStatus: 401, wantError: "invalid_dpop_proof",
			wantAuth: []string{`DPoP error="invalid_dpop_proof", error_description="the request must carry exactly one DPoP header", ` + defaultAlgs, "Bearer"}},
		{name: "two proofs", req: dpopRequest{auth: dpopAuth, proofs: func(t *testing.T, f *dpopFixture, u string) []string {
			return append(genuine(t, f, u), genuine(t, f, u)...)
		}}, wantStatus: 401, wantError: "invalid_dpop_proof",
			wantAuth: []string{`DPoP error="invalid_dpop_proof", error_description="the request must carry exactly one DPoP header", ` + defaultAlgs, "Bearer"}},
		{name: "bound token as Bearer", req: dpopRequest{auth: func(f *dpopFixture) string { return "Bearer " + f.bound }},
			wantStatus: 401, wantError: "invalid_token", wantAuth: []string{
				`Bearer error="invalid_token", error_description="the token is bound to a key: send it as 'Authorization: DPoP' with a DPoP proof"`,
				"DPoP " + defaultAlgs}},
		{name: "bound token as Bearer, with a proof", req: dpopRequest{auth: func(f *dpopFixture) string { return "Bearer " + f.bound }, proofs: genuine},
			wantStatus: 401, wantError: "invalid_token", wantAuth: []string{
				`Bearer error="invalid_token", error_description="the token is bound to a key: send it as 'Authorization: DPoP' with a DPoP proof"`,
				"DPoP " + defaultAlgs}},
		{name: "bound token in a cookie", mc: jwks.MiddlewareConfig{Cookie: "at"}, req: dpopRequest{headers: map[string]string{"Cookie": "at=" + f.bound}},
			wantStatus: 401, wantError: "invalid_token", wantAuth: []string{
				`Bearer error="invalid_token", error_description="the token is bound to a key: send it as 'Authorization: DPoP' with a DPoP proof"`,
				"DPoP " + defaultAlgs}},
		{name: "unbound token under DPoP", req: dpopRequest{auth: func(f *dpopFixture) string { return "DPoP " + accessToken(t, f.ti, 0, now) }, proofs: genuine},
			wantStatus: 401, wantError: "invalid_token", wantAuth: []string{
				`DPoP error="invalid_token", error_description="the token is not bound to a DPoP key (it has no cnf.jkt)", ` + defaultAlgs, "Bearer"}},
		{name: "expired bound token", req: dpopRequest{auth: func(f *dpopFixture) string {
			return "DPoP " + f.token(t, map[string]any{"cnf": map[string]any{"jkt": f.key.JKT}, "exp": now.Add(-time.Hour).Unix()})
		}, proofs: genuine}, wantStatus: 401, wantError: "invalid_token",
			wantAuth: []string{`DPoP error="invalid_token", error_description="token has expired", ` + defaultAlgs, "Bearer"}},
		{name: "DPoP without a token", req: dpopRequest{auth: func(*dpopFixture) string { return "DPoP " }, proofs: genuine},
			wantStatus: 400, wantError: "invalid_request",
			wantAuth: []string{`DPoP error="invalid_request", error_description="the Authorization header must be 'DPoP <token>'", ` + defaultAlgs, "Bearer"}},
		{name: "insufficient scope", mc: jwks.MiddlewareConfig{Scopes: []string{"admin"}}, req: dpopRequest{auth: dpopAuth, proofs: genuine},
			wantStatus: 403, wantError: "insufficient_scope", wantAuth: []string{
				`DPoP error="insufficient_scope", error_description="token lacks a required scope", scope="admin", ` + defaultAlgs, "Bearer"}},
		{name: "insufficient scope, bad proof", mc: jwks.MiddlewareConfig{Scopes: []string{"admin"}},
			req:        dpopRequest{auth: dpopAuth, proofs: proof(mine, "GET", "/other", now, nil)},
			wantStatus: 401, wantAuth: []string{invalidProof, "Bearer"}, wantError: "invalid_dpop_proof"},
		{name: "bearer token still works", req: dpopRequest{auth: bearerTok}, wantStatus: 200},
		{name: "no credentials", req: dpopRequest{}, wantStatus: 401, wantError: "unauthorized", wantAuth: []string{"Bearer", "DPoP " + defaultAlgs}},
		{name: "DPoP required: bearer token", mc: jwks.MiddlewareConfig{RequireDPoP: true, Realm: "api"}, req: dpopRequest{auth: bearerTok},
			wantStatus: 401, wantError: "unauthorized", wantAuth: []string{`DPoP realm="api", ` + defaultAlgs}},
		{name: "DPoP required: bound token and proof", mc: jwks.MiddlewareConfig{RequireDPoP: true}, req: dpopRequest{auth: dpopAuth, proofs: genuine},
			wantStatus: 200},
		{name: "DPoP required: bad proof", mc: jwks.MiddlewareConfig{RequireDPoP: true}, req: dpopRequest{auth: dpopAuth, proofs: proof(mine, "PUT", "/res", now, nil)},
			wantStatus: 401, wantError: "invalid_dpop_proof", wantAuth: []string{invalidProof}},
		{name: "external URL", mc: jwks.MiddlewareConfig{ExternalURL: "https://api.example.com/v1/"}, req: dpopRequest{auth: dpopAuth,
			proofs: func(t *testing.T, f *dpopFixture, _ string) []string {
				return []string{f.key.Proof(t, "GET", "https://api.example.com/v1/res", now, f.bound)}
			}}, wantStatus: 200},
		{name: "external URL: proof for the internal address", mc: jwks.MiddlewareConfig{ExternalURL: "https://api.example.com/v1"},
			req: dpopRequest{auth: dpopAuth, proofs: genuine}, wantStatus: 401, wantError: "invalid_dpop_proof", wantAuth: []string{invalidProof, "Bearer"}},
		{name: "X-Forwarded-* ignored", req: dpopRequest{auth: dpopAuth,
			headers: map[string]string{"X-Forwarded-Host": "api.example.com", "X-Forwarded-Proto": "https"},
			proofs: func(t *testing.T, f *dpopFixture, _ string) []string {
				return []string{f.key.Proof(t, "GET", "https://api.example.com/res", now, f.bound)}
			}}, wantStatus: 401, wantError: "invalid_dpop_proof", wantAuth: []string{invalidProof, "Bearer"}},
		{name: "proof algorithm not accepted", mc: jwks.MiddlewareConfig{DPoPAlgorithms: []string{"EdDSA", "PS256"}},
			req: dpopRequest{auth: dpopAuth, proofs: genuine}, wantStatus: 401, wantError: "invalid_dpop_proof",
			wantAuth: []string{`DPoP error="invalid_dpop_proof", error_description="DPoP proof is invalid", algs="EdDSA PS256"`, "Bearer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := f.do(t, f.serve(t, tc.mc), tc.req)
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", res.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus == 200 {
				if body != "user-42|" {
					t.Fatalf("body %q", body)
				}
				return
			}
			if got := res.Header.Values("WWW-Authenticate"); !slices.Equal(got, tc.wantAuth) {
				t.Errorf("WWW-Authenticate\n got %q\nwant %q", got, tc.wantAuth)
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != tc.wantError {
				t.Errorf("body %s, want error %q", body, tc.wantError)
			}
		})
	}
}

// TestMiddlewareDPoPContext: the handler sees the key the token is bound to.
func TestMiddlewareDPoPContext(t *testing.T) {
	t.Parallel()
	f := newDPoPFixture(t)
	srv := f.serve(t, jwks.MiddlewareConfig{})
	res, body := f.do(t, srv, dpopRequest{auth: func(f *dpopFixture) string { return "DPoP " + f.bound },
		proofs: func(t *testing.T, f *dpopFixture, u string) []string {
			return []string{f.key.Proof(t, "GET", u+"/res", f.clk.Now(), f.bound)}
		}})
	if res.StatusCode != 200 || res.Header.Get("Bound-To") != f.key.JKT {
		t.Fatalf("%d %q, bound to %q, want the key's thumbprint %s", res.StatusCode, body, res.Header.Get("Bound-To"), f.key.JKT)
	}
}

// TestMiddlewareDPoPReplay sends one proof from many goroutines at once:
// exactly one request gets through, and the proof stays refused until it
// has expired.
func TestMiddlewareDPoPReplay(t *testing.T) {
	t.Parallel()
	f := newDPoPFixture(t)
	srv := f.serve(t, jwks.MiddlewareConfig{})
	p := f.key.Proof(t, "GET", srv.URL+"/res", f.clk.Now(), f.bound)
	req := dpopRequest{auth: func(f *dpopFixture) string { return "DPoP " + f.bound },
		proofs: func(*testing.T, *dpopFixture, string) []string { return []string{p} }}
	const n = 32
	statuses := stampede.Run(n, func(int) int {
		res, _ := f.do(t, srv, req)
		return res.StatusCode
	})
	ok, replayed := 0, 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 401:
			replayed++
		}
	}
	if ok != 1 || replayed != n-1 {
		t.Fatalf("%d successes, %d refusals of %d: %v", ok, replayed, n, statuses)
	}
	// Within the window the proof is remembered; past it the proof itself
	// is stale, so forgetting it changes nothing.
	f.clk.Advance(59 * time.Second)
	if res, body := f.do(t, srv, req); res.StatusCode != 401 || !strings.Contains(body, "used before") {
		t.Fatalf("replay after 59s: %d %s", res.StatusCode, body)
	}
	f.clk.Advance(2 * time.Second)
	if res, body := f.do(t, srv, req); res.StatusCode != 401 || !strings.Contains(body, "invalid_dpop_proof") {
		t.Fatalf("replay after 61s: %d %s", res.StatusCode, body)
	}
}

// TestMiddlewareDPoPReplayCacheBound floods a middleware whose replay cache
// holds 8 proofs with distinct proofs from many goroutines: exactly 8 get
// through, the rest get 503 with Retry-After, none of the accepted proofs
// is forgotten (a replay is still refused), and once they expire new
// proofs are accepted again.
func TestMiddlewareDPoPReplayCacheBound(t *testing.T) {
	t.Parallel()
	const size, n = 8, 40
	f := newDPoPFixture(t)
	srv := f.serve(t, jwks.MiddlewareConfig{DPoPReplayCacheSize: size, DPoPWindow: 30 * time.Second})
	auth := func(f *dpopFixture) string { return "DPoP " + f.bound }
	proofs := make([]string, n)
	for i := range proofs {
		proofs[i] = f.key.Proof(t, "GET", srv.URL+"/res", f.clk.Now(), f.bound)
	}
	one := func(p string) dpopRequest {
		return dpopRequest{auth: auth, proofs: func(*testing.T, *dpopFixture, string) []string { return []string{p} }}
	}
	type result struct {
		status     int
		retryAfter string
	}
	results := stampede.Run(n, func(i int) result {
		res, _ := f.do(t, srv, one(proofs[i]))
		return result{res.StatusCode, res.Header.Get("Retry-After")}
	})
	var accepted []string
	for i, r := range results {
		switch {
		case r.status == 200:
			accepted = append(accepted, proofs[i])
		case r.status != 503 || r.retryAfter != "30":
			t.Errorf("proof %d: %+v, want 200 or 503 with Retry-After: 30", i, r)
		}
	}
	if len(accepted) != size {
		t.Fatalf("%d proofs accepted, want exactly %d", len(accepted), size)
	}
	for _, p := range accepted {
		if res, body := f.do(t, srv, one(p)); res.StatusCode != 401 || !strings.Contains(body, "used before") {
			t.Fatalf("replay of an accepted proof while the cache is full: %d %s", res.StatusCode, body)
		}
	}
	f.clk.Advance(31 * time.Second)
	if res, body := f.do(t, srv, one(f.key.Proof(t, "GET", srv.URL+"/res", f.clk.Now(), f.bound))); res.StatusCode != 200 {
		t.Fatalf("after the window: %d %s", res.StatusCode, body)
	}
}

// TestMiddlewareDPoPConfig: bad DPoP settings fail when the middleware is
// built.
func TestMiddlewareDPoPConfig(t *testing.T) {
	t.Parallel()
	_, _, v := newVerified(t, 5*time.Minute, 0)
	for _, tc := range []struct {
		name string
		mc   jwks.MiddlewareConfig
		want string
	}{
		{"relative external URL", jwks.MiddlewareConfig{ExternalURL: "/api"}, "ExternalURL"},
		{"external URL with a query", jwks.MiddlewareConfig{ExternalURL: "https://a.example?x=1"}, "ExternalURL"},
		{"external URL of another scheme", jwks.MiddlewareConfig{ExternalURL: "ftp://a.example"}, "ExternalURL"},
		{"HMAC proofs", jwks.MiddlewareConfig{DPoPAlgorithms: []string{"HS256"}}, `"HS256"`},
		{"no algorithm", jwks.MiddlewareConfig{DPoPAlgorithms: []string{}}, "no algorithm"},
		{"negative window", jwks.MiddlewareConfig{DPoPWindow: -time.Second}, "DPoPWindow"},
		{"negative cache size", jwks.MiddlewareConfig{DPoPReplayCacheSize: -1}, "DPoPReplayCacheSize"},
		{"short nonce secret", jwks.MiddlewareConfig{DPoPNonceSecret: []byte("too short")}, "DPoPNonceSecret"},
		{"nonce lifetime without a secret", jwks.MiddlewareConfig{DPoPNonceLifetime: time.Minute}, "DPoPNonceSecret"},
		{"negative nonce lifetime", jwks.MiddlewareConfig{DPoPNonceSecret: make([]byte, 32), DPoPNonceLifetime: -time.Minute}, "DPoPNonceLifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), tc.want) {
					t.Fatalf("panic %v, want one naming %s", r, tc.want)
				}
			}()
			jwks.Middleware(v, tc.mc)
		})
	}
}

// TestMiddlewareDPoPKeyCache: once a client's proof header has verified,
// the middleware reuses the key parsed from it, and that must not let any
// later proof with the same header skip a check: one signed by another
// key, one for another URL, one for a token bound to another key.
func TestMiddlewareDPoPKeyCache(t *testing.T) {
	t.Parallel()
	f := newDPoPFixture(t)
	srv := f.serve(t, jwks.MiddlewareConfig{})
	other := jwtforge.NewDPoPKey(t, "ES256", "")
	otherBound := f.token(t, map[string]any{"cnf": map[string]any{"jkt": other.JKT}})
	send := func(token, proof string) (int, string) {
		res, body := f.do(t, srv, dpopRequest{auth: func(*dpopFixture) string { return "DPoP " + token },
			proofs: func(*testing.T, *dpopFixture, string) []string { return []string{proof} }})
		return res.StatusCode, body
	}
	now, target := f.clk.Now(), srv.URL+"/res"
	if status, body := send(f.bound, f.key.Proof(t, "GET", target, now, f.bound)); status != 200 {
		t.Fatalf("genuine: %d %s", status, body)
	}
	for _, tc := range []struct {
		name, token, proof string
	}{
		{"same header, signed by another key", f.bound,
			jwtforge.Compact(t, f.key.Header(), f.key.Claims("GET", target, now, f.bound), other.Signer())},
		{"same header, another URL", f.bound, f.key.Proof(t, "GET", srv.URL+"/admin", now, f.bound)},
		{"same header, token bound to another key", otherBound, f.key.Proof(t, "GET", target, now, otherBound)},
	} {
		if status, body := send(tc.token, tc.proof); status != 401 || !strings.Contains(body, "invalid_dpop_proof") {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	if status, body := send(f.bound, f.key.Proof(t, "GET", target, now, f.bound)); status != 200 {
		t.Fatalf("genuine again: %d %s", status, body)
	}
}

// TestMiddlewareDPoPNonces: with DPoPNonceSecret, a proof must carry the
// current server nonce (RFC 9449 §9): without it, or with a made-up or old
// one, 401 "DPoP error=use_dpop_nonce" and a DPoP-Nonce header to retry
// with; the nonce stays good into the next slot, not beyond; replicas with
// the same secret accept each other's nonces, one with another secret does
// not; bearer tokens are not concerned.
func TestMiddlewareDPoPNonces(t *testing.T) {
	t.Parallel()
	f := newDPoPFixture(t)
	const lifetime = time.Minute
	secret := []byte("0123456789abcdef0123456789abcdef")
	mc := jwks.MiddlewareConfig{DPoPNonceSecret: secret, DPoPNonceLifetime: lifetime}
	srv, replica := f.serve(t, mc), f.serve(t, mc)
	stranger := f.serve(t, jwks.MiddlewareConfig{DPoPNonceSecret: []byte("another secret, 32 bytes or more")})
	send := func(srv *httptest.Server, nonce string) (*http.Response, string) {
		changes := map[string]any{"nonce": nonce}
		if nonce == "" {
			changes = nil
		}
		return f.do(t, srv, dpopRequest{auth: func(f *dpopFixture) string { return "DPoP " + f.bound },
			proofs: func(t *testing.T, f *dpopFixture, u string) []string {
				return []string{f.key.Forge(t, nil, changes, "GET", u+"/res", f.clk.Now(), f.bound)}
			}})
	}
	wantUseNonce := func(name string) func(*http.Response, string) string {
		return func(res *http.Response, body string) string {
			ch := res.Header.Get("WWW-Authenticate")
			if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, `DPoP error="use_dpop_nonce"`) ||
				!strings.Contains(body, "use_dpop_nonce") || res.Header.Get("DPoP-Nonce") == "" {
				t.Errorf("%s: %d %s, WWW-Authenticate %q, DPoP-Nonce %q; want 401 use_dpop_nonce with a nonce",
					name, res.StatusCode, body, ch, res.Header.Get("DPoP-Nonce"))
			}
			return res.Header.Get("DPoP-Nonce")
		}
	}
	nonce := wantUseNonce("no nonce")(send(srv, ""))
	wantUseNonce("a made-up nonce")(send(srv, "made-up"))
	for _, c := range []struct {
		name string
		srv  *httptest.Server
	}{{"the nonce", srv}, {"the nonce at a replica with the same secret", replica}} {
		if res, body := send(c.srv, nonce); res.StatusCode != http.StatusOK || res.Header.Get("DPoP-Nonce") != nonce {
			t.Errorf("%s: %d %s, DPoP-Nonce %q", c.name, res.StatusCode, body, res.Header.Get("DPoP-Nonce"))
		}
	}
	wantUseNonce("the nonce at a server with another secret")(send(stranger, nonce))

	f.clk.Advance(lifetime)
	if res, body := send(srv, nonce); res.StatusCode != http.StatusOK {
		t.Errorf("the previous slot's nonce: %d %s", res.StatusCode, body)
	}
	f.clk.Advance(lifetime)
	if fresh := wantUseNonce("a nonce two slots old")(send(srv, nonce)); fresh == nonce {
		t.Errorf("the DPoP-Nonce did not change in two slots: %q", fresh)
	}

	res, body := f.do(t, srv, dpopRequest{auth: func(f *dpopFixture) string { return "Bearer " + accessToken(t, f.ti, 0, f.clk.Now()) }})
	if res.StatusCode != http.StatusOK || res.Header.Get("DPoP-Nonce") != "" {
		t.Errorf("a bearer token: %d %s, DPoP-Nonce %q; want 200 and no nonce", res.StatusCode, body, res.Header.Get("DPoP-Nonce"))
	}
}
