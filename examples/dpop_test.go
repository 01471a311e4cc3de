package examples_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/jwtforge"
	"github.com/keygate/keygate/internal/kgtest"
)

const dpopPassword = "correct horse battery staple"

// dpopApp registers the public client the DPoP scripts use, and its user.
func dpopApp(t *testing.T, kg *kgtest.Server) {
	t.Helper()
	c := idp.Client{ID: "dpop-app", Public: true, GrantTypes: []string{idp.GrantPassword, idp.GrantRefreshToken},
		Scopes: []string{"openid", "profile"}, DPoPBoundAccessTokens: true}
	if _, err := kg.IDP.Directory().RegisterClient(t.Context(), &c, false); err != nil {
		t.Fatal(err)
	}
	if _, err := kg.IDP.Directory().CreateUser(t.Context(), idp.NewUser{Username: "alice", Password: dpopPassword}); err != nil {
		t.Fatal(err)
	}
}

// outputLines maps each output line's first word to the rest.
func outputLines(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, " ")
		m[k] = v
	}
	return m
}

// TestDPoPPython runs dpop.py (PyJWT + cryptography): a DPoP-bound token
// used at the example resource server and at Keygate's /userinfo; the
// replayed proof and the token as Bearer refused.
func TestDPoPPython(t *testing.T) {
	py := python(t)
	e := start(t, time.Second)
	dpopApp(t, e.kg)
	out, err := run(t, "scripts", py, "dpop.py", e.kg.URL, "dpop-app", "alice", dpopPassword, e.resource+"/api/secret")
	if err != nil {
		t.Fatalf("dpop.py: %v\n%s", err, out)
	}
	got := outputLines(out)
	for k, want := range map[string]string{"token_type": "DPoP", "resource": "200 ", "userinfo": "200 ",
		"replayed": `proof 401 DPoP realm="keygate", error="invalid_dpop_proof"`, "as": `Bearer 401 DPoP realm="keygate", error="invalid_token"`} {
		if !strings.HasPrefix(got[k], want) {
			t.Errorf("%s: %q, want it to start with %q\n%s", k, got[k], want, out)
		}
	}
	if !strings.Contains(got["resource"], "the secret is 42") || !strings.Contains(got["userinfo"], `"preferred_username":"alice"`) {
		t.Errorf("unexpected answers:\n%s", out)
	}
}

// TestDPoPNode runs dpop.mjs (openid-client's own DPoP): token, refresh with
// the same key, the resource server and /userinfo; a thief's key cannot
// refresh. With server nonces on (server.dpop_nonce), every first proof to
// /token and /userinfo is answered use_dpop_nonce, and openid-client must
// retry with the DPoP-Nonce it was given.
func TestDPoPNode(t *testing.T) {
	need(t, "/usr/bin/node", "node")
	need(t, "scripts/node_modules/openid-client/package.json", "npm openid-client (npm ci in examples/scripts)")
	for _, c := range []struct {
		name string
		dpop idp.DPoPConfig
	}{
		{"without nonces", idp.DPoPConfig{}},
		{"with server nonces", idp.DPoPConfig{NonceSecret: []byte("examples: a 32-byte nonce secret")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := start(t, time.Second, c.dpop)
			dpopApp(t, e.kg)
			if c.dpop.NonceSecret != nil { // the retry the script must make: a proof without the nonce is refused
				req, _ := http.NewRequest(http.MethodPost, e.kg.URL+"/token", strings.NewReader(url.Values{"grant_type": {"password"},
					"client_id": {"dpop-app"}, "username": {"alice"}, "password": {dpopPassword}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("DPoP", jwtforge.NewDPoPKey(t, "ES256", "").Proof(t, http.MethodPost, e.kg.URL+"/token", time.Now(), ""))
				if res, body := kgtest.Do(t, http.DefaultClient, req); res.StatusCode != http.StatusBadRequest ||
					!strings.Contains(string(body), "use_dpop_nonce") || res.Header.Get("DPoP-Nonce") == "" {
					t.Fatalf("a proof without the nonce: %d %s, want 400 use_dpop_nonce with a DPoP-Nonce", res.StatusCode, body)
				}
			}
			out, err := run(t, "scripts", "node", "dpop.mjs", e.kg.URL, "dpop-app", "alice", dpopPassword, e.resource+"/api/secret")
			if err != nil {
				t.Fatalf("dpop.mjs: %v\n%s", err, out)
			}
			got := outputLines(out)
			// openid-client reports token_type in lower case.
			for k, want := range map[string]string{"token_type": "dpop", "refreshed": "dpop", "resource": "200 ",
				"userinfo": `{"preferred_username":"alice"`, "thief": "refresh invalid_grant"} {
				if !strings.HasPrefix(got[k], want) {
					t.Errorf("%s: %q, want it to start with %q\n%s", k, got[k], want, out)
				}
			}
		})
	}
}
