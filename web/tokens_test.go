package web_test

// Tests of the token endpoint and its companions (/revoke, /introspect,
// /userinfo, /users, the script login, /getkey) through the real HTTP server:
// a real SQLite file, real key rotation, real RSA keys. Issued tokens are
// checked with an independent consumer (helpers_test.go: the key set parsed by
// jwx, tokens verified by golang-jwt), never with Keygate's own signer or
// verifier. Time is an injected clock: lifetimes and throttling windows are
// crossed by advancing it, never by sleeping.

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/throttle"
)

// ---------------------------------------------------------------------------
// Fixtures: clients and users, and the requests the tests repeat.

const (
	// A static client whose id and secret need RFC 6749 §2.3.1 form encoding
	// in the Basic header.
	tkWeirdID     = "app:1+é/x"
	tkWeirdSecret = "p@ss:w/rd+%&= é"

	tkAlicePW = "correct horse battery staple"
	tkBobPW   = "bob's long passphrase"
	tkCarolPW = "carol's long passphrase"

	tkAPIAud     = "https://api.example.com"
	tkBillingAud = "https://billing.example.com"
)

const (
	tkCC      = idp.GrantClientCredentials
	tkPW      = idp.GrantPassword
	tkRefresh = idp.GrantRefreshToken
	tkJWT     = idp.GrantJWTBearer
)

// tkEnv is a running Keygate with the test clients and users registered:
//
//	svc     secret; a resource server (may introspect any token); client_credentials; read write; two audiences; 5 min tokens
//	script  secret; password, refresh_token; openid profile email read
//	other   secret; password, refresh_token, client_credentials; same scopes
//	pub     public; password, refresh_token; openid profile email
//	keyed   secret and clientKey; client_credentials, jwt-bearer; read; may introspect any token
//	nojwt   clientKey; client_credentials only
//	nokeys  secret only; client_credentials, jwt-bearer
//	client  clientKey; jwt-bearer; 30 s tokens valid from +10 s; bare assertions (the script login)
//	strict  clientKey; jwt-bearer; 30 s tokens valid from +10 s; full assertions only
//	app:1+é/x  static; secret with special characters; client_credentials
type tkEnv struct {
	*kgtest.Server
	resourceServer // the independent consumer of its tokens
	clock          *kgtest.Clock
	secret         map[string]string // client id → secret
	userID         map[string]string // username → user id
}

func newTkEnv(t *testing.T, o kgtest.Options) *tkEnv {
	t.Helper()
	ck, _ := clientKeys()
	if o.Clock == nil {
		o.Clock = kgtest.NewClock(time.Now().UTC().Truncate(time.Second))
	}
	o.Clients = append(o.Clients, idp.Client{ID: tkWeirdID, Name: "form-encoded credentials",
		SecretHash: idp.HashSecret(tkWeirdSecret), GrantTypes: []string{tkCC}, Scopes: []string{"read"}})
	srv := kgtest.Start(t, o)
	e := &tkEnv{Server: srv, resourceServer: resourceServer{issuer: srv.URL}, clock: o.Clock,
		secret: map[string]string{tkWeirdID: tkWeirdSecret}, userID: map[string]string{}}
	withKeys := func(c idp.Client) idp.Client {
		set, err := idp.ParsePublicKeys(publicPEM(t, ck))
		if err != nil {
			t.Fatal(err)
		}
		c.Keys = set
		return c
	}
	oidcScopes := []string{"openid", "profile", "email", "read"}
	for _, r := range []struct {
		c          idp.Client
		withSecret bool
	}{
		{idp.Client{ID: "svc", GrantTypes: []string{tkCC}, Scopes: []string{"read", "write"},
			Audience: []string{tkAPIAud, tkBillingAud}, AccessTTL: 5 * time.Minute, Introspect: true}, true},
		{idp.Client{ID: "script", GrantTypes: []string{tkPW, tkRefresh}, Scopes: oidcScopes}, true},
		{idp.Client{ID: "other", GrantTypes: []string{tkPW, tkRefresh, tkCC}, Scopes: oidcScopes}, true},
		{idp.Client{ID: "pub", Public: true, GrantTypes: []string{tkPW, tkRefresh}, Scopes: []string{"openid", "profile", "email"}}, false},
		{withKeys(idp.Client{ID: "keyed", GrantTypes: []string{tkCC, tkJWT}, Scopes: []string{"read"}, Introspect: true}), true},
		{withKeys(idp.Client{ID: "nojwt", GrantTypes: []string{tkCC}, Scopes: []string{"read"}}), false},
		{idp.Client{ID: "nokeys", GrantTypes: []string{tkCC, tkJWT}, Scopes: []string{"read"}}, true},
		{withKeys(idp.Client{ID: "client", GrantTypes: []string{tkJWT}, Scopes: []string{"read"},
			AccessTTL: 30 * time.Second, NotBeforeDelay: 10 * time.Second, AllowBareAssertion: true}), false},
		{withKeys(idp.Client{ID: "strict", GrantTypes: []string{tkJWT}, Scopes: []string{"read"},
			AccessTTL: 30 * time.Second, NotBeforeDelay: 10 * time.Second}), false},
	} {
		c := r.c
		secret, err := e.IDP.Directory().RegisterClient(t.Context(), &c, r.withSecret)
		if err != nil {
			t.Fatalf("register %s: %v", c.ID, err)
		}
		if r.withSecret && secret == "" {
			t.Fatalf("register %s: no secret", c.ID)
		}
		e.secret[c.ID] = secret
	}
	for _, u := range []idp.NewUser{
		{Username: "alice", Password: tkAlicePW, Email: "alice@example.com", Name: "Alice Liddell"},
		{Username: "bob", Password: tkBobPW},
		{Username: "carol", Password: tkCarolPW, Email: "carol@example.com"},
	} {
		su, err := e.IDP.Directory().CreateUser(t.Context(), u)
		if err != nil {
			t.Fatalf("create user %s: %v", u.Username, err)
		}
		e.userID[u.Username] = su.ID
	}
	return e
}

// do sends r to the server.
func (e *tkEnv) do(t *testing.T, r request) reply {
	t.Helper()
	return send(t, e.URL, r)
}

// basic is a client's Basic credentials.
func (e *tkEnv) basic(id string) []string { return []string{id, e.secret[id]} }

// mustToken POSTs to /token and checks a §5.1 success answer.
func (e *tkEnv) mustToken(t *testing.T, r request) tokenResponse {
	t.Helper()
	r.path = "/token"
	res := e.do(t, r)
	if res.status != http.StatusOK {
		t.Fatalf("token request: %s", res)
	}
	return checkTokenResponse(t, res)
}

func (e *tkEnv) password(t *testing.T, client, user, pw, scope string) tokenResponse {
	t.Helper()
	f := formOf("grant_type", tkPW, "username", user, "password", pw)
	if scope != "" {
		f.Set("scope", scope)
	}
	r := request{form: f}
	if e.secret[client] != "" {
		r.basic = e.basic(client)
	} else {
		f.Set("client_id", client)
	}
	return e.mustToken(t, r)
}

func (e *tkEnv) refresh(t *testing.T, client, rt, scope string) reply {
	t.Helper()
	f := formOf("grant_type", tkRefresh, "refresh_token", rt)
	if scope != "" {
		f.Set("scope", scope)
	}
	r := request{path: "/token", form: f}
	if e.secret[client] != "" {
		r.basic = e.basic(client)
	} else {
		f.Set("client_id", client)
	}
	return e.do(t, r)
}

// introspect asks /introspect, as client svc, and checks the RFC 7662 shape.
func (e *tkEnv) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	res := e.do(t, request{path: "/introspect", form: formOf("token", token), basic: e.basic("svc")})
	if res.status != http.StatusOK {
		t.Fatalf("introspect: %s", res)
	}
	if cc := res.hdr.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("introspection Cache-Control %q, want no-store", cc)
	}
	m := res.object(t)
	if _, ok := m["active"].(bool); !ok {
		t.Fatalf("introspection without a boolean active: %s", res.body)
	}
	if m["active"] == false && len(m) != 1 {
		t.Errorf("an inactive token's introspection says more than active=false: %s", res.body)
	}
	return m
}

func (e *tkEnv) active(t *testing.T, token string) bool {
	t.Helper()
	return e.introspect(t, token)["active"] == true
}

// assertionClaims are RFC 7523 claims for client id, valid for a minute.
func (e *tkEnv) assertionClaims(id, aud string) jwt.MapClaims {
	now := e.clock.Now()
	return jwt.MapClaims{"iss": id, "sub": id, "aud": aud, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": newJTI()}
}

// verify checks tok as the independent consumer, now.
func (e *tkEnv) verify(t *testing.T, tok string) accessClaims {
	t.Helper()
	return e.verifyAt(t, tok, e.clock.Now())
}

// ---------------------------------------------------------------------------
// 1. The token endpoint: every grant, every client-auth method, every refusal.

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	ck, _ := clientKeys()
	tokenURL := e.URL + "/token"
	te := &tkTokenEnv{tkEnv: e, ck: ck, tokenURL: tokenURL, now: e.clock.Now().Unix()}
	for _, tc := range te.cases() {
		t.Run(tc.name, func(t *testing.T) { te.run(t, tc) })
	}

	t.Run("GET is not allowed", func(t *testing.T) {
		q := formOf("grant_type", tkCC, "client_id", "svc", "client_secret", e.secret["svc"]).Encode()
		res := e.do(t, request{method: http.MethodGet, path: "/token?" + q})
		if res.status != http.StatusMethodNotAllowed || res.object(t)["error"] == nil {
			t.Errorf("GET /token: %s, want 405 with a JSON error", res)
		}
	})

	t.Run("unknown client and wrong secret answer alike", func(t *testing.T) {
		a := e.do(t, request{path: "/token", form: formOf("grant_type", tkCC), basic: []string{"svc", "wrong"}})
		b := e.do(t, request{path: "/token", form: formOf("grant_type", tkCC), basic: []string{"nobody", "wrong"}})
		if a.status != b.status || string(a.body) != string(b.body) {
			t.Errorf("wrong secret %s, unknown client %s", a, b)
		}
	})

	t.Run("private_key_jwt replay", func(t *testing.T) {
		a := signRS256(t, ck, e.assertionClaims("keyed", tokenURL))
		e.mustToken(t, request{form: withClientAssertion(formOf("grant_type", tkCC), a)})
		res := e.do(t, request{path: "/token", form: withClientAssertion(formOf("grant_type", tkCC), a)})
		wantOAuthError(t, res, 401, "invalid_client", "already used")
		// The same jti in a jwt-bearer grant assertion is a replay too.
		g := signRS256(t, ck, e.assertionClaims("keyed", tokenURL))
		e.mustToken(t, request{form: formOf("grant_type", tkJWT, "assertion", g)})
		wantOAuthError(t, e.do(t, request{path: "/token", form: formOf("grant_type", tkJWT, "assertion", g)}), 400, "invalid_grant", "already used")
	})
}

