package web_test

// Consent for a third-party client in real headless Chromium (see
// browser_test.go): the consent page, Allow, the remembered grant, the
// account page's "Apps with access", revocation, and Deny.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/idp"
)

func TestBrowserConsent(t *testing.T) {
	t.Parallel()
	kg, newTab := startWithAlice(t)
	rp := newPublicApp(t, kg, &idp.Client{ID: "photos", Name: "Example Photos", ThirdParty: true,
		GrantTypes: []string{idp.GrantAuthorizationCode, idp.GrantRefreshToken}, Scopes: []string{"openid", "profile", "email"}})
	refresh := func(t *testing.T, token string) reply {
		t.Helper()
		return send(t, kg.URL, request{path: "/token", form: formOf("grant_type", "refresh_token", "refresh_token", token, "client_id", "photos")})
	}
	tab := newTab(t)

	// Login, then the consent page: the client's name and the scopes.
	do(t, tab, "start at the relying party", chromedp.Navigate(rp.srv.URL+"/start"))
	fillLogin(t, tab, "alice", brAlicePW)
	do(t, tab, "see the consent page", chromedp.WaitVisible(chromedp.CSS(`form[action="/consent"]`)))
	if h := text(t, tab, "h1"); !strings.Contains(h, "Example Photos") {
		t.Errorf("consent heading %q does not name the client", h)
	}
	for _, want := range []string{"Sign you in with your account", "See your name and username", "See your email address"} {
		if page := text(t, tab, "ul.scopes"); !strings.Contains(page, want) {
			t.Errorf("consent page scopes %q lack %q", page, want)
		}
	}
	do(t, tab, "allow", chromedp.Click(chromedp.CSS(`button[value=allow]`)), chromedp.WaitVisible(chromedp.CSS(`#result`)))
	if got := text(t, tab, "#result"); got != "Hello, Alice Liddell" {
		t.Fatalf("after Allow the relying party says %q", got)
	}
	first := rp.lastResult(t)
	if first.RefreshToken == "" {
		t.Fatal("no refresh token")
	}

	// The grant is remembered: the second login goes straight through.
	do(t, tab, "log in again", chromedp.Navigate(rp.srv.URL+"/start"), chromedp.WaitVisible(chromedp.CSS(`#result`)))
	if got := text(t, tab, "#result"); got != "Hello, Alice Liddell" {
		t.Fatalf("second login: %q", got)
	}
	r := refresh(t, first.RefreshToken)
	if r.status != http.StatusOK {
		t.Fatalf("refresh before revoking: %s", r)
	}
	rotated, _ := r.object(t)["refresh_token"].(string)

	// The account page lists the app; revoking it ends its refresh tokens.
	do(t, tab, "open the account page", chromedp.Navigate(kg.URL+"/account"), chromedp.WaitVisible(chromedp.CSS(`li.app`)))
	if app := text(t, tab, "li.app"); !strings.Contains(app, "Example Photos") || !strings.Contains(app, "openid, profile, email") {
		t.Errorf("apps with access: %q", app)
	}
	do(t, tab, "revoke", chromedp.Click(chromedp.CSS(`form[action="/account/apps/revoke"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`section.apps p.notice`)))
	if apps := text(t, tab, "section.apps"); strings.Contains(apps, "Example Photos") {
		t.Errorf("after revoking, apps with access: %q", apps)
	}
	brWantOAuthError(t, refresh(t, rotated), http.StatusBadRequest, "invalid_grant", "")

	// The next login asks again; Deny sends the app access_denied.
	do(t, tab, "start again", chromedp.Navigate(rp.srv.URL+"/start"), chromedp.WaitVisible(chromedp.CSS(`form[action="/consent"]`)))
	do(t, tab, "deny", chromedp.Click(chromedp.CSS(`button[value=deny]`)), chromedp.WaitVisible(chromedp.CSS(`#result.failed`)))
	if got := text(t, tab, "#result"); !strings.Contains(got, "access_denied") {
		t.Errorf("after Deny the relying party says %q", got)
	}
	loc, err := url.Parse(location(t, tab))
	if err != nil || !strings.HasPrefix(loc.String(), rp.srv.URL+"/callback?") || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") == "" {
		t.Errorf("Deny landed on %s, want the callback with error=access_denied and the state", loc)
	}
}
