package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestBrowserLoginFromTheCommandLine registers a public web app with the CLI
// (`clients add --public --grant authorization_code,refresh_token
// --redirect-uri ...`), runs the real binary, and completes the code flow
// with PKCE over HTTP; the session and ID-token settings of config.yaml show
// in the cookie and the token.
func TestBrowserLoginFromTheCommandLine(t *testing.T) {
	t.Parallel()
	in := newInitialized(t, "sessions:\n  idle_timeout: 10m\n  absolute_timeout: 1h\ntokens:\n  id_token_ttl: 5m\n")
	const redirect = "http://127.0.0.1:9/callback"
	in.must(t, "clients", "add", "webapp", "--public", "--grant", "authorization_code,refresh_token",
		"--scope", "openid,profile,email", "--redirect-uri", redirect)
	out, _, err := in.run(t, nil, "clients", "list")
	if err != nil || !strings.Contains(out, redirect) {
		t.Fatalf("clients list does not show the redirect URI: %v\n%s", err, out)
	}
	in.addUser(t, nil, "alice's long passphrase", "alice", "--email", "alice@example.com")
	srv := in.serve(t)

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	verifier := strings.Repeat("v", 50)
	form := webappLoginForm(t, c, srv.url, redirect, verifier)
	form.Set("username", "alice")
	form.Set("password", "alice's long passphrase")
	code := webappLogin(t, c, srv.url, redirect, form)
	idToken := webappIDToken(t, srv.url, redirect, code, verifier)
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(idToken, ".")[1])
	var claims struct {
		Exp, Iat int64
		Nonce    string
		Email    string
	}
	_ = json.Unmarshal(payload, &claims)
	if claims.Exp-claims.Iat != 300 || claims.Nonce != "n1" || claims.Email != "alice@example.com" {
		t.Errorf("id_token claims %+v, want a 300 s life (tokens.id_token_ttl), nonce n1, the email", claims)
	}
}

// webappLoginForm starts webapp's code flow (state xyz, nonce n1, PKCE S256
// of verifier) at base's /authorize with c and returns the csrf and request
// fields of the login form it answers with.
func webappLoginForm(t *testing.T, c *http.Client, base, redirect, verifier string) url.Values {
	t.Helper()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {"webapp"}, "redirect_uri": {redirect}, "scope": {"openid email"},
		"state": {"xyz"}, "nonce": {"n1"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	res, err := c.Get(base + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	form := url.Values{}
	for _, m := range regexp.MustCompile(`name="(csrf|request)" value="([^"]*)"`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("csrf") == "" || form.Get("request") == "" {
		t.Fatalf("no login form at /authorize: %d %s", res.StatusCode, page)
	}
	return form
}

// webappLogin posts the login form with c, checks the session cookie lasts
// sessions.absolute_timeout (1 h) and the answer redirects to redirect with
// state xyz, and returns the code.
func webappLogin(t *testing.T, c *http.Client, base, redirect string, form url.Values) string {
	t.Helper()
	res, err := c.PostForm(base+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var session *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "keygate_session" {
			session = ck
		}
	}
	if session == nil || session.MaxAge != 3600 {
		t.Errorf("session cookie %+v, want Max-Age 3600 (sessions.absolute_timeout)", session)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirect+"?") || loc.Query().Get("state") != "xyz" {
		t.Fatalf("login answered %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	return loc.Query().Get("code")
}

// webappIDToken redeems code at base's /token as the public client webapp
// and returns the ID token, failing unless a refresh token comes with it.
func webappIDToken(t *testing.T, base, redirect, code, verifier string) string {
	t.Helper()
	res, err := http.PostForm(base+"/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {"webapp"},
		"code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tr struct {
		IDToken      string `json:"id_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tr); err != nil || res.StatusCode != 200 || tr.IDToken == "" || tr.RefreshToken == "" {
		t.Fatalf("token: %d %v %+v", res.StatusCode, err, tr)
	}
	return tr.IDToken
}
