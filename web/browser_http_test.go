package web_test

// HTTP-level tests of browser login: /authorize, the login, signup, account
// and logout pages, sessions, and the authorization_code grant, against the
// real server (real SQLite, real keys). A "browser" here is an http.Client
// with a cookie jar that does not follow redirects, so every Location is
// checked. ID tokens are verified with go-oidc, an independent library.
// Time is an injected clock: code lifetimes and session timeouts are crossed
// by advancing it.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/throttle"
)

const (
	brAlicePW = "alice's long passphrase"
	brBobPW   = "bob's long passphrase"

	brAppCB   = "https://app.example/callback"
	brAppCB2  = "https://app.example/cb?tenant=a%20b" // a registered URI with a query
	brConfCB  = "https://conf.example/cb"
	brOtherCB = "https://other.example/cb"
)

// brEnv is a running Keygate with browser clients and users:
//
//	webapp  public; authorization_code, refresh_token; openid profile email; two redirect URIs
//	conf    secret; authorization_code, refresh_token; openid profile email
//	other   secret; authorization_code; openid
//	pwonly  secret; password only, but a redirect URI
//	noredirect  secret; password only, no redirect URI
//	alice   Alice Liddell <alice@example.com>;  bob: no name, no email
type brEnv struct {
	*kgtest.Server
	clock  *kgtest.Clock
	secret map[string]string
}

