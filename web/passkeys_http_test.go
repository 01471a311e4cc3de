package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
)

// options posts to a passkey options endpoint as the script does: JSON,
// with the CSRF token in a header.
func (b *brBrowser) options(t *testing.T, path, token string, hdr map[string]string) reply {
	t.Helper()
	all := map[string]string{"Content-Type": "application/json"}
	if token != "" {
		all["X-CSRF-Token"] = token
	}
	for k, v := range hdr {
		all[k] = v
	}
	return b.do(t, http.MethodPost, path, nil, all)
}

// TestPasskeyHTTP: the passkey endpoints over plain HTTP: CSRF on the JSON
// options endpoints, refusals answered as 4xx in their route's format, and
// a whole registration and sign-in with a software authenticator.
func TestPasskeyHTTP(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{Localhost: true})
	b := e.browser(t)
	login := brLoginPage(t, b.get(t, "/login"))
	if !strings.Contains(string(b.get(t, "/login").body), `id="passkey-login"`) {
		t.Fatal("the login page offers no passkey")
	}
	token := login.Get("csrf")

	for _, tc := range []struct {
		name, path, token string
		hdr               map[string]string
		status            int
		mention           string
	}{
		{"no CSRF token", "/login/passkey/options", "", nil, http.StatusForbidden, "did not come from this site"},
		{"a wrong CSRF token", "/login/passkey/options", "x" + token, nil, http.StatusForbidden, "did not come from this site"},
		{"cross-site", "/login/passkey/options", token, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden, "did not come from this site"},
		{"registration without a session", "/account/passkeys/options", token, nil, http.StatusUnauthorized, "not logged in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.options(t, tc.path, tc.token, tc.hdr)
			if r.status != tc.status || !strings.Contains(r.object(t)["error"].(string), tc.mention) {
				t.Errorf("got %s, want %d with a JSON error mentioning %q", r, tc.status, tc.mention)
			}
		})
	}
	for name, cred := range map[string]string{"no credential": "", "garbage": "{", "a JSON nothing": `{"id":"AA","type":"public-key"}`} {
		t.Run("sign-in with "+name, func(t *testing.T) {
			r := b.submit(t, "/login/passkey", login, "credential", cred)
			brWantPage(t, r, http.StatusBadRequest, "That passkey was not accepted.")
		})
	}

	// A whole registration and sign-in, as the script posts them.
	r := b.options(t, "/login/passkey/options", token, nil)
	if r.status != http.StatusOK || r.hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("login options: %s", r)
	}
	pk := r.object(t)["publicKey"].(map[string]any)
	if pk["rpId"] != "localhost" || pk["userVerification"] != "required" || pk["allowCredentials"] != nil {
		t.Errorf("login options %v: want rpId localhost, user verification required, no allowed credentials", pk)
	}
	if r := b.submit(t, "/login", login, "username", "alice", "password", brAlicePW); r.status != http.StatusSeeOther {
		t.Fatalf("password login: %s", r)
	}
	account := brFormPage(t, b.get(t, "/account"), "the account page", `id="passkey-add"`)
	r = b.options(t, "/account/passkeys/options", account.Get("csrf"), nil)
	if r.status != http.StatusOK {
		t.Fatalf("creation options: %s", r)
	}
	sel := r.object(t)["publicKey"].(map[string]any)["authenticatorSelection"].(map[string]any)
	if sel["residentKey"] != "required" || sel["userVerification"] != "required" {
		t.Errorf("authenticator selection %v: want a resident key and user verification required", sel)
	}
	a := kgtest.NewAuthenticator(t, e.URL, "localhost")
	r = b.submit(t, "/account/passkeys", url.Values{"csrf": {account.Get("csrf")}}, "name", "Key", "credential", string(a.Create(t, r.body)))
	if r.status != http.StatusSeeOther || r.location(t).String() != "/account?done=passkey-added" {
		t.Fatalf("registration: %s", r)
	}
	// Removing a passkey that is not the user's is refused; the form needs its token.
	brWantPage(t, b.submit(t, "/account/passkeys/remove", url.Values{"csrf": {account.Get("csrf")}}, "passkey", "not-mine"),
		http.StatusNotFound, "not one of yours")
	brWantPage(t, b.submit(t, "/account/passkeys/remove", url.Values{}, "passkey", "not-mine"), http.StatusForbidden, "did not come from this site")

	// Another browser signs in with it, no username typed.
	other := e.passkeySignIn(t, a, "passkey sign-in")

	// An application demanding a multi-factor login (acr_values) gets a code
	// at once from the passkey session; the password session must log in
	// again.
	verifier, challenge := brPKCE("passkey")
	params := brAuthParams("webapp", brAppCB, challenge, "acr_values", "urn:keygate:acr:mfa")
	code := e.wantCodeRedirect(t, other.get(t, "/authorize?"+params.Encode()), brAppCB, params.Get("state"))
	tok := e.exchange(t, "webapp", code, brAppCB, verifier)
	if _, claims := e.verifyIDToken(t, "webapp", tok.IDToken, tok.AccessToken); claims["acr"] != "urn:keygate:acr:phr" {
		t.Errorf("id_token acr %v, want urn:keygate:acr:phr", claims["acr"])
	}
	brLoginPage(t, b.get(t, "/authorize?"+params.Encode()))
}

