package web_test

// End-to-end browser login in real headless Chromium (Debian's, never
// downloaded at test time), driven with chromedp. The relying party is an
// ordinary OIDC web app built with golang.org/x/oauth2 and
// github.com/coreos/go-oidc/v3: it discovers everything from
// /.well-known/openid-configuration, sends state, nonce and a PKCE S256
// challenge, exchanges the code, verifies the id_token (signature, issuer,
// audience, expiry, nonce, at_hash) and calls userinfo. Nothing in it is
// specific to Keygate.
//
// Without Chromium the test is skipped, unless KEYGATE_REQUIRE_BROWSER=1 (as
// .ci/run sets): then it fails. KEYGATE_UPDATE_SCREENSHOT=1 rewrites
// docs/login.png from the login page.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
)

// startChromium is kgtest.Chromium: one headless Chromium for the test, and
// a func that opens a tab in a new browser context.
func startChromium(t *testing.T) func(t *testing.T) context.Context {
	t.Helper()
	return kgtest.Chromium(t)
}

// relyingParty is a web app that logs its users in with Keygate.
type relyingParty struct {
	srv      *httptest.Server
	url      string // srv.URL, with localhost for 127.0.0.1 when the issuer is on localhost
	provider *oidc.Provider
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier

	mu      sync.Mutex
	pending map[string]pendingLogin // by state
	results []rpResult
}

type pendingLogin struct{ verifier, nonce string }

// rpResult is what the relying party learned at its callback.
type rpResult struct {
	Subject, Audience, Nonce string
	IDToken                  string // raw, for RP-initiated logout's id_token_hint
	IDClaims, UserInfo       map[string]any
	HasRefresh               bool
	RefreshToken             string
}

func randomString(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// newRelyingParty starts the app; register must register its redirect URI
// with Keygate and return the client id.
func newRelyingParty(t *testing.T, issuer string, register func(redirectURI string) string) *relyingParty {
	t.Helper()
	rp := &relyingParty{pending: map[string]pendingLogin{}}
	mux := http.NewServeMux()
	rp.srv = httptest.NewServer(mux)
	t.Cleanup(rp.srv.Close)

	provider, err := oidc.NewProvider(t.Context(), issuer) // discovery
	if err != nil {
		t.Fatal(err)
	}
	// Beside an issuer on localhost the app is on localhost too: one site,
	// as chromedp's navigation needs (passkeys_browser_test.go).
	rp.url = rp.srv.URL
	if strings.HasPrefix(issuer, "http://localhost:") {
		rp.url = strings.Replace(rp.url, "127.0.0.1", "localhost", 1)
	}
	clientID := register(rp.url + "/callback")
	rp.provider = provider
	rp.oauth = oauth2.Config{ClientID: clientID, Endpoint: provider.Endpoint(), RedirectURL: rp.url + "/callback",
		Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	rp.verifier = provider.Verifier(&oidc.Config{ClientID: clientID})

	mux.HandleFunc("GET /start", func(w http.ResponseWriter, r *http.Request) {
		state, nonce, verifier := randomString(t), randomString(t), oauth2.GenerateVerifier()
		rp.mu.Lock()
		rp.pending[state] = pendingLogin{verifier: verifier, nonce: nonce}
		rp.mu.Unlock()
		http.Redirect(w, r, rp.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		res, err := rp.callback(r)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<!doctype html><title>RP</title><p id="result" class="failed">login failed: %s</p>`, html.EscapeString(err.Error()))
			return
		}
		rp.mu.Lock()
		rp.results = append(rp.results, *res)
		rp.mu.Unlock()
		fmt.Fprintf(w, `<!doctype html><title>RP</title><p id="result">Hello, %s</p>`, html.EscapeString(fmt.Sprint(res.UserInfo["name"])))
	})
	// Where RP-initiated logout returns (its post_logout_redirect_uri).
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>RP</title><p id="bye">Logged out, state %s</p>`, html.EscapeString(r.URL.Query().Get("state")))
	})
	return rp
}

// callback is the relying party's side of the code flow.
func (rp *relyingParty) callback(r *http.Request) (*rpResult, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("authorization error %s: %s", e, q.Get("error_description"))
	}
	rp.mu.Lock()
	p, ok := rp.pending[q.Get("state")]
	delete(rp.pending, q.Get("state"))
	rp.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("unknown state %q", q.Get("state"))
	}
	ctx := r.Context()
	tok, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("verify id_token: %w", err)
	}
	if idt.Nonce != p.nonce {
		return nil, fmt.Errorf("nonce %q, want %q", idt.Nonce, p.nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		return nil, fmt.Errorf("at_hash: %w", err)
	}
	res := &rpResult{Subject: idt.Subject, Nonce: idt.Nonce, HasRefresh: tok.RefreshToken != "", RefreshToken: tok.RefreshToken, IDToken: raw}
	if len(idt.Audience) == 1 {
		res.Audience = idt.Audience[0]
	}
	if err := idt.Claims(&res.IDClaims); err != nil {
		return nil, err
	}
	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	if ui.Subject != idt.Subject {
		return nil, fmt.Errorf("userinfo sub %q, id_token sub %q", ui.Subject, idt.Subject)
	}
	if err := ui.Claims(&res.UserInfo); err != nil {
		return nil, err
	}
	return res, nil
}