// tkCase is a request to /token and the answer it must get: a §5.1 success
// that check inspects, or a §5.2 error.
type tkCase struct {
	name   string
	mk     func(t *testing.T) request
	status int    // 200 or the error's
	code   string // RFC 6749 §5.2 error
	desc   string // in error_description
	check  tkCheck
}

// tkCheck inspects a successful token response and its access token's claims.
type tkCheck func(t *testing.T, tr tokenResponse, c accessClaims)

// tkTokenEnv is a tkEnv with what TestTokenEndpoint's requests are made of.
type tkTokenEnv struct {
	*tkEnv
	ck       *rsa.PrivateKey // the clients' key (clientKeys)
	tokenURL string
	now      int64 // the clock when the test began, in Unix seconds
}

// cases are every request TestTokenEndpoint makes, in order.
func (e *tkTokenEnv) cases() []tkCase {
	return slices.Concat(e.secretGrants(), e.keyGrants(), e.passwordGrants(), e.refreshGrants(), e.bearerGrants(),
		e.malformed(), e.clientAuthRefusals(), e.keyRefusals(), e.grantRefusals(), e.passwordRefusals(),
		e.refreshRefusals(), e.bearerRefusals())
}

// keyedWith makes a private_key_jwt client_credentials request of client
// "keyed" whose assertion, signed with ck, has the usual claims edited by
// editClaims with kv.
func (e *tkTokenEnv) keyedWith(kv ...any) func(t *testing.T) request {
	return func(t *testing.T) request {
		c := editClaims(e.assertionClaims("keyed", e.tokenURL), kv...)
		return request{form: withClientAssertion(formOf("grant_type", tkCC), signRS256(t, e.ck, c))}
	}
}

// bearerAs makes a jwt-bearer grant request whose assertion, signed with
// ck, has client id's usual claims edited by editClaims with kv.
func (e *tkTokenEnv) bearerAs(id string, kv ...any) func(t *testing.T) request {
	return func(t *testing.T) request {
		c := editClaims(e.assertionClaims(id, e.tokenURL), kv...)
		return request{form: formOf("grant_type", tkJWT, "assertion", signRS256(t, e.ck, c))}
	}
}

// run sends tc's request and checks the answer: the §5.2 error, or a §5.1
// success whose access token the independent consumer accepts, with our
// issuer and an exp matching expires_in, then tc.check.
func (e *tkTokenEnv) run(t *testing.T, tc tkCase) {
	r := tc.mk(t)
	if r.path == "" {
		r.path = "/token"
	}
	res := e.do(t, r)
	if tc.status != http.StatusOK {
		wantOAuthError(t, res, tc.status, tc.code, tc.desc)
		return
	}
	if res.status != http.StatusOK {
		t.Fatalf("%s", res)
	}
	tr := checkTokenResponse(t, res)
	c := e.verify(t, tr.AccessToken)
	if c.Iss != e.URL || c.Exp-e.clock.Now().Unix() != tr.ExpiresIn {
		t.Errorf("iss %q, exp %d, expires_in %d", c.Iss, c.Exp, tr.ExpiresIn)
	}
	if tc.check != nil {
		tc.check(t, tr, c)
	}
}

// secretGrants are the client_credentials successes with a client secret,
// however sent.
func (e *tkTokenEnv) secretGrants() []tkCase {
	return []tkCase{
		{name: "client_credentials, client_secret_basic", status: 200,
			mk: func(t *testing.T) request { return request{form: formOf("grant_type", tkCC), basic: e.basic("svc")} },
			check: func(t *testing.T, tr tokenResponse, c accessClaims) {
				if tr.ExpiresIn != 300 || tr.RefreshToken != "" || tr.Scope != "read write" {
					t.Errorf("response: %+v", tr)
				}
				if c.Sub != "svc" || c.ClientID != "svc" || c.Scope != "read write" || c.Exp-c.Iat != 300 ||
					c.Nbf != c.Iat || !slices.Equal(c.Aud, []string{tkAPIAud, tkBillingAud}) || c.Iat != e.now {
					t.Errorf("claims: %+v (per-client ttl 5m, audience %s %s)", c, tkAPIAud, tkBillingAud)
				}
			}},
		{name: "client_credentials, client_secret_post, narrower scope", status: 200,
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC, "client_id", "svc", "client_secret", e.secret["svc"], "scope", "write")}
			},
			check: func(t *testing.T, tr tokenResponse, c accessClaims) {
				if tr.Scope != "write" || c.Scope != "write" || c.Sub != "svc" {
					t.Errorf("scope: %+v %+v", tr, c)
				}
			}},
		{name: "client_secret_basic with form-encoded special characters (RFC 6749 §2.3.1)", status: 200,
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC), basic: e.basic(tkWeirdID)}
			},
			check: func(t *testing.T, tr tokenResponse, c accessClaims) {
				if c.Sub != tkWeirdID || c.ClientID != tkWeirdID || c.Scope != "read" {
					t.Errorf("claims: %+v", c)
				}
			}},
		{name: "client_secret_post with special characters", status: 200,
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC, "client_id", tkWeirdID, "client_secret", tkWeirdSecret)}
			},
			check: func(t *testing.T, tr tokenResponse, c accessClaims) {
				if c.Sub != tkWeirdID {
					t.Errorf("claims: %+v", c)
				}
			}},
		{name: "Content-Type with a charset parameter", status: 200,
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC), basic: e.basic("svc"), ctype: "application/x-www-form-urlencoded; charset=UTF-8"}
			}},
	}
}

// keyGrants are the client_credentials successes with private_key_jwt.
func (e *tkTokenEnv) keyGrants() []tkCase {
	return []tkCase{
		{name: "client_credentials, private_key_jwt, aud = token endpoint", status: 200,
			mk: func(t *testing.T) request {
				return request{form: withClientAssertion(formOf("grant_type", tkCC), signRS256(t, e.ck, e.assertionClaims("keyed", e.tokenURL)))}
			},
			check: func(t *testing.T, tr tokenResponse, c accessClaims) {
				if c.Sub != "keyed" || c.ClientID != "keyed" || !slices.Equal(c.Aud, []string{"keyed"}) ||
					c.Exp-c.Iat != int64((15*time.Minute).Seconds()) || tr.RefreshToken != "" {
					t.Errorf("claims: %+v (default audience: the client; default lifetime 15m)", c)
				}
			}},
		{name: "private_key_jwt, aud = issuer", status: 200,
			mk: func(t *testing.T) request {
				return request{form: withClientAssertion(formOf("grant_type", tkCC), signRS256(t, e.ck, e.assertionClaims("keyed", e.URL)))}
			}},
		{name: "private_key_jwt, aud an array, with client_id", status: 200,
			mk: func(t *testing.T) request {
				a := signRS256(t, e.ck, editClaims(e.assertionClaims("keyed", ""), "aud", []string{"https://elsewhere", e.tokenURL}))
				return request{form: withClientAssertion(formOf("grant_type", tkCC, "client_id", "keyed"), a)}
			}},
	}
}

// passwordGrants are the password grant's successes.
func (e *tkTokenEnv) passwordGrants() []tkCase {
	return []tkCase{
		{name: "password, client_secret_basic", status: 200,
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkPW, "username", "alice", "password", tkAlicePW), basic: e.basic("script")}
			},
			check: func(t *testing.T, tr tokenResponse, c accessClaims) {
				if tr.RefreshToken == "" || c.Sub != e.userID["alice"] || c.ClientID != "script" ||
					c.Scope != "openid profile email read" || c.Username != "alice" {
					t.Errorf("response %+v, claims %+v", tr, c)
				}
			}},
		{name: "password by email, client_secret_post", status: 200,
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkPW, "username", "alice@example.com", "password", tkAlicePW,
					"client_id", "script", "client_secret", e.secret["script"], "scope", "read")}
			},
			check: func(t *testing.T, tr tokenResponse, c accessClaims) {
				if c.Sub != e.userID["alice"] || c.Scope != "read" {
					t.Errorf("claims %+v", c)
				}
			}},
		{name: "password, public client (none)", status: 200,
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkPW, "username", "bob", "password", tkBobPW, "client_id", "pub", "scope", "openid profile")}
			},
			check: func(t *testing.T, tr tokenResponse, c accessClaims) {
				if tr.RefreshToken == "" || c.Sub != e.userID["bob"] || c.ClientID != "pub" || c.Scope != "openid profile" {
					t.Errorf("response %+v, claims %+v", tr, c)
				}
			}},
	}
}

// refreshGrants are the refresh_token grant's successes.
func (e *tkTokenEnv) refreshGrants() []tkCase {
	return []tkCase{
		{name: "refresh_token, public client (none)", status: 200,
			mk: func(t *testing.T) request {
				rt := e.password(t, "pub", "bob", tkBobPW, "").RefreshToken
				return request{form: formOf("grant_type", tkRefresh, "refresh_token", rt, "client_id", "pub")}
			},
			check: func(t *testing.T, tr tokenResponse, c accessClaims) {
				if tr.RefreshToken == "" || c.Sub != e.userID["bob"] || c.ClientID != "pub" {
					t.Errorf("response %+v, claims %+v", tr, c)
				}
			}},
		{name: "refresh_token, client_secret_basic", status: 200,
			mk: func(t *testing.T) request {
				rt := e.password(t, "script", "alice", tkAlicePW, "openid read").RefreshToken
				return request{form: formOf("grant_type", tkRefresh, "refresh_token", rt), basic: e.basic("script")}
			},
			check: func(t *testing.T, tr tokenResponse, c accessClaims) {
				if tr.RefreshToken == "" || c.Sub != e.userID["alice"] || c.Scope != "openid read" || tr.Scope != "openid read" {
					t.Errorf("response %+v, claims %+v", tr, c)
				}
			}},
	}
}