func newBrEnv(t *testing.T, o kgtest.Options) *brEnv {
	t.Helper()
	if o.Clock == nil {
		o.Clock = kgtest.NewClock(time.Now().UTC().Truncate(time.Second))
	}
	e := &brEnv{Server: kgtest.Start(t, o), clock: o.Clock, secret: map[string]string{}}
	ctx := t.Context()
	oidcScopes := []string{"openid", "profile", "email"}
	code, refresh := idp.GrantAuthorizationCode, idp.GrantRefreshToken
	for _, c := range []*idp.Client{
		{ID: "webapp", Name: "Web App", Public: true, GrantTypes: []string{code, refresh}, Scopes: oidcScopes, RedirectURIs: []string{brAppCB, brAppCB2}},
		{ID: "conf", GrantTypes: []string{code, refresh}, Scopes: oidcScopes, RedirectURIs: []string{brConfCB}, Introspect: true}, // introspects webapp's tokens
		{ID: "other", GrantTypes: []string{code}, Scopes: []string{"openid"}, RedirectURIs: []string{brOtherCB}},
		{ID: "pwonly", GrantTypes: []string{idp.GrantPassword}, Scopes: oidcScopes, RedirectURIs: []string{"https://pw.example/cb"}},
		{ID: "noredirect", GrantTypes: []string{idp.GrantPassword}, Scopes: oidcScopes},
	} {
		secret, err := e.IDP.Directory().RegisterClient(ctx, c, !c.Public)
		if err != nil {
			t.Fatalf("register %s: %v", c.ID, err)
		}
		e.secret[c.ID] = secret
	}
	for _, u := range []idp.NewUser{
		{Username: "alice", Password: brAlicePW, Email: "alice@example.com", Name: "Alice Liddell"},
		{Username: "bob", Password: brBobPW},
	} {
		if _, err := e.IDP.Directory().CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// brBrowser is a cookie-keeping client that never follows redirects.
type brBrowser struct {
	e   *brEnv
	jar *cookiejar.Jar
	c   *http.Client
	hdr map[string]string // sent with every request
}

func (e *brEnv) browser(t *testing.T) *brBrowser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &brBrowser{e: e, jar: jar, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *brBrowser) do(t *testing.T, method, target string, form url.Values, hdr map[string]string) reply {
	t.Helper()
	base := ""
	if strings.HasPrefix(target, "/") {
		base = b.e.URL
	}
	all := maps.Clone(b.hdr)
	if all == nil {
		all = map[string]string{}
	}
	maps.Copy(all, hdr)
	return sendWith(t, b.c, base, request{method: method, path: target, form: form, hdr: all})
}

func (b *brBrowser) get(t *testing.T, target string) reply {
	t.Helper()
	return b.do(t, http.MethodGet, target, nil, nil)
}

func (b *brBrowser) post(t *testing.T, path string, form url.Values) reply {
	t.Helper()
	return b.do(t, http.MethodPost, path, form, nil)
}

// cookie returns the browser's cookie named name for the server ("" if none).
func (b *brBrowser) cookie(name string) string {
	u, _ := url.Parse(b.e.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *brBrowser) setCookie(name, value string) {
	u, _ := url.Parse(b.e.URL)
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// brHiddenFields returns a page's hidden form fields (kgtest.HiddenFields),
// which must include the CSRF token.
func brHiddenFields(t *testing.T, r reply) url.Values {
	t.Helper()
	v := kgtest.HiddenFields(r.body)
	if v.Get("csrf") == "" {
		t.Fatalf("page has no csrf field: %s", r)
	}
	return v
}

// brLoginPage checks r is the login form and returns its hidden fields.
func brLoginPage(t *testing.T, r reply) url.Values {
	t.Helper()
	return brFormPage(t, r, "the login form", `name="password"`)
}

// brFormPage checks r is the page called what, recognized by mark, and
// returns its hidden fields.
func brFormPage(t *testing.T, r reply, what, mark string) url.Values {
	t.Helper()
	if r.status != http.StatusOK || !strings.Contains(string(r.body), mark) {
		t.Fatalf("want %s, got %s", what, r)
	}
	return brHiddenFields(t, r)
}

// loginForm gets path, checks it is the login form and returns its hidden
// fields.
func (b *brBrowser) loginForm(t *testing.T, path string) url.Values {
	t.Helper()
	return brLoginPage(t, b.get(t, path))
}

// submit posts the form's hidden fields plus kv to path.
func (b *brBrowser) submit(t *testing.T, path string, hidden url.Values, kv ...string) reply {
	t.Helper()
	f := url.Values{}
	for k, v := range hidden {
		f[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return b.post(t, path, f)
}

// brPKCE is a verifier and its S256 challenge, computed here, not by Keygate.
func brPKCE(seed string) (verifier, challenge string) {
	seedSum := sha256.Sum256([]byte(seed))
	verifier = base64.RawURLEncoding.EncodeToString(seedSum[:]) + "-._~" // 47 unreserved characters
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authParams is an authorization request for client with PKCE.
func brAuthParams(client, redirect, challenge string, kv ...string) url.Values {
	v := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirect},
		"scope": {"openid profile email"}, "state": {"st-" + client}, "nonce": {"n-" + client}}
	if challenge != "" {
		v.Set("code_challenge", challenge)
		v.Set("code_challenge_method", "S256")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

// wantCodeRedirect checks r redirects to redirect with a code and the state,
// and returns the code.
func (e *brEnv) wantCodeRedirect(t *testing.T, r reply, redirect, state string) string {
	t.Helper()
	if r.status != http.StatusFound && r.status != http.StatusSeeOther {
		t.Fatalf("want a redirect with a code, got %s", r)
	}
	loc := r.location(t)
	reg, _ := url.Parse(redirect)
	if loc.Scheme != reg.Scheme || loc.Host != reg.Host || loc.Path != reg.Path {
		t.Fatalf("redirected to %s, want %s", loc, redirect)
	}
	q := loc.Query()
	for k, v := range reg.Query() { // the registered query is kept
		if !slices.Equal(q[k], v) {
			t.Errorf("redirect lost its query parameter %s=%v: %s", k, v, loc)
		}
	}
	if q.Get("state") != state || q.Has("state") != (state != "") {
		t.Errorf("state %q (present %v), want %q", q.Get("state"), q.Has("state"), state)
	}
	if q.Get("iss") != e.URL {
		t.Errorf("iss %q, want %q (RFC 9207)", q.Get("iss"), e.URL)
	}
	if q.Get("error") != "" || q.Get("code") == "" {
		t.Fatalf("no code in %s", loc)
	}
	return q.Get("code")
}

// wantErrorRedirect checks r sends the client an RFC 6749 §4.1.2.1 error.
func brWantErrorRedirect(t *testing.T, r reply, redirect, code, state string) {
	t.Helper()
	if r.status != http.StatusFound {
		t.Fatalf("want a redirect with error=%s, got %s", code, r)
	}
	loc := r.location(t)
	if !strings.HasPrefix(loc.String(), redirect) {
		t.Fatalf("error sent to %s, want %s", loc, redirect)
	}
	q := loc.Query()
	if q.Get("error") != code || q.Get("error_description") == "" || q.Has("code") {
		t.Errorf("error %q description %q, want %s: %s", q.Get("error"), q.Get("error_description"), code, loc)
	}
	if q.Get("state") != state || q.Has("state") != (state != "") {
		t.Errorf("state %q (present %v), want %q", q.Get("state"), q.Has("state"), state)
	}
	for _, r := range q.Get("error_description") { // RFC 6749 §4.1.2.1's character set
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			t.Errorf("error_description %q has %q", q.Get("error_description"), r)
			break
		}
	}
}

// brWantPage checks r is an HTML error page that redirects nowhere.
func brWantPage(t *testing.T, r reply, status int, mention string) {
	t.Helper()
	if r.status != status || r.hdr.Get("Location") != "" {
		t.Fatalf("want a %d page and no Location, got %d Location %q: %s", status, r.status, r.hdr.Get("Location"), r.body)
	}
	if ct := r.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want HTML", ct)
	}
	if !strings.Contains(html.UnescapeString(string(r.body)), mention) {
		t.Errorf("page does not mention %q: %s", mention, r.body)
	}
}

// login runs /authorize and the login form, and returns the code.
func (b *brBrowser) login(t *testing.T, params url.Values, user, pw string) string {
	t.Helper()
	hidden := brLoginPage(t, b.get(t, "/authorize?"+params.Encode()))
	r := b.submit(t, "/login", hidden, "username", user, "password", pw)
	return b.e.wantCodeRedirect(t, r, params.Get("redirect_uri"), params.Get("state"))
}

// token POSTs to /token; client authenticates with its secret when it has one.
func (e *brEnv) token(t *testing.T, client string, kv ...string) reply {
	t.Helper()
	r := request{path: "/token", form: url.Values{}}
	for i := 0; i+1 < len(kv); i += 2 {
		r.form.Set(kv[i], kv[i+1])
	}
	if secret := e.secret[client]; secret != "" {
		r.basic = []string{client, secret}
	} else if client != "" {
		r.form.Set("client_id", client) // a public client: client_id alone
	}
	return send(t, e.URL, r)
}

type brTokens struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
}

func (e *brEnv) exchange(t *testing.T, client, code, redirect, verifier string) brTokens {
	t.Helper()
	r := e.token(t, client, "grant_type", "authorization_code", "code", code, "redirect_uri", redirect, "code_verifier", verifier)
	if r.status != http.StatusOK {
		t.Fatalf("code exchange: %s", r)
	}
	if cc := r.hdr.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("token response Cache-Control %q", cc)
	}
	var tr brTokens
	if err := json.Unmarshal(r.body, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.AccessToken == "" || tr.IDToken == "" || tr.TokenType != "Bearer" || tr.ExpiresIn <= 0 {
		t.Fatalf("token response lacks access_token, id_token, token_type or expires_in: %s", r)
	}
	return tr
}

// brWantOAuthError is wantOAuthError, also matching the mention's case,
// and stopping the test on a mismatch.
func brWantOAuthError(t *testing.T, r reply, status int, code, mention string) {
	t.Helper()
	ok := wantOAuthError(t, r, status, code, mention)
	if desc, _ := r.object(t)["error_description"].(string); !ok || !strings.Contains(desc, mention) {
		t.Fatalf("got %s, want %d %s mentioning %q", r, status, code, mention)
	}
}

// wantWinnerRevoked checks the answers to concurrent redemptions of one
// code: exactly one got tokens, the others invalid_grant, and the winner's
// tokens were revoked by the others' reuse.
func (e *brEnv) wantWinnerRevoked(t *testing.T, res []reply) {
	t.Helper()
	var won []brTokens
	for _, r := range res {
		switch r.status {
		case http.StatusOK:
			var tr brTokens
			_ = json.Unmarshal(r.body, &tr)
			won = append(won, tr)
		case http.StatusBadRequest:
			brWantOAuthError(t, r, http.StatusBadRequest, "invalid_grant", "")
		default:
			t.Errorf("redemption: %s", r)
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d redemptions succeeded, want 1", len(won))
	}
	if e.active(t, won[0].AccessToken) || e.active(t, won[0].RefreshToken) {
		t.Error("the winner's tokens survived the concurrent reuse")
	}
}

// active answers whether a token is active, asked by a confidential client
// allowed to introspect any token.
func (e *brEnv) active(t *testing.T, tok string) bool {
	t.Helper()
	r := send(t, e.URL, request{path: "/introspect", form: formOf("token", tok), basic: []string{"conf", e.secret["conf"]}})
	if r.status != http.StatusOK {
		t.Fatalf("introspect: %s", r)
	}
	return r.object(t)["active"] == true
}

func (e *brEnv) userinfo(t *testing.T, at string) (int, map[string]any) {
	t.Helper()
	r := send(t, e.URL, request{method: http.MethodGet, path: "/userinfo", hdr: map[string]string{"Authorization": "Bearer " + at}})
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	return r.status, m
}

// verifyIDToken checks an ID token with go-oidc against the live discovery
// document and JWKS, and returns its claims.
func (e *brEnv) verifyIDToken(t *testing.T, client, raw, accessToken string) (*oidc.IDToken, map[string]any) {
	t.Helper()
	ctx := oidc.ClientContext(t.Context(), http.DefaultClient)
	p, err := oidc.NewProvider(ctx, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	v := p.Verifier(&oidc.Config{ClientID: client, Now: e.clock.Now})
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc rejects the id_token: %v", err)
	}
	if accessToken != "" {
		if err := tok.VerifyAccessToken(accessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	// The header: typ JWT and a kid from the JWKS (go-oidc checked the kid).
	hdrJSON, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	var hdr map[string]any
	_ = json.Unmarshal(hdrJSON, &hdr)
	if hdr["typ"] != "JWT" || hdr["alg"] != "RS256" || hdr["kid"] == nil {
		t.Errorf("id_token header %v, want typ JWT, alg RS256 and a kid", hdr)
	}
	return tok, claims
}

// ---------------------------------------------------------------------------

// TestCodeFlowHTTP runs the whole flow for a public client with PKCE and for
// a confidential one, and checks every token issued.
func TestCodeFlowHTTP(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	aliceID := func() string { u, _ := e.IDP.Directory().UserByLogin(t.Context(), "alice"); return u.ID }()

	t.Run("public client, PKCE", func(t *testing.T) { codeFlowPublicPKCE(t, e, aliceID) })
	t.Run("confidential client, Basic auth, no PKCE, scope openid only", func(t *testing.T) { codeFlowConfidential(t, e) })
	t.Run("scope email only; a user without name or email", func(t *testing.T) { codeFlowScopeEmail(t, e) })
	t.Run("client without refresh_token gets none", func(t *testing.T) { codeFlowNoRefreshGrant(t, e) })
}

// codeFlowPublicPKCE runs the flow for the public client with PKCE and checks
// the tokens, the ID token's claims, userinfo, the refresh token, and that the
// session spares the form the second time.
func codeFlowPublicPKCE(t *testing.T, e *brEnv, aliceID string) {
	b := e.browser(t)
	verifier, challenge := brPKCE("a")
	params := brAuthParams("webapp", brAppCB, challenge)
	loginAt := e.clock.Now()
	code := b.login(t, params, "alice", brAlicePW)
	e.clock.Advance(5 * time.Second)
	tr := e.exchange(t, "webapp", code, brAppCB, verifier)
	if tr.RefreshToken == "" || tr.Scope != "openid profile email" {
		t.Errorf("token response %+v: want a refresh token and the scope", tr)
	}
	tok, claims := e.verifyIDToken(t, "webapp", tr.IDToken, tr.AccessToken)
	if tok.Subject != aliceID || tok.Nonce != "n-webapp" || claims["auth_time"] != float64(loginAt.Unix()) {
		t.Errorf("id_token sub %s nonce %q auth_time %v; want %s, n-webapp, %d", tok.Subject, tok.Nonce, claims["auth_time"], aliceID, loginAt.Unix())
	}
	for k, want := range map[string]any{"name": "Alice Liddell", "email": "alice@example.com", "preferred_username": "alice",
		"email_verified": false, "aud": "webapp", "iss": e.URL} {
		if claims[k] != want {
			t.Errorf("id_token %s = %v, want %v", k, claims[k], want)
		}
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 3600 {
		t.Errorf("id_token lives %v s, want 3600 (the default id_token TTL)", exp-iat)
	}
	// userinfo answers the same claims.
	status, ui := e.userinfo(t, tr.AccessToken)
	if status != 200 {
		t.Fatalf("userinfo: %d %v", status, ui)
	}
	for _, k := range []string{"sub", "name", "email", "preferred_username", "email_verified"} {
		if ui[k] != claims[k] {
			t.Errorf("userinfo %s = %v, id_token has %v", k, ui[k], claims[k])
		}
	}
	// The refresh token works (public client: client_id only).
	if r := e.token(t, "webapp", "grant_type", "refresh_token", "refresh_token", tr.RefreshToken); r.status != 200 {
		t.Errorf("refresh: %s", r)
	}

	// The session is remembered: no form the second time.
	_, challenge2 := brPKCE("b")
	r := b.get(t, "/authorize?"+brAuthParams("webapp", brAppCB2, challenge2, "state", "second").Encode())
	e.wantCodeRedirect(t, r, brAppCB2, "second")
}

// codeFlowConfidential: a confidential client with Basic auth and no PKCE,
// scope openid only: the ID token carries no profile or email claims.
func codeFlowConfidential(t *testing.T, e *brEnv) {
	b := e.browser(t)
	params := brAuthParams("conf", brConfCB, "", "scope", "openid")
	code := b.login(t, params, "alice@example.com", brAlicePW) // by email
	tr := e.exchange(t, "conf", code, brConfCB, "")
	_, claims := e.verifyIDToken(t, "conf", tr.IDToken, tr.AccessToken)
	for _, k := range []string{"name", "email", "preferred_username"} {
		if _, ok := claims[k]; ok {
			t.Errorf("id_token for scope openid carries %s", k)
		}
	}
	if claims["nonce"] != "n-conf" {
		t.Errorf("nonce %v", claims["nonce"])
	}
}

// codeFlowScopeEmail: scope openid email gives the email only; bob, who has
// no name or email, gets neither, and no nonce when none was sent.
func codeFlowScopeEmail(t *testing.T, e *brEnv) {
	b := e.browser(t)
	_, claims := e.verifyIDToken(t, "conf", e.exchange(t, "conf",
		b.login(t, brAuthParams("conf", brConfCB, "", "scope", "openid email"), "alice", brAlicePW), brConfCB, "").IDToken, "")
	if claims["email"] != "alice@example.com" || claims["name"] != nil {
		t.Errorf("scope openid email: claims %v", claims)
	}
	_, claims = e.verifyIDToken(t, "conf", e.exchange(t, "conf",
		e.browser(t).login(t, brAuthParams("conf", brConfCB, "", "nonce", ""), "bob", brBobPW), brConfCB, "").IDToken, "")
	if claims["preferred_username"] != "bob" || claims["email"] != nil || claims["name"] != nil || claims["nonce"] != nil {
		t.Errorf("bob without a nonce: claims %v", claims)
	}
}

// codeFlowNoRefreshGrant: a client without the refresh_token grant gets
// no refresh token.
func codeFlowNoRefreshGrant(t *testing.T, e *brEnv) {
	tr := e.exchange(t, "other", e.browser(t).login(t, brAuthParams("other", brOtherCB, "", "scope", "openid"), "alice", brAlicePW), brOtherCB, "")
	if tr.RefreshToken != "" {
		t.Errorf("refresh token for a client without the grant")
	}
}

// TestAuthorizePrompts covers prompt=login, prompt=none and max_age.
func TestAuthorizePrompts(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	_, challenge := brPKCE("p")

	anon := e.browser(t)
	brWantErrorRedirect(t, anon.get(t, "/authorize?"+brAuthParams("webapp", brAppCB, challenge, "prompt", "none").Encode()),
		brAppCB, "login_required", "st-webapp")

	b := e.browser(t)
	b.login(t, brAuthParams("webapp", brAppCB, challenge), "alice", brAlicePW)
	e.wantCodeRedirect(t, b.get(t, "/authorize?"+brAuthParams("webapp", brAppCB, challenge, "prompt", "none").Encode()), brAppCB, "st-webapp")

	// prompt=login and max_age=0 show the form although a session exists,
	// with the username filled in.
	for _, kv := range [][]string{{"prompt", "login"}, {"max_age", "0"}, {"prompt", "login consent"}} {
		e.clock.Advance(2 * time.Second)
		r := b.get(t, "/authorize?"+brAuthParams("webapp", brAppCB, challenge, kv...).Encode())
		hidden := brLoginPage(t, r)
		if !strings.Contains(string(r.body), `value="alice"`) {
			t.Errorf("%v: the form does not offer the session's username", kv)
		}
		e.wantCodeRedirect(t, b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW), brAppCB, "st-webapp")
	}
	// max_age larger than the session's age: no form.
	e.wantCodeRedirect(t, b.get(t, "/authorize?"+brAuthParams("webapp", brAppCB, challenge, "max_age", "3600").Encode()), brAppCB, "st-webapp")
	e.clock.Advance(2 * time.Minute)
	brLoginPage(t, b.get(t, "/authorize?"+brAuthParams("webapp", brAppCB, challenge, "max_age", "60").Encode()))

	// login_hint fills in the username.
	r := anon.get(t, "/authorize?"+brAuthParams("webapp", brAppCB, challenge, "login_hint", "bob").Encode())
	brLoginPage(t, r)
	if !strings.Contains(string(r.body), `value="bob"`) {
		t.Error("login_hint is not filled in")
	}
}

// TestAuthorizeRefusals: a bad client or redirect URI is an error page with no
// Location (never an open redirect); everything else goes back to the client.
func TestAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	b := e.browser(t)
	_, challenge := brPKCE("r")
	get := func(v url.Values) reply { return b.get(t, "/authorize?"+v.Encode()) }

	for name, tc := range map[string]struct {
		v       url.Values
		mention string
	}{
		"unknown client":                 {brAuthParams("nobody", brAppCB, challenge), "unknown client"},
		"no client_id":                   {brAuthParams("", brAppCB, challenge, "client_id", ""), "client_id"},
		"no redirect_uri":                {brAuthParams("webapp", "", challenge, "redirect_uri", ""), "redirect_uri"},
		"unregistered redirect_uri":      {brAuthParams("webapp", "https://evil.example/callback", challenge), "not registered"},
		"prefix of a registered one":     {brAuthParams("webapp", "https://app.example/call", challenge), "not registered"},
		"registered one plus a path":     {brAuthParams("webapp", brAppCB+"/../../evil", challenge), "not registered"},
		"registered one plus a query":    {brAuthParams("webapp", brAppCB+"?next=https://evil.example", challenge), "not registered"},
		"registered one plus a fragment": {brAuthParams("webapp", brAppCB+"#x", challenge), "not registered"},
		"other case":                     {brAuthParams("webapp", "https://APP.example/callback", challenge), "not registered"},
		"trailing slash":                 {brAuthParams("webapp", brAppCB+"/", challenge), "not registered"},
		"userinfo trick":                 {brAuthParams("webapp", "https://app.example@evil.example/callback", challenge), "not registered"},
		"another client's URI":           {brAuthParams("webapp", brConfCB, challenge), "not registered"},
		"client with no redirect URI":    {brAuthParams("noredirect", brAppCB, challenge), "no registered redirect URI"},
		"repeated redirect_uri": {func() url.Values {
			v := brAuthParams("webapp", brAppCB, challenge)
			v.Add("redirect_uri", "https://evil.example/cb")
			return v
		}(), "repeated"},
	} {
		t.Run(name, func(t *testing.T) {
			brWantPage(t, get(tc.v), http.StatusBadRequest, tc.mention)
		})
	}

	for name, tc := range map[string]struct {
		v    url.Values
		code string
	}{
		"response_type token":       {brAuthParams("webapp", brAppCB, challenge, "response_type", "token"), "unsupported_response_type"},
		"no response_type":          {brAuthParams("webapp", brAppCB, challenge, "response_type", ""), "invalid_request"},
		"scope without openid":      {brAuthParams("webapp", brAppCB, challenge, "scope", "profile email"), "invalid_scope"},
		"scope not allowed":         {brAuthParams("webapp", brAppCB, challenge, "scope", "openid admin"), "invalid_scope"},
		"public client, no PKCE":    {brAuthParams("webapp", brAppCB, ""), "invalid_request"},
		"PKCE plain":                {brAuthParams("webapp", brAppCB, challenge, "code_challenge_method", "plain"), "invalid_request"},
		"PKCE without a method":     {brAuthParams("webapp", brAppCB, challenge, "code_challenge_method", ""), "invalid_request"},
		"method without challenge":  {brAuthParams("conf", brConfCB, "", "code_challenge_method", "S256"), "invalid_request"},
		"malformed challenge":       {brAuthParams("webapp", brAppCB, "too-short", "code_challenge_method", "S256"), "invalid_request"},
		"response_mode fragment":    {brAuthParams("webapp", brAppCB, challenge, "response_mode", "fragment"), "invalid_request"},
		"request object":            {brAuthParams("webapp", brAppCB, challenge, "request", "eyJ.e30."), "request_not_supported"},
		"unknown prompt":            {brAuthParams("webapp", brAppCB, challenge, "prompt", `dan"ce\\é`), "invalid_request"},
		"prompt none with login":    {brAuthParams("webapp", brAppCB, challenge, "prompt", "none login"), "invalid_request"},
		"bad max_age":               {brAuthParams("webapp", brAppCB, challenge, "max_age", "-5"), "invalid_request"},
		"client without code grant": {brAuthParams("pwonly", "https://pw.example/cb", challenge), "unauthorized_client"},
		"repeated scope": {func() url.Values {
			v := brAuthParams("webapp", brAppCB, challenge)
			v.Add("scope", "openid")
			return v
		}(), "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			v := tc.v
			brWantErrorRedirect(t, get(v), v.Get("redirect_uri"), tc.code, v.Get("state"))
			// state is optional (RFC 6749 §4.1.1): without one, none comes back.
			v.Del("state")
			brWantErrorRedirect(t, get(v), v.Get("redirect_uri"), tc.code, "")
		})
	}

	t.Run("state is echoed when present, absent when not", func(t *testing.T) {
		verifier, ch := brPKCE("s")
		for _, state := range []string{"", "a state with spaces & symbols =?/é"} {
			v := brAuthParams("webapp", brAppCB, ch, "state", state)
			code := e.browser(t).login(t, v, "alice", brAlicePW)
			e.exchange(t, "webapp", code, brAppCB, verifier)
		}
	})

	t.Run("POST /authorize is served like GET", func(t *testing.T) {
		r := b.post(t, "/authorize", brAuthParams("webapp", brAppCB, challenge))
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.hdr.Get("Location"), "/authorize?") {
			t.Fatalf("POST /authorize: %s %v", r, r.hdr)
		}
		brLoginPage(t, b.get(t, r.hdr.Get("Location")))
	})
}

// TestCodeExchangeRefusals: every way to misuse a code at /token.
func TestCodeExchangeRefusals(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	verifier, challenge := brPKCE("x")
	codeFor := func(t *testing.T, client, redirect, challenge string) string {
		t.Helper()
		return e.browser(t).login(t, brAuthParams(client, redirect, challenge), "alice", brAlicePW)
	}
	ex := func(client, code, redirect, verifier string) reply {
		return e.token(t, client, "grant_type", "authorization_code", "code", code, "redirect_uri", redirect, "code_verifier", verifier)
	}

	t.Run("wrong or missing PKCE verifier", func(t *testing.T) {
		code := codeFor(t, "webapp", brAppCB, challenge)
		other, _ := brPKCE("y")
		brWantOAuthError(t, ex("webapp", code, brAppCB, other), 400, "invalid_grant", "code_verifier does not match")
		brWantOAuthError(t, ex("webapp", code, brAppCB, ""), 400, "invalid_grant", "code_verifier is required")
		brWantOAuthError(t, ex("webapp", code, brAppCB, "short"), 400, "invalid_grant", "code_verifier")
		brWantOAuthError(t, ex("webapp", code, brAppCB, challenge), 400, "invalid_grant", "code_verifier") // the challenge itself
		e.exchange(t, "webapp", code, brAppCB, verifier)                                                   // the right one still works
	})

	t.Run("verifier without a challenge (PKCE downgrade)", func(t *testing.T) {
		code := codeFor(t, "conf", brConfCB, "")
		brWantOAuthError(t, ex("conf", code, brConfCB, verifier), 400, "invalid_grant", "no code_challenge")
	})

	t.Run("reused code revokes the tokens of the first use", func(t *testing.T) {
		code := codeFor(t, "webapp", brAppCB, challenge)
		first := e.exchange(t, "webapp", code, brAppCB, verifier)
		if !e.active(t, first.AccessToken) || !e.active(t, first.RefreshToken) {
			t.Fatal("the first tokens are not active")
		}
		brWantOAuthError(t, ex("webapp", code, brAppCB, verifier), 400, "invalid_grant", "already used")
		if e.active(t, first.AccessToken) {
			t.Error("access token from the first redemption still active after reuse")
		}
		if e.active(t, first.RefreshToken) {
			t.Error("refresh token from the first redemption still active after reuse")
		}
		brWantOAuthError(t, e.token(t, "webapp", "grant_type", "refresh_token", "refresh_token", first.RefreshToken), 400, "invalid_grant", "")
		if status, _ := e.userinfo(t, first.AccessToken); status != http.StatusUnauthorized {
			t.Errorf("userinfo with a revoked token: %d", status)
		}
	})

	t.Run("concurrent redemptions: one wins, and its tokens are revoked by the others", func(t *testing.T) {
		code := codeFor(t, "webapp", brAppCB, challenge)
		const n = 6
		res := make([]reply, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { res[i] = ex("webapp", code, brAppCB, verifier) })
		}
		wg.Wait()
		e.wantWinnerRevoked(t, res)
	})

	t.Run("code from another client", func(t *testing.T) {
		code := codeFor(t, "conf", brConfCB, challenge)
		brWantOAuthError(t, ex("other", code, brConfCB, verifier), 400, "invalid_grant", "another client")
		brWantOAuthError(t, ex("webapp", code, brConfCB, verifier), 400, "invalid_grant", "another client")
		e.exchange(t, "conf", code, brConfCB, verifier) // not spent by the attempts
	})

	t.Run("mismatched or missing redirect_uri", func(t *testing.T) {
		code := codeFor(t, "webapp", brAppCB, challenge)
		brWantOAuthError(t, ex("webapp", code, brAppCB2, verifier), 400, "invalid_grant", "redirect_uri does not match")
		brWantOAuthError(t, ex("webapp", code, brAppCB+"/", verifier), 400, "invalid_grant", "redirect_uri does not match")
		brWantOAuthError(t, ex("webapp", code, "", verifier), 400, "invalid_request", "redirect_uri is required")
	})

	t.Run("expired code", func(t *testing.T) {
		code := codeFor(t, "webapp", brAppCB, challenge)
		e.clock.Advance(61 * time.Second)
		brWantOAuthError(t, ex("webapp", code, brAppCB, verifier), 400, "invalid_grant", "expired")
	})

	t.Run("unknown or missing code", func(t *testing.T) {
		brWantOAuthError(t, ex("webapp", "kgc_made-up", brAppCB, verifier), 400, "invalid_grant", "unknown")
		brWantOAuthError(t, ex("webapp", "", brAppCB, verifier), 400, "invalid_request", "code is required")
	})

	t.Run("client authentication", func(t *testing.T) {
		code := codeFor(t, "conf", brConfCB, "")
		// A confidential client must authenticate: its client_id alone is not enough.
		r := e.token(t, "", "grant_type", "authorization_code", "code", code, "redirect_uri", brConfCB, "client_id", "conf")
		brWantOAuthError(t, r, 401, "invalid_client", "")
		// A public client with an empty Basic password (how golang.org/x/oauth2
		// probes first) is refused, and the code survives for the retry.
		code = codeFor(t, "webapp", brAppCB, challenge)
		req, _ := http.NewRequest(http.MethodPost, e.URL+"/token", strings.NewReader(url.Values{"grant_type": {"authorization_code"},
			"code": {code}, "redirect_uri": {brAppCB}, "code_verifier": {verifier}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("webapp", "")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 {
			t.Errorf("public client with Basic and no secret: %d, want 401", res.StatusCode)
		}
		e.exchange(t, "webapp", code, brAppCB, verifier)
	})
}

// TestLoginForm covers the form itself: CSRF, failures, throttling, cookies,
// session fixation, open redirects, logout and timeouts.
func TestLoginForm(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{UserLimits: throttle.Limits{Burst: 3, Every: time.Minute}})
	t.Run("page: labels, autocomplete, security headers, no script", func(t *testing.T) { loginFormPage(t, e) })
	t.Run("CSRF token missing or wrong", func(t *testing.T) { loginFormCSRF(t, e) })
	t.Run("wrong password: one generic message, username kept", func(t *testing.T) { loginFormWrongPassword(t, e) })
	t.Run("throttling: 429 with Retry-After, even for the right password", func(t *testing.T) { loginFormThrottling(t, e) })
	t.Run("cookies: session HttpOnly SameSite=Lax, CSRF SameSite=Strict, not Secure over http", func(t *testing.T) { loginFormCookies(t, e) })
	t.Run("session fixation: a cookie set before login is never the session after it", func(t *testing.T) { loginFormSessionFixation(t, e) })
	t.Run("logged in: GET /login goes to /account; the account page shows the user", func(t *testing.T) { loginFormLoggedIn(t, e) })
	t.Run("open redirects through return_to are ignored", func(t *testing.T) { loginFormOpenRedirects(t, e) })
	t.Run("logout ends the session", func(t *testing.T) { loginFormLogout(t, e) })
	t.Run("tampered login request", func(t *testing.T) { loginFormTamperedRequest(t, e) })
}

// loginFormPage checks the login page: labels, autocomplete, security headers,
// no script, and the stylesheet it links.
func loginFormPage(t *testing.T, e *brEnv) {
	r := e.browser(t).get(t, "/login")
	brLoginPage(t, r)
	for _, want := range []string{`<label for="username">`, `<label for="password">`, `id="username" name="username"`,
		`autocomplete="username"`, `autocomplete="current-password"`, `type="password"`, `href="/signup"`,
		`<meta name="viewport"`, `/static/style.css`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	if strings.Contains(strings.ToLower(string(r.body)), "<script") {
		t.Error("login page has a script")
	}
	for h, want := range map[string]string{"Cache-Control": "no-store", "X-Frame-Options": "DENY",
		"Content-Security-Policy": "frame-ancestors 'none'", "Content-Type": "text/html"} {
		if !strings.Contains(r.hdr.Get(h), want) {
			t.Errorf("%s %q, want %q", h, r.hdr.Get(h), want)
		}
	}
	css := e.browser(t).get(t, "/static/style.css")
	if css.status != 200 || !strings.HasPrefix(css.hdr.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %s", css.status, css.hdr.Get("Content-Type"))
	}
}

// loginFormCSRF: a missing, empty or wrong CSRF token, a token without its
// cookie and a cross-site POST are refused, on /login, /signup and /logout.
func loginFormCSRF(t *testing.T, e *brEnv) {
	b := e.browser(t)
	hidden := b.loginForm(t, "/login")
	creds := []string{"username", "alice", "password", brAlicePW}
	for name, edit := range map[string]func(url.Values){
		"missing": func(v url.Values) { v.Del("csrf") },
		"empty":   func(v url.Values) { v.Set("csrf", "") },
		"wrong":   func(v url.Values) { v.Set("csrf", strings.Repeat("x", 32)) },
	} {
		h := url.Values{}
		for k, v := range hidden {
			h[k] = v
		}
		edit(h)
		r := b.submit(t, "/login", h, creds...)
		brWantPage(t, r, http.StatusForbidden, "did not come from this site")
		if b.cookie("keygate_session") != "" {
			t.Fatalf("CSRF %s: a session was started", name)
		}
	}
	// The right token without the cookie it must match.
	fresh := e.browser(t)
	brWantPage(t, fresh.submit(t, "/login", hidden, creds...), http.StatusForbidden, "did not come from this site")
	// A cross-site POST is refused even with a good token.
	r := b.do(t, http.MethodPost, "/login", func() url.Values {
		v := url.Values{"username": {"alice"}, "password": {brAlicePW}}
		v.Set("csrf", hidden.Get("csrf"))
		return v
	}(), map[string]string{"Sec-Fetch-Site": "cross-site"})
	brWantPage(t, r, http.StatusForbidden, "did not come from this site")
	// Signup and logout check it too.
	brWantPage(t, b.post(t, "/signup", url.Values{"username": {"mallory"}, "password": {"a long password"}}), http.StatusForbidden, "")
	brWantPage(t, b.post(t, "/logout", url.Values{}), http.StatusForbidden, "")
	// And with the token, the same form logs in.
	if r := b.submit(t, "/login", hidden, creds...); r.status != http.StatusSeeOther {
		t.Fatalf("login with the token: %s", r)
	}
}

// loginFormWrongPassword: a wrong password and an unknown user get one
// generic message, keep the username, echo no password and start no session.
func loginFormWrongPassword(t *testing.T, e *brEnv) {
	b := e.browser(t)
	hidden := b.loginForm(t, "/login")
	for _, creds := range [][2]string{{"bob", "not bob's password"}, {"nobody-here", "whatever it is"}} {
		r := b.submit(t, "/login", hidden, "username", creds[0], "password", creds[1])
		brLoginPage(t, r)
		if !strings.Contains(string(r.body), "Invalid username or password.") {
			t.Errorf("%s: no error message: %s", creds[0], r.body)
		}
		if !strings.Contains(string(r.body), `value="`+creds[0]+`"`) {
			t.Errorf("%s: the username is not kept", creds[0])
		}
		if strings.Contains(string(r.body), creds[1]) {
			t.Errorf("%s: the password is echoed", creds[0])
		}
		if b.cookie("keygate_session") != "" {
			t.Errorf("%s: a session was started", creds[0])
		}
	}
}

// loginFormThrottling: past the user's budget the form answers 429 with
// Retry-After, still showing the form.
func loginFormThrottling(t *testing.T, e *brEnv) {
	b := e.browser(t)
	hidden := b.loginForm(t, "/login")
	var r reply
	for range 4 {
		r = b.submit(t, "/login", hidden, "username", "carol-target", "password", "wrong password")
	}
	if r.status != http.StatusTooManyRequests || r.hdr.Get("Retry-After") == "" || !strings.Contains(string(r.body), "Too many failed attempts") {
		t.Fatalf("after 4 failures: %d Retry-After %q", r.status, r.hdr.Get("Retry-After"))
	}
	brLoginPage(t, reply{status: 200, body: r.body})
}

// loginFormCookies checks the session and CSRF cookies' attributes over http.
func loginFormCookies(t *testing.T, e *brEnv) {
	b := e.browser(t)
	r0 := b.get(t, "/login")
	hidden := brLoginPage(t, r0)
	r := b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW)
	sc := brSetCookie(t, r, "keygate_session")
	if !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure || sc.Path != "/" || sc.MaxAge != 86400 || len(sc.Value) != 43 {
		t.Errorf("session cookie %+v", sc)
	}
	cc := brSetCookie(t, r0, "keygate_csrf")
	if !cc.HttpOnly || cc.SameSite != http.SameSiteStrictMode || cc.Secure || cc.Path != "/" {
		t.Errorf("CSRF cookie %+v", cc)
	}
}

// loginFormSessionFixation: neither a made-up session id nor another
// user's real one, planted before login, is the session after it.
func loginFormSessionFixation(t *testing.T, e *brEnv) {
	// A value the attacker made up is not adopted.
	victim := e.browser(t)
	const planted = "attacker-chosen-session-value-0123456789ab"
	hidden := victim.loginForm(t, "/login")
	victim.setCookie("keygate_session", planted)
	if r := victim.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW); r.status != http.StatusSeeOther {
		t.Fatalf("login: %s", r)
	}
	got := victim.cookie("keygate_session")
	if got == "" || got == planted {
		t.Fatalf("session cookie after login %q: the planted value was adopted", got)
	}
	attacker := e.browser(t)
	attacker.setCookie("keygate_session", planted)
	if r := attacker.get(t, "/account"); r.status != http.StatusSeeOther {
		t.Errorf("the planted value opens /account: %s", r)
	}

	// Nor is a real session: the attacker logs in as bob and plants his
	// own session id; the victim then logs in as alice.
	attacker = e.browser(t)
	h := attacker.loginForm(t, "/login")
	attacker.submit(t, "/login", h, "username", "bob", "password", brBobPW)
	bobs := attacker.cookie("keygate_session")
	victim = e.browser(t)
	hidden = victim.loginForm(t, "/login")
	victim.setCookie("keygate_session", bobs)
	if r := victim.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW); r.status != http.StatusSeeOther {
		t.Fatalf("login: %s", r)
	}
	if got := victim.cookie("keygate_session"); got == bobs || got == "" {
		t.Fatalf("the victim's session id after login is the planted one")
	}
	if acc := attacker.get(t, "/account"); strings.Contains(string(acc.body), "alice@example.com") || acc.status != http.StatusSeeOther {
		t.Errorf("the planted session id now opens the victim's account: %s", acc)
	}
}

// loginFormLoggedIn: a logged-in browser is sent from /login to /account,
// which shows the user.
func loginFormLoggedIn(t *testing.T, e *brEnv) {
	b := e.browser(t)
	hidden := b.loginForm(t, "/login")
	r := b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW)
	if loc := r.hdr.Get("Location"); loc != "/account" {
		t.Fatalf("after login: Location %q, want /account", loc)
	}
	if loc := b.get(t, "/login").hdr.Get("Location"); loc != "/account" {
		t.Errorf("GET /login when logged in: Location %q, want /account", loc)
	}
	acc := b.get(t, "/account")
	for _, want := range []string{"alice", "Alice Liddell", "alice@example.com", `action="/logout"`, `name="csrf"`} {
		if !strings.Contains(string(acc.body), want) {
			t.Errorf("account page lacks %s", want)
		}
	}
}

// loginFormOpenRedirects: return_to never leaves the site; a local one
// is followed.
func loginFormOpenRedirects(t *testing.T, e *brEnv) {
	for _, evil := range []string{"//evil.example", "https://evil.example/", "/\\evil.example", "\\\\evil.example",
		"/\t/evil.example", "http:evil.example", "javascript:alert(1)", "evil.example", "///evil.example", "/%0a/evil.example\n"} {
		b := e.browser(t)
		hidden := b.loginForm(t, "/login?"+url.Values{"return_to": {evil}}.Encode())
		if hidden.Get("return_to") != "" {
			t.Errorf("return_to %q kept in the form", evil)
		}
		hidden.Set("return_to", evil) // and forced into the POST
		r := b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW)
		if loc := r.hdr.Get("Location"); loc != "/account" {
			t.Errorf("return_to %q: Location %q, want /account", evil, loc)
		}
		if loc := b.get(t, "/login?"+url.Values{"return_to": {evil}}.Encode()).hdr.Get("Location"); loc != "/account" {
			t.Errorf("logged in, return_to %q: Location %q, want /account", evil, loc)
		}
	}
	b := e.browser(t)
	hidden := b.loginForm(t, "/login?return_to=%2Faccount%3Fx%3D1")
	if loc := b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW).hdr.Get("Location"); loc != "/account?x=1" {
		t.Errorf("local return_to: Location %q", loc)
	}
}

