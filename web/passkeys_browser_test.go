package web_test

// Passkeys end to end in real headless Chromium with its virtual
// authenticator (Chrome DevTools Protocol WebAuthn domain: a CTAP2
// authenticator with resident keys and user verification): register a
// passkey on /account, log out, sign in with it through a relying party's
// OIDC code flow (go-oidc) and find amr in the ID token; remove it, and
// see a sign-in with it refused. The server is http://localhost:PORT:
// Chromium allows WebAuthn on http only for localhost (a secure context),
// and an RP ID must be a domain name. The relying party is on localhost too
// (another port, the same site).
//
// KEYGATE_UPDATE_SCREENSHOT=1 rewrites docs/account-passkeys.png (the whole
// account page) and docs/login-passkey.png.

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
)

// addVirtualAuthenticator gives the tab a platform authenticator that
// holds discoverable credentials and verifies its user (a device with a
// fingerprint reader, say), answering without a prompt.
func addVirtualAuthenticator(t *testing.T, tab context.Context) {
	t.Helper()
	_, err := chromedp.Run(tab, func(ctx context.Context, tg *chromedp.Target) (webauthn.AuthenticatorID, error) {
		if _, err := cdp.Call(ctx, tg, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return "", err
		}
		res, err := cdp.Call(ctx, tg, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol:                    webauthn.AuthenticatorProtocolCtap2,
				Ctap2version:                webauthn.Ctap2versionCtap21,
				Transport:                   webauthn.AuthenticatorTransportInternal,
				HasResidentKey:              true,
				HasUserVerification:         true,
				IsUserVerified:              true,
				AutomaticPresenceSimulation: true,
			}})
		return res.AuthenticatorID, err
	})
	if err != nil {
		t.Fatalf("add a virtual authenticator: %v", err)
	}
}

func TestBrowserPasskeys(t *testing.T) {
	t.Parallel()
	newTab := startChromium(t)
	kg := kgtest.Start(t, kgtest.Options{Localhost: true})
	if !strings.HasPrefix(kg.URL, "http://localhost:") {
		t.Fatalf("server at %s, want http://localhost:PORT", kg.URL)
	}
	if _, err := kg.IDP.Directory().CreateUser(t.Context(), idp.NewUser{Username: "alice", Password: brAlicePW, Email: "alice@example.com", Name: "Alice Liddell"}); err != nil {
		t.Fatal(err)
	}
	rp := newPublicApp(t, kg, &idp.Client{ID: "webapp", Name: "Example App",
		GrantTypes: []string{idp.GrantAuthorizationCode}, Scopes: []string{"openid", "profile", "email"}})
	tab := newTab(t)
	addVirtualAuthenticator(t, tab)

	// Log in with the password and register a passkey on the account page.
	do(t, tab, "open /login", chromedp.Navigate(kg.URL+"/login"))
	fillLogin(t, tab, "alice", brAlicePW)
	do(t, tab, "add a passkey",
		chromedp.WaitVisible(chromedp.CSS(`#passkey-add`)),
		chromedp.SendKeys(chromedp.CSS(`#passkey_name`), "This laptop"),
		chromedp.Click(chromedp.CSS(`#passkey-add button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice, p.error, #passkey-add .passkey-error:not([hidden])`)))
	if got := text(t, tab, "main"); !strings.Contains(got, "Your passkey has been added.") {
		t.Fatalf("after adding a passkey the page reads %q", got)
	}
	if got := text(t, tab, "li.passkey"); !strings.Contains(got, "This laptop") || !strings.Contains(got, "never used") {
		t.Errorf("the passkey is listed as %q", got)
	}
	screenshotPage(t, tab, "account-passkeys.png") // passkeys and the TOTP section

	// Log out; the app's login offers the passkey; one touch signs in.
	logOut(t, tab)
	startAt(t, tab, rp.url+"/start")
	do(t, tab, "see the app's login page", chromedp.WaitReady(chromedp.CSS(`#passkey-login input[name=request]`)),
		chromedp.WaitVisible(chromedp.CSS(`#passkey-login button`)))
	if got := text(t, tab, "#passkey-login button"); got != "Sign in with a passkey" {
		t.Errorf("passkey button %q", got)
	}
	screenshot(t, tab, "login-passkey.png")
	do(t, tab, "sign in with the passkey", chromedp.Click(chromedp.CSS(`#passkey-login button`)), chromedp.WaitVisible(chromedp.CSS(`#result`)))
	if got := text(t, tab, "#result"); got != "Hello, Alice Liddell" {
		t.Fatalf("relying party says %q", got)
	}
	res := rp.lastResult(t)
	var amr []string
	if list, ok := res.IDClaims["amr"].([]any); ok {
		for _, v := range list {
			s, _ := v.(string)
			amr = append(amr, s)
		}
	}
	if !slices.Equal(amr, []string{"hwk", "user", "mfa"}) || res.IDClaims["acr"] != idp.ACRPhishingResistant {
		t.Errorf("id_token amr %v, acr %v; want [hwk user mfa], %s", res.IDClaims["amr"], res.IDClaims["acr"], idp.ACRPhishingResistant)
	}

	// The account page shows the use; removing the passkey ends its use.
	do(t, tab, "open the account page", chromedp.Navigate(kg.URL+"/account"), chromedp.WaitVisible(chromedp.CSS(`li.passkey`)))
	if got := text(t, tab, "li.passkey"); !strings.Contains(got, "last used") {
		t.Errorf("after the sign-in the passkey is listed as %q", got)
	}
	do(t, tab, "remove the passkey", chromedp.Click(chromedp.CSS(`li.passkey form button`)), chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	if got := text(t, tab, "p.notice"); got != "The passkey has been removed." {
		t.Errorf("notice %q", got)
	}
	logOut(t, tab)
	startAt(t, tab, rp.url+"/start")
	do(t, tab, "try the removed passkey",
		chromedp.WaitReady(chromedp.CSS(`#passkey-login input[name=request]`)),
		chromedp.WaitVisible(chromedp.CSS(`#passkey-login button`)),
		chromedp.Click(chromedp.CSS(`#passkey-login button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.error`)))
	if got := text(t, tab, "p.error"); !strings.HasPrefix(got, "That passkey was not accepted.") {
		t.Errorf("sign-in with a removed passkey: %q", got)
	}
	rp.mu.Lock()
	if n := len(rp.results); n != 1 {
		t.Errorf("the relying party saw %d logins, want 1", n)
	}
	rp.mu.Unlock()
}

// startAt opens url from a blank page: navigating straight from the page a
// logout's form post landed on, chromedp reports the navigation aborted.
func startAt(t *testing.T, tab context.Context, url string) {
	t.Helper()
	do(t, tab, "open "+url, chromedp.Navigate("about:blank"), chromedp.Navigate(url))
}

// logOut clicks /account's log-out button and waits for the login page it
// lands on ("You have been logged out"): /account can show a p.notice of its
// own, so waiting for any notice could return before the POST lands, and the
// next navigation would then race it (net::ERR_ABORTED).
func logOut(t *testing.T, tab context.Context) {
	t.Helper()
	do(t, tab, "log out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice + form[action="/login"]`)))
}