// bearerGrants are the jwt-bearer grant's successes, alone or with client
// authentication.
func (e *tkTokenEnv) bearerGrants() []tkCase {
	return []tkCase{
		{name: "jwt-bearer, the assertion alone", status: 200,
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkJWT, "assertion", signRS256(t, e.ck, e.assertionClaims("keyed", e.tokenURL)))}
			},
			check: func(t *testing.T, tr tokenResponse, c accessClaims) {
				if c.Sub != "keyed" || c.ClientID != "keyed" || tr.RefreshToken != "" {
					t.Errorf("response %+v, claims %+v", tr, c)
				}
			}},
		{name: "jwt-bearer with private_key_jwt", status: 200,
			mk: func(t *testing.T) request {
				f := formOf("grant_type", tkJWT, "assertion", signRS256(t, e.ck, e.assertionClaims("keyed", e.tokenURL)))
				return request{form: withClientAssertion(f, signRS256(t, e.ck, e.assertionClaims("keyed", e.tokenURL)))}
			}},
		{name: "jwt-bearer with client_secret_basic", status: 200,
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkJWT, "assertion", signRS256(t, e.ck, e.assertionClaims("keyed", e.URL))),
					basic: e.basic("keyed")}
			}},
	}
}

// malformed are malformed requests.
func (e *tkTokenEnv) malformed() []tkCase {
	return []tkCase{
		{name: "missing grant_type", status: 400, code: "invalid_request", desc: "grant_type",
			mk: func(t *testing.T) request { return request{form: formOf("scope", "read"), basic: e.basic("svc")} }},
		{name: "empty body without Content-Type", status: 400, code: "invalid_request",
			mk: func(t *testing.T) request { return request{basic: e.basic("svc")} }},
		{name: "unsupported grant_type", status: 400, code: "unsupported_grant_type",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", "implicit"), basic: e.basic("svc")}
			}},
		{name: "made-up grant_type", status: 400, code: "unsupported_grant_type",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", "urn:example:grant\"\\\x01é"), basic: e.basic("svc")}
			}},
		{name: "repeated grant_type", status: 400, code: "invalid_request", desc: "repeated",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC, "grant_type", tkCC), basic: e.basic("svc")}
			}},
		{name: "repeated scope", status: 400, code: "invalid_request", desc: "scope",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC, "scope", "read", "scope", "write"), basic: e.basic("svc")}
			}},
		{name: "repeated client_secret", status: 400, code: "invalid_request",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC, "client_id", "svc", "client_secret", e.secret["svc"], "client_secret", "x")}
			}},
		{name: "JSON body", status: 400, code: "invalid_request", desc: "x-www-form-urlencoded",
			mk: func(t *testing.T) request {
				return request{body: `{"grant_type":"client_credentials"}`, ctype: "application/json", basic: e.basic("svc")}
			}},
		{name: "text/plain body", status: 400, code: "invalid_request",
			mk: func(t *testing.T) request {
				return request{body: "grant_type=client_credentials", ctype: "text/plain", basic: e.basic("svc")}
			}},
		{name: "parameters in the query string are ignored", status: 400, code: "invalid_request", desc: "grant_type",
			mk: func(t *testing.T) request {
				q := formOf("grant_type", tkCC, "client_id", "svc", "client_secret", e.secret["svc"]).Encode()
				return request{path: "/token?" + q, form: url.Values{}}
			}},
	}
}

// clientAuthRefusals are failed or ambiguous client authentication.
func (e *tkTokenEnv) clientAuthRefusals() []tkCase {
	return []tkCase{
		{name: "wrong secret, client_secret_basic", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC), basic: []string{"svc", e.secret["svc"] + "x"}}
			}},
		{name: "wrong secret, client_secret_post", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC, "client_id", "svc", "client_secret", e.secret["other"])}
			}},
		{name: "unknown client, client_secret_basic", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC), basic: []string{"nobody", e.secret["svc"]}}
			}},
		{name: "unknown client, client_secret_post", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC, "client_id", "nobody", "client_secret", "x")}
			}},
		{name: "empty Basic password", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC), basic: []string{"svc", ""}}
			}},
		{name: "special characters not form-encoded", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				raw := base64.StdEncoding.EncodeToString([]byte(tkWeirdID + ":" + tkWeirdSecret))
				return request{form: formOf("grant_type", tkCC), hdr: map[string]string{"Authorization": "Basic " + raw}}
			}},
		{name: "malformed Basic header", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC), hdr: map[string]string{"Authorization": "Basic !!!"}}
			}},
		{name: "Digest scheme", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC), hdr: map[string]string{"Authorization": `Digest username="svc"`}}
			}},
		{name: "no client authentication", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request { return request{form: formOf("grant_type", tkCC)} }},
		{name: "confidential client sends only client_id", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkPW, "username", "alice", "password", tkAlicePW, "client_id", "script")}
			}},
		{name: "public client on client_credentials", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request { return request{form: formOf("grant_type", tkCC, "client_id", "pub")} }},
		{name: "public client with a secret", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkPW, "username", "bob", "password", tkBobPW), basic: []string{"pub", "anything"}}
			}},
		{name: "two methods: Basic and client_secret", status: 400, code: "invalid_request", desc: "one client authentication",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC, "client_secret", e.secret["svc"]), basic: e.basic("svc")}
			}},
		{name: "two methods: Basic and client_assertion", status: 400, code: "invalid_request",
			mk: func(t *testing.T) request {
				return request{form: withClientAssertion(formOf("grant_type", tkCC), signRS256(t, e.ck, e.assertionClaims("keyed", e.tokenURL))),
					basic: e.basic("keyed")}
			}},
		{name: "two methods: client_secret and client_assertion", status: 400, code: "invalid_request",
			mk: func(t *testing.T) request {
				f := formOf("grant_type", tkCC, "client_id", "keyed", "client_secret", e.secret["keyed"])
				return request{form: withClientAssertion(f, signRS256(t, e.ck, e.assertionClaims("keyed", e.tokenURL)))}
			}},
		{name: "client_id differs from the Basic user", status: 400, code: "invalid_request",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC, "client_id", "other"), basic: e.basic("svc")}
			}},
	}
}

// keyRefusals are bad private_key_jwt assertions (RFC 7523 §2.2, §3).
func (e *tkTokenEnv) keyRefusals() []tkCase {
	return []tkCase{
		{name: "private_key_jwt signed by another key", status: 401, code: "invalid_client", desc: "signature",
			mk: func(t *testing.T) request {
				return request{form: withClientAssertion(formOf("grant_type", tkCC), signRS256(t, otherKey, e.assertionClaims("keyed", e.tokenURL)))}
			}},
		{name: "private_key_jwt expired", status: 401, code: "invalid_client", desc: "expired",
			mk: e.keyedWith("exp", e.clock.Now().Add(-5*time.Minute).Unix(),
				"iat", e.clock.Now().Add(-6*time.Minute).Unix())},
		{name: "private_key_jwt without exp", status: 401, code: "invalid_client", desc: "exp",
			mk: e.keyedWith("exp", nil)},
		{name: "private_key_jwt exp too far ahead", status: 401, code: "invalid_client",
			mk: e.keyedWith("exp", e.clock.Now().Add(30*24*time.Hour).Unix())},
		{name: "private_key_jwt without jti", status: 401, code: "invalid_client", desc: "jti",
			mk: e.keyedWith("jti", nil)},
		{name: "private_key_jwt for another audience", status: 401, code: "invalid_client", desc: "aud",
			mk: func(t *testing.T) request {
				c := e.assertionClaims("keyed", "https://other-idp.example.com/token")
				return request{form: withClientAssertion(formOf("grant_type", tkCC), signRS256(t, e.ck, c))}
			}},
		{name: "private_key_jwt without aud", status: 401, code: "invalid_client", desc: "aud",
			mk: e.keyedWith("aud", nil)},
		{name: "private_key_jwt with sub != iss", status: 401, code: "invalid_client", desc: "sub",
			mk: e.keyedWith("sub", "nojwt")},
		{name: "private_key_jwt without sub", status: 401, code: "invalid_client", desc: "sub",
			mk: e.keyedWith("sub", nil)},
		{name: "private_key_jwt HS256 keyed with the public key PEM", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				a := signJWT(t, jwt.SigningMethodHS256, publicPEM(t, e.ck), e.assertionClaims("keyed", e.tokenURL))
				return request{form: withClientAssertion(formOf("grant_type", tkCC), a)}
			}},
		{name: "private_key_jwt alg none", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				a := signJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, e.assertionClaims("keyed", e.tokenURL))
				return request{form: withClientAssertion(formOf("grant_type", tkCC), a)}
			}},
		{name: "private_key_jwt from a client without keys", status: 401, code: "invalid_client", desc: "key",
			mk: func(t *testing.T) request {
				return request{form: withClientAssertion(formOf("grant_type", tkCC), signRS256(t, e.ck, e.assertionClaims("nokeys", e.tokenURL)))}
			}},
		{name: "private_key_jwt from an unknown client", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				return request{form: withClientAssertion(formOf("grant_type", tkCC), signRS256(t, e.ck, e.assertionClaims("nobody", e.tokenURL)))}
			}},
		{name: "private_key_jwt iss differs from client_id", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				f := formOf("grant_type", tkCC, "client_id", "nojwt")
				return request{form: withClientAssertion(f, signRS256(t, e.ck, e.assertionClaims("keyed", e.tokenURL)))}
			}},
		{name: "private_key_jwt not a JWT", status: 401, code: "invalid_client",
			mk: func(t *testing.T) request {
				return request{form: withClientAssertion(formOf("grant_type", tkCC), "not.a.jwt")}
			}},
		{name: "wrong client_assertion_type", status: 400, code: "invalid_request", desc: "client_assertion_type",
			mk: func(t *testing.T) request {
				f := withClientAssertion(formOf("grant_type", tkCC), signRS256(t, e.ck, e.assertionClaims("keyed", e.tokenURL)))
				f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
				return request{form: f}
			}},
		{name: "client_assertion without its type", status: 400, code: "invalid_request",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC, "client_assertion", signRS256(t, e.ck, e.assertionClaims("keyed", e.tokenURL)))}
			}},
	}
}

// grantRefusals are grants and scopes the client may not have.
func (e *tkTokenEnv) grantRefusals() []tkCase {
	return []tkCase{
		{name: "grant not allowed for the client", status: 400, code: "unauthorized_client",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkPW, "username", "alice", "password", tkAlicePW), basic: e.basic("svc")}
			}},
		{name: "client_credentials not allowed for the client", status: 400, code: "unauthorized_client",
			mk: func(t *testing.T) request { return request{form: formOf("grant_type", tkCC), basic: e.basic("script")} }},
		{name: "client_credentials scope not allowed", status: 400, code: "invalid_scope",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkCC, "scope", "read admin"), basic: e.basic("svc")}
			}},
		{name: "password scope not allowed", status: 400, code: "invalid_scope",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkPW, "username", "bob", "password", tkBobPW, "client_id", "pub", "scope", "openid read")}
			}},
	}
}