// loginFormLogout: logout clears the cookie and ends the session server-side.
func loginFormLogout(t *testing.T, e *brEnv) {
	b := e.browser(t)
	hidden := b.loginForm(t, "/login")
	b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW)
	old := b.cookie("keygate_session")
	acc := b.get(t, "/account")
	r := b.submit(t, "/logout", brHiddenFields(t, acc))
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.hdr.Get("Location"), "/login") {
		t.Fatalf("logout: %s %v", r, r.hdr)
	}
	if b.cookie("keygate_session") != "" {
		t.Error("session cookie not cleared")
	}
	if loc := b.get(t, "/account").hdr.Get("Location"); loc != "/login?return_to=%2Faccount" {
		t.Errorf("/account after logout: Location %q", loc)
	}
	replay := e.browser(t)
	replay.setCookie("keygate_session", old)
	if r := replay.get(t, "/account"); r.status != http.StatusSeeOther {
		t.Errorf("the logged-out session id still opens /account: %s", r)
	}
	if !strings.Contains(string(b.get(t, "/login?logged_out=1").body), "logged out") {
		t.Error("no logout notice")
	}
}

// loginFormTamperedRequest: a login form whose signed authorization
// request was edited is refused, and no session starts.
func loginFormTamperedRequest(t *testing.T, e *brEnv) {
	b := e.browser(t)
	_, ch := brPKCE("t")
	hidden := brLoginPage(t, b.get(t, "/authorize?"+brAuthParams("webapp", brAppCB, ch).Encode()))
	req := hidden.Get("request")
	parts := strings.Split(req, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(payload), "app.example", "evil.example", 1)
	hidden.Set("request", parts[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(forged))+"."+parts[2])
	r := b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW)
	brWantPage(t, r, http.StatusBadRequest, "no longer valid")
	if b.cookie("keygate_session") != "" {
		t.Error("a session was started with a forged request")
	}
}

