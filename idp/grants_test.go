package idp_test

// Unit tests of the grants' rules, on a Provider over a real SQLite file and
// real key rotation, without HTTP (web's tests cover the wire).

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/jwtforge"
	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/password"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlite"
	"github.com/keygate/keygate/throttle"
)

const (
	gtIssuer   = "https://id.example"
	gtSecret   = "kgs_unit-test-secret"
	gtPassword = "correct horse battery staple"
	gtRedirect = "https://app.example/cb"
	gtVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-verifier"
)

type gtClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *gtClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *gtClock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

type grantEnv struct {
	p     *idp.Provider
	dir   *idp.Directory // p's
	st    *sqlite.Store
	clock *gtClock
	alice store.User
}

// gtClients are the static clients of every grantEnv:
//
//	svc     secret; client_credentials; read write; aud orders; 2 min tokens valid from +10 s
//	app     secret; password, refresh_token, authorization_code; openid profile read
//	other   secret; the same grants as app
//	spa     public; authorization_code (PKCE required)
//	signer  fuzzClientKey; jwt-bearer; api
func gtClients(t *testing.T) []idp.Client {
	pub, err := jwk.FromRaw(fuzzClientKey().Public())
	if err != nil {
		t.Fatal(err)
	}
	keys := jwk.NewSet()
	keys.AddKey(pub)
	code := []string{idp.GrantPassword, idp.GrantRefreshToken, idp.GrantAuthorizationCode}
	return []idp.Client{
		{ID: "svc", SecretHash: idp.HashSecret(gtSecret), GrantTypes: []string{idp.GrantClientCredentials},
			Scopes: []string{"read", "write"}, Audience: []string{"orders"}, AccessTTL: 2 * time.Minute, NotBeforeDelay: 10 * time.Second},
		{ID: "app", SecretHash: idp.HashSecret(gtSecret), GrantTypes: code, Scopes: []string{"openid", "profile", "read"},
			RedirectURIs: []string{gtRedirect}},
		{ID: "other", SecretHash: idp.HashSecret(gtSecret), GrantTypes: code, Scopes: []string{"openid", "profile", "read"},
			RedirectURIs: []string{"https://other.example/cb"}},
		{ID: "spa", Public: true, GrantTypes: []string{idp.GrantAuthorizationCode}, Scopes: []string{"openid", "read"},
			RedirectURIs: []string{"https://spa.example/cb"}},
		{ID: "signer", Keys: keys, GrantTypes: []string{idp.GrantJWTBearer}, Scopes: []string{"api"}},
	}
}