// passwordRefusals are the password grant's refusals.
func (e *tkTokenEnv) passwordRefusals() []tkCase {
	return []tkCase{
		{name: "password without username", status: 400, code: "invalid_request", desc: "username",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkPW, "password", tkAlicePW), basic: e.basic("script")}
			}},
		{name: "password without password", status: 400, code: "invalid_request", desc: "password",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkPW, "username", "alice"), basic: e.basic("script")}
			}},
		{name: "wrong password", status: 400, code: "invalid_grant", desc: "invalid username or password",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkPW, "username", "alice", "password", tkAlicePW+"!"), basic: e.basic("script")}
			}},
		{name: "unknown user", status: 400, code: "invalid_grant", desc: "invalid username or password",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkPW, "username", "mallory", "password", tkAlicePW), basic: e.basic("script")}
			}},
	}
}

// refreshRefusals are the refresh_token grant's refusals (more in
// TestRefreshTokens).
func (e *tkTokenEnv) refreshRefusals() []tkCase {
	return []tkCase{
		{name: "refresh_token missing", status: 400, code: "invalid_request", desc: "refresh_token",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkRefresh), basic: e.basic("script")}
			}},
		{name: "refresh_token unknown", status: 400, code: "invalid_grant",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkRefresh, "refresh_token", "kgr_made-up"), basic: e.basic("script")}
			}},
		{name: "refresh_token for a client without the grant", status: 400, code: "unauthorized_client",
			mk: func(t *testing.T) request {
				rt := e.password(t, "script", "alice", tkAlicePW, "").RefreshToken
				return request{form: formOf("grant_type", tkRefresh, "refresh_token", rt), basic: e.basic("svc")}
			}},
	}
}

// bearerRefusals are the jwt-bearer grant's refusals (RFC 7523 §2.1, §3.1: a
// bad assertion is invalid_grant).
func (e *tkTokenEnv) bearerRefusals() []tkCase {
	return []tkCase{
		{name: "jwt-bearer without assertion", status: 400, code: "invalid_request", desc: "assertion",
			mk: func(t *testing.T) request { return request{form: formOf("grant_type", tkJWT)} }},
		{name: "jwt-bearer signed by another key", status: 400, code: "invalid_grant", desc: "signature",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkJWT, "assertion", signRS256(t, otherKey, e.assertionClaims("keyed", e.tokenURL)))}
			}},
		{name: "jwt-bearer from an unknown issuer", status: 400, code: "invalid_grant",
			mk: e.bearerAs("nobody")},
		{name: "jwt-bearer expired", status: 400, code: "invalid_grant", desc: "expired",
			mk: e.bearerAs("keyed", "exp", e.clock.Now().Add(-time.Hour).Unix(), "iat", nil)},
		{name: "jwt-bearer without exp", status: 400, code: "invalid_grant", desc: "exp",
			mk: e.bearerAs("keyed", "exp", nil)},
		{name: "jwt-bearer without jti", status: 400, code: "invalid_grant", desc: "jti",
			mk: e.bearerAs("keyed", "jti", nil)},
		{name: "jwt-bearer for another audience", status: 400, code: "invalid_grant", desc: "aud",
			mk: func(t *testing.T) request {
				c := e.assertionClaims("keyed", "https://other-idp.example.com")
				return request{form: formOf("grant_type", tkJWT, "assertion", signRS256(t, e.ck, c))}
			}},
		{name: "jwt-bearer with sub != iss", status: 400, code: "invalid_grant", desc: "sub",
			mk: e.bearerAs("keyed", "sub", "alice")},
		{name: "jwt-bearer HS256 keyed with the public key PEM", status: 400, code: "invalid_grant",
			mk: func(t *testing.T) request {
				a := signJWT(t, jwt.SigningMethodHS256, publicPEM(t, e.ck), e.assertionClaims("keyed", e.tokenURL))
				return request{form: formOf("grant_type", tkJWT, "assertion", a)}
			}},
		{name: "jwt-bearer from a client without keys", status: 400, code: "invalid_grant", desc: "key",
			mk: e.bearerAs("nokeys")},
		{name: "jwt-bearer not allowed for the client", status: 400, code: "unauthorized_client",
			mk: e.bearerAs("nojwt")},
		{name: "jwt-bearer assertion of another client than the authenticated one", status: 400, code: "invalid_grant",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkJWT, "assertion", signRS256(t, e.ck, e.assertionClaims("strict", e.tokenURL))),
					basic: e.basic("keyed")}
			}},
		{name: "jwt-bearer scope not allowed", status: 400, code: "invalid_scope",
			mk: func(t *testing.T) request {
				return request{form: formOf("grant_type", tkJWT, "scope", "write", "assertion", signRS256(t, e.ck, e.assertionClaims("keyed", e.tokenURL)))}
			}},
	}
}

// ---------------------------------------------------------------------------
// 2. Access tokens: per-client policy, seen by the independent consumer.

func TestAccessTokenPolicy(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	ck, _ := clientKeys()
	t0 := e.clock.Now()

	svc := e.mustToken(t, request{form: formOf("grant_type", tkCC), basic: e.basic("svc")})
	future := e.mustToken(t, request{form: formOf("grant_type", tkJWT, "assertion", signRS256(t, ck, jwt.MapClaims{"iss": "client"}))})
	cases := []struct {
		name            string
		tok             string
		ttl, delay      time.Duration
		aud             []string
		sub, client, sc string
	}{
		{"svc: 5 min, two audiences", svc.AccessToken, 5 * time.Minute, 0, []string{tkAPIAud, tkBillingAud}, "svc", "svc", "read write"},
		{"client: 30 s, valid from +10 s", future.AccessToken, 30 * time.Second, 10 * time.Second, []string{"client"}, "client", "client", "read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.verifyAt(t, tc.tok, t0.Add(tc.delay))
			if c.Iss != e.URL || c.Sub != tc.sub || c.ClientID != tc.client || c.Scope != tc.sc || !slices.Equal(c.Aud, tc.aud) ||
				c.Iat != t0.Unix() || c.Nbf != t0.Add(tc.delay).Unix() || c.Exp != t0.Add(tc.ttl).Unix() {
				t.Errorf("claims %+v", c)
			}
			// The consumer agrees on the window's edges.
			if tc.delay > 0 {
				if _, err := e.parseAt(t, tc.tok, t0.Add(tc.delay-time.Second)); !errors.Is(err, jwt.ErrTokenNotValidYet) {
					t.Errorf("one second before nbf: %v, want not valid yet", err)
				}
			}
			if _, err := e.parseAt(t, tc.tok, t0.Add(tc.ttl)); !errors.Is(err, jwt.ErrTokenExpired) {
				t.Errorf("at exp: %v, want expired", err)
			}
			// Another audience's verifier refuses it.
			keys := e.fetchJWKS(t)
			_, err := jwt.Parse(tc.tok, func(tk *jwt.Token) (any, error) { return keys[tk.Header["kid"].(string)], nil },
				jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience("https://unrelated.example.com"),
				jwt.WithTimeFunc(func() time.Time { return t0.Add(tc.delay) }))
			if !errors.Is(err, jwt.ErrTokenInvalidAudience) {
				t.Errorf("verified for an unrelated audience: %v", err)
			}
		})
	}

	// Two tokens have different jti.
	other := e.mustToken(t, request{form: formOf("grant_type", tkCC), basic: e.basic("svc")})
	if e.verify(t, other.AccessToken).Jti == e.verify(t, svc.AccessToken).Jti {
		t.Error("two tokens share a jti")
	}
}

// ---------------------------------------------------------------------------
// 3. Refresh tokens: rotation, reuse detection, binding to the client, scope.

func TestRefreshTokens(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	t.Run("rotated on every use; reuse revokes the family", func(t *testing.T) { refreshRotation(t, e) })
	t.Run("another client cannot use it", func(t *testing.T) { refreshOtherClient(t, e) })
	t.Run("scope may narrow, never widen", func(t *testing.T) { refreshScope(t, e) })
	t.Run("public client", func(t *testing.T) { refreshPublicClient(t, e) })
	t.Run("client_credentials and jwt-bearer give none", func(t *testing.T) { refreshNoneForClients(t, e) })
	t.Run("expired", func(t *testing.T) { refreshExpired(t, e) }) // runs last: it moves the clock
}

// refreshRotation: every use rotates the refresh token; using a spent one
// revokes the whole family.
func refreshRotation(t *testing.T, e *tkEnv) {
	first := e.password(t, "script", "alice", tkAlicePW, "openid profile read")
	rt0 := first.RefreshToken
	if !strings.HasPrefix(rt0, "kgr_") || len(rt0) < 40 {
		t.Errorf("refresh token %q does not look opaque and 256-bit", rt0)
	}
	res := e.refresh(t, "script", rt0, "")
	if res.status != 200 {
		t.Fatalf("first refresh: %s", res)
	}
	second := checkTokenResponse(t, res)
	rt1 := second.RefreshToken
	if rt1 == "" || rt1 == rt0 || second.AccessToken == first.AccessToken {
		t.Fatalf("not rotated: %q → %q", rt0, rt1)
	}
	if c := e.verify(t, second.AccessToken); c.Sub != e.userID["alice"] || c.Scope != "openid profile read" {
		t.Errorf("refreshed claims %+v", c)
	}
	if m := e.introspect(t, rt1); m["active"] != true || m["token_type"] != nil || m["client_id"] != "script" {
		t.Errorf("introspect the new refresh token: %v", m)
	}
	if e.active(t, rt0) {
		t.Error("the spent refresh token is still active")
	}

	// The spent one again: refused, and the whole family with it.
	wantOAuthError(t, e.refresh(t, "script", rt0, ""), 400, "invalid_grant", "already used")
	wantOAuthError(t, e.refresh(t, "script", rt1, ""), 400, "invalid_grant", "")
	if e.active(t, rt1) {
		t.Error("after reuse of its ancestor, the newest refresh token is still active")
	}
}

// refreshOtherClient: another client cannot use a refresh token, and its
// attempt neither spends nor revokes it.
func refreshOtherClient(t *testing.T, e *tkEnv) {
	rt := e.password(t, "script", "alice", tkAlicePW, "").RefreshToken
	wantOAuthError(t, e.refresh(t, "other", rt, ""), 400, "invalid_grant", "another client")
	wantOAuthError(t, e.refresh(t, "pub", rt, ""), 400, "invalid_grant", "")
	// The attempt neither spent nor revoked it.
	if res := e.refresh(t, "script", rt, ""); res.status != 200 {
		t.Errorf("the owner's refresh after a foreign attempt: %s", res)
	}
}