// TestSessionTimeouts: idle and absolute.
func TestSessionTimeouts(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{SessionIdleTimeout: 30 * time.Minute, SessionAbsoluteTimeout: 2 * time.Hour})
	login := func() *brBrowser {
		b := e.browser(t)
		hidden := brLoginPage(t, b.get(t, "/login"))
		if r := b.submit(t, "/login", hidden, "username", "alice", "password", brAlicePW); r.status != http.StatusSeeOther {
			t.Fatalf("login: %s", r)
		}
		return b
	}
	alive := func(b *brBrowser) bool { return b.get(t, "/account").status == http.StatusOK }

	b := login()
	e.clock.Advance(29 * time.Minute)
	if !alive(b) {
		t.Fatal("session gone before the idle timeout")
	}
	e.clock.Advance(29 * time.Minute) // 58 min after login, 29 after the last request
	if !alive(b) {
		t.Fatal("activity does not extend the idle timeout")
	}
	e.clock.Advance(31 * time.Minute)
	if alive(b) {
		t.Fatal("session alive after 31 idle minutes (idle timeout 30)")
	}

	b = login()
	for range 4 {
		e.clock.Advance(25 * time.Minute)
		if !alive(b) {
			t.Fatal("active session ended early")
		}
	}
	e.clock.Advance(25 * time.Minute) // 125 min after login
	if alive(b) {
		t.Fatal("session alive past the absolute timeout (2h)")
	}

	// A password change logs every browser out.
	b = login()
	if err := e.IDP.Directory().SetPassword(t.Context(), "alice", "a brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	if alive(b) {
		t.Error("session survived a password change")
	}
}

