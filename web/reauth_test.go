package web_test

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/store"
)

// TestReauthForSignInChanges: a session that signed in more than
// idp.ReauthWindow ago (left open, or its cookie stolen) cannot turn TOTP on
// with a secret an attacker holds, register the attacker's passkey, or remove
// the user's: each attempt is sent to sign in again and changes nothing.
// Signing in again (the login form, which starts a new session) allows the
// changes.
func TestReauthForSignInChanges(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{Localhost: true})
	ctx := t.Context()
	alice, err := e.Store.GetUserByLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	if r := b.submit(t, "/login", brLoginPage(t, b.get(t, "/login")), "username", "alice", "password", brAlicePW); r.status != http.StatusSeeOther {
		t.Fatalf("password login: %s", r)
	}
	csrf := url.Values{"csrf": {brFormPage(t, b.get(t, "/account"), "the account page", `id="passkey-add"`).Get("csrf")}}
	a := kgtest.NewAuthenticator(t, e.URL, "localhost")
	register := func() reply {
		r := b.options(t, "/account/passkeys/options", csrf.Get("csrf"), nil)
		if r.status != http.StatusOK {
			return r
		}
		return b.submit(t, "/account/passkeys", csrf, "name", "Key", "credential", string(a.Create(t, r.body)))
	}
	if r := register(); r.status != http.StatusSeeOther { // fresh: allowed
		t.Fatalf("registration on a fresh session: %s", r)
	}
	keys, _ := e.Store.ListUserPasskeys(ctx, alice.ID)
	if len(keys) != 1 {
		t.Fatalf("%d passkeys, want 1", len(keys))
	}

	e.clock.Advance(idp.ReauthWindow + time.Minute)
	for _, c := range []struct {
		path string
		kv   []string
	}{
		{"/account/totp/start", nil},
		{"/account/totp/confirm", []string{"code", "123456"}},
		{"/account/passkeys", []string{"name", "Attacker", "credential", "{}"}},
		{"/account/passkeys/remove", []string{"passkey", keys[0].ID}},
	} {
		r := b.submit(t, c.path, csrf, c.kv...)
		if r.status != http.StatusSeeOther || r.location(t).String() != "/login?reauth=1&return_to=%2Faccount" {
			t.Errorf("POST %s on an old session: %s, want a redirect to sign in again", c.path, r)
		}
	}
	r := b.options(t, "/account/passkeys/options", csrf.Get("csrf"), nil)
	if r.status != http.StatusForbidden || r.object(t)["error"] == nil {
		t.Errorf("passkey options on an old session: %s, want 403 with an error", r)
	}
	if _, err := e.Store.GetTOTP(ctx, alice.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an old session started a TOTP enrolment: %v", err)
	}
	if now, _ := e.Store.ListUserPasskeys(ctx, alice.ID); len(now) != 1 || now[0].ID != keys[0].ID {
		t.Errorf("passkeys changed on an old session: %v", now)
	}

	// Signing in again, as the redirect asks, allows the changes.
	page := b.get(t, "/login?reauth=1&return_to=%2Faccount")
	brWantPage(t, page, http.StatusOK, "sign in again to change how you sign in")
	brWantPage(t, page, http.StatusOK, `value="alice"`)
	if r := b.submit(t, "/login", brLoginPage(t, page), "username", "alice", "password", brAlicePW); r.status != http.StatusSeeOther {
		t.Fatalf("signing in again: %s", r)
	}
	csrf = url.Values{"csrf": {brFormPage(t, b.get(t, "/account"), "the account page", `id="passkey-add"`).Get("csrf")}}
	if r := b.submit(t, "/account/passkeys/remove", csrf, "passkey", keys[0].ID); r.status != http.StatusSeeOther ||
		r.location(t).String() != "/account?done=passkey-removed" {
		t.Errorf("removal after signing in again: %s", r)
	}
	brFormPage(t, b.submit(t, "/account/totp/start", csrf), "the enrolment page", "Set up two-factor authentication")
	// A fresh session is not asked again.
	if r := b.get(t, "/login?reauth=1&return_to=%2Faccount"); r.status != http.StatusSeeOther {
		t.Errorf("reauth page on a fresh session: %s, want a redirect", r)
	}
}