// refreshScope: a refresh may narrow the scope, never widen it past the original
// grant; a refused widening does not burn the token.
func refreshScope(t *testing.T, e *tkEnv) {
	rt := e.password(t, "script", "alice", tkAlicePW, "openid profile").RefreshToken
	wantOAuthError(t, e.refresh(t, "script", rt, "openid email"), 400, "invalid_scope", "email")
	wantOAuthError(t, e.refresh(t, "script", rt, "read"), 400, "invalid_scope", "")
	// A refused widening does not burn the token.
	res := e.refresh(t, "script", rt, "openid")
	if res.status != 200 {
		t.Fatalf("narrowing after a refused widening: %s", res)
	}
	narrow := checkTokenResponse(t, res)
	if c := e.verify(t, narrow.AccessToken); narrow.Scope != "openid" || c.Scope != "openid" {
		t.Errorf("narrowed: response scope %q, claims %+v", narrow.Scope, c)
	}
	// Omitting scope asks for the original grant again (RFC 6749 §6).
	res = e.refresh(t, "script", narrow.RefreshToken, "")
	if res.status != 200 {
		t.Fatalf("refresh after narrowing: %s", res)
	}
	if again := checkTokenResponse(t, res); e.verify(t, again.AccessToken).Scope != "openid profile" {
		t.Errorf("scope after narrowing and omitting: %q", again.Scope)
	}
	// But never wider than the original.
	wantOAuthError(t, e.refresh(t, "script", narrow.RefreshToken, "openid profile email"), 400, "invalid_scope", "")
}

// refreshPublicClient: a public client's refresh token rotates, and reuse
// revokes the family.
func refreshPublicClient(t *testing.T, e *tkEnv) {
	rt := e.password(t, "pub", "bob", tkBobPW, "openid").RefreshToken
	res := e.refresh(t, "pub", rt, "")
	if res.status != 200 {
		t.Fatalf("%s", res)
	}
	next := checkTokenResponse(t, res)
	if next.RefreshToken == "" || next.RefreshToken == rt {
		t.Error("not rotated")
	}
	wantOAuthError(t, e.refresh(t, "pub", rt, ""), 400, "invalid_grant", "")
	wantOAuthError(t, e.refresh(t, "pub", next.RefreshToken, ""), 400, "invalid_grant", "")
}

// refreshNoneForClients: client_credentials gives no refresh token.
func refreshNoneForClients(t *testing.T, e *tkEnv) {
	if tr := e.mustToken(t, request{form: formOf("grant_type", tkCC), basic: e.basic("other")}); tr.RefreshToken != "" {
		t.Error("client_credentials returned a refresh token")
	}
}

// refreshExpired: an expired refresh token is inactive and refused. It moves
// the clock.
func refreshExpired(t *testing.T, e *tkEnv) {
	rt := e.password(t, "script", "alice", tkAlicePW, "").RefreshToken
	e.clock.Advance(24*time.Hour + time.Second)
	if e.active(t, rt) {
		t.Error("an expired refresh token introspects active")
	}
	wantOAuthError(t, e.refresh(t, "script", rt, ""), 400, "invalid_grant", "expired")
}

// ---------------------------------------------------------------------------
// 4. /revoke (RFC 7009).

// refusal is a request an endpoint must refuse with status and OAuth error
// code.
type refusal struct {
	name   string
	r      request
	status int
	code   string
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	ck, _ := clientKeys()
	revoke := func(t *testing.T, r request) reply {
		t.Helper()
		r.path = "/revoke"
		return e.do(t, r)
	}
	wantOK := func(t *testing.T, res reply) {
		t.Helper()
		if res.status != 200 {
			t.Errorf("revoke: %s, want 200", res)
		}
	}

	t.Run("a refresh token revokes its family", func(t *testing.T) {
		rt0 := e.password(t, "script", "alice", tkAlicePW, "").RefreshToken
		res := e.refresh(t, "script", rt0, "")
		rt1 := checkTokenResponse(t, res).RefreshToken
		wantOK(t, revoke(t, request{form: formOf("token", rt1, "token_type_hint", "refresh_token"), basic: e.basic("script")}))
		wantOAuthError(t, e.refresh(t, "script", rt1, ""), 400, "invalid_grant", "revoked")
		if e.active(t, rt1) {
			t.Error("revoked refresh token introspects active")
		}
		// Revoking the spent ancestor also reaches the newest link.
		rtA := e.password(t, "script", "alice", tkAlicePW, "").RefreshToken
		rtB := checkTokenResponse(t, e.refresh(t, "script", rtA, "")).RefreshToken
		wantOK(t, revoke(t, request{form: formOf("token", rtA), basic: e.basic("script")}))
		wantOAuthError(t, e.refresh(t, "script", rtB, ""), 400, "invalid_grant", "")
		// Revoking twice is fine.
		wantOK(t, revoke(t, request{form: formOf("token", rtA), basic: e.basic("script")}))
	})

	t.Run("an access token goes on the deny list", func(t *testing.T) {
		at := e.password(t, "script", "alice", tkAlicePW, "openid profile").AccessToken
		if res := e.do(t, request{method: http.MethodGet, path: "/userinfo", hdr: map[string]string{"Authorization": "Bearer " + at}}); res.status != 200 {
			t.Fatalf("userinfo before revocation: %s", res)
		}
		wantOK(t, revoke(t, request{form: formOf("token", at, "token_type_hint", "access_token"), basic: e.basic("script")}))
		if e.active(t, at) {
			t.Error("revoked access token introspects active")
		}
		res := e.do(t, request{method: http.MethodGet, path: "/userinfo", hdr: map[string]string{"Authorization": "Bearer " + at}})
		if res.status != 401 || !strings.Contains(res.hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("userinfo with a revoked token: %s %q", res, res.hdr.Get("WWW-Authenticate"))
		}
		if res := e.do(t, request{method: http.MethodGet, path: "/users/me", hdr: map[string]string{"Authorization": "Bearer " + at}}); res.status != 401 {
			t.Errorf("/users/me with a revoked token: %s", res)
		}
	})

	t.Run("private_key_jwt with aud = revocation endpoint", func(t *testing.T) {
		at := e.mustToken(t, request{form: formOf("grant_type", tkCC), basic: e.basic("keyed")}).AccessToken
		f := withClientAssertion(formOf("token", at), signRS256(t, ck, e.assertionClaims("keyed", e.URL+"/revoke")))
		wantOK(t, revoke(t, request{form: f}))
		if e.active(t, at) {
			t.Error("still active")
		}
	})

	t.Run("unknown tokens are fine", func(t *testing.T) {
		for _, tok := range []string{"garbage", "kgr_unknown", signRS256(t, ck, jwt.MapClaims{"iss": e.URL, "jti": "x"})} {
			res := revoke(t, request{form: formOf("token", tok), basic: e.basic("script")})
			if res.status != 200 || len(res.body) != 0 {
				t.Errorf("revoke %q: %s, want an empty 200", tok, res)
			}
		}
	})

	t.Run("another client's token is refused", func(t *testing.T) {
		tr := e.password(t, "script", "alice", tkAlicePW, "")
		for _, tok := range []string{tr.AccessToken, tr.RefreshToken} {
			wantOAuthError(t, revoke(t, request{form: formOf("token", tok), basic: e.basic("other")}), 400, "unauthorized_client", "")
			wantOAuthError(t, revoke(t, request{form: formOf("token", tok, "client_id", "pub")}), 400, "unauthorized_client", "")
			if !e.active(t, tok) {
				t.Error("a refused revocation revoked the token")
			}
		}
	})

	t.Run("a public client revokes with client_id", func(t *testing.T) {
		tr := e.password(t, "pub", "bob", tkBobPW, "")
		wantOK(t, revoke(t, request{form: formOf("token", tr.RefreshToken, "client_id", "pub")}))
		wantOAuthError(t, e.refresh(t, "pub", tr.RefreshToken, ""), 400, "invalid_grant", "")
		wantOK(t, revoke(t, request{form: formOf("token", tr.AccessToken, "client_id", "pub")}))
		if e.active(t, tr.AccessToken) {
			t.Error("access token still active")
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []refusal{
			{"no token", request{form: formOf("token_type_hint", "access_token"), basic: e.basic("script")}, 400, "invalid_request"},
			{"no client authentication", request{form: formOf("token", "x")}, 401, "invalid_client"},
			{"wrong secret", request{form: formOf("token", "x"), basic: []string{"script", "nope"}}, 401, "invalid_client"},
			{"confidential client with only client_id", request{form: formOf("token", "x", "client_id", "script")}, 401, "invalid_client"},
			{"unsupported token_type_hint", request{form: formOf("token", "x", "token_type_hint", "id_token"), basic: e.basic("script")}, 400, "unsupported_token_type"},
			{"repeated token", request{form: formOf("token", "x", "token", "y"), basic: e.basic("script")}, 400, "invalid_request"},
			{"JSON body", request{body: `{"token":"x"}`, ctype: "application/json", basic: e.basic("script")}, 400, "invalid_request"},
		} {
			t.Run(tc.name, func(t *testing.T) { wantOAuthError(t, revoke(t, tc.r), tc.status, tc.code, "") })
		}
		if res := e.do(t, request{method: http.MethodGet, path: "/revoke?token=x"}); res.status != 405 {
			t.Errorf("GET /revoke: %s", res)
		}
	})
}

// ---------------------------------------------------------------------------
// 5. /introspect (RFC 7662).

func TestIntrospect(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	ck, _ := clientKeys()
	svc := e.mustToken(t, request{form: formOf("grant_type", tkCC, "scope", "read"), basic: e.basic("svc")})
	pw := e.password(t, "script", "alice", tkAlicePW, "openid read")
	t.Run("requires client authentication", func(t *testing.T) { introspectNeedsClientAuth(t, e, svc) })
	t.Run("an active token shows its claims", func(t *testing.T) { introspectActive(t, e, svc, pw) })
	t.Run("private_key_jwt with aud = introspection endpoint", func(t *testing.T) { introspectKeyAuth(t, e, ck, svc) })
	t.Run("garbage is inactive", func(t *testing.T) { introspectGarbage(t, e, svc) })
	t.Run("revoked is inactive", func(t *testing.T) { introspectRevoked(t, e) })
	t.Run("expired is inactive", func(t *testing.T) { introspectExpired(t, e, svc, pw) }) // runs last: it moves the clock
}

// introspectNeedsClientAuth: /introspect refuses a caller that does not
// authenticate as a confidential client, or sends no token, without revealing
// anything about the token; GET is not allowed.
func introspectNeedsClientAuth(t *testing.T, e *tkEnv, svc tokenResponse) {
	for _, tc := range []refusal{
		{"none", request{form: formOf("token", svc.AccessToken)}, 401, "invalid_client"},
		{"public client", request{form: formOf("token", svc.AccessToken, "client_id", "pub")}, 401, "invalid_client"},
		{"wrong secret", request{form: formOf("token", svc.AccessToken), basic: []string{"svc", "wrong"}}, 401, "invalid_client"},
		{"no token", request{form: formOf(), basic: e.basic("svc")}, 400, "invalid_request"},
		{"JSON body", request{body: `{"token":"x"}`, ctype: "application/json", basic: e.basic("svc")}, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.path = "/introspect"
			res := e.do(t, tc.r)
			wantOAuthError(t, res, tc.status, tc.code, "")
			if strings.Contains(string(res.body), `"active"`) {
				t.Errorf("refused introspection reveals activity: %s", res.body)
			}
		})
	}
	if res := e.do(t, request{method: http.MethodGet, path: "/introspect"}); res.status != 405 {
		t.Errorf("GET /introspect: %s", res)
	}
}