func (rp *relyingParty) lastResult(t *testing.T) rpResult {
	t.Helper()
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.results) == 0 {
		t.Fatal("the relying party has no login")
	}
	return rp.results[len(rp.results)-1]
}

// do runs chromedp actions and fails the test with the page's URL on error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v (at %s: %.300q)", what, err, loc, body)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// fillLogin types into the login form and submits it; an empty user keeps
// the username the form holds.
func fillLogin(t *testing.T, ctx context.Context, user, pw string) {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.WaitVisible(chromedp.CSS(`input[name=username]`))}
	if user != "" {
		steps = append(steps, chromedp.SendKeys(chromedp.CSS(`input[name=username]`), user))
	}
	steps = append(steps, chromedp.SendKeys(chromedp.CSS(`input[name=password]`), pw),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)))
	do(t, ctx, "log in as "+user, steps...)
}

// startWithAlice starts Chromium, and Keygate with one user, alice (Alice
// Liddell, alice@example.com).
func startWithAlice(t *testing.T) (*kgtest.Server, func(t *testing.T) context.Context) {
	t.Helper()
	newTab := startChromium(t)
	kg := kgtest.Start(t, kgtest.Options{})
	if _, err := kg.IDP.Directory().CreateUser(t.Context(), idp.NewUser{Username: "alice", Password: brAlicePW, Email: "alice@example.com", Name: "Alice Liddell"}); err != nil {
		t.Fatal(err)
	}
	return kg, newTab
}

// newPublicApp starts a relying party registered with kg as c, a public
// client (PKCE, no secret) with its redirect URI filled in.
func newPublicApp(t *testing.T, kg *kgtest.Server, c *idp.Client) *relyingParty {
	t.Helper()
	return newRelyingParty(t, kg.URL, func(redirectURI string) string {
		c.Public, c.RedirectURIs = true, []string{redirectURI}
		if _, err := kg.IDP.Directory().RegisterClient(t.Context(), c, false); err != nil {
			t.Fatal(err)
		}
		return c.ID
	})
}