// TestSignupForm: validation keeps the input, success logs in, closed signup.
func TestSignupForm(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	b := e.browser(t)
	r := b.get(t, "/signup")
	hidden := brHiddenFields(t, r)
	for _, want := range []string{`autocomplete="new-password"`, `autocomplete="email"`, `autocomplete="username"`, `<label for="email">`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("signup page lacks %s", want)
		}
	}
	r = b.submit(t, "/signup", hidden, "username", "dave", "password", "short", "email", "dave@example.com", "name", "Dave")
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "Password must be at least 8 characters") ||
		!strings.Contains(string(r.body), `value="dave@example.com"`) || !strings.Contains(string(r.body), `value="Dave"`) {
		t.Fatalf("short password: %s", r)
	}
	r = b.submit(t, "/signup", hidden, "username", "alice", "password", "a long passphrase")
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), "already registered") {
		t.Fatalf("taken username: %s", r)
	}
	r = b.submit(t, "/signup", hidden, "username", "dave", "password", "dave's long passphrase", "email", "dave@example.com", "name", "Dave")
	if r.status != http.StatusSeeOther || r.hdr.Get("Location") != "/account" {
		t.Fatalf("signup: %s %v", r, r.hdr)
	}
	if acc := b.get(t, "/account"); !strings.Contains(string(acc.body), "dave@example.com") {
		t.Errorf("not logged in after signup: %s", acc)
	}

	t.Run("signup inside the authorization flow returns to the client", func(t *testing.T) {
		bb := e.browser(t)
		verifier, ch := brPKCE("z")
		page := bb.get(t, "/authorize?"+brAuthParams("webapp", brAppCB, ch).Encode())
		m := regexp.MustCompile(`href="(/signup\?[^"]+)"`).FindStringSubmatch(string(page.body))
		if m == nil {
			t.Fatal("no signup link on the login page")
		}
		form := bb.get(t, html.UnescapeString(m[1]))
		if !strings.Contains(string(form.body), "Web App") {
			t.Error("the signup page does not name the client")
		}
		r := bb.submit(t, "/signup", brHiddenFields(t, form), "username", "erin", "password", "erin's long passphrase")
		code := e.wantCodeRedirect(t, r, brAppCB, "st-webapp")
		tr := e.exchange(t, "webapp", code, brAppCB, verifier)
		if _, claims := e.verifyIDToken(t, "webapp", tr.IDToken, tr.AccessToken); claims["preferred_username"] != "erin" {
			t.Errorf("id_token for %v", claims["preferred_username"])
		}
	})

	t.Run("closed", func(t *testing.T) {
		off := false
		e2 := newBrEnv(t, kgtest.Options{Signup: &off})
		b2 := e2.browser(t)
		brWantPage(t, b2.get(t, "/signup"), http.StatusNotFound, "closed")
		if strings.Contains(string(b2.get(t, "/login").body), "/signup") {
			t.Error("the login page links to a closed signup")
		}
	})
}