// introspectActive: an active token's introspection shows its claims, and a
// password token's also how the user signed in (amr, acr).
func introspectActive(t *testing.T, e *tkEnv, svc, pw tokenResponse) {
	c := e.verify(t, svc.AccessToken)
	m := e.introspect(t, svc.AccessToken)
	want := map[string]any{"active": true, "iss": e.URL, "sub": "svc", "client_id": "svc", "scope": "read",
		"jti": c.Jti, "exp": float64(c.Exp), "iat": float64(c.Iat), "nbf": float64(c.Nbf)}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v (%v)", k, m[k], v, m)
		}
	}
	if fmt.Sprint(m["aud"]) != fmt.Sprint([]any{tkAPIAud, tkBillingAud}) {
		t.Errorf("aud = %v", m["aud"])
	}
	if _, has := m["amr"]; has || m["acr"] != nil {
		t.Errorf("a client's own token has amr/acr: %v", m)
	}
	m = e.introspect(t, pw.AccessToken)
	if m["active"] != true || m["sub"] != e.userID["alice"] || m["username"] != "alice" || m["scope"] != "openid read" {
		t.Errorf("password token: %v", m)
	}
	// RFC 7662 §2.2 allows extra members: how the user signed in.
	if fmt.Sprint(m["amr"]) != "[pwd]" || m["acr"] != idp.ACRPassword {
		t.Errorf("password token: amr %v acr %v, want [pwd] %s", m["amr"], m["acr"], idp.ACRPassword)
	}
}

// introspectKeyAuth: a client may authenticate with private_key_jwt whose aud
// is the introspection endpoint.
func introspectKeyAuth(t *testing.T, e *tkEnv, ck *rsa.PrivateKey, svc tokenResponse) {
	f := withClientAssertion(formOf("token", svc.AccessToken), signRS256(t, ck, e.assertionClaims("keyed", e.URL+"/introspect")))
	res := e.do(t, request{path: "/introspect", form: f})
	if res.status != 200 || res.object(t)["active"] != true {
		t.Errorf("%s", res)
	}
}

// introspectGarbage: strings that are no token of ours are inactive.
func introspectGarbage(t *testing.T, e *tkEnv, svc tokenResponse) {
	for _, tok := range []string{"x", "a.b.c", "kgr_nothing", svc.AccessToken + "x"} {
		if e.active(t, tok) {
			t.Errorf("%q introspects active", tok)
		}
	}
}

// introspectRevoked: a revoked token is inactive.
func introspectRevoked(t *testing.T, e *tkEnv) {
	at := e.mustToken(t, request{form: formOf("grant_type", tkCC), basic: e.basic("other")}).AccessToken
	if !e.active(t, at) {
		t.Fatal("fresh token inactive")
	}
	if res := e.do(t, request{path: "/revoke", form: formOf("token", at), basic: e.basic("other")}); res.status != 200 {
		t.Fatal(res)
	}
	if e.active(t, at) {
		t.Error("revoked token active")
	}
}

// introspectExpired: a token is active until its exp, and userinfo refuses it
// after. It moves the clock.
func introspectExpired(t *testing.T, e *tkEnv, svc, pw tokenResponse) {
	e.clock.Advance(5*time.Minute - time.Second)
	if !e.active(t, svc.AccessToken) {
		t.Error("inactive one second before exp")
	}
	e.clock.Advance(time.Second)
	if e.active(t, svc.AccessToken) {
		t.Error("active at exp")
	}
	res := e.do(t, request{method: http.MethodGet, path: "/userinfo", hdr: map[string]string{"Authorization": "Bearer " + pw.AccessToken}})
	if res.status != 200 {
		t.Errorf("a 15-minute token at +5 min: %s", res)
	}
	e.clock.Advance(10 * time.Minute)
	res = e.do(t, request{method: http.MethodGet, path: "/userinfo", hdr: map[string]string{"Authorization": "Bearer " + pw.AccessToken}})
	if res.status != 401 || !strings.Contains(res.hdr.Get("WWW-Authenticate"), "expired") {
		t.Errorf("userinfo with an expired token: %s %q", res, res.hdr.Get("WWW-Authenticate"))
	}
}

// ---------------------------------------------------------------------------
// 6. The script login's future tokens (valid from 10 s after issue), on an
// injected clock.

func TestScriptLoginFutureTokens(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	for _, tc := range []struct {
		name  string
		issue func(t *testing.T, e *tkEnv) string
	}{
		{"POST /login application/jwt", scriptLoginJWT},
		{"POST /login/assertion application/jwt", scriptLoginAssertionPath},
		{"POST /login without Content-Type (Python requests' data=)", scriptLoginUntyped},
		{"POST /token jwt-bearer", scriptLoginJWTBearer},
	} {
		t.Run(tc.name, func(t *testing.T) { e.wantFutureToken(t, tc.issue) })
	}
	t.Run("refusals", func(t *testing.T) { scriptLoginRefusals(t, e) })
}

// tkScriptAssertion is exactly what the example script sends:
// jwt.encode({'iss': "client"}, key, algorithm="RS256").
func tkScriptAssertion(t *testing.T) string {
	ck, _ := clientKeys()
	return signRS256(t, ck, jwt.MapClaims{"iss": "client"})
}

// scriptLogin POSTs body to /login with Content-Type ctype.
func (e *tkEnv) scriptLogin(t *testing.T, body, ctype string) reply {
	t.Helper()
	return e.do(t, request{path: "/login", body: body, ctype: ctype})
}

// scriptLoginJWT logs in by POST /login with application/jwt: the answer is
// the bare token, as application/jwt, not to be stored.
func scriptLoginJWT(t *testing.T, e *tkEnv) string {
	res := e.scriptLogin(t, tkScriptAssertion(t), "application/jwt")
	if res.status != 200 {
		t.Fatalf("login: %s", res)
	}
	if ct := res.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/jwt") {
		t.Errorf("Content-Type %q, want application/jwt", ct)
	}
	if cc := res.hdr.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("Cache-Control %q", cc)
	}
	tok := string(res.body)
	if strings.Count(tok, ".") != 2 || strings.TrimSpace(tok) != tok || strings.ContainsAny(tok, `{}"`) {
		t.Fatalf("body is not a bare token: %q", tok)
	}
	return tok
}

// scriptLoginAssertionPath logs in by POST /login/assertion with
// application/jwt.
func scriptLoginAssertionPath(t *testing.T, e *tkEnv) string {
	res := e.do(t, request{path: "/login/assertion", body: tkScriptAssertion(t), ctype: "application/jwt"})
	if res.status != 200 || !strings.HasPrefix(res.hdr.Get("Content-Type"), "application/jwt") {
		t.Fatalf("login: %s %q", res, res.hdr.Get("Content-Type"))
	}
	return string(res.body)
}

// scriptLoginUntyped logs in by POST /login without a Content-Type, as
// Python requests' data= sends it.
func scriptLoginUntyped(t *testing.T, e *tkEnv) string {
	res := e.scriptLogin(t, tkScriptAssertion(t), "")
	if res.status != 200 {
		t.Fatalf("login: %s", res)
	}
	return string(res.body)
}

// scriptLoginJWTBearer gets the same token from /token's jwt-bearer grant.
func scriptLoginJWTBearer(t *testing.T, e *tkEnv) string {
	tr := e.mustToken(t, request{form: formOf("grant_type", tkJWT, "assertion", tkScriptAssertion(t))})
	if tr.ExpiresIn != 30 || tr.RefreshToken != "" {
		t.Errorf("response %+v", tr)
	}
	return tr.AccessToken
}

// wantFutureToken issues a token with issue and checks it is client's,
// valid from 10 s to 30 s after issue, and active exactly then, walking the
// clock past each edge.
func (e *tkEnv) wantFutureToken(t *testing.T, issue func(t *testing.T, e *tkEnv) string) {
	t0 := e.clock.Now()
	tok := issue(t, e)
	c := e.verifyAt(t, tok, t0.Add(10*time.Second))
	if c.Sub != "client" || c.ClientID != "client" || c.Iat != t0.Unix() || c.Nbf != c.Iat+10 || c.Exp != c.Iat+30 {
		t.Errorf("claims %+v, want nbf = iat+10, exp = iat+30", c)
	}
	for _, step := range []struct {
		at     time.Duration
		active bool
	}{{0, false}, {9 * time.Second, false}, {10 * time.Second, true}, {29 * time.Second, true}, {30 * time.Second, false}, {time.Hour, false}} {
		e.clock.Advance(t0.Add(step.at).Sub(e.clock.Now()))
		if got := e.active(t, tok); got != step.active {
			t.Errorf("t+%s: active=%v, want %v", step.at, got, step.active)
		}
	}
}

