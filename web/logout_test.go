package web_test

// RP-initiated logout over HTTP: /end_session with and without an
// id_token_hint, the confirmation form, and the refusals.

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
)

const (
	brAppBye   = "https://app.example/logged-out"
	brAppBye2  = "https://app.example/bye?tenant=a%20b" // a registered URI with a query
	brOtherBye = "https://other.example/bye"
)

// newLogoutEnv is newBrEnv with post-logout redirect URIs registered for
// webapp and other.
func newLogoutEnv(t *testing.T) *brEnv {
	t.Helper()
	e := newBrEnv(t, kgtest.Options{})
	for id, uris := range map[string][]string{"webapp": {brAppBye, brAppBye2}, "other": {brOtherBye}} {
		if _, err := e.IDP.Directory().UpdateClient(t.Context(), id, idp.ClientPatch{PostLogoutRedirectURIs: &uris}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// loginAt logs a new browser in as user through webapp's code flow and
// returns it with the ID token webapp was issued.
func (e *brEnv) loginAt(t *testing.T, user, pw string) (*brBrowser, string) {
	t.Helper()
	b, tok := e.loginTokens(t, user, pw)
	return b, tok.IDToken
}

func (e *brEnv) loginTokens(t *testing.T, user, pw string) (*brBrowser, brTokens) {
	t.Helper()
	b := e.browser(t)
	verifier, challenge := brPKCE(user)
	code := b.login(t, brAuthParams("webapp", brAppCB, challenge), user, pw)
	return b, e.exchange(t, "webapp", code, brAppCB, verifier)
}

// loggedIn reports whether the browser's session is live: /account shows
// the account rather than redirecting to the login page.
func (b *brBrowser) loggedIn(t *testing.T) bool {
	t.Helper()
	r := b.get(t, "/account")
	return r.status == http.StatusOK
}

func endSessionURL(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return "/end_session?" + v.Encode()
}

// wantConfirmation checks r is the "Log out of Keygate?" page and returns
// its form's fields.
func wantConfirmation(t *testing.T, r reply) url.Values {
	t.Helper()
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "Log out of Keygate?") || r.hdr.Get("Location") != "" {
		t.Fatalf("want the confirmation page, got %s", r)
	}
	if !strings.Contains(string(r.body), `action="/logout"`) {
		t.Errorf("the confirmation form does not post to /logout: %s", r.body)
	}
	return brHiddenFields(t, r)
}

// wantLogoutRedirect checks r sends the browser to uri with state.
func wantLogoutRedirect(t *testing.T, r reply, uri, state string) {
	t.Helper()
	if r.status != http.StatusSeeOther {
		t.Fatalf("want a redirect to %s, got %s", uri, r)
	}
	loc := r.location(t)
	if got := strings.SplitN(loc.String(), "?state=", 2)[0]; got != uri && !strings.HasPrefix(loc.String(), uri+"&") {
		t.Errorf("redirected to %s, want %s", loc, uri)
	}
	if loc.Query().Get("state") != state || loc.Query().Has("state") != (state != "") {
		t.Errorf("state %q in %s, want %q", loc.Query().Get("state"), loc, state)
	}
}

func TestEndSessionWithHint(t *testing.T) {
	t.Parallel()
	e := newLogoutEnv(t)

	t.Run("a hint for the session's user logs out at once", func(t *testing.T) {
		b, hint := e.loginAt(t, "alice", brAlicePW)
		cookie := b.cookie("keygate_session")
		r := b.get(t, endSessionURL("id_token_hint", hint, "post_logout_redirect_uri", brAppBye, "state", "s 1&x", "ui_locales", "fr"))
		wantLogoutRedirect(t, r, brAppBye, "s 1&x")
		if b.loggedIn(t) {
			t.Error("still logged in")
		}
		// Gone from the store, not just from the browser.
		if _, err := e.IDP.Session(t.Context(), cookie); err == nil {
			t.Error("the session is still in the store")
		}
	})

	t.Run("the registered URI's query is kept; client_id may be sent too", func(t *testing.T) {
		b, hint := e.loginAt(t, "alice", brAlicePW)
		r := b.get(t, endSessionURL("id_token_hint", hint, "client_id", "webapp", "post_logout_redirect_uri", brAppBye2, "state", "st"))
		wantLogoutRedirect(t, r, brAppBye2, "st")
		if q := r.location(t).Query(); q.Get("tenant") != "a b" {
			t.Errorf("lost the registered query: %s", r.location(t))
		}
		if b.loggedIn(t) {
			t.Error("still logged in")
		}
	})

	t.Run("without post_logout_redirect_uri: the logged-out page", func(t *testing.T) {
		b, hint := e.loginAt(t, "alice", brAlicePW)
		r := b.get(t, endSessionURL("id_token_hint", hint, "state", "ignored"))
		if r.status != http.StatusOK || !strings.Contains(string(r.body), "You are logged out") {
			t.Fatalf("want the logged-out page, got %s", r)
		}
		if b.loggedIn(t) {
			t.Error("still logged in")
		}
	})

	t.Run("an expired hint is still a hint", func(t *testing.T) {
		b, hint := e.loginAt(t, "alice", brAlicePW)
		e.clock.Advance(40 * time.Minute)
		if !b.loggedIn(t) { // keeps the session from idling out
			t.Fatal("session lost")
		}
		e.clock.Advance(30 * time.Minute) // the ID token (1h) has expired
		wantLogoutRedirect(t, b.get(t, endSessionURL("id_token_hint", hint, "post_logout_redirect_uri", brAppBye)), brAppBye, "")
		if b.loggedIn(t) {
			t.Error("still logged in")
		}
	})

	t.Run("by POST too", func(t *testing.T) {
		b, hint := e.loginAt(t, "alice", brAlicePW)
		r := b.post(t, "/end_session", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {brAppBye}, "state": {"p"}})
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(t).String(), e.URL+"/end_session?") &&
			!strings.HasPrefix(r.location(t).String(), "/end_session?") {
			t.Fatalf("POST /end_session: %s", r)
		}
		wantLogoutRedirect(t, b.get(t, r.hdr.Get("Location")), brAppBye, "p")
		if b.loggedIn(t) {
			t.Error("still logged in")
		}
	})

	t.Run("not logged in: straight back to the client", func(t *testing.T) {
		_, hint := e.loginAt(t, "alice", brAlicePW)
		wantLogoutRedirect(t, e.browser(t).get(t, endSessionURL("id_token_hint", hint, "post_logout_redirect_uri", brAppBye, "state", "z")), brAppBye, "z")
	})
}