func TestBrowserLogin(t *testing.T) {
	t.Parallel()
	kg, newTab := startWithAlice(t)
	ctx := t.Context()
	// A public client, as a single-page or native app would be: PKCE, no secret.
	rp := newPublicApp(t, kg, &idp.Client{ID: "webapp", Name: "Example App",
		GrantTypes: []string{idp.GrantAuthorizationCode, idp.GrantRefreshToken}, Scopes: []string{"openid", "profile", "email"}})
	alice, err := kg.IDP.Directory().UserByLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("code flow with PKCE through the login form", func(t *testing.T) { browserCodeFlow(t, newTab, kg, rp, alice.ID) })
	t.Run("wrong password shows the error and keeps the username", func(t *testing.T) { browserWrongPassword(t, newTab, rp) })
	t.Run("signup then login", func(t *testing.T) { browserSignup(t, newTab, rp) })
	t.Run("logout ends the session", func(t *testing.T) { browserLogout(t, newTab, kg, rp) })

	rp.mu.Lock()
	if left := len(rp.pending); left > 1 { // the logout subtest leaves one flow unfinished
		t.Errorf("%d logins were never completed", left)
	}
	if slices.ContainsFunc(rp.results, func(r rpResult) bool { return r.Audience != "webapp" }) {
		t.Error("an id_token for another audience")
	}
	rp.mu.Unlock()
}