// scriptLoginRefusals: every assertion the script login must refuse, with
// the reason in the error, a challenge on 401, and no token.
func scriptLoginRefusals(t *testing.T, e *tkEnv) {
	ck, _ := clientKeys()
	now := func() int64 { return e.clock.Now().Unix() }
	strict := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "strict", "aud": e.URL, "exp": now() + 60, "jti": newJTI()}
	}
	replayed := signRS256(t, ck, strict())
	if res := e.scriptLogin(t, replayed, "application/jwt"); res.status != 200 {
		t.Fatalf("strict client with exp, jti, aud: %s", res)
	}
	for _, tc := range []struct {
		name   string
		body   string
		ctype  string
		status int
		reason string
	}{
		{"unknown client", signRS256(t, ck, jwt.MapClaims{"iss": "nobody"}), "application/jwt", 401, "unknown client"},
		{"bad signature", signRS256(t, otherKey, jwt.MapClaims{"iss": "client"}), "application/jwt", 401, "signature"},
		{"tampered payload", tkTamper(t, tkScriptAssertion(t)), "application/jwt", 401, "signature"},
		{"HS256 with the public key as secret", signJWT(t, jwt.SigningMethodHS256, publicPEM(t, ck), jwt.MapClaims{"iss": "client"}), "application/jwt", 401, "algorithm"},
		{"alg none", signJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"iss": "client"}), "application/jwt", 401, "algorithm"},
		{"no iss", signRS256(t, ck, jwt.MapClaims{"sub": "client"}), "application/jwt", 401, "iss"},
		{"not a JWT", "hello", "application/jwt", 401, "JWT"},
		{"empty body", "", "application/jwt", 401, ""},
		{"bare assertion with a wrong aud", signRS256(t, ck, jwt.MapClaims{"iss": "client", "aud": "https://elsewhere"}), "application/jwt", 401, "aud"},
		{"bare assertion, expired", signRS256(t, ck, jwt.MapClaims{"iss": "client", "exp": now() - 3600}), "application/jwt", 401, "expired"},
		{"strict client, bare", signRS256(t, ck, jwt.MapClaims{"iss": "strict"}), "application/jwt", 401, "exp"},
		{"strict client without aud", signRS256(t, ck, editClaims(strict(), "aud", nil)), "application/jwt", 401, "aud"},
		{"strict client without jti", signRS256(t, ck, editClaims(strict(), "jti", nil)), "application/jwt", 401, "jti"},
		{"strict client without exp", signRS256(t, ck, editClaims(strict(), "exp", nil)), "application/jwt", 401, "exp"},
		{"strict client replay", replayed, "application/jwt", 401, "already used"},
		{"client without the jwt-bearer grant", signRS256(t, ck, jwt.MapClaims{"iss": "nojwt", "aud": e.URL, "exp": now() + 60, "jti": newJTI()}), "application/jwt", 403, "jwt-bearer"},
		{"JSON", `{"iss":"client"}`, "application/json", 415, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.scriptLogin(t, tc.body, tc.ctype)
			if res.status != tc.status {
				t.Fatalf("%s, want %d", res, tc.status)
			}
			msg, _ := res.object(t)["error"].(string)
			if msg == "" || !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.reason)) {
				t.Errorf("error %q does not give the reason %q", msg, tc.reason)
			}
			if tc.status == 401 && res.hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if strings.Count(string(res.body), ".") == 2 && !strings.HasPrefix(string(res.body), "{") {
				t.Error("a refusal returned a token")
			}
		})
	}
}

// tkTamper changes a JWT's payload (adds a claim, keeps iss), keeping the
// original signature.
func tkTamper(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	p = append(p[:len(p)-1], []byte(`,"admin":true}`)...)
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

// ---------------------------------------------------------------------------
// 7. The key server (GET /getkey): a client's registered public keys.

func TestGetKey(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	ck, _ := clientKeys()
	for _, id := range []string{"keyed", "client"} {
		res := e.do(t, request{method: http.MethodGet, path: "/getkey?identity=" + url.QueryEscape(id)})
		if res.status != 200 {
			t.Fatalf("getkey %s: %s", id, res)
		}
		block, rest := pem.Decode(res.body)
		if block == nil || block.Type != "PUBLIC KEY" || len(strings.TrimSpace(string(rest))) != 0 {
			t.Fatalf("getkey %s: not one PEM public key: %s", id, res.body)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			t.Fatalf("getkey %s: %v", id, err)
		}
		if !ck.PublicKey.Equal(pub) {
			t.Errorf("getkey %s: not the registered key", id)
		}
	}
	for _, tc := range []struct {
		name, query string
		status      int
		msg         string
	}{
		{"unknown identity", "?identity=server99", 404, "unknown identity"},
		{"identity with odd characters", "?identity=" + url.QueryEscape("../etc/passwd\x00é"), 404, "unknown identity"},
		{"client without a key", "?identity=svc", 404, "no registered public key"},
		{"missing parameter", "", 400, "identity"},
		{"empty parameter", "?identity=", 400, "identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.do(t, request{method: http.MethodGet, path: "/getkey" + tc.query})
			if res.status != tc.status {
				t.Fatalf("%s, want %d", res, tc.status)
			}
			if ct := res.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if msg, _ := res.object(t)["error"].(string); !strings.Contains(msg, tc.msg) {
				t.Errorf("error %q does not say %q", msg, tc.msg)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 8. Users: signup, profile, userinfo.

func TestUsersAPI(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	const davePW = "dave's very long password"

	// Signup. A burst of ten signups per address is allowed; this uses nine.
	created := usersSignUpDave(t, e, davePW)
	usersSignupRefusals(t, e)
	// The new user logs in and reads their profile.
	usersReadProfile(t, e, davePW, created)
	usersProfileRefusals(t, e, davePW)
}

// signup POSTs body to /users with Content-Type ctype.
func (e *tkEnv) signup(t *testing.T, body, ctype string) reply {
	t.Helper()
	return e.do(t, request{path: "/users", body: body, ctype: ctype})
}

// usersSignUpDave signs dave up, trying to make him an admin, and returns
// the user created, which is no admin and shows no secret.
func usersSignUpDave(t *testing.T, e *tkEnv, davePW string) map[string]any {
	res := e.signup(t, `{"username":"dave","password":"`+davePW+`","email":"dave@example.com","name":"Dave","admin":true}`, "application/json")
	if res.status != 201 || res.hdr.Get("Location") != "/users/me" {
		t.Fatalf("signup: %s (Location %q)", res, res.hdr.Get("Location"))
	}
	created := res.object(t)
	if !uuidPattern.MatchString(fmt.Sprint(created["id"])) || created["username"] != "dave" || created["email"] != "dave@example.com" || created["admin"] != nil {
		t.Errorf("created: %v", created)
	}
	tkNoSecrets(t, res.body, davePW)
	return created
}

// usersSignupRefusals: signups that must be refused, each with its reason.
func usersSignupRefusals(t *testing.T, e *tkEnv) {
	for _, tc := range []struct {
		name, body, ctype string
		status            int
		reason            string
	}{
		{"duplicate username", `{"username":"dave","password":"another long password"}`, "application/json", 409, "already registered"},
		{"duplicate email", `{"username":"dave2","password":"another long password","email":"alice@example.com"}`, "application/json", 409, "already registered"},
		{"short password", `{"username":"erin","password":"short"}`, "application/json", 400, "password: must be at least 8 characters"},
		{"password equal to the username", `{"username":"frankfrank","password":"FRANKFRANK"}`, "application/json", 400, "password"},
		{"bad username", `{"username":"a b","password":"a long password"}`, "application/json", 400, "username"},
		{"bad email", `{"username":"gina","password":"a long password","email":"not-an-email"}`, "application/json", 400, "email"},
		{"malformed JSON", `{"username":`, "application/json", 400, ""},
		{"form body", "username=hank&password=a+long+password", "application/x-www-form-urlencoded", 415, "JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.signup(t, tc.body, tc.ctype)
			if res.status != tc.status {
				t.Fatalf("%s, want %d", res, tc.status)
			}
			if msg, _ := res.object(t)["error"].(string); msg == "" || !strings.Contains(msg, tc.reason) {
				t.Errorf("error %q does not say %q", msg, tc.reason)
			}
		})
	}
}

// usersReadProfile logs dave in and checks /users/me shows his profile,
// no secret, and that signup did not make him an admin.
func usersReadProfile(t *testing.T, e *tkEnv, davePW string, created map[string]any) {
	tr := e.password(t, "pub", "dave", davePW, "openid profile email")
	res := e.do(t, request{method: http.MethodGet, path: "/users/me", hdr: map[string]string{"Authorization": "Bearer " + tr.AccessToken}})
	if res.status != 200 {
		t.Fatalf("/users/me: %s", res)
	}
	me := res.object(t)
	if me["id"] != created["id"] || me["username"] != "dave" || me["email"] != "dave@example.com" || me["name"] != "Dave" || me["admin"] != nil {
		t.Errorf("/users/me: %v", me)
	}
	tkNoSecrets(t, res.body, davePW)
	if u, err := e.IDP.Directory().UserByLogin(t.Context(), "dave"); err != nil || u.Admin {
		t.Errorf("signup could set admin: %+v %v", u, err)
	}
}

// usersProfileRefusals: /users/me wants a user's bearer token; without one,
// with a bad one, with Basic credentials or a client's token it answers 401.
func usersProfileRefusals(t *testing.T, e *tkEnv, davePW string) {
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"no token", "", 401},
		{"garbage", "Bearer x.y.z", 401},
		{"Basic", "Basic " + base64.StdEncoding.EncodeToString([]byte("dave:"+davePW)), 401},
	} {
		res := e.do(t, request{method: http.MethodGet, path: "/users/me", hdr: map[string]string{"Authorization": tc.auth}})
		if res.status != tc.status || !strings.HasPrefix(res.hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("/users/me %s: %s %q", tc.name, res, res.hdr.Get("WWW-Authenticate"))
		}
	}
	// A client's token has no user behind it.
	cc := e.mustToken(t, request{form: formOf("grant_type", tkCC), basic: e.basic("svc")})
	if res := e.do(t, request{method: http.MethodGet, path: "/users/me", hdr: map[string]string{"Authorization": "Bearer " + cc.AccessToken}}); res.status != 401 {
		t.Errorf("/users/me with a client_credentials token: %s", res)
	}
}

// tkNoSecrets fails if a user body carries a password or its hash.
func tkNoSecrets(t *testing.T, body []byte, pw string) {
	t.Helper()
	for _, bad := range []string{pw, "argon2", "password", "hash"} {
		if strings.Contains(strings.ToLower(string(body)), strings.ToLower(bad)) {
			t.Errorf("user body contains %q: %s", bad, body)
		}
	}
}

func TestSignupDisabled(t *testing.T) {
	t.Parallel()
	off := false
	e := newTkEnv(t, kgtest.Options{Signup: &off})
	res := e.do(t, request{path: "/users", body: `{"username":"zed","password":"a long password"}`, ctype: "application/json"})
	if res.status != 403 {
		t.Fatalf("signup while disabled: %s", res)
	}
	if msg, _ := res.object(t)["error"].(string); !strings.Contains(msg, "disabled") {
		t.Errorf("error %q", msg)
	}
	if _, err := e.IDP.Directory().UserByLogin(t.Context(), "zed"); err == nil {
		t.Error("the user was created")
	}
	e.password(t, "pub", "bob", tkBobPW, "") // existing users still log in
}

func TestUserinfo(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	get := func(t *testing.T, tok string) reply {
		t.Helper()
		return e.do(t, request{method: http.MethodGet, path: "/userinfo", hdr: map[string]string{"Authorization": "Bearer " + tok}})
	}
	alice := e.userID["alice"]
	for _, tc := range []struct {
		scope string
		want  map[string]any
	}{
		{"openid", map[string]any{"sub": alice}},
		{"openid profile", map[string]any{"sub": alice, "preferred_username": "alice", "name": "Alice Liddell"}},
		{"openid email", map[string]any{"sub": alice, "email": "alice@example.com", "email_verified": false}},
		{"openid profile email", map[string]any{"sub": alice, "preferred_username": "alice", "name": "Alice Liddell",
			"email": "alice@example.com", "email_verified": false}},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			tok := e.password(t, "script", "alice", tkAlicePW, tc.scope).AccessToken
			res := get(t, tok)
			if res.status != 200 {
				t.Fatalf("%s", res)
			}
			if got := res.object(t); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("claims %v, want %v", got, tc.want)
			}
			if cc := res.hdr.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("Cache-Control %q", cc)
			}
			tkNoSecrets(t, res.body, tkAlicePW)
			// POST with the token in the form (RFC 6750 §2.2) answers the same.
			post := e.do(t, request{path: "/userinfo", form: formOf("access_token", tok)})
			if post.status != 200 || string(post.body) != string(res.body) {
				t.Errorf("POST /userinfo: %s", post)
			}
		})
	}
	t.Run("without openid", func(t *testing.T) {
		res := get(t, e.password(t, "script", "alice", tkAlicePW, "profile email").AccessToken)
		if res.status != 403 || !strings.Contains(res.hdr.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Errorf("%s %q", res, res.hdr.Get("WWW-Authenticate"))
		}
	})
	t.Run("without a token", func(t *testing.T) {
		res := e.do(t, request{method: http.MethodGet, path: "/userinfo"})
		if res.status != 401 || !strings.HasPrefix(res.hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s %q", res, res.hdr.Get("WWW-Authenticate"))
		}
	})
	t.Run("a bad token", func(t *testing.T) {
		tok := e.password(t, "script", "alice", tkAlicePW, "openid").AccessToken
		for _, bad := range []string{tok[:len(tok)-2], "x", signRS256(t, otherKey, jwt.MapClaims{"iss": e.URL, "sub": alice})} {
			res := get(t, bad)
			ch := res.hdr.Get("WWW-Authenticate")
			if res.status != 401 || !strings.Contains(ch, `error="invalid_token"`) {
				t.Errorf("%s %q", res, ch)
			}
			if _, desc, ok := strings.Cut(ch, `error_description="`); ok {
				if d := strings.TrimSuffix(desc, `"`); !descriptionChars.MatchString(d) {
					t.Errorf("error_description %q has characters RFC 6750 §3 forbids", d)
				}
			}
		}
	})
}

