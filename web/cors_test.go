package web_test

// CORS for browser apps (web/cors.go), over HTTP against a real server: real
// preflights (OPTIONS with Access-Control-Request-*), then the requests a
// single-page app sends, from allowed and disallowed origins.

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/internal/poll"
)

const (
	corsApp   = "https://app.example"   // webapp's redirect URIs' origin (no allowed_origins)
	corsConf  = "https://conf.example"  // conf's: allowed, but for another client
	corsSPA   = "http://localhost:5173" // spa's explicit allowed origin
	corsEvil  = "https://evil.example"  // nobody's
	corsSPACB = "https://spa.example/cb"
)

// preflight sends what a browser sends before a cross-origin request it may
// not send unasked.
func preflight(t *testing.T, base, path, origin, method, headers string) reply {
	t.Helper()
	hdr := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
	if headers != "" {
		hdr["Access-Control-Request-Headers"] = headers
	}
	return send(t, base, request{method: http.MethodOptions, path: path, hdr: hdr})
}

// wantCORS checks r lets origin read it ("" for: nobody), and varies on Origin.
func wantCORS(t *testing.T, what string, r reply, origin string) {
	t.Helper()
	if got := r.hdr.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("%s: Access-Control-Allow-Origin %q, want %q (%d)", what, got, origin, r.status)
	}
	if !slices.Contains(varyOf(r.hdr), "Origin") {
		t.Errorf("%s: Vary %q lacks Origin", what, r.hdr.Values("Vary"))
	}
	if got := r.hdr.Get("Access-Control-Allow-Credentials"); got != "" {
		t.Errorf("%s: Access-Control-Allow-Credentials %q: no credential rides", what, got)
	}
}

func varyOf(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(f))
		}
	}
	return out
}

// newCORSEnv is brEnv plus spa: a public client whose explicit allowed origin
// replaces its redirect URI's.
func newCORSEnv(t *testing.T) *brEnv {
	t.Helper()
	e := newBrEnv(t, kgtest.Options{})
	spa := &idp.Client{ID: "spa", Public: true, GrantTypes: []string{idp.GrantAuthorizationCode, idp.GrantRefreshToken},
		Scopes: []string{"openid", "profile", "email"}, RedirectURIs: []string{corsSPACB}, AllowedOrigins: []string{corsSPA}}
	if _, err := e.IDP.Directory().RegisterClient(t.Context(), spa, false); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	e := newCORSEnv(t)

	for _, tc := range []struct {
		path, origin, method, headers string
		allowed                       bool
	}{
		{"/token", corsApp, "POST", "content-type", true},
		{"/token", corsConf, "POST", "", true}, // some client allows it: the request decides
		{"/token", corsSPA, "POST", "authorization", true},
		{"/revoke", corsApp, "POST", "content-type", true},
		{"/userinfo", corsApp, "GET", "authorization", true},
		{"/userinfo", corsSPA, "POST", "authorization", true},
		{"/token", corsEvil, "POST", "content-type", false},
		{"/userinfo", corsEvil, "GET", "authorization", false},
		{"/token", "https://spa.example", "POST", "", false}, // spa's redirect origin: its allowed_origins replace it
		{"/token", "null", "POST", "", false},
		{"/token", corsApp, "DELETE", "", false},
		{"/userinfo", corsApp, "PUT", "authorization", false},
	} {
		r := preflight(t, e.URL, tc.path, tc.origin, tc.method, tc.headers)
		what := "preflight " + tc.method + " " + tc.path + " from " + tc.origin
		if r.status != http.StatusNoContent {
			t.Errorf("%s: status %d, want 204", what, r.status)
		}
		want := ""
		if tc.allowed {
			want = tc.origin
		}
		wantCORS(t, what, r, want)
		if !tc.allowed {
			for _, h := range []string{"Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age"} {
				if r.hdr.Get(h) != "" {
					t.Errorf("%s: refused, yet %s %q", what, h, r.hdr.Get(h))
				}
			}
			continue
		}
		if m := r.hdr.Get("Access-Control-Allow-Methods"); !strings.Contains(m, tc.method) {
			t.Errorf("%s: Allow-Methods %q", what, m)
		}
		if h := strings.ToLower(r.hdr.Get("Access-Control-Allow-Headers")); !strings.Contains(h, "authorization") || !strings.Contains(h, "content-type") {
			t.Errorf("%s: Allow-Headers %q", what, h)
		}
		if r.hdr.Get("Access-Control-Max-Age") != "600" {
			t.Errorf("%s: Max-Age %q", what, r.hdr.Get("Access-Control-Max-Age"))
		}
	}

	// Routes with cookies or confidential callers answer no one.
	for _, path := range []string{"/introspect", "/login", "/authorize", "/account", "/logout", "/users/me", "/admin/clients"} {
		r := preflight(t, e.URL, path, corsApp, "POST", "authorization")
		if got := r.hdr.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("preflight %s: Access-Control-Allow-Origin %q, want none", path, got)
		}
	}
	b := e.browser(t)
	_, challenge := brPKCE("p")
	r := b.do(t, http.MethodGet, "/authorize?"+brAuthParams("webapp", brAppCB, challenge).Encode(), nil, map[string]string{"Origin": corsApp})
	if got := r.hdr.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("GET /authorize: Access-Control-Allow-Origin %q, want none", got)
	}
	// Discovery stays public.
	r = send(t, e.URL, request{method: http.MethodGet, path: "/.well-known/openid-configuration", hdr: map[string]string{"Origin": corsEvil}})
	if got := r.hdr.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("discovery: Access-Control-Allow-Origin %q, want *", got)
	}
}