// TestSecureCookiesOverHTTPS: with an https issuer every cookie is Secure and
// __Host- prefixed.
func TestSecureCookiesOverHTTPS(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{Issuer: "https://id.example.com"})
	b := e.browser(t)
	r := b.get(t, "/login")
	hidden := brLoginPage(t, r)
	cc := brSetCookie(t, r, "__Host-keygate_csrf")
	if !cc.Secure || cc.SameSite != http.SameSiteStrictMode || !cc.HttpOnly || cc.Path != "/" || cc.Domain != "" {
		t.Errorf("CSRF cookie %+v", cc)
	}
	// The jar will not send Secure cookies over http: send it by hand.
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/login", strings.NewReader(url.Values{"csrf": {hidden.Get("csrf")},
		"username": {"alice"}, "password": {brAlicePW}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "__Host-keygate_csrf", Value: cc.Value})
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	sc := brSetCookie(t, reply{status: res.StatusCode, hdr: res.Header}, "__Host-keygate_session")
	if !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" {
		t.Errorf("session cookie %+v", sc)
	}
}

// TestBrowserDiscovery: what the browser flow adds to discovery.
func TestBrowserDiscovery(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{})
	r := e.browser(t).get(t, "/.well-known/openid-configuration")
	var d map[string]any
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatal(err)
	}
	if d["authorization_endpoint"] != e.URL+"/authorize" {
		t.Errorf("authorization_endpoint %v", d["authorization_endpoint"])
	}
	has := func(key string, want ...string) {
		t.Helper()
		list, _ := d[key].([]any)
		for _, w := range want {
			if !slices.Contains(list, any(w)) {
				t.Errorf("%s %v lacks %s", key, list, w)
			}
		}
	}
	has("response_types_supported", "code")
	has("response_modes_supported", "query")
	has("code_challenge_methods_supported", "S256")
	has("grant_types_supported", "authorization_code", "refresh_token")
	has("scopes_supported", "openid", "profile", "email")
	has("claims_supported", "sub", "auth_time", "amr", "acr", "nonce", "name", "email", "preferred_username")
	has("acr_values_supported", idp.ACRPassword, idp.ACRMultiFactor, idp.ACRPhishingResistant)
	has("token_endpoint_auth_methods_supported", "none", "client_secret_basic")
	if list, _ := d["code_challenge_methods_supported"].([]any); slices.Contains(list, any("plain")) {
		t.Error("advertises PKCE plain")
	}
}

func brSetCookie(t *testing.T, r reply, name string) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.hdr}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no Set-Cookie %s in %v", name, r.hdr["Set-Cookie"])
	return nil
}
