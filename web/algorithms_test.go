package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/rotation"
)

// TestSigningAlgorithmsWithGoOIDC: with keys.algorithms [RS256, ES256,
// EdDSA], discovery lists them, each client's tokens are signed with its
// signing_alg, go-oidc verifies them from the published JWKS, and the
// issuer's own checks (introspection) accept them.
func TestSigningAlgorithmsWithGoOIDC(t *testing.T) {
	const secret = "kgs_alg-test-secret-0123456789abcdefghijklmnopqrstu"
	algs := []string{"RS256", "ES256", "EdDSA"}
	var clients []idp.Client
	for _, alg := range algs {
		clients = append(clients, idp.Client{ID: strings.ToLower(alg), SecretHash: idp.HashSecret(secret), SigningAlg: alg,
			GrantTypes: []string{idp.GrantClientCredentials}, Scopes: []string{"read"}, Audience: []string{"api"}, Introspect: true})
	}
	s := kgtest.Start(t, kgtest.Options{Clients: clients, Policy: rotation.Policy{RotationPeriod: 24 * time.Hour,
		PublishAhead: time.Hour, Retention: 2 * time.Hour, RSABits: 2048, Algorithms: algs}})
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	var disco struct {
		ID     []string `json:"id_token_signing_alg_values_supported"`
		Access []string `json:"access_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&disco); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(disco.ID, algs) || !slices.Equal(disco.Access, algs) {
		t.Errorf("discovery lists %v / %v, want %v", disco.ID, disco.Access, algs)
	}
	for _, alg := range algs {
		id := strings.ToLower(alg)
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
		req, _ := http.NewRequest("POST", s.URL+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(res.Body).Decode(&tok)
		res.Body.Close()
		if res.StatusCode != 200 || tok.AccessToken == "" {
			t.Fatalf("%s: token status %d", alg, res.StatusCode)
		}
		// go-oidc: only the client's algorithm is accepted, with the key the
		// JWKS publishes for it.
		v := p.Verifier(&oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: []string{alg}})
		if _, err := v.Verify(ctx, tok.AccessToken); err != nil {
			t.Errorf("%s: go-oidc: %v", alg, err)
		}
		other := p.Verifier(&oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: []string{"RS256"}})
		if _, err := other.Verify(ctx, tok.AccessToken); (err == nil) != (alg == "RS256") {
			t.Errorf("%s token, go-oidc limited to RS256: %v", alg, err)
		}
		// Keygate's own verification (introspection) accepts it.
		claims, err := s.IDP.ValidateAccessToken(ctx, tok.AccessToken)
		if err != nil || claims.ClientID != id {
			t.Errorf("%s: ValidateAccessToken: %v", alg, err)
		}
	}
}

// TestAdminSigningAlg: the admin API shows each client's signing_alg (RS256
// when it has none) and PATCH changes it, refusing with 400 and a clear
// message an algorithm the deployment keeps no keys for; the client's next
// token is signed with the new algorithm.
func TestAdminSigningAlg(t *testing.T) {
	const admin = "kg-admin-bootstrap-token-0123456789abcdef"
	s := kgtest.Start(t, kgtest.Options{AdminToken: admin, Policy: rotation.Policy{RotationPeriod: 24 * time.Hour,
		PublishAhead: time.Hour, Retention: 2 * time.Hour, RSABits: 2048, Algorithms: []string{"RS256", "ES256"}}})
	c := &idp.Client{ID: "billing", GrantTypes: []string{idp.GrantClientCredentials}, Scopes: []string{"read"}}
	sec, err := s.IDP.Directory().RegisterClient(t.Context(), c, true)
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, body string) (int, map[string]any) {
		t.Helper()
		r := send(t, s.URL, request{method: method, path: "/admin/clients/billing", body: body, ctype: "application/json",
			hdr: map[string]string{"Authorization": "Bearer " + admin}})
		return r.status, r.object(t)
	}
	tokenAlg := func() string {
		t.Helper()
		res, err := s.IDP.Token(t.Context(), &idp.Request{Form: url.Values{"grant_type": {"client_credentials"},
			"client_id": {"billing"}, "client_secret": {sec}}})
		if err != nil {
			t.Fatal(err)
		}
		hdr, err := base64.RawURLEncoding.DecodeString(strings.SplitN(res.AccessToken, ".", 2)[0])
		var h struct{ Alg string }
		if err != nil || json.Unmarshal(hdr, &h) != nil {
			t.Fatalf("token header %q: %v", hdr, err)
		}
		return h.Alg
	}
	for _, step := range []struct {
		method, body string
		status       int
		alg, refused string // the view's signing_alg (and the token's); the error's text
	}{
		{"GET", "", 200, "RS256", ""},
		{"PATCH", `{"signing_alg":"ES256"}`, 200, "ES256", ""},
		{"PATCH", `{"signing_alg":"EdDSA"}`, 400, "ES256", "EdDSA is not in keys.algorithms (RS256, ES256)"},
		{"PATCH", `{"signing_alg":"none"}`, 400, "ES256", `"none" is not supported`},
		{"PATCH", `{"signing_alg":""}`, 200, "RS256", ""},
		{"PATCH", `{"signing_alg":"ES256"}`, 200, "ES256", ""},
	} {
		status, out := call(step.method, step.body)
		if status != step.status {
			t.Fatalf("%s %s: %d %v, want %d", step.method, step.body, status, out, step.status)
		}
		if step.refused != "" {
			if msg, _ := out["error"].(string); !strings.Contains(msg, step.refused) {
				t.Errorf("%s: error %q, want it to say %q", step.body, msg, step.refused)
			}
		} else if out["signing_alg"] != step.alg {
			t.Errorf("%s %s: signing_alg %v, want %s", step.method, step.body, out["signing_alg"], step.alg)
		}
		if got := tokenAlg(); got != step.alg {
			t.Errorf("after %s %s: token alg %s, want %s", step.method, step.body, got, step.alg)
		}
	}
}
