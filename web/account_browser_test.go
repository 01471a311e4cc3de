package web_test

// The account page in real headless Chromium: two browsers (separate
// browser contexts, so separate cookie jars) of one user see each other's
// session, end it, and change the password.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keygate/keygate/idp"
)

func TestBrowserAccount(t *testing.T) {
	t.Parallel()
	kg, newTab := startWithAlice(t)
	ctx := t.Context()
	script := &idp.Client{ID: "script", GrantTypes: []string{idp.GrantPassword, idp.GrantRefreshToken}, Scopes: []string{"openid"}}
	secret, err := kg.IDP.Directory().RegisterClient(ctx, script, true)
	if err != nil {
		t.Fatal(err)
	}
	// tokenRequest posts to /token as the script client.
	tokenRequest := func(form url.Values) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, kg.URL+"/token", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("script", secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, body
	}
	status, tok := tokenRequest(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {brAlicePW}, "scope": {"openid"}})
	refresh, _ := tok["refresh_token"].(string)
	if status != http.StatusOK || refresh == "" {
		t.Fatalf("password grant: %d %v", status, tok)
	}

	login := func(t *testing.T, pw string) context.Context {
		t.Helper()
		tab := newTab(t)
		do(t, tab, "open /login", chromedp.Navigate(kg.URL+"/login"))
		fillLogin(t, tab, "alice", pw)
		do(t, tab, "see the account page", chromedp.WaitVisible(chromedp.CSS(`#sessions`)))
		return tab
	}
	sessions := func(t *testing.T, tab context.Context) int {
		t.Helper()
		n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("li.session").length`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	wantLoginPage := func(t *testing.T, tab context.Context) {
		t.Helper()
		do(t, tab, "visit /account", chromedp.Navigate(kg.URL+"/account"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
		if loc := location(t, tab); !strings.HasPrefix(loc, kg.URL+"/login") {
			t.Fatalf("/account shows %s, want the login page", loc)
		}
	}

	a, b := login(t, brAlicePW), login(t, brAlicePW)
	do(t, a, "reload the account page", chromedp.Navigate(kg.URL+"/account"), chromedp.WaitVisible(chromedp.CSS(`#sessions`)))
	if n := sessions(t, a); n != 2 {
		t.Fatalf("the account page lists %d sessions, want 2", n)
	}
	if got := text(t, a, "li.session.current"); !strings.Contains(got, "this browser") {
		t.Errorf("the current session reads %q", got)
	}

	// End the other browser's session from this one.
	do(t, a, "end the other session",
		chromedp.Click(chromedp.CSS(`li.session:not(.current) form button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	if got := text(t, a, "p.notice"); got != "The session has ended." {
		t.Errorf("notice %q", got)
	}
	if n := sessions(t, a); n != 1 {
		t.Errorf("after ending it the page lists %d sessions", n)
	}
	wantLoginPage(t, b)

	// The other browser logs in again; then a password change ends it.
	b = login(t, brAlicePW)
	const newPW = "alice's new long passphrase"
	change := func(current string) {
		do(t, a, "change the password",
			chromedp.Navigate(kg.URL+"/account"),
			chromedp.WaitVisible(chromedp.CSS(`#current_password`)),
			chromedp.SendKeys(chromedp.CSS(`#current_password`), current),
			chromedp.SendKeys(chromedp.CSS(`#new_password`), newPW),
			chromedp.SendKeys(chromedp.CSS(`#new_password2`), newPW),
			chromedp.Click(chromedp.CSS(`form[action="/account/password"] button`)),
			chromedp.WaitVisible(chromedp.CSS(`p.error, p.notice`)))
	}
	change("not the password")
	if got := text(t, a, "p.error"); got != "Your current password is not right." {
		t.Errorf("wrong current password: %q", got)
	}
	do(t, b, "the other browser is still in", chromedp.Navigate(kg.URL+"/account"), chromedp.WaitVisible(chromedp.CSS(`#sessions`)))
	change(brAlicePW)
	if got := text(t, a, "p.notice"); !strings.HasPrefix(got, "Your password has been changed.") {
		t.Fatalf("after the change: %q", got)
	}
	if n := sessions(t, a); n != 1 {
		t.Errorf("after the change the page lists %d sessions", n)
	}
	wantLoginPage(t, b)
	if status, body := tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("the refresh token from before: %d %v, want invalid_grant", status, body)
	}
	// The new password logs in; the old one does not.
	c := newTab(t)
	do(t, c, "open /login", chromedp.Navigate(kg.URL+"/login"))
	fillLogin(t, c, "alice", brAlicePW)
	do(t, c, "see the error", chromedp.WaitVisible(chromedp.CSS(`p.error`)))
	login(t, newPW)
}
