package web_test

// RP-initiated logout in real headless Chromium (see browser_test.go): the
// relying party logs alice in through the code flow, then sends her browser
// to Keygate's end_session_endpoint.

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/idp"
)

func TestBrowserRPInitiatedLogout(t *testing.T) {
	t.Parallel()
	kg, newTab := startWithAlice(t)
	ctx := t.Context()
	var byeURI string
	rp := newRelyingParty(t, kg.URL, func(redirectURI string) string {
		byeURI = strings.TrimSuffix(redirectURI, "/callback") + "/logged-out"
		c := &idp.Client{ID: "webapp", Name: "Example App", Public: true, RedirectURIs: []string{redirectURI},
			PostLogoutRedirectURIs: []string{byeURI},
			GrantTypes:             []string{idp.GrantAuthorizationCode}, Scopes: []string{"openid", "profile", "email"}}
		if _, err := kg.IDP.Directory().RegisterClient(ctx, c, false); err != nil {
			t.Fatal(err)
		}
		return c.ID
	})
	var endSession struct {
		URL string `json:"end_session_endpoint"`
	}
	if err := rp.provider.Claims(&endSession); err != nil || endSession.URL != kg.URL+"/end_session" {
		t.Fatalf("discovery end_session_endpoint %q (%v)", endSession.URL, err)
	}

	// login runs the relying party's code flow in tab and returns the ID
	// token it got and Keygate's session cookie.
	login := func(t *testing.T, tab context.Context) (idToken, session string) {
		t.Helper()
		do(t, tab, "start at the relying party", chromedp.Navigate(rp.srv.URL+"/start"))
		fillLogin(t, tab, "alice", brAlicePW)
		do(t, tab, "land on the relying party", chromedp.WaitVisible(chromedp.CSS(`#result`)))
		session = sessionCookie(t, tab, kg.URL)
		if _, err := kg.IDP.Session(ctx, session); err != nil {
			t.Fatalf("no live session after login: %v", err)
		}
		return rp.lastResult(t).IDToken, session
	}
	wantLoggedOut := func(t *testing.T, tab context.Context, session string) {
		t.Helper()
		if _, err := kg.IDP.Session(ctx, session); !errors.Is(err, idp.ErrNoSession) {
			t.Errorf("the session is still in the store (%v)", err)
		}
		do(t, tab, "visit /account", chromedp.Navigate(kg.URL+"/account"), chromedp.WaitVisible(chromedp.CSS(`input[name=password]`)))
		if loc := location(t, tab); !strings.HasPrefix(loc, kg.URL+"/login") {
			t.Errorf("/account after logout shows %s, want the login page", loc)
		}
	}

	t.Run("with id_token_hint: straight back to the app with state", func(t *testing.T) {
		tab := newTab(t)
		hint, session := login(t, tab)
		q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {byeURI}, "state": {"bye-1"}}
		do(t, tab, "log out through end_session", chromedp.Navigate(endSession.URL+"?"+q.Encode()), chromedp.WaitVisible(chromedp.CSS(`#bye`)))
		if loc := location(t, tab); loc != byeURI+"?state=bye-1" {
			t.Errorf("landed on %s, want %s?state=bye-1", loc, byeURI)
		}
		if got := text(t, tab, "#bye"); got != "Logged out, state bye-1" {
			t.Errorf("relying party says %q", got)
		}
		wantLoggedOut(t, tab, session)
	})

	t.Run("without a hint: confirm, then back to the app", func(t *testing.T) {
		tab := newTab(t)
		_, session := login(t, tab)
		q := url.Values{"client_id": {"webapp"}, "post_logout_redirect_uri": {byeURI}, "state": {"bye-2"}}
		do(t, tab, "open end_session", chromedp.Navigate(endSession.URL+"?"+q.Encode()), chromedp.WaitVisible(chromedp.CSS(`button#logout`)))
		if h := text(t, tab, "h1"); h != "Log out of Keygate?" {
			t.Errorf("heading %q", h)
		}
		if body := text(t, tab, "main"); !strings.Contains(body, "Example App") || !strings.Contains(body, "alice") {
			t.Errorf("the confirmation page does not name the app and the user: %q", body)
		}
		if _, err := kg.IDP.Session(ctx, session); err != nil {
			t.Fatalf("the confirmation page ended the session: %v", err)
		}
		do(t, tab, "confirm", chromedp.Click(chromedp.CSS(`button#logout`)), chromedp.WaitVisible(chromedp.CSS(`#bye`)))
		if loc := location(t, tab); loc != byeURI+"?state=bye-2" {
			t.Errorf("landed on %s, want %s?state=bye-2", loc, byeURI)
		}
		wantLoggedOut(t, tab, session)
	})

	t.Run("without any parameter: confirm, then Keygate's logged-out page", func(t *testing.T) {
		tab := newTab(t)
		_, session := login(t, tab)
		do(t, tab, "confirm", chromedp.Navigate(endSession.URL), chromedp.WaitVisible(chromedp.CSS(`button#logout`)),
			chromedp.Click(chromedp.CSS(`button#logout`)), chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
		wantLoggedOut(t, tab, session)
	})
}

// sessionCookie reads Keygate's HttpOnly session cookie from Chromium.
func sessionCookie(t *testing.T, tab context.Context, site string) string {
	t.Helper()
	cookies, err := chromedp.Run(tab, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{site + "/"}})
		return res.Cookies, err
	})
	if err != nil {
		t.Fatalf("read cookies: %v", err)
	}
	for _, c := range cookies {
		if c.Name == "keygate_session" {
			return c.Value
		}
	}
	t.Fatalf("no keygate_session cookie for %s", site)
	return ""
}