// ---------------------------------------------------------------------------
// 9. Password throttling.

func TestPasswordThrottling(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{UserLimits: throttle.Limits{Burst: 3, Every: time.Minute}})
	attempt := func(t *testing.T, user, pw string) reply {
		t.Helper()
		return e.do(t, request{path: "/token", form: formOf("grant_type", tkPW, "username", user, "password", pw, "client_id", "pub")})
	}

	for _, user := range []string{"bob", "nobody-at-all"} { // an unknown user locks out the same way
		t.Run(user, func(t *testing.T) {
			pw := tkBobPW
			for i := range 3 {
				wantOAuthError(t, attempt(t, user, "wrong"+strconv.Itoa(i)), 400, "invalid_grant", "")
			}
			res := attempt(t, user, pw) // the right password, for bob
			wantOAuthError(t, res, 429, "too_many_requests", "")
			ra, err := strconv.Atoi(res.hdr.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 60 {
				t.Fatalf("Retry-After %q, want whole seconds in [1, 60]", res.hdr.Get("Retry-After"))
			}
			e.clock.Advance(time.Duration(ra-1) * time.Second)
			wantOAuthError(t, attempt(t, user, pw), 429, "too_many_requests", "")
			e.clock.Advance(time.Second)
			res = attempt(t, user, pw)
			if user == "bob" && res.status != 200 {
				t.Errorf("after Retry-After, the right password: %s", res)
			}
			if user != "bob" {
				wantOAuthError(t, res, 400, "invalid_grant", "")
			}
		})
	}

	t.Run("wrong username and wrong password answer alike", func(t *testing.T) {
		a := attempt(t, "carol", "not carol's password")
		b := attempt(t, "no-such-user", "not carol's password")
		if a.status != 400 || a.status != b.status || string(a.body) != string(b.body) {
			t.Errorf("wrong password %s, unknown user %s", a, b)
		}
		for _, h := range []http.Header{a.hdr, b.hdr} {
			h.Del("Date")
			h.Del("X-Request-Id")
		}
		if fmt.Sprint(a.hdr) != fmt.Sprint(b.hdr) {
			t.Errorf("headers differ:\n%v\n%v", a.hdr, b.hdr)
		}
	})
}

// ---------------------------------------------------------------------------
// 10. Discovery.

func TestDiscoveryTokenEndpoints(t *testing.T) {
	t.Parallel()
	e := newTkEnv(t, kgtest.Options{})
	res := e.do(t, request{method: http.MethodGet, path: "/.well-known/openid-configuration"})
	if res.status != 200 {
		t.Fatal(res)
	}
	var d tkDiscovery
	if err := json.Unmarshal(res.body, &d); err != nil {
		t.Fatal(err)
	}
	d.wantEndpointURLs(t, e.URL)
	d.wantListed(t)
	wantAdvertisedAnswer(t, e, res.body)

	t.Run("token endpoint advertises none for public clients", func(t *testing.T) {
		if !slices.Contains(d.TokenAuth, "none") {
			t.Error("token_endpoint_auth_methods_supported lacks \"none\", though /token accepts public clients " +
				"(client_id only) on the password and refresh_token grants; RFC 8414 §2 lists every supported method")
		}
	})
}

// tkDiscovery is what the discovery document says of the token endpoint and
// its companions.
type tkDiscovery struct {
	Issuer             string   `json:"issuer"`
	Token              string   `json:"token_endpoint"`
	Revocation         string   `json:"revocation_endpoint"`
	Introspection      string   `json:"introspection_endpoint"`
	Userinfo           string   `json:"userinfo_endpoint"`
	JWKS               string   `json:"jwks_uri"`
	Grants             []string `json:"grant_types_supported"`
	TokenAuth          []string `json:"token_endpoint_auth_methods_supported"`
	TokenAuthAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RevocationAuth     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionAuth  []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionAlgs  []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	ScopesSupported    []string `json:"scopes_supported"`
	ResponseTypes      []string `json:"response_types_supported"`
	SubjectTypes       []string `json:"subject_types_supported"`
	IDTokenSigningAlgs []string `json:"id_token_signing_alg_values_supported"`
}

// wantEndpointURLs checks the issuer and every endpoint is at its path under
// the issuer URL.
func (d tkDiscovery) wantEndpointURLs(t *testing.T, issuer string) {
	for k, v := range map[string]string{"issuer": d.Issuer, "token_endpoint": d.Token, "revocation_endpoint": d.Revocation,
		"introspection_endpoint": d.Introspection, "userinfo_endpoint": d.Userinfo, "jwks_uri": d.JWKS} {
		want := issuer + map[string]string{"issuer": "", "token_endpoint": "/token", "revocation_endpoint": "/revoke",
			"introspection_endpoint": "/introspect", "userinfo_endpoint": "/userinfo", "jwks_uri": "/jwks"}[k]
		if v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
}

// wantListed checks the grants, authentication methods, algorithms and
// scopes advertised, and the members OIDC Discovery requires.
func (d tkDiscovery) wantListed(t *testing.T) {
	contains := func(name string, list []string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !slices.Contains(list, w) {
				t.Errorf("%s %v lacks %q", name, list, w)
			}
		}
	}
	contains("grant_types_supported", d.Grants, tkCC, tkPW, tkRefresh, tkJWT)
	contains("token_endpoint_auth_methods_supported", d.TokenAuth, "client_secret_basic", "client_secret_post", "private_key_jwt")
	contains("token_endpoint_auth_signing_alg_values_supported", d.TokenAuthAlgs, "RS256")
	contains("revocation_endpoint_auth_methods_supported", d.RevocationAuth, "client_secret_basic", "client_secret_post", "private_key_jwt", "none")
	contains("introspection_endpoint_auth_methods_supported", d.IntrospectionAuth, "client_secret_basic", "client_secret_post", "private_key_jwt")
	contains("introspection_endpoint_auth_signing_alg_values_supported", d.IntrospectionAlgs, "RS256")
	contains("scopes_supported", d.ScopesSupported, "openid", "profile", "email")
	if slices.Contains(d.IntrospectionAuth, "none") {
		t.Error("introspection advertises none, but refuses public clients")
	}
	for _, alg := range append(d.TokenAuthAlgs, d.IntrospectionAlgs...) {
		if strings.HasPrefix(alg, "HS") || alg == "none" {
			t.Errorf("advertises assertion algorithm %s", alg)
		}
	}
	if d.ResponseTypes == nil || d.SubjectTypes == nil || d.IDTokenSigningAlgs == nil {
		t.Error("a member OIDC Discovery requires is missing")
	}
}

// wantAdvertisedAnswer: no endpoint the discovery document body advertises
// is a 404, by GET or by POST, and none fails.
func wantAdvertisedAnswer(t *testing.T, e *tkEnv, body []byte) {
	var doc map[string]any
	json.Unmarshal(body, &doc)
	for k, v := range doc {
		s, ok := v.(string)
		if !ok || !(strings.HasSuffix(k, "_endpoint") || strings.HasSuffix(k, "_uri")) {
			continue
		}
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			r := request{method: m, path: strings.TrimPrefix(s, e.URL)}
			if m == http.MethodPost {
				r.form = url.Values{}
			}
			if res := e.do(t, r); res.status == 404 || res.status >= 500 {
				t.Errorf("%s %s (%s): %s", m, s, k, res)
			}
		}
	}
}