func TestEndSessionConfirmation(t *testing.T) {
	t.Parallel()
	e := newLogoutEnv(t)

	t.Run("without a hint the user confirms, then goes back to the client", func(t *testing.T) {
		b, _ := e.loginAt(t, "alice", brAlicePW)
		fields := wantConfirmation(t, b.get(t, endSessionURL("client_id", "webapp", "post_logout_redirect_uri", brAppBye, "state", "c1")))
		if !b.loggedIn(t) {
			t.Fatal("the GET logged out without confirmation")
		}
		if fields.Get("client_id") != "webapp" || fields.Get("post_logout_redirect_uri") != brAppBye || fields.Get("state") != "c1" {
			t.Errorf("form fields %v", fields)
		}
		wantLogoutRedirect(t, b.submit(t, "/logout", fields), brAppBye, "c1")
		if b.loggedIn(t) {
			t.Error("still logged in after confirming")
		}
	})

	t.Run("without any parameter: confirm, then the logged-out page", func(t *testing.T) {
		b, _ := e.loginAt(t, "alice", brAlicePW)
		fields := wantConfirmation(t, b.get(t, "/end_session"))
		r := b.submit(t, "/logout", fields)
		if r.status != http.StatusSeeOther || r.hdr.Get("Location") != "/login?logged_out=1" {
			t.Errorf("plain logout: %s", r)
		}
		if b.loggedIn(t) {
			t.Error("still logged in after confirming")
		}
	})

	t.Run("the confirmation needs its CSRF token", func(t *testing.T) {
		b, _ := e.loginAt(t, "alice", brAlicePW)
		fields := wantConfirmation(t, b.get(t, endSessionURL("client_id", "webapp", "post_logout_redirect_uri", brAppBye)))
		fields.Del("csrf")
		if r := b.submit(t, "/logout", fields); r.status != http.StatusForbidden || r.hdr.Get("Location") != "" {
			t.Errorf("without CSRF token: %s", r)
		}
		if !b.loggedIn(t) {
			t.Error("logged out without a CSRF token")
		}
	})

	t.Run("a changed confirmation form is refused", func(t *testing.T) {
		b, _ := e.loginAt(t, "alice", brAlicePW)
		fields := wantConfirmation(t, b.get(t, endSessionURL("client_id", "webapp", "post_logout_redirect_uri", brAppBye)))
		fields.Set("post_logout_redirect_uri", "https://evil.example/")
		brWantPage(t, b.submit(t, "/logout", fields), http.StatusBadRequest, "not registered")
		if !b.loggedIn(t) {
			t.Error("logged out by a refused request")
		}
	})

	t.Run("another user's hint asks first", func(t *testing.T) {
		_, bobHint := e.loginAt(t, "bob", brBobPW)
		b, _ := e.loginAt(t, "alice", brAlicePW)
		wantConfirmation(t, b.get(t, endSessionURL("id_token_hint", bobHint, "post_logout_redirect_uri", brAppBye)))
		if !b.loggedIn(t) {
			t.Error("logged out by another user's hint")
		}
	})
}

