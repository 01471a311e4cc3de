package web_test

// Native and command-line apps (RFC 8252): a public client registered with a
// loopback redirect URI runs the code flow through golang.org/x/oauth2 on
// whatever port its listener got, or through a private-use URI scheme; and
// the refresh response carries a new ID token (OIDC Core §12.2), checked
// with go-oidc.

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
)

const (
	nvLoopback = "http://127.0.0.1:1234/callback" // as registered; the app listens elsewhere
	nvPrivate  = "com.example.cli:/oauth2redirect"
)

// nvRegister adds the native clients to e: cli (public, loopback and
// private-use redirect URIs) and svc (confidential, the same loopback URI).
func nvRegister(t *testing.T, e *brEnv) {
	t.Helper()
	grants, scopes := []string{idp.GrantAuthorizationCode, idp.GrantRefreshToken}, []string{"openid", "profile", "email"}
	for _, c := range []*idp.Client{
		{ID: "cli", Public: true, GrantTypes: grants, Scopes: scopes, RedirectURIs: []string{nvLoopback, nvPrivate}},
		{ID: "svc", GrantTypes: grants, Scopes: scopes, RedirectURIs: []string{nvLoopback}},
	} {
		secret, err := e.IDP.Directory().RegisterClient(t.Context(), c, !c.Public)
		if err != nil {
			t.Fatalf("register %s: %v", c.ID, err)
		}
		e.secret[c.ID] = secret
	}
}

// nvConfig is the app's x/oauth2 configuration: a public client, so its
// client_id goes in the form and there is no secret.
func nvConfig(e *brEnv, redirect string) *oauth2.Config {
	return &oauth2.Config{ClientID: "cli", RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: e.URL + "/authorize", TokenURL: e.URL + "/token", AuthStyle: oauth2.AuthStyleInParams}}
}

// nvListen is the app's loopback listener on a port the system picks: it
// answers the browser's redirect and hands over its query.
func nvListen(t *testing.T) (redirect string, got <-chan url.Values) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan url.Values, 1)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		select {
		case ch <- r.URL.Query():
		default:
		}
		w.Write([]byte("You may close this window."))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/callback", ch
}

// TestNativeAppLoopback: RFC 8252 §7.3. The app registered
// http://127.0.0.1:1234/callback and listens on another port; the browser is
// sent there, and x/oauth2 exchanges the code with PKCE, then refreshes.
func TestNativeAppLoopback(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	nvRegister(t, e)
	ctx := t.Context()
	redirect, got := nvListen(t)
	if redirect == nvLoopback {
		t.Skip("the listener got the registered port itself")
	}
	conf := nvConfig(e, redirect)
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st-cli", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n-cli"))

	b := e.browser(t)
	loginAt := e.clock.Now()
	hidden := brLoginPage(t, b.get(t, authURL))
	r := b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW)
	e.wantCodeRedirect(t, r, redirect, "st-cli")
	// The browser follows the redirect to the app's listener.
	if resp := b.get(t, r.location(t).String()); resp.status != http.StatusOK {
		t.Fatalf("the app's listener answered %s", resp)
	}
	var q url.Values
	select {
	case q = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the app's listener got no redirect")
	}
	if q.Get("state") != "st-cli" || q.Get("iss") != e.URL {
		t.Errorf("callback state %q iss %q", q.Get("state"), q.Get("iss"))
	}

	e.clock.Advance(10 * time.Second)
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("x/oauth2 Exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	first, claims := e.verifyIDToken(t, "cli", rawID, tok.AccessToken)
	if first.Nonce != "n-cli" || claims["auth_time"] != float64(loginAt.Unix()) {
		t.Errorf("id_token nonce %q auth_time %v, want n-cli and %d", first.Nonce, claims["auth_time"], loginAt.Unix())
	}

	t.Run("refresh answers a new ID token (OIDC Core §12.2)", func(t *testing.T) {
		e.clock.Advance(time.Minute)
		old := *tok
		old.Expiry = time.Now().Add(-time.Minute) // x/oauth2 refreshes an expired token
		fresh, err := conf.TokenSource(ctx, &old).Token()
		if err != nil {
			t.Fatalf("x/oauth2 refresh: %v", err)
		}
		if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
			t.Fatal("refresh did not rotate the tokens")
		}
		raw, _ := fresh.Extra("id_token").(string)
		if raw == "" {
			t.Fatal("the refresh response has no id_token")
		}
		// go-oidc checks iss, aud (cli), exp and the signature; at_hash binds it to the new access token.
		idt, claims := e.verifyIDToken(t, "cli", raw, fresh.AccessToken)
		if idt.Subject != first.Subject || !slices.Equal(idt.Audience, []string{"cli"}) {
			t.Errorf("refreshed id_token sub %q aud %v, want %q and [cli]", idt.Subject, idt.Audience, first.Subject)
		}
		if claims["auth_time"] != float64(loginAt.Unix()) {
			t.Errorf("refreshed id_token auth_time %v, want the original %d", claims["auth_time"], loginAt.Unix())
		}
		if _, ok := claims["nonce"]; ok {
			t.Errorf("refreshed id_token carries a nonce: %v", claims["nonce"])
		}
		if !idt.IssuedAt.After(first.IssuedAt) || claims["preferred_username"] != "alice" {
			t.Errorf("refreshed id_token iat %v (first %v), claims %v", idt.IssuedAt, first.IssuedAt, claims)
		}
	})

	t.Run("the token endpoint wants the redirect URI sent at /authorize", func(t *testing.T) {
		v2 := oauth2.GenerateVerifier()
		c2 := e.wantCodeRedirect(t, b.get(t, conf.AuthCodeURL("st2", oauth2.S256ChallengeOption(v2))), redirect, "st2")
		brWantOAuthError(t, e.token(t, "cli", "grant_type", "authorization_code", "code", c2, "redirect_uri", nvLoopback,
			"code_verifier", v2), http.StatusBadRequest, "invalid_grant", "redirect_uri")
	})
}