// TestCORSPreflightSeesNewClient: a client registered after the origin index
// was built is allowed within a second (originsRetry), on the same server.
func TestCORSPreflightSeesNewClient(t *testing.T) {
	t.Parallel()
	e := newCORSEnv(t)
	const late = "https://late.example"
	wantCORS(t, "before", preflight(t, e.URL, "/token", late, "POST", ""), "")
	c := &idp.Client{ID: "late", Public: true, GrantTypes: []string{idp.GrantRefreshToken}, AllowedOrigins: []string{late}}
	if _, err := e.IDP.Directory().RegisterClient(t.Context(), c, false); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the preflight to allow the new client's origin", func() bool {
		return preflight(t, e.URL, "/token", late, "POST", "").hdr.Get("Access-Control-Allow-Origin") == late
	})
	wantCORS(t, "after", preflight(t, e.URL, "/token", late, "POST", ""), late)
}

// TestCORSPublicClientPKCE: an SPA's code exchange, refresh, userinfo and
// revocation from its origin are readable there, and from no other origin,
// even one another client allows.
func TestCORSPublicClientPKCE(t *testing.T) {
	t.Parallel()
	e := newCORSEnv(t)
	b := e.browser(t)
	verifier, challenge := brPKCE("cors")
	code := b.login(t, brAuthParams("webapp", brAppCB, challenge), "alice", brAlicePW)

	fromApp := map[string]string{"Origin": corsApp}
	tokenFrom := func(hdr map[string]string, kv ...string) reply {
		r := request{path: "/token", form: formOf(kv...), hdr: hdr}
		return send(t, e.URL, r)
	}
	// A wrong verifier first: the error is readable by the app too.
	r := tokenFrom(fromApp, "grant_type", "authorization_code", "client_id", "webapp", "code", code, "redirect_uri", brAppCB, "code_verifier", verifier+"x")
	brWantOAuthError(t, r, http.StatusBadRequest, "invalid_grant", "code_verifier")
	wantCORS(t, "failed exchange", r, corsApp)

	code = e.browser(t).login(t, brAuthParams("webapp", brAppCB, challenge), "alice", brAlicePW)
	r = tokenFrom(fromApp, "grant_type", "authorization_code", "client_id", "webapp", "code", code, "redirect_uri", brAppCB, "code_verifier", verifier)
	tr := checkTokenResponse(t, r)
	wantCORS(t, "code exchange", r, corsApp)
	if r.hdr.Get("Access-Control-Expose-Headers") != "WWW-Authenticate, DPoP-Nonce" {
		t.Errorf("Expose-Headers %q", r.hdr.Get("Access-Control-Expose-Headers"))
	}
	refresh := r.object(t)["refresh_token"].(string)

	// conf.example passes the preflight (conf allows it) but is not webapp's.
	r = tokenFrom(map[string]string{"Origin": corsConf}, "grant_type", "refresh_token", "client_id", "webapp", "refresh_token", refresh)
	wantCORS(t, "refresh from another client's origin", r, "")
	refresh = r.object(t)["refresh_token"].(string) // it was sent: CORS guards reading
	r = tokenFrom(fromApp, "grant_type", "refresh_token", "client_id", "webapp", "refresh_token", refresh)
	if r.status != http.StatusOK {
		t.Fatalf("refresh: %s", r)
	}
	wantCORS(t, "refresh", r, corsApp)
	r = tokenFrom(map[string]string{"Origin": corsEvil}, "grant_type", "refresh_token", "client_id", "webapp", "refresh_token", "bogus")
	wantCORS(t, "refresh from nobody's origin", r, "")
	r = tokenFrom(fromApp, "grant_type", "refresh_token", "client_id", "nosuch", "refresh_token", "bogus")
	wantCORS(t, "unknown client", r, "")
	// A confidential client's Basic user names its client: conf's origin reads conf's answers.
	r = send(t, e.URL, request{path: "/token", form: formOf("grant_type", "refresh_token", "refresh_token", "bogus"),
		basic: []string{"conf", e.secret["conf"]}, hdr: map[string]string{"Origin": corsConf}})
	wantCORS(t, "Basic client", r, corsConf)

	ui := func(origin, at string) reply {
		return send(t, e.URL, request{method: http.MethodGet, path: "/userinfo", hdr: map[string]string{"Origin": origin, "Authorization": "Bearer " + at}})
	}
	r = ui(corsApp, tr.AccessToken)
	if r.status != http.StatusOK || r.object(t)["preferred_username"] != "alice" {
		t.Fatalf("userinfo: %s", r)
	}
	wantCORS(t, "userinfo", r, corsApp)
	wantCORS(t, "userinfo from another client's origin", ui(corsConf, tr.AccessToken), "")
	wantCORS(t, "userinfo from nobody's origin", ui(corsEvil, tr.AccessToken), "")
	r = ui(corsApp, "not-a-token")
	if r.status != http.StatusUnauthorized || r.hdr.Get("WWW-Authenticate") == "" {
		t.Fatalf("userinfo with a bad token: %s", r)
	}
	wantCORS(t, "userinfo 401", r, corsApp) // no client to ask: any client's origin reads the challenge
	wantCORS(t, "userinfo 401 from nobody's origin", ui(corsEvil, "not-a-token"), "")

	r = send(t, e.URL, request{path: "/revoke", form: formOf("token", refresh, "client_id", "webapp"), hdr: fromApp})
	if r.status != http.StatusOK {
		t.Fatalf("revoke: %s", r)
	}
	wantCORS(t, "revoke", r, corsApp)
	r = send(t, e.URL, request{path: "/revoke", form: formOf("token", refresh, "client_id", "webapp"), hdr: map[string]string{"Origin": corsSPA}})
	wantCORS(t, "revoke from spa's origin", r, "")

	// No Origin (a server-side client): no CORS headers, still Vary: Origin.
	r = tokenFrom(nil, "grant_type", "refresh_token", "client_id", "webapp", "refresh_token", "bogus")
	wantCORS(t, "no Origin", r, "")
}