// TestPasskeysNeedADomain: with an issuer on an IP address (no WebAuthn RP
// ID possible) the login page offers no passkey and the endpoints say so.
func TestPasskeysNeedADomain(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	b := e.browser(t)
	page := b.get(t, "/login")
	login := brLoginPage(t, page)
	if strings.Contains(string(page.body), "passkey") {
		t.Error("the login page mentions passkeys")
	}
	if r := b.options(t, "/login/passkey/options", login.Get("csrf"), nil); r.status != http.StatusNotFound || r.object(t)["error"] == nil {
		t.Errorf("options: %s, want 404 with a JSON error", r)
	}
	brWantPage(t, b.submit(t, "/login/passkey", login, "credential", "{}"), http.StatusBadRequest, "That passkey was not accepted.")
}

// TestPasskeySatisfiesSecondFactorPolicy: with login.require_second_factor
// covering everyone, a password login stops at the second-factor step while
// a passkey sign-in, multi-factor by itself, goes straight in.
func TestPasskeySatisfiesSecondFactorPolicy(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{Localhost: true, SecondFactor: idp.SecondFactorAll})
	ctx := t.Context()
	alice, err := e.IDP.Directory().UserByLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	_, sess, err := e.IDP.StartSession(ctx, alice, []string{idp.AMRPassword, idp.AMROTP, idp.AMRMultiFactor})
	if err != nil {
		t.Fatal(err)
	}
	a := kgtest.NewAuthenticator(t, e.URL, "localhost")
	opts, err := e.IDP.PasskeyCreationOptions(ctx, sess)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(opts)
	if _, err := e.IDP.RegisterPasskey(ctx, sess, "key", a.Create(t, raw)); err != nil {
		t.Fatal(err)
	}

	b := e.browser(t)
	login := brLoginPage(t, b.get(t, "/login"))
	r := b.submit(t, "/login", login, "username", "alice", "password", brAlicePW)
	if r.status == http.StatusSeeOther && r.location(t).Path == "/account" {
		t.Fatalf("the password alone signed in despite the policy: %s", r)
	}
	e.passkeySignIn(t, a, "passkey sign-in under the policy")
}

// passkeySignIn signs alice in with a's passkey from a fresh browser, no
// username typed, and checks she lands on her account page; what names the
// step in a failure.
func (e *brEnv) passkeySignIn(t *testing.T, a *kgtest.Authenticator, what string) *brBrowser {
	t.Helper()
	b := e.browser(t)
	login := brLoginPage(t, b.get(t, "/login"))
	r := b.options(t, "/login/passkey/options", login.Get("csrf"), nil)
	r = b.submit(t, "/login/passkey", login, "credential", string(a.Get(t, r.body)))
	if r.status != http.StatusSeeOther || r.location(t).String() != "/account" {
		t.Fatalf("%s: %s", what, r)
	}
	brFormPage(t, b.get(t, "/account"), "alice's account page", "alice@example.com")
	return b
}