// TestEndSessionRefusals: bad requests are error pages that redirect
// nowhere, and hints Keygate did not issue as ID tokens never log anyone out
// silently.
func TestEndSessionRefusals(t *testing.T) {
	t.Parallel()
	e := newLogoutEnv(t)
	b, tokens := e.loginTokens(t, "alice", brAlicePW)
	hint, at := tokens.IDToken, tokens.AccessToken // an access token is not an ID token
	alice, err := e.IDP.Directory().UserByLogin(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		params  []string
		mention string
	}{
		{"unregistered post_logout_redirect_uri", []string{"id_token_hint", hint, "post_logout_redirect_uri", "https://evil.example/", "state", "x"}, "not registered"},
		{"another client's URI", []string{"id_token_hint", hint, "post_logout_redirect_uri", brOtherBye}, "not registered"},
		{"a redirect URI is not a post-logout one", []string{"client_id", "webapp", "post_logout_redirect_uri", brAppCB}, "not registered"},
		{"URI differing in case", []string{"client_id", "webapp", "post_logout_redirect_uri", strings.ToUpper(brAppBye)}, "not registered"},
		{"URI without a client", []string{"post_logout_redirect_uri", brAppBye}, "client_id"},
		{"unknown client", []string{"client_id", "nobody", "post_logout_redirect_uri", brAppBye}, "unknown client"},
		{"client_id the hint was not issued to", []string{"id_token_hint", hint, "client_id", "other", "post_logout_redirect_uri", brOtherBye}, "not issued to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brWantPage(t, b.get(t, endSessionURL(tc.params...)), http.StatusBadRequest, tc.mention)
			if !b.loggedIn(t) {
				t.Fatal("a refused request logged out")
			}
		})
	}
	t.Run("repeated parameter", func(t *testing.T) {
		q := "client_id=webapp&post_logout_redirect_uri=" + url.QueryEscape(brAppBye) + "&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"
		brWantPage(t, b.get(t, "/end_session?"+q), http.StatusBadRequest, "repeated")
	})

	// Hints that do not verify as this issuer's ID tokens are ignored: a
	// confirmation page, and with client_id the registered URI still works
	// after it.
	jwksKey := publishedKID(t, e)
	forger, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := e.clock.Now()
	claims := func() map[string]any {
		return map[string]any{"iss": e.URL, "sub": alice.ID, "aud": "webapp", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	foreignIssuer := claims()
	foreignIssuer["iss"] = "https://evil.example"
	payload, _ := json.Marshal(foreignIssuer)
	fromOtherIssuer, err := e.Keys.Signer().Sign(payload, idp.IDTokenType) // our key, another issuer
	if err != nil {
		t.Fatal(err)
	}
	forgedTok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(claims()))
	forgedTok.Header["kid"], forgedTok.Header["typ"] = jwksKey, "JWT"
	forged, err := forgedTok.SignedString(forger)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(hint, ".")
	altered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(mustB64(t, parts[1]), "webapp", "other", 1))) + "." + parts[2]

	for name, bad := range map[string]string{"forged signature": forged, "another issuer": fromOtherIssuer,
		"an access token": at, "altered claims": altered, "garbage": "not.a.jwt"} {
		t.Run("hint: "+name, func(t *testing.T) {
			fields := wantConfirmation(t, b.get(t, endSessionURL("id_token_hint", bad, "client_id", "webapp", "post_logout_redirect_uri", brAppBye, "state", "f")))
			if !b.loggedIn(t) {
				t.Fatal("a bad hint logged out silently")
			}
			if fields.Has("id_token_hint") {
				t.Error("the confirmation form carries the hint")
			}
			// Without client_id, an unverified hint cannot vouch for a URI.
			brWantPage(t, b.get(t, endSessionURL("id_token_hint", bad, "post_logout_redirect_uri", brAppBye)), http.StatusBadRequest, "client_id")
		})
	}
}

// publishedKID is the kid of a key in the JWKS.
func publishedKID(t *testing.T, e *brEnv) string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(e.browser(t).get(t, "/jwks").body, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v", err)
	}
	return set.Keys[0].Kid
}

func mustB64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEndSessionDiscovery(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	var d map[string]any
	if err := json.Unmarshal(e.browser(t).get(t, "/.well-known/openid-configuration").body, &d); err != nil {
		t.Fatal(err)
	}
	if d["end_session_endpoint"] != e.URL+"/end_session" {
		t.Errorf("end_session_endpoint %v", d["end_session_endpoint"])
	}
}