// TestNativeAppPrivateScheme: RFC 8252 §7.1. The browser is sent to the
// app's private-use scheme, and x/oauth2 exchanges the code.
func TestNativeAppPrivateScheme(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	nvRegister(t, e)
	conf := nvConfig(e, nvPrivate)
	verifier := oauth2.GenerateVerifier()
	b := e.browser(t)
	hidden := brLoginPage(t, b.get(t, conf.AuthCodeURL("st-p", oauth2.S256ChallengeOption(verifier))))
	r := b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW)
	if loc := r.location(t).String(); !strings.HasPrefix(loc, nvPrivate+"?") {
		t.Fatalf("redirected to %s, want %s", loc, nvPrivate)
	}
	code := e.wantCodeRedirect(t, r, nvPrivate, "st-p")
	tok, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("x/oauth2 Exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	e.verifyIDToken(t, "cli", raw, tok.AccessToken)
}

// TestNativeRedirectRefusals: only a public client's loopback IP redirect
// URI may change its port; everything else is matched exactly, and
// registration keeps private-use schemes to public clients.
func TestNativeRedirectRefusals(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	nvRegister(t, e)
	_, challenge := brPKCE("n")
	b := e.browser(t)
	for name, tc := range map[string]struct{ client, redirect string }{
		"confidential client, loopback on another port": {"svc", "http://127.0.0.1:5555/callback"},
		"public client, another path":                   {"cli", "http://127.0.0.1:5555/callback/x"},
		"public client, localhost for 127.0.0.1":        {"cli", "http://localhost:5555/callback"},
		"public client, [::1] for 127.0.0.1":            {"cli", "http://[::1]:5555/callback"},
		"public client, https":                          {"cli", "https://127.0.0.1:5555/callback"},
		"public client, another private-use path":       {"cli", nvPrivate + "/x"},
	} {
		t.Run(name, func(t *testing.T) {
			brWantPage(t, b.get(t, "/authorize?"+brAuthParams(tc.client, tc.redirect, challenge).Encode()), http.StatusBadRequest, "not registered")
		})
	}
	t.Run("private-use scheme for a confidential client", func(t *testing.T) {
		_, err := e.IDP.Directory().RegisterClient(t.Context(), &idp.Client{ID: "svc2", GrantTypes: []string{idp.GrantAuthorizationCode},
			Scopes: []string{"openid"}, RedirectURIs: []string{nvPrivate}}, true)
		var ve *idp.ValidationError
		if !errors.As(err, &ve) || ve.Field != "redirect_uris" || !strings.Contains(ve.Problem, "public") {
			t.Errorf("RegisterClient: %v, want a redirect_uris ValidationError", err)
		}
	})
}

// TestDiscoveryMetadataConformance checks the members RFC 8414 §2 and OpenID
// Connect Discovery 1.0 §3 make conditional or give a default that would
// misstate this server.
func TestDiscoveryMetadataConformance(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		var d map[string]any
		if err := json.Unmarshal(e.browser(t).get(t, path).body, &d); err != nil {
			t.Fatal(err)
		}
		list := func(k string) []any { l, _ := d[k].([]any); return l }
		algsWith := func(methods, algs string) func() bool {
			return func() bool {
				if !slices.Contains(list(methods), any("private_key_jwt")) && !slices.Contains(list(methods), any("client_secret_jwt")) {
					return true
				}
				return len(list(algs)) > 0 && !slices.Contains(list(algs), any("none"))
			}
		}
		for _, c := range []struct {
			member, rule string
			ok           func() bool
		}{
			{"token_endpoint_auth_signing_alg_values_supported", "RFC 8414 §2: MUST be present with private_key_jwt; none MUST NOT be used",
				algsWith("token_endpoint_auth_methods_supported", "token_endpoint_auth_signing_alg_values_supported")},
			{"revocation_endpoint_auth_signing_alg_values_supported", "RFC 8414 §2: MUST be present with private_key_jwt; none MUST NOT be used",
				algsWith("revocation_endpoint_auth_methods_supported", "revocation_endpoint_auth_signing_alg_values_supported")},
			{"introspection_endpoint_auth_signing_alg_values_supported", "RFC 8414 §2: MUST be present with private_key_jwt; none MUST NOT be used",
				algsWith("introspection_endpoint_auth_methods_supported", "introspection_endpoint_auth_signing_alg_values_supported")},
			{"request_uri_parameter_supported", "OIDC Discovery §3: defaults to true; /authorize refuses request_uri",
				func() bool { return d["request_uri_parameter_supported"] == false }},
			{"request_parameter_supported", "OIDC Discovery §3: /authorize refuses request",
				func() bool { return d["request_parameter_supported"] == false }},
			{"response_types_supported", "RFC 8414 §2 REQUIRED", func() bool { return len(list("response_types_supported")) > 0 }},
			{"subject_types_supported", "OIDC Discovery §3 REQUIRED", func() bool { return len(list("subject_types_supported")) > 0 }},
			{"id_token_signing_alg_values_supported", "OIDC Discovery §3 REQUIRED, with RS256",
				func() bool { return slices.Contains(list("id_token_signing_alg_values_supported"), any("RS256")) }},
			{"code_challenge_methods_supported", "RFC 8414 §2: S256, never plain", func() bool {
				return slices.Equal(list("code_challenge_methods_supported"), []any{"S256"})
			}},
		} {
			if !c.ok() {
				t.Errorf("%s: %s = %v (%s)", path, c.member, d[c.member], c.rule)
			}
		}
	}
}