// browserCodeFlow: the relying party's login goes through Keygate's form and
// back with alice's claims in the ID token and userinfo; the second login needs
// no form (single sign-on).
func browserCodeFlow(t *testing.T, newTab func(t *testing.T) context.Context, kg *kgtest.Server, rp *relyingParty, aliceID string) {
	tab := newTab(t)
	do(t, tab, "start at the relying party",
		chromedp.Navigate(rp.srv.URL+"/start"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
	)
	if loc := location(t, tab); !strings.HasPrefix(loc, kg.URL+"/authorize?") {
		t.Fatalf("the login form is at %s, want Keygate's /authorize", loc)
	}
	if h := text(t, tab, "h1"); !strings.Contains(h, "Example App") {
		t.Errorf("login heading %q does not name the client", h)
	}
	if os.Getenv("KEYGATE_UPDATE_SCREENSHOT") == "1" {
		saveScreenshot(t, tab)
	}
	fillLogin(t, tab, "alice", brAlicePW)
	do(t, tab, "land on the relying party", chromedp.WaitVisible(chromedp.CSS(`#result`)))
	if got := text(t, tab, "#result"); got != "Hello, Alice Liddell" {
		t.Fatalf("relying party says %q", got)
	}
	if loc := location(t, tab); !strings.HasPrefix(loc, rp.srv.URL+"/callback?") {
		t.Errorf("landed on %s, want the redirect URI", loc)
	}
	res := rp.lastResult(t)
	if res.Subject != aliceID || res.Audience != "webapp" || res.Nonce == "" || !res.HasRefresh {
		t.Errorf("relying party result %+v", res)
	}
	for k, want := range map[string]any{"email": "alice@example.com", "name": "Alice Liddell", "preferred_username": "alice"} {
		if res.IDClaims[k] != want || res.UserInfo[k] != want {
			t.Errorf("%s: id_token %v, userinfo %v, want %v", k, res.IDClaims[k], res.UserInfo[k], want)
		}
	}
	if _, ok := res.IDClaims["auth_time"]; !ok {
		t.Error("id_token without auth_time")
	}

	// Single sign-on: a second login at the app needs no form.
	do(t, tab, "log in again", chromedp.Navigate(rp.srv.URL+"/start"), chromedp.WaitVisible(chromedp.CSS(`#result`)))
	if got := text(t, tab, "#result"); got != "Hello, Alice Liddell" {
		t.Errorf("second login: %q", got)
	}
}

// browserWrongPassword: a wrong password shows the error, keeps the username
// and clears the password; the form still leads to the app.
func browserWrongPassword(t *testing.T, newTab func(t *testing.T) context.Context, rp *relyingParty) {
	tab := newTab(t)
	do(t, tab, "open the login page", chromedp.Navigate(rp.srv.URL+"/start"))
	fillLogin(t, tab, "alice", "not alice's password")
	do(t, tab, "see the error", chromedp.WaitVisible(chromedp.CSS(`p.error`)))
	if got := text(t, tab, "p.error"); got != "Invalid username or password." {
		t.Errorf("error %q", got)
	}
	user, _ := chromedp.Run(tab, chromedp.Value(chromedp.CSS(`input[name=username]`)))
	pw, _ := chromedp.Run(tab, chromedp.Value(chromedp.CSS(`input[name=password]`)))
	if user != "alice" || pw != "" {
		t.Errorf("after a failure the form holds username %q, password %q; want alice and nothing", user, pw)
	}
	// The form still works, and still leads to the app.
	fillLogin(t, tab, "", brAlicePW)
	do(t, tab, "land on the relying party", chromedp.WaitVisible(chromedp.CSS(`#result`)))
	if got := text(t, tab, "#result"); got != "Hello, Alice Liddell" {
		t.Errorf("relying party says %q", got)
	}
}

// browserSignup: signing up from the app's login page lands on the app, and the
// new account logs in from another browser.
func browserSignup(t *testing.T, newTab func(t *testing.T) context.Context, rp *relyingParty) {
	tab := newTab(t)
	do(t, tab, "follow the sign-up link from the app's login page",
		chromedp.Navigate(rp.srv.URL+"/start"),
		chromedp.WaitVisible(chromedp.CSS(`a[href^="/signup"]`)),
		chromedp.Click(chromedp.CSS(`a[href^="/signup"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=email]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "zoe"),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "zoe@example.com"),
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "Zoe Zebra"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "zoe's long passphrase"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#result`)),
	)
	if got := text(t, tab, "#result"); got != "Hello, Zoe Zebra" {
		t.Fatalf("after signup the relying party says %q", got)
	}
	// Another browser: log in with the new account.
	other := newTab(t)
	do(t, other, "open the login page", chromedp.Navigate(rp.srv.URL+"/start"))
	fillLogin(t, other, "zoe@example.com", "zoe's long passphrase")
	do(t, other, "land on the relying party", chromedp.WaitVisible(chromedp.CSS(`#result`)))
	if got := text(t, other, "#result"); got != "Hello, Zoe Zebra" {
		t.Errorf("login with the new account: %q", got)
	}
}

// browserLogout: logging out of Keygate ends the session; /account and the app's
// next login ask for the password again.
func browserLogout(t *testing.T, newTab func(t *testing.T) context.Context, kg *kgtest.Server, rp *relyingParty) {
	tab := newTab(t)
	do(t, tab, "open /login", chromedp.Navigate(kg.URL+"/login"))
	fillLogin(t, tab, "alice", brAlicePW)
	do(t, tab, "see the account page", chromedp.WaitVisible(chromedp.CSS(`dl`)))
	if acc := text(t, tab, "main"); !strings.Contains(acc, "alice@example.com") || !strings.Contains(acc, "Alice Liddell") {
		t.Errorf("account page: %q", acc)
	}
	do(t, tab, "log out",
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	)
	do(t, tab, "visit /account", chromedp.Navigate(kg.URL+"/account"), chromedp.WaitVisible(chromedp.CSS(`input[name=password]`)))
	if loc := location(t, tab); !strings.HasPrefix(loc, kg.URL+"/login") {
		t.Errorf("/account after logout shows %s, want the login page", loc)
	}
	// The app's next login asks for the password again.
	do(t, tab, "log in at the app", chromedp.Navigate(rp.srv.URL+"/start"), chromedp.WaitVisible(chromedp.CSS(`input[name=password]`)))
	if loc := location(t, tab); !strings.HasPrefix(loc, kg.URL+"/authorize?") {
		t.Errorf("after logout the app's login goes to %s", loc)
	}
}

// saveScreenshot writes docs/login.png from the login page, at a phone-ish
// width, for README.md.
func saveScreenshot(t *testing.T, tab context.Context) {
	t.Helper()
	do(t, tab, "size the viewport", chromedp.EmulateViewport(480, 470, chromedp.EmulateScale(2)))
	png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "docs", "login.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(png))
}