// grantConfig is the configuration of a grantEnv's provider: a SQLite file
// in t.TempDir(), real key rotation, gtClients, a settable clock.
func grantConfig(t *testing.T) (idp.Config, *gtClock) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &gtClock{t: time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	kek := make([]byte, rotation.KEKSize)
	rand.Read(kek) // crypto/rand.Read never fails (Go 1.24)
	sealer, _ := rotation.NewSealer(kek)
	keys, err := rotation.New(rotation.Config{Policy: rotation.Policy{RotationPeriod: 24 * time.Hour, PublishAhead: time.Hour,
		Retention: 2 * time.Hour, RSABits: 2048}, Store: st, Sealer: sealer, Now: clock.Now, Logger: log})
	if err == nil {
		_, err = keys.Reconcile(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	return idp.Config{DirectoryConfig: idp.DirectoryConfig{AccessTTL: 15 * time.Minute, MaxAccessTTL: 24 * time.Hour,
		Clients: gtClients(t), Store: st, Now: clock.Now, Logger: log,
		Hasher: password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, 2)},
		Issuer: gtIssuer, RefreshTTL: 24 * time.Hour, Leeway: 30 * time.Second, Signer: keys.Signer(), Sealer: sealer,
		UserThrottle: throttle.Local(throttle.New(throttle.Limits{Burst: 3, Every: time.Minute}, 100)),
		IPThrottle:   throttle.Local(throttle.New(throttle.Limits{Burst: 1000, Every: time.Millisecond}, 100))}, clock
}

func newGrantEnv(t *testing.T) *grantEnv {
	t.Helper()
	cfg, clock := grantConfig(t)
	return grantEnvFor(t, cfg, clock)
}

// grantEnvFor is the grantEnv of a provider on cfg, with the user alice.
func grantEnvFor(t *testing.T, cfg idp.Config, clock *gtClock) *grantEnv {
	t.Helper()
	p, err := idp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := p.Directory().CreateUser(context.Background(), idp.NewUser{Username: "alice", Password: gtPassword})
	if err != nil {
		t.Fatal(err)
	}
	return &grantEnv{p: p, dir: p.Directory(), st: cfg.Store.(*sqlite.Store), clock: clock, alice: alice}
}

// token calls the token endpoint, authenticating with HTTP Basic when id is set.
func (e *grantEnv) token(id, secret string, form url.Values) (*idp.TokenResponse, error) {
	r := &idp.Request{Form: form, RemoteIP: "192.0.2.7"}
	if id != "" {
		r.HasBasic, r.BasicUser, r.BasicPass = true, id, secret
	}
	return e.p.Token(context.Background(), r)
}

func (e *grantEnv) passwordGrant(t *testing.T, client string) *idp.TokenResponse {
	t.Helper()
	res, err := e.token(client, gtSecret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {gtPassword}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// oauthError is the OAuth error code and description of err ("" for none).
func oauthError(err error) (code, desc string) {
	var oe *idp.Error
	if errors.As(err, &oe) {
		return oe.Code, oe.Description
	}
	if err != nil {
		return "not an *idp.Error: " + err.Error(), ""
	}
	return "", ""
}

// wantError checks err's code and that its description holds desc.
func wantError(t *testing.T, what string, err error, code, desc string) {
	t.Helper()
	gotCode, gotDesc := oauthError(err)
	if gotCode != code || !strings.Contains(gotDesc, desc) {
		t.Errorf("%s: error %q %q, want %q containing %q", what, gotCode, gotDesc, code, desc)
	}
}

// unverifiedClaims reads an access token's claims (the signature is
// ValidateAccessToken's business).
func unverifiedClaims(t *testing.T, token string) idp.AccessClaims {
	t.Helper()
	return jwtPayload[idp.AccessClaims](t, token)
}

// jwtPayload decodes a JWT's payload into a T, unverified.
func jwtPayload[T any](t *testing.T, token string) T {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c T
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientCredentialsGrant(t *testing.T) {
	e := newGrantEnv(t)
	cases := []struct {
		name, client, secret, scope string
		wantScope, code, desc       string
	}{
		{name: "no scope asks for all of the client's", client: "svc", secret: gtSecret, wantScope: "read write"},
		{name: "a subset, deduplicated, in the order asked", client: "svc", secret: gtSecret, scope: "write read write", wantScope: "write read"},
		{name: "a scope the client lacks", client: "svc", secret: gtSecret, scope: "read admin", code: "invalid_scope", desc: `"admin"`},
		{name: "wrong secret", client: "svc", secret: "kgs_wrong", code: "invalid_client"},
		{name: "unknown client", client: "nobody", secret: gtSecret, code: "invalid_client"},
		{name: "client without the grant", client: "app", secret: gtSecret, code: "unauthorized_client", desc: "client_credentials"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := e.token(c.client, c.secret, url.Values{"grant_type": {"client_credentials"}, "scope": {c.scope}})
			if c.code != "" {
				wantError(t, "token", err, c.code, c.desc)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cl := unverifiedClaims(t, res.AccessToken)
			switch {
			case res.Scope != c.wantScope || cl.Scope != c.wantScope:
				t.Errorf("scope %q (claim %q), want %q", res.Scope, cl.Scope, c.wantScope)
			case cl.Subject != "svc" || cl.ClientID != "svc" || !cl.ForClient():
				t.Errorf("sub %q client_id %q: want the client itself", cl.Subject, cl.ClientID)
			case len(cl.Audience) != 1 || cl.Audience[0] != "orders":
				t.Errorf("aud %v, want the client's audience [orders]", cl.Audience)
			case cl.Expiry-cl.IssuedAt != 120 || res.ExpiresIn != 120:
				t.Errorf("lifetime %d s (expires_in %d), want the client's access_ttl 120", cl.Expiry-cl.IssuedAt, res.ExpiresIn)
			case cl.NotBefore-cl.IssuedAt != 10:
				t.Errorf("nbf %d s after iat, want the client's not_before_delay 10", cl.NotBefore-cl.IssuedAt)
			case res.RefreshToken != "":
				t.Error("client_credentials issued a refresh token")
			}
		})
	}
}

// TestClientCredentialsTokenWindow: the token is valid from nbf to exp on
// the provider's clock, not before and not after.
func TestClientCredentialsTokenWindow(t *testing.T) {
	e := newGrantEnv(t)
	res, err := e.token("svc", gtSecret, url.Values{"grant_type": {"client_credentials"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.p.ValidateAccessToken(ctx, res.AccessToken); err == nil {
		t.Error("valid before its not_before_delay")
	}
	e.clock.Advance(10 * time.Second)
	if _, err := e.p.ValidateAccessToken(ctx, res.AccessToken); err != nil {
		t.Errorf("not valid after its not_before_delay: %v", err)
	}
	e.clock.Advance(110 * time.Second)
	if _, err := e.p.ValidateAccessToken(ctx, res.AccessToken); err == nil {
		t.Error("valid after its access_ttl")
	}
}

func TestPasswordGrant(t *testing.T) {
	e := newGrantEnv(t)
	ctx := context.Background()
	if _, err := e.dir.CreateUser(ctx, idp.NewUser{Username: "bob", Password: gtPassword}); err != nil {
		t.Fatal(err)
	}
	form := func(user, pw string) url.Values {
		return url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}
	}

	res, err := e.token("app", gtSecret, form("alice", gtPassword))
	if err != nil {
		t.Fatal(err)
	}
	cl := unverifiedClaims(t, res.AccessToken)
	if cl.Subject != e.alice.ID || cl.Username != "alice" || cl.ForClient() || cl.AuthTime == 0 {
		t.Errorf("claims %+v: want alice's id, her username and auth_time", cl)
	}
	if res.RefreshToken == "" || res.Scope != "openid profile read" {
		t.Errorf("refresh token %q scope %q: want one, with all the client's scopes", res.RefreshToken, res.Scope)
	}

	_, err = e.token("app", gtSecret, form("alice", "wrong password"))
	wantError(t, "wrong password", err, "invalid_grant", "invalid username or password")
	_, err = e.token("app", gtSecret, form("nobody", gtPassword))
	wantError(t, "unknown user", err, "invalid_grant", "invalid username or password")
	_, err = e.token("app", gtSecret, url.Values{"grant_type": {"password"}, "username": {"alice"}})
	wantError(t, "no password", err, "invalid_request", "")
	_, err = e.token("app", gtSecret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {gtPassword}, "scope": {"write"}})
	wantError(t, "scope beyond the client's", err, "invalid_scope", "")

	// Three failures (the burst) lock bob out, even with his right password,
	// until a token refills; alice is not affected.
	for i := 0; i < 3; i++ {
		_, err := e.token("app", gtSecret, form("bob", "guess"))
		wantError(t, "guess", err, "invalid_grant", "")
	}
	_, err = e.token("app", gtSecret, form("BOB", gtPassword))
	var oe *idp.Error
	if !errors.As(err, &oe) || oe.Code != "too_many_requests" || oe.Status != 429 || oe.RetryAfter <= 0 || !errors.Is(err, idp.ErrThrottled) {
		t.Errorf("after the burst: %v, want too_many_requests with a Retry-After", err)
	}
	if _, err := e.token("app", gtSecret, form("alice", gtPassword)); err != nil {
		t.Errorf("alice throttled by bob's failures: %v", err)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.token("app", gtSecret, form("bob", gtPassword)); err != nil {
		t.Errorf("bob still throttled after a refill: %v", err)
	}
}

func TestRefreshRotation(t *testing.T) {
	e := newGrantEnv(t)
	refresh := func(client, rt, scope string) (*idp.TokenResponse, error) {
		return e.token(client, gtSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {scope}})
	}
	rt1 := e.passwordGrant(t, "app").RefreshToken

	res, err := refresh("app", rt1, "read")
	if err != nil {
		t.Fatal(err)
	}
	rt2 := res.RefreshToken
	if rt2 == "" || rt2 == rt1 || res.Scope != "read" {
		t.Fatalf("rotation gave %q scope %q: want a new token and the narrowed scope", rt2, res.Scope)
	}
	if cl := unverifiedClaims(t, res.AccessToken); cl.Subject != e.alice.ID || cl.Username != "alice" {
		t.Errorf("refreshed token for %q (%q), want alice", cl.Subject, cl.Username)
	}

	// Refusals that leave the token unspent.
	_, err = refresh("app", rt2, "read write")
	wantError(t, "widening the scope", err, "invalid_scope", `"write"`)
	_, err = refresh("other", rt2, "")
	wantError(t, "another client", err, "invalid_grant", "another client")
	_, err = refresh("app", "kgr_unknown", "")
	wantError(t, "unknown token", err, "invalid_grant", "unknown refresh token")

	// The family keeps the original grant: the narrowed token may ask for
	// profile again.
	res, err = refresh("app", rt2, "profile")
	if err != nil {
		t.Fatalf("rt2 spent by a refusal, or the family lost its scope: %v", err)
	}
	rt3 := res.RefreshToken

	// rt1 again: it leaked. The whole family goes, rt3 included.
	_, err = refresh("app", rt1, "")
	wantError(t, "reuse", err, "invalid_grant", "already used")
	_, err = refresh("app", rt3, "")
	wantError(t, "the newest token after reuse", err, "invalid_grant", "revoked")

	// Another family, unaffected, expires after RefreshTTL.
	rt := e.passwordGrant(t, "app").RefreshToken
	e.clock.Advance(24*time.Hour + time.Second)
	_, err = refresh("app", rt, "")
	wantError(t, "expired", err, "invalid_grant", "expired")
}

// TestRefreshRacingPresentations presents one refresh token many times at
// once. The grant signs the new tokens while the rotation waits for the
// store, so those that lose the race have signed tokens too: none may leave
// with them. Exactly one presentation gets tokens; the rest are refused as
// reuse (or, once the family is revoked, as revoked), and the reuse revokes
// the winner's new token with the rest of the family.
func TestRefreshRacingPresentations(t *testing.T) {
	e := newGrantEnv(t)
	rt := e.passwordGrant(t, "app").RefreshToken
	type result struct {
		res *idp.TokenResponse
		err error
	}
	results := stampede.Run(16, func(int) result {
		res, err := e.token("app", gtSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		return result{res, err}
	})
	var winner *idp.TokenResponse
	for i, r := range results {
		switch code, desc := oauthError(r.err); {
		case r.err == nil && winner == nil && r.res.AccessToken != "" && r.res.RefreshToken != "":
			winner = r.res
		case r.err == nil:
			t.Errorf("presentation %d: tokens, but another presentation already had them", i)
		case r.res != nil:
			t.Errorf("presentation %d: refused (%v) with a response %+v", i, r.err, r.res)
		case code != "invalid_grant" || !strings.Contains(desc, "already used") && !strings.Contains(desc, "revoked"):
			t.Errorf("presentation %d: %v, want invalid_grant for reuse", i, r.err)
		}
	}
	if winner == nil {
		t.Fatal("no presentation got tokens")
	}
	_, err := e.token("app", gtSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {winner.RefreshToken}})
	wantError(t, "the winner's token after the reuse", err, "invalid_grant", "revoked")
}

// issueCode runs /authorize for alice and returns the code.
func (e *grantEnv) issueCode(t *testing.T, client, redirect, challenge string) string {
	t.Helper()
	code, _ := e.issueCodeWith(t, client, redirect, challenge, nil)
	return code
}

// issueCodeWith is issueCode for a session of alice started with the
// methods amr; it returns the session too.
func (e *grantEnv) issueCodeWith(t *testing.T, client, redirect, challenge string, amr []string) (string, *idp.Session) {
	t.Helper()
	ctx := context.Background()
	params := url.Values{"client_id": {client}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid read"}, "state": {"xyz"}, "nonce": {"n-1"}}
	if challenge != "" {
		params.Set("code_challenge", challenge)
		params.Set("code_challenge_method", "S256")
	}
	ar, err := e.p.ParseAuthorize(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	_, s, err := e.p.StartSession(ctx, e.alice, amr)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := e.p.IssueCode(ctx, ar, s)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil || u.Query().Get("code") == "" || u.Query().Get("state") != "xyz" || u.Query().Get("iss") != gtIssuer {
		t.Fatalf("redirect %q: want code, state and iss", loc)
	}
	return u.Query().Get("code"), s
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func TestAuthorizationCodeGrant(t *testing.T) {
	e := newGrantEnv(t)
	cases := []struct {
		name             string
		challenge        string // sent to /authorize
		client, redirect string // at /token; default app and gtRedirect
		verifier         string
		advance          time.Duration
		code, desc       string
	}{
		{name: "PKCE", challenge: s256(gtVerifier), verifier: gtVerifier},
		{name: "no PKCE for a confidential client"},
		{name: "verifier does not match", challenge: s256(gtVerifier), verifier: strings.Repeat("a", 43), code: "invalid_grant", desc: "does not match"},
		{name: "verifier too short", challenge: s256("short"), verifier: "short", code: "invalid_grant", desc: "does not match"},
		{name: "verifier missing", challenge: s256(gtVerifier), code: "invalid_grant", desc: "code_verifier is required"},
		{name: "verifier without challenge (downgrade)", verifier: gtVerifier, code: "invalid_grant", desc: "no code_challenge"},
		{name: "redirect_uri differs", redirect: "https://app.example/cb2", code: "invalid_grant", desc: "redirect_uri does not match"},
		{name: "another client", client: "other", code: "invalid_grant", desc: "another client"},
		{name: "expired", advance: idp.CodeTTL, code: "invalid_grant", desc: "expired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code := e.issueCode(t, "app", gtRedirect, c.challenge)
			e.clock.Advance(c.advance)
			client, redirect := "app", gtRedirect
			if c.client != "" {
				client = c.client
			}
			if c.redirect != "" {
				redirect = c.redirect
			}
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}
			if c.verifier != "" {
				form.Set("code_verifier", c.verifier)
			}
			res, err := e.token(client, gtSecret, form)
			if c.code != "" {
				wantError(t, "exchange", err, c.code, c.desc)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.IDToken == "" || res.RefreshToken == "" || res.Scope != "openid read" {
				t.Errorf("response %+v: want an ID token, a refresh token and the requested scope", res)
			}
			if cl := unverifiedClaims(t, res.AccessToken); cl.Subject != e.alice.ID || cl.ClientID != "app" {
				t.Errorf("claims %+v: want alice's token for app", cl)
			}
		})
	}
}

// TestAuthorizationCodeReuse: a code used twice has leaked; the second use
// fails and revokes what the first one issued.
func TestAuthorizationCodeReuse(t *testing.T) {
	e := newGrantEnv(t)
	ctx := context.Background()
	code := e.issueCode(t, "app", gtRedirect, s256(gtVerifier))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {gtRedirect}, "code_verifier": {gtVerifier}}
	res, err := e.token("app", gtSecret, form)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.ValidateAccessToken(ctx, res.AccessToken); err != nil {
		t.Fatalf("fresh access token: %v", err)
	}
	_, err = e.token("app", gtSecret, form)
	wantError(t, "second use", err, "invalid_grant", "already used")
	if _, err := e.p.ValidateAccessToken(ctx, res.AccessToken); err == nil {
		t.Error("the access token of a reused code is still valid")
	}
	_, err = e.token("app", gtSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {res.RefreshToken}})
	wantError(t, "refresh token of a reused code", err, "invalid_grant", "revoked")

	// A public client: PKCE at /authorize, and the bare client_id at /token.
	if _, err := e.p.ParseAuthorize(ctx, url.Values{"client_id": {"spa"}, "redirect_uri": {"https://spa.example/cb"},
		"response_type": {"code"}, "scope": {"openid"}}); err == nil {
		t.Error("a public client's request without code_challenge accepted")
	}
	code = e.issueCode(t, "spa", "https://spa.example/cb", s256(gtVerifier))
	if _, err := e.token("", "", url.Values{"grant_type": {"authorization_code"}, "client_id": {"spa"}, "code": {code},
		"redirect_uri": {"https://spa.example/cb"}, "code_verifier": {gtVerifier}}); err != nil {
		t.Errorf("public client exchange: %v", err)
	}
}

// assertion signs claims with key (RS256).
func assertion(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return signRS256(key, []byte(`{"alg":"RS256","typ":"JWT"}`), body)
}

func TestJWTBearerGrant(t *testing.T) {
	e := newGrantEnv(t)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now().Unix()
	jti := 0
	claims := func(change map[string]any) map[string]any {
		jti++
		return jwtforge.With(map[string]any{"iss": "signer", "sub": "signer", "aud": gtIssuer + "/token", "iat": now, "exp": now + 60,
			"jti": "j-" + string(rune('a'+jti))}, change)
	}
	replayed := claims(map[string]any{"jti": "once"})
	cases := []struct {
		name   string
		key    *rsa.PrivateKey
		claims map[string]any
		code   string
		desc   string
	}{
		{name: "good", claims: claims(nil)},
		{name: "the issuer as audience", claims: claims(map[string]any{"aud": []string{"https://elsewhere", gtIssuer}})},
		{name: "first use", claims: replayed},
		{name: "replayed jti", claims: replayed, code: "invalid_grant", desc: "replayed"},
		{name: "wrong audience", claims: claims(map[string]any{"aud": "https://elsewhere/token"}), code: "invalid_grant", desc: "aud must be one of"},
		{name: "no audience", claims: claims(map[string]any{"aud": nil}), code: "invalid_grant", desc: "aud must be one of"},
		{name: "expired beyond the leeway", claims: claims(map[string]any{"exp": now - 31}), code: "invalid_grant", desc: "expired"},
		{name: "expired within the leeway", claims: claims(map[string]any{"exp": now - 20})},
		{name: "exp too far ahead", claims: claims(map[string]any{"exp": now + 2*3600}), code: "invalid_grant", desc: "more than"},
		{name: "no exp", claims: claims(map[string]any{"exp": nil}), code: "invalid_grant", desc: "no exp"},
		{name: "not yet valid", claims: claims(map[string]any{"nbf": now + 300}), code: "invalid_grant", desc: "nbf"},
		{name: "no jti", claims: claims(map[string]any{"jti": nil}), code: "invalid_grant", desc: "no jti"},
		{name: "sub is not the client", claims: claims(map[string]any{"sub": "alice"}), code: "invalid_grant", desc: "sub"},
		{name: "signed with another key", key: otherKey, claims: claims(nil), code: "invalid_grant", desc: "bad signature"},
		{name: "unknown issuer", claims: claims(map[string]any{"iss": "nobody", "sub": "nobody"}), code: "invalid_grant", desc: "unknown client"},
		{name: "issuer without keys", claims: claims(map[string]any{"iss": "svc", "sub": "svc"}), code: "invalid_grant", desc: "no registered public key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := c.key
			if key == nil {
				key = fuzzClientKey()
			}
			res, err := e.token("", "", url.Values{"grant_type": {idp.GrantJWTBearer}, "assertion": {assertion(t, key, c.claims)}})
			if c.code != "" {
				wantError(t, "grant", err, c.code, c.desc)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cl := unverifiedClaims(t, res.AccessToken); cl.Subject != "signer" || !cl.ForClient() || res.Scope != "api" {
				t.Errorf("claims %+v scope %q: want the signer's own token with its scopes", cl, res.Scope)
			}
		})
	}
	// An authenticated client may not present another client's assertion.
	_, err = e.token("svc", gtSecret, url.Values{"grant_type": {idp.GrantJWTBearer}, "assertion": {assertion(t, fuzzClientKey(), claims(nil))}})
	wantError(t, "as svc", err, "unauthorized_client", "")
}
