package web_test

// The security tests of issue 3: the JWT attack canon against /introspect and
// /userinfo, client-assertion replay, refresh-token reuse, the admin guard, and
// secrets kept out of answers and logs. Every case runs against the real stack
// (kgtest: SQLite, key rotation, HTTP) with an injected clock, and every
// rejection is paired with the genuine token being accepted in the same test,
// so a case passes only because of the defence it names.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/jwtforge"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/store"
)

// t0 is where every injected clock starts.
var atkT0 = time.Date(2031, time.March, 14, 9, 26, 53, 0, time.UTC)

const (
	atkRSSecret      = "kgs_resource-server-secret-4f0c2d9a7e1b8c3d5f6a"        // client "rs": introspection
	atkAppSecret     = "kgs_first-party-app-secret-9b8a7c6d5e4f3a2b1c0d"        // client "app": password + refresh
	atkAlicePW       = "correct horse battery staple"                           // a plain user
	atkRootPW        = "the admin's own long passphrase"                        // an admin user
	atkJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"            // RFC 7523 §2.1
	atkAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" // RFC 7523 §2.2
)

// publicSet is a client's registered key set: the public half of key, with kid.
func atkPublicSet(t testing.TB, key *rsa.PrivateKey, kid string) jwk.Set {
	t.Helper()
	k, err := jwk.FromRaw(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(k); err != nil {
		t.Fatal(err)
	}
	return set
}

// ---------------------------------------------------------------------------
// The environment: one real Keygate with its clients and users.

type atkEnv struct {
	*kgtest.Server
	clock       *kgtest.Clock
	alice, root store.User // a user, an admin user
}

// clients are the static clients every environment has:
//   - rs: a resource server that introspects (client_secret);
//   - app: a first-party script: password and refresh_token grants, may ask
//     for the admin scope (client_secret);
//   - svc: a service that authenticates with private_key_jwt and uses the
//     jwt-bearer grant and the POST /login script login (RSA key "svc").
func atkClients(t testing.TB) []idp.Client {
	return []idp.Client{
		{ID: "rs", SecretHash: idp.HashSecret(atkRSSecret), GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect"}, Introspect: true},
		{ID: "app", SecretHash: idp.HashSecret(atkAppSecret), GrantTypes: []string{"password", "refresh_token"},
			Scopes: []string{"openid", "profile", "email", "admin"}},
		{ID: "svc", Keys: atkPublicSet(t, jwtforge.Key(t, "svc"), "svc-1"), GrantTypes: []string{"client_credentials", atkJWTBearer},
			Scopes: []string{"api"}},
	}
}

func newAtkEnv(t testing.TB, opts ...func(*kgtest.Options)) *atkEnv {
	t.Helper()
	clock := kgtest.NewClock(atkT0)
	o := kgtest.Options{Clock: clock, Clients: atkClients(t)}
	for _, f := range opts {
		f(&o)
	}
	e := &atkEnv{Server: kgtest.Start(t, o), clock: clock}
	ctx := context.Background()
	var err error
	if e.alice, err = e.IDP.Directory().CreateUser(ctx, idp.NewUser{Username: "alice", Password: atkAlicePW,
		Email: "alice@example.com", Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if e.root, err = e.IDP.Directory().CreateUser(ctx, idp.NewUser{Username: "root", Password: atkRootPW, Admin: true}); err != nil {
		t.Fatal(err)
	}
	return e
}

type atkReply struct {
	status int
	header http.Header
	body   []byte
}

func (r atkReply) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d, body is not a JSON object: %q", r.status, r.body)
	}
	return m
}

func (e *atkEnv) do(t testing.TB, method, path string, hdr map[string]string, body io.Reader) atkReply {
	t.Helper()
	resp, b := kgtest.Send(t, nil, method, e.URL+path, hdr, body)
	return atkReply{resp.StatusCode, resp.Header, b}
}

// post sends a form, with HTTP Basic client credentials when user is set.
func (e *atkEnv) post(t testing.TB, path string, form url.Values, user, pass string) atkReply {
	t.Helper()
	hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if user != "" {
		hdr["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(user)+":"+url.QueryEscape(pass)))
	}
	return e.do(t, "POST", path, hdr, strings.NewReader(form.Encode()))
}

func atkTokenResponse(t testing.TB, r atkReply) idp.TokenResponse {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("token request: %d %s", r.status, r.body)
	}
	var tr idp.TokenResponse
	if err := json.Unmarshal(r.body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token response %s: %v", r.body, err)
	}
	return tr
}

// password runs the password grant as client "app".
func (e *atkEnv) password(t testing.TB, username, pw, scope string) idp.TokenResponse {
	t.Helper()
	return atkTokenResponse(t, e.post(t, "/token", url.Values{"grant_type": {"password"}, "username": {username},
		"password": {pw}, "scope": {scope}}, "app", atkAppSecret))
}

// genuine is a real access token of alice's with scope "openid profile".
func (e *atkEnv) genuine(t testing.TB) string {
	t.Helper()
	return e.password(t, "alice", atkAlicePW, "openid profile").AccessToken
}

func (e *atkEnv) introspect(t testing.TB, tok string) map[string]any {
	t.Helper()
	r := e.post(t, "/introspect", url.Values{"token": {tok}}, "rs", atkRSSecret)
	if r.status != 200 {
		t.Fatalf("introspect: %d %s", r.status, r.body)
	}
	return r.object(t)
}

func (e *atkEnv) userinfo(t testing.TB, tok string) atkReply {
	t.Helper()
	return e.do(t, "GET", "/userinfo", map[string]string{"Authorization": "Bearer " + tok}, nil)
}

// wantAccepted: the token is active at /introspect and opens /userinfo.
func (e *atkEnv) wantAccepted(t testing.TB, tok string) {
	t.Helper()
	if m := e.introspect(t, tok); m["active"] != true {
		t.Fatalf("genuine token inactive: %v", m)
	}
	if r := e.userinfo(t, tok); r.status != 200 {
		t.Fatalf("genuine token at /userinfo: %d %s", r.status, r.body)
	}
}

// wantRejected: /introspect answers exactly {"active": false} and /userinfo
// 401 with an RFC 6750 invalid_token challenge.
func (e *atkEnv) wantRejected(t testing.TB, tok string) {
	t.Helper()
	if m := e.introspect(t, tok); len(m) != 1 || m["active"] != false {
		t.Errorf("/introspect: %v, want exactly {\"active\": false}", m)
	}
	r := e.userinfo(t, tok)
	wa := r.header.Get("WWW-Authenticate")
	if r.status != 401 || !strings.HasPrefix(wa, "Bearer ") || !strings.Contains(wa, `error="invalid_token"`) {
		t.Errorf("/userinfo: %d, WWW-Authenticate %q, body %s; want 401 Bearer error=\"invalid_token\"", r.status, wa, r.body)
	}
	if r.status == 200 {
		t.Errorf("/userinfo disclosed %s", r.body)
	}
}

// servedKey returns the bytes of the key kid exactly as /jwks serves them, and
// the whole document.
func (e *atkEnv) servedKey(t testing.TB, kid string) (key, doc []byte) {
	t.Helper()
	r := e.do(t, "GET", "/jwks", nil, nil)
	var set struct{ Keys []json.RawMessage }
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		var m struct{ KID string }
		json.Unmarshal(k, &m)
		if m.KID == kid {
			return k, r.body
		}
	}
	t.Fatalf("kid %s is not in /jwks %s", kid, r.body)
	return nil, nil
}

// signingPublic is the public key of kid as a resource server would fetch it.
func (e *atkEnv) signingPublic(t testing.TB, kid string) *rsa.PublicKey {
	t.Helper()
	raw, _ := e.servedKey(t, kid)
	k, err := jwk.ParseKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	var pub rsa.PublicKey
	if err := k.Raw(&pub); err != nil {
		t.Fatal(err)
	}
	return &pub
}

// ---------------------------------------------------------------------------
// The attacker: an RSA key of their own, and a web server publishing it as a
// JWKS (for jku) and as a certificate (for x5u). Keygate must never fetch them.

// newAtkAttacker is jwtforge's attacker, whose JWKS also offers its key under
// genuineKID. Keygate must never fetch from it.
func newAtkAttacker(t testing.TB, genuineKID string) *jwtforge.Attacker {
	t.Helper()
	a := jwtforge.NewAttacker(t, atkT0, genuineKID)
	t.Cleanup(func() {
		if n := a.Hits.Load(); n != 0 {
			t.Errorf("Keygate fetched the attacker's URLs %d times", n)
		}
	})
	return a
}

// ---------------------------------------------------------------------------
// 1. The attack canon against /introspect and /userinfo.

type atkCase struct {
	name string
	// forge derives the token to present from a genuine one; it may change
	// the server's state (revoke, rotate, move the clock).
	forge func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string
	// isolated cases change shared state (keys, clock): they get a server of
	// their own.
	isolated bool
	// stateful cases present the genuine token itself after changing the
	// server, so the genuine token is not expected to pass afterwards.
	stateful bool
}

func atkCanon() []atkCase {
	pkixPEM := func(t *testing.T, e *atkEnv, kid string) []byte {
		der, err := x509.MarshalPKIXPublicKey(e.signingPublic(t, kid))
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	none := func(alg string) func(*testing.T, *atkEnv, *jwtforge.Attacker, jwtforge.Token) string {
		return func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return jwtforge.Compact(t, map[string]any{"alg": alg, "kid": g.KID(), "typ": "at+jwt"}, g.Payload, jwtforge.NoSig)
		}
	}
	hs := func(secret func(t *testing.T, e *atkEnv, kid string) []byte) func(*testing.T, *atkEnv, *jwtforge.Attacker, jwtforge.Token) string {
		return func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return jwtforge.Compact(t, g.HeaderWith(map[string]any{"alg": "HS256"}), g.Payload, jwtforge.HS256(secret(t, e, g.KID())))
		}
	}
	tampered := func(changes func(e *atkEnv) map[string]any) func(*testing.T, *atkEnv, *jwtforge.Attacker, jwtforge.Token) string {
		return func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return g.Parts[0] + "." + jwtforge.B64(jwtforge.JSON(t, g.ClaimsWith(changes(e)))) + "." + g.Parts[2]
		}
	}
	// ownKey signs with Keygate's own active private key: no attacker can,
	// but these cases prove that the typ, iss, jti and nbf checks hold on
	// their own, behind the signature.
	ownKey := func(hdr func(g jwtforge.Token) map[string]any, claims func(g jwtforge.Token) map[string]any) func(*testing.T, *atkEnv, *jwtforge.Attacker, jwtforge.Token) string {
		return func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			snap := e.Keys.Current()
			if snap.Signing.KID != g.KID() {
				t.Fatalf("the genuine token was signed by %s, the active key is %s", g.KID(), snap.Signing.KID)
			}
			return jwtforge.Compact(t, g.HeaderWith(hdr(g)), g.ClaimsWith(claims(g)), jwtforge.RS256(snap.Signing.Private))
		}
	}
	same := func(jwtforge.Token) map[string]any { return nil }

	return []atkCase{
		{name: "alg none", forge: none("none")},
		{name: "alg None", forge: none("None")},
		{name: "alg NONE", forge: none("NONE")},
		{name: "alg none keeping the genuine signature", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return jwtforge.B64(jwtforge.JSON(t, g.HeaderWith(map[string]any{"alg": "none"}))) + "." + g.Parts[1] + "." + g.Parts[2]
		}},
		{name: "signature stripped", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return g.Parts[0] + "." + g.Parts[1] + "."
		}},
		{name: "HS256 keyed with the public key as PEM (PKIX)", forge: hs(pkixPEM)},
		{name: "HS256 keyed with the public key as PEM (PKCS#1)", forge: hs(func(t *testing.T, e *atkEnv, kid string) []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(e.signingPublic(t, kid))})
		})},
		{name: "HS256 keyed with the PEM without its final newline", forge: hs(func(t *testing.T, e *atkEnv, kid string) []byte {
			return bytes.TrimSpace(pkixPEM(t, e, kid))
		})},
		{name: "HS256 keyed with the JWK JSON as /jwks serves it", forge: hs(func(t *testing.T, e *atkEnv, kid string) []byte {
			k, _ := e.servedKey(t, kid)
			return k
		})},
		{name: "HS256 keyed with the whole /jwks document", forge: hs(func(t *testing.T, e *atkEnv, kid string) []byte {
			_, doc := e.servedKey(t, kid)
			return doc
		})},
		{name: "HS256 keyed with the modulus", forge: hs(func(t *testing.T, e *atkEnv, kid string) []byte {
			return e.signingPublic(t, kid).N.Bytes()
		})},
		{name: "payload: sub changed to the admin, signature kept", forge: tampered(func(e *atkEnv) map[string]any {
			return map[string]any{"sub": e.root.ID, "preferred_username": "root"}
		})},
		{name: "payload: scope raised to admin, signature kept", forge: tampered(func(*atkEnv) map[string]any {
			return map[string]any{"scope": "openid profile admin"}
		})},
		{name: "payload: exp a year later, signature kept", forge: tampered(func(*atkEnv) map[string]any {
			return map[string]any{"exp": atkT0.Add(365 * 24 * time.Hour).Unix()}
		})},
		{name: "payload: one byte of sub flipped, signature kept", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			p := bytes.Clone(g.Payload)
			i := bytes.Index(p, []byte(e.alice.ID))
			if i < 0 {
				t.Fatalf("sub %s not in %s", e.alice.ID, p)
			}
			p[i] ^= 0x01 // a hex digit becomes another (0<->1, a<->`, ...)
			return g.Parts[0] + "." + jwtforge.B64(p) + "." + g.Parts[2]
		}},
		{name: "signature: one byte flipped", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			sig, _ := base64.RawURLEncoding.DecodeString(g.Parts[2])
			sig[len(sig)/2] ^= 0x80
			return g.Parts[0] + "." + g.Parts[1] + "." + jwtforge.B64(sig)
		}},
		{name: "re-signed by another RSA key under the genuine kid", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return a.Sign(t, g.Header, g.Payload)
		}},
		{name: "unknown kid", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"kid": "attacker"}), g.Payload)
		}},
		{name: "no kid", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"kid": nil}), g.Payload)
		}},
		{name: "jku to the attacker's JWKS, attacker kid", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"kid": "attacker", "jku": a.Srv.URL + "/jwks"}), g.Payload)
		}},
		{name: "jku to the attacker's JWKS, genuine kid", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"jku": a.Srv.URL + "/jwks"}), g.Payload)
		}},
		{name: "jku to the attacker's JWKS, no kid", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"kid": nil, "jku": a.Srv.URL + "/jwks"}), g.Payload)
		}},
		{name: "x5u to the attacker's certificate", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"kid": "attacker", "x5u": a.Srv.URL + "/cert.pem"}), g.Payload)
		}},
		{name: "x5u to the attacker's certificate, genuine kid", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"x5u": a.Srv.URL + "/cert.pem"}), g.Payload)
		}},
		{name: "embedded jwk, attacker kid", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"kid": "attacker", "jwk": a.JWK}), g.Payload)
		}},
		{name: "embedded jwk, genuine kid", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"jwk": a.JWK}), g.Payload)
		}},
		{name: "embedded jwk, no kid", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"kid": nil, "jwk": a.JWK}), g.Payload)
		}},
		{name: "embedded x5c certificate, genuine kid", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"x5c": []string{base64.StdEncoding.EncodeToString(a.CertDER)}}), g.Payload)
		}},
		{name: "a genuine token of another Keygate (another issuer)", forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			other := newAtkEnv(t)
			tok := other.genuine(t)
			other.wantAccepted(t, tok) // it is good where it was issued
			return tok
		}},
		// Behind the signature: tokens signed with Keygate's own key that are
		// still not acceptable access tokens.
		{name: "own key: iss of another issuer", forge: ownKey(same, func(g jwtforge.Token) map[string]any {
			return map[string]any{"iss": "https://evil.example"}
		})},
		{name: "own key: typ missing", forge: ownKey(func(jwtforge.Token) map[string]any { return map[string]any{"typ": nil} }, same)},
		{name: "own key: typ JWT (an ID token, say)", forge: ownKey(func(jwtforge.Token) map[string]any { return map[string]any{"typ": "JWT"} }, same)},
		{name: "own key: typ at+jwt+evil", forge: ownKey(func(jwtforge.Token) map[string]any { return map[string]any{"typ": "at+jwt+evil"} }, same)},
		{name: "own key: header alg none over an RS256 signature", forge: ownKey(func(jwtforge.Token) map[string]any {
			return map[string]any{"alg": "none"}
		}, same)},
		{name: "own key: header alg HS256 over an RS256 signature", forge: ownKey(func(jwtforge.Token) map[string]any {
			return map[string]any{"alg": "HS256"}
		}, same)},
		{name: "own key: header alg RS512 over an RS256 signature", forge: ownKey(func(jwtforge.Token) map[string]any {
			return map[string]any{"alg": "RS512"}
		}, same)},
		{name: "own key: no jti", forge: ownKey(same, func(jwtforge.Token) map[string]any { return map[string]any{"jti": nil} })},
		{name: "own key: no exp", forge: ownKey(same, func(jwtforge.Token) map[string]any { return map[string]any{"exp": nil} })},
		{name: "own key: nbf an hour ahead", forge: ownKey(same, func(jwtforge.Token) map[string]any {
			return map[string]any{"nbf": atkT0.Add(time.Hour).Unix()}
		})},
		// The server's own verdicts on genuine tokens.
		{name: "revoked jti", stateful: true, forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			// Another client may not revoke it ...
			if r := e.post(t, "/revoke", url.Values{"token": {g.Raw}}, "rs", atkRSSecret); r.status != 400 ||
				r.object(t)["error"] != "unauthorized_client" {
				t.Fatalf("revocation by another client: %d %s", r.status, r.body)
			}
			e.wantAccepted(t, g.Raw)
			// ... the client it was issued to may.
			if r := e.post(t, "/revoke", url.Values{"token": {g.Raw}, "token_type_hint": {"access_token"}}, "app", atkAppSecret); r.status != 200 {
				t.Fatalf("revoke: %d %s", r.status, r.body)
			}
			return g.Raw
		}},
		{name: "signing kid revoked", isolated: true, stateful: true, forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			if _, err := e.Keys.Revoke(context.Background(), g.KID()); err != nil {
				t.Fatal(err)
			}
			// No wait: the very next request must refuse it, while a token
			// from the newly active key works.
			fresh := e.genuine(t)
			if jwtforge.Parse(t, fresh).KID() == g.KID() {
				t.Fatal("the revoked key still signs")
			}
			e.wantAccepted(t, fresh)
			return g.Raw
		}},
		{name: "expired", isolated: true, stateful: true, forge: func(t *testing.T, e *atkEnv, a *jwtforge.Attacker, g jwtforge.Token) string {
			exp, _ := g.Claims["exp"].(json.Number).Int64()
			e.clock.Advance(time.Unix(exp, 0).Sub(e.clock.Now()) - time.Second)
			e.wantAccepted(t, g.Raw) // one second before exp
			e.clock.Advance(time.Second)
			return g.Raw
		}},
	}
}

func TestAttackCanon(t *testing.T) {
	shared := newAtkEnv(t)
	sharedAttacker := newAtkAttacker(t, shared.Keys.Current().Signing.KID)
	for _, c := range atkCanon() {
		t.Run(c.name, func(t *testing.T) {
			e, a := shared, sharedAttacker
			if c.isolated {
				e = newAtkEnv(t)
				a = newAtkAttacker(t, e.Keys.Current().Signing.KID)
			}
			genuine := e.genuine(t)
			e.wantAccepted(t, genuine) // sanity: what we tamper with is good
			g := jwtforge.Parse(t, genuine)
			if g.Header["typ"] != "at+jwt" || g.Header["alg"] != "RS256" || g.KID() == "" {
				t.Fatalf("genuine header %v", g.Header)
			}
			forged := c.forge(t, e, a, g)
			if forged == genuine && !c.stateful {
				t.Fatal("the forgery is the genuine token")
			}
			e.wantRejected(t, forged)
			if !c.stateful {
				e.wantAccepted(t, genuine) // still good: the rejection is the forgery's
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 2. Client-assertion replay (RFC 7523 §3 item 7).

// svcAssertion is an assertion of client "svc" for aud, valid for 60 s from
// the environment's now, with a fresh jti.
func (e *atkEnv) svcAssertion(t testing.TB, aud string, changes map[string]any) string {
	t.Helper()
	now := e.clock.Now()
	jti := make([]byte, 16)
	rand.Read(jti)
	claims := map[string]any{"iss": "svc", "sub": "svc", "aud": aud, "iat": now.Unix(), "exp": now.Add(60 * time.Second).Unix(),
		"jti": hex.EncodeToString(jti)}
	for k, v := range changes {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	return jwtforge.Compact(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "svc-1"}, jwtforge.JSON(t, claims), jwtforge.RS256(jwtforge.Key(t, "svc")))
}

func atkCCWith(assertion string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {atkAssertionType}, "client_assertion": {assertion}}
}

func atkWantError(t testing.TB, r atkReply, status int, code, mention string) {
	t.Helper()
	m := r.object(t)
	desc, _ := m["error_description"].(string)
	if r.status != status || m["error"] != code || !strings.Contains(desc, mention) {
		t.Errorf("got %d %s, want %d %s mentioning %q", r.status, r.body, status, code, mention)
	}
}

func TestPrivateKeyJWTReplay(t *testing.T) {
	e := newAtkEnv(t)
	tokenURL := e.URL + "/token"

	first := e.svcAssertion(t, tokenURL, nil)
	tr := atkTokenResponse(t, e.post(t, "/token", atkCCWith(first), "", ""))
	if m := e.introspect(t, tr.AccessToken); m["active"] != true || m["client_id"] != "svc" || m["sub"] != "svc" {
		t.Fatalf("the token of svc: %v", m)
	}
	t.Run("same assertion again", func(t *testing.T) {
		atkWantError(t, e.post(t, "/token", atkCCWith(first), "", ""), 401, "invalid_client", "replay")
	})
	t.Run("fresh jti", func(t *testing.T) {
		atkTokenResponse(t, e.post(t, "/token", atkCCWith(e.svcAssertion(t, tokenURL, nil)), "", ""))
	})
	t.Run("fresh jti, other claims identical", func(t *testing.T) {
		// The jti alone is what makes a second assertion acceptable.
		a1 := e.svcAssertion(t, tokenURL, map[string]any{"jti": "jti-twin"})
		atkTokenResponse(t, e.post(t, "/token", atkCCWith(a1), "", ""))
		a2 := e.svcAssertion(t, tokenURL, map[string]any{"jti": "jti-twin"}) // a new signature, same jti
		atkWantError(t, e.post(t, "/token", atkCCWith(a2), "", ""), 401, "invalid_client", "replay")
	})
	t.Run("captured at /introspect, replayed at /token", func(t *testing.T) {
		a := e.svcAssertion(t, tokenURL, nil)
		form := url.Values{"token": {tr.AccessToken}, "client_assertion_type": {atkAssertionType}, "client_assertion": {a}}
		if r := e.post(t, "/introspect", form, "", ""); r.status != 200 {
			t.Fatalf("introspect with private_key_jwt: %d %s", r.status, r.body)
		}
		atkWantError(t, e.post(t, "/token", atkCCWith(a), "", ""), 401, "invalid_client", "replay")
	})
	t.Run("without jti", func(t *testing.T) {
		atkWantError(t, e.post(t, "/token", atkCCWith(e.svcAssertion(t, tokenURL, map[string]any{"jti": nil})), "", ""),
			401, "invalid_client", "jti")
	})
	t.Run("signed by another key", func(t *testing.T) {
		forged := jwtforge.Compact(t, map[string]any{"alg": "RS256", "kid": "svc-1"}, jwtforge.Parse(t, e.svcAssertion(t, tokenURL, nil)).Payload,
			jwtforge.RS256(jwtforge.Key(t, "attacker")))
		atkWantError(t, e.post(t, "/token", atkCCWith(forged), "", ""), 401, "invalid_client", "signature")
	})
	t.Run("alg none", func(t *testing.T) {
		forged := jwtforge.Compact(t, map[string]any{"alg": "none"}, jwtforge.Parse(t, e.svcAssertion(t, tokenURL, nil)).Payload, jwtforge.NoSig)
		atkWantError(t, e.post(t, "/token", atkCCWith(forged), "", ""), 401, "invalid_client", "not accepted")
	})
	t.Run("jwt-bearer grant", func(t *testing.T) {
		grant := func(a string) url.Values { return url.Values{"grant_type": {atkJWTBearer}, "assertion": {a}} }
		a := e.svcAssertion(t, tokenURL, nil)
		atkTokenResponse(t, e.post(t, "/token", grant(a), "", ""))
		atkWantError(t, e.post(t, "/token", grant(a), "", ""), 400, "invalid_grant", "replay")
		atkTokenResponse(t, e.post(t, "/token", grant(e.svcAssertion(t, tokenURL, nil)), "", ""))
	})
	t.Run("POST /login", func(t *testing.T) {
		a := e.svcAssertion(t, e.URL, nil)
		login := func() atkReply {
			return e.do(t, "POST", "/login", map[string]string{"Content-Type": "application/jwt"}, strings.NewReader(a))
		}
		if r := login(); r.status != 200 || r.header.Get("Content-Type") != "application/jwt" {
			t.Fatalf("script login: %d %s", r.status, r.body)
		}
		r := login()
		if r.status != 401 || !strings.Contains(r.object(t)["error"].(string), "replay") {
			t.Errorf("replayed script login: %d %s, want 401 mentioning replay", r.status, r.body)
		}
	})
	t.Run("the expired assertion is refused as expired, not forgotten", func(t *testing.T) {
		// The replay record lives as long as the assertion could be accepted
		// (exp + leeway); after that the assertion itself is too old.
		e.clock.Advance(60*time.Second + 30*time.Second)
		atkWantError(t, e.post(t, "/token", atkCCWith(first), "", ""), 401, "invalid_client", "expired")
	})
}

// ---------------------------------------------------------------------------
// 3. Refresh-token reuse revokes the family.

func TestRefreshReuseRevokesFamily(t *testing.T) {
	e := newAtkEnv(t)
	refresh := func(rt string) atkReply {
		return e.post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "app", atkAppSecret)
	}
	first := e.password(t, "alice", atkAlicePW, "openid profile")
	a := first.RefreshToken
	if a == "" {
		t.Fatal("no refresh token")
	}
	if m := e.introspect(t, a); m["active"] != true || m["token_type"] != nil {
		t.Fatalf("A: %v", m)
	}
	e.clock.Advance(time.Minute)
	second := atkTokenResponse(t, refresh(a)) // A -> B
	b := second.RefreshToken
	if b == "" || b == a {
		t.Fatalf("the refresh token was not rotated: %q", b)
	}
	if m := e.introspect(t, a); m["active"] != false {
		t.Errorf("spent A is still active: %v", m)
	}
	if m := e.introspect(t, b); m["active"] != true {
		t.Fatalf("B: %v", m)
	}

	// Someone presents A again: the thief or the client, no matter which.
	atkWantError(t, refresh(a), 400, "invalid_grant", "already used")
	// B was never used, but belongs to the leaked family: refused too.
	atkWantError(t, refresh(b), 400, "invalid_grant", "revoked")
	if m := e.introspect(t, b); len(m) != 1 || m["active"] != false {
		t.Errorf("B after reuse of A: %v, want {\"active\": false}", m)
	}
	if m := e.introspect(t, a); len(m) != 1 || m["active"] != false {
		t.Errorf("A after its reuse: %v", m)
	}

	// What the code does with the access tokens of the family: they are
	// stateless JWTs and are not deny-listed by family revocation; they stay
	// valid until their own exp (at most the access TTL, 15 min here). Only
	// /revoke of an access token (by jti) ends one early.
	e.wantAccepted(t, first.AccessToken)
	e.wantAccepted(t, second.AccessToken)
	exp, _ := jwtforge.Parse(t, second.AccessToken).Claims["exp"].(json.Number).Int64()
	e.clock.Advance(time.Unix(exp, 0).Sub(e.clock.Now()))
	e.wantRejected(t, second.AccessToken)
	e.wantRejected(t, first.AccessToken)

	// A fresh login starts a fresh family, unaffected.
	third := e.password(t, "alice", atkAlicePW, "openid")
	atkTokenResponse(t, refresh(third.RefreshToken))
}

// Revoking a refresh token (RFC 7009) also revokes the tokens rotated from it.
func TestRevokeRefreshRevokesFamily(t *testing.T) {
	e := newAtkEnv(t)
	refresh := func(rt string) atkReply {
		return e.post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "app", atkAppSecret)
	}
	a := e.password(t, "alice", atkAlicePW, "openid").RefreshToken
	b := atkTokenResponse(t, refresh(a)).RefreshToken
	if r := e.post(t, "/revoke", url.Values{"token": {a}}, "rs", atkRSSecret); r.status != 400 {
		t.Errorf("revoking app's refresh token as rs: %d %s", r.status, r.body)
	}
	if m := e.introspect(t, b); m["active"] != true {
		t.Fatalf("B after a refused revocation: %v", m)
	}
	if r := e.post(t, "/revoke", url.Values{"token": {a}, "token_type_hint": {"refresh_token"}}, "app", atkAppSecret); r.status != 200 {
		t.Fatalf("revoke A: %d %s", r.status, r.body)
	}
	atkWantError(t, refresh(b), 400, "invalid_grant", "revoked")
	if m := e.introspect(t, b); m["active"] != false {
		t.Errorf("B after revoking A: %v", m)
	}
}

// ---------------------------------------------------------------------------
// 4. The admin API opens to an admin user's token with the admin scope, and to
// nothing else (no bootstrap secret configured).

func TestAdminAccessByToken(t *testing.T) {
	e := newAtkEnv(t) // AdminToken unset
	ctx := context.Background()
	// A client may not take the admin user's id: its client_credentials tokens
	// would have sub = the admin's id. (web/admin.go also refuses any token
	// whose subject is its own client.)
	if _, err := e.IDP.Directory().RegisterClient(ctx, &idp.Client{ID: e.root.ID, GrantTypes: []string{"client_credentials"},
		Scopes: []string{"admin", "openid"}}, true); err == nil {
		t.Fatal("a client was registered under the admin user's id")
	}
	adminTok := e.password(t, "root", atkRootPW, "openid admin").AccessToken
	g := jwtforge.Parse(t, adminTok)
	a := newAtkAttacker(t, g.KID())

	cases := []struct {
		name  string
		token func(t *testing.T) string
		want  int
	}{
		{"admin user, admin scope", func(t *testing.T) string { return adminTok }, 200},
		{"admin user, admin scope only", func(t *testing.T) string {
			return e.password(t, "root", atkRootPW, "admin").AccessToken
		}, 200},
		{"plain user with the admin scope", func(t *testing.T) string {
			return e.password(t, "alice", atkAlicePW, "openid admin").AccessToken
		}, 403},
		{"admin user without the admin scope", func(t *testing.T) string {
			return e.password(t, "root", atkRootPW, "openid profile").AccessToken
		}, 403},
		{"service token (private_key_jwt client_credentials)", func(t *testing.T) string {
			return atkTokenResponse(t, e.post(t, "/token", atkCCWith(e.svcAssertion(t, e.URL+"/token", nil)), "", "")).AccessToken
		}, 403},
		{"alg none with the admin's claims", func(t *testing.T) string {
			return jwtforge.Compact(t, g.HeaderWith(map[string]any{"alg": "none"}), g.Payload, jwtforge.NoSig)
		}, 401},
		{"HS256 keyed with the public key PEM", func(t *testing.T) string {
			der, _ := x509.MarshalPKIXPublicKey(e.signingPublic(t, g.KID()))
			return jwtforge.Compact(t, g.HeaderWith(map[string]any{"alg": "HS256"}), g.Payload,
				jwtforge.HS256(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
		}, 401},
		{"plain user's token with sub swapped to the admin", func(t *testing.T) string {
			p := jwtforge.Parse(t, e.password(t, "alice", atkAlicePW, "openid admin").AccessToken)
			return p.Parts[0] + "." + jwtforge.B64(jwtforge.JSON(t, p.ClaimsWith(map[string]any{"sub": e.root.ID}))) + "." + p.Parts[2]
		}, 401},
		{"admin's claims re-signed by another key under the genuine kid", func(t *testing.T) string {
			return a.Sign(t, g.Header, g.Payload)
		}, 401},
		{"admin's claims signed by an embedded jwk", func(t *testing.T) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"kid": "attacker", "jwk": a.JWK}), g.Payload)
		}, 401},
		{"admin's claims, jku to the attacker", func(t *testing.T) string {
			return a.Sign(t, g.HeaderWith(map[string]any{"jku": a.Srv.URL + "/jwks"}), g.Payload)
		}, 401},
		{"garbage", func(t *testing.T) string { return "not-a-jwt" }, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, "GET", "/admin/keys", map[string]string{"Authorization": "Bearer " + c.token(t)}, nil)
			if r.status != c.want {
				t.Errorf("GET /admin/keys: %d %s, want %d", r.status, r.body, c.want)
			}
			if c.want != 200 {
				if r.object(t)["error"] == nil {
					t.Errorf("no error member: %s", r.body)
				}
				if r.header.Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate challenge")
				}
			}
		})
	}

	// Writes are guarded as reads are.
	if r := e.do(t, "POST", "/admin/keys/rotate?force=true", map[string]string{"Authorization": "Bearer " +
		e.password(t, "alice", atkAlicePW, "admin").AccessToken}, nil); r.status != 403 {
		t.Errorf("rotate as a plain user: %d %s", r.status, r.body)
	}

	// The admin's token loses its power with the token, not later.
	t.Run("revoked admin token", func(t *testing.T) {
		tok := e.password(t, "root", atkRootPW, "admin").AccessToken
		if r := e.post(t, "/revoke", url.Values{"token": {tok}}, "app", atkAppSecret); r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if r := e.do(t, "GET", "/admin/keys", map[string]string{"Authorization": "Bearer " + tok}, nil); r.status != 401 {
			t.Errorf("revoked admin token: %d %s", r.status, r.body)
		}
	})
	t.Run("expired admin token", func(t *testing.T) {
		e.clock.Advance(15 * time.Minute)
		if r := e.do(t, "GET", "/admin/keys", map[string]string{"Authorization": "Bearer " + adminTok}, nil); r.status != 401 {
			t.Errorf("expired admin token: %d %s", r.status, r.body)
		}
	})
	t.Run("deleted admin user", func(t *testing.T) {
		tok := e.password(t, "root", atkRootPW, "admin").AccessToken
		// Another admin first: the last one cannot be deleted (TestAdminLastAdmin).
		yes := true
		if _, err := e.IDP.Directory().UpdateUser(ctx, "alice", idp.UserPatch{Admin: &yes}); err != nil {
			t.Fatal(err)
		}
		if err := e.IDP.Directory().DeleteUser(ctx, "root"); err != nil {
			t.Fatal(err)
		}
		if r := e.do(t, "GET", "/admin/keys", map[string]string{"Authorization": "Bearer " + tok}, nil); r.status != 403 {
			t.Errorf("token of a deleted admin: %d %s", r.status, r.body)
		}
	})
}

// A client may not take a user's id (user ids are UUIDs; so client ids may not
// be), and a client's own token (sub == client_id) never reads a user's profile.
func TestUserinfoSubjectConfusion(t *testing.T) {
	e := newAtkEnv(t)
	ctx := context.Background()
	if _, err := e.IDP.Directory().RegisterClient(ctx, &idp.Client{ID: e.alice.ID, GrantTypes: []string{"client_credentials"},
		Scopes: []string{"openid", "profile", "email"}}, true); err == nil {
		t.Fatal("a client was registered under a user's id")
	}
	secret, err := e.IDP.Directory().RegisterClient(ctx, &idp.Client{ID: "svc-openid", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"openid", "profile", "email"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	tok := atkTokenResponse(t, e.post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, "svc-openid", secret)).AccessToken
	if r := e.userinfo(t, tok); r.status != 401 {
		t.Errorf("/userinfo with a client's own token: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/users/me", map[string]string{"Authorization": "Bearer " + tok}, nil); r.status != 401 {
		t.Errorf("/users/me with a client's own token: %d %s", r.status, r.body)
	}
}

// atkSameReply fails unless two answers are indistinguishable: status, body,
// and every header but Date and the request id.
func atkSameReply(t testing.TB, what string, a, b atkReply) {
	t.Helper()
	if a.status != b.status || !bytes.Equal(a.body, b.body) {
		t.Errorf("%s: answers differ:\n%d %s\n%d %s", what, a.status, a.body, b.status, b.body)
	}
	for _, h := range []http.Header{a.header, b.header} {
		for k := range h {
			if k == "Date" || k == "X-Request-Id" {
				continue
			}
			if a.header.Get(k) != b.header.Get(k) {
				t.Errorf("%s: header %s differs: %q vs %q", what, k, a.header.Get(k), b.header.Get(k))
			}
		}
	}
}

// TestUnknownClientLooksLikeWrongSecret: a caller cannot tell an unknown
// client from a wrong secret, over either client-authentication method.
func TestUnknownClientLooksLikeWrongSecret(t *testing.T) {
	e := newAtkEnv(t)
	cc := url.Values{"grant_type": {"client_credentials"}}
	const wrong = "kgs_not-the-secret-0123456789abcdefghijklmnopqrstu"
	unknownBasic := e.post(t, "/token", cc, "no-such-client", wrong)
	wrongBasic := e.post(t, "/token", cc, "rs", wrong)
	if unknownBasic.status != 401 {
		t.Fatalf("unknown client: %d %s", unknownBasic.status, unknownBasic.body)
	}
	atkSameReply(t, "client_secret_basic: unknown client vs wrong secret", unknownBasic, wrongBasic)

	post := func(id, secret string) atkReply {
		return e.post(t, "/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}, "", "")
	}
	atkSameReply(t, "client_secret_post: unknown client vs wrong secret", post("no-such-client", wrong), post("rs", wrong))
	atkSameReply(t, "client_secret_post vs client_secret_basic", post("rs", wrong), wrongBasic)
	// A near miss (the right secret with one character changed) is no
	// different from a wild guess.
	near := atkRSSecret[:len(atkRSSecret)-1] + "x"
	atkSameReply(t, "near-miss secret vs unknown client", e.post(t, "/token", cc, "rs", near), unknownBasic)
	// And the right secret does work, so the above were real failures.
	atkTokenResponse(t, e.post(t, "/token", cc, "rs", atkRSSecret))
}

func TestClientExistenceNotRevealedWithoutCredentials(t *testing.T) {
	e := newAtkEnv(t)
	only := func(id string) atkReply {
		return e.post(t, "/token", url.Values{"grant_type": {"password"}, "client_id": {id}, "username": {"alice"},
			"password": {atkAlicePW}}, "", "")
	}
	atkSameReply(t, "client_id only: unknown vs confidential client", only("no-such-client"), only("rs"))
}

func TestSecretsNeverLogged(t *testing.T) {
	var logs kgtest.LogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newAtkEnv(t, func(o *kgtest.Options) { o.Logger = logger })
	ctx := context.Background()

	var secrets []string // what must never appear in the log
	keep := func(s ...string) { secrets = append(secrets, s...) }
	dynSecret, err := e.IDP.Directory().RegisterClient(ctx, &idp.Client{ID: "dyn", GrantTypes: []string{"client_credentials"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	keep(atkRSSecret, atkAppSecret, dynSecret, atkAlicePW, atkRootPW)

	// Successes.
	cc := atkTokenResponse(t, e.post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, "dyn", dynSecret))
	pw := e.password(t, "alice", atkAlicePW, "openid profile")
	adm := e.password(t, "root", atkRootPW, "admin")
	rt2 := atkTokenResponse(t, e.post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pw.RefreshToken}}, "app", atkAppSecret))
	asrt := e.svcAssertion(t, e.URL+"/token", nil)
	svc := atkTokenResponse(t, e.post(t, "/token", atkCCWith(asrt), "", ""))
	keep(cc.AccessToken, pw.AccessToken, pw.RefreshToken, adm.AccessToken, rt2.AccessToken, rt2.RefreshToken, asrt, svc.AccessToken)
	e.introspect(t, pw.AccessToken)
	e.introspect(t, rt2.RefreshToken)
	e.userinfo(t, pw.AccessToken)
	e.do(t, "GET", "/users/me", map[string]string{"Authorization": "Bearer " + pw.AccessToken}, nil)
	e.do(t, "GET", "/admin/keys", map[string]string{"Authorization": "Bearer " + adm.AccessToken}, nil)
	// Tokens and secrets where they do not belong: in the query string.
	e.do(t, "GET", "/userinfo?access_token="+url.QueryEscape(pw.AccessToken), nil, nil)
	e.do(t, "POST", "/token?client_id=dyn&client_secret="+url.QueryEscape(dynSecret)+"&grant_type=client_credentials", nil, nil)

	// Failures.
	wrongPassword := "not alice's password at all"
	wrongSecret := "kgs_wrong-secret-attempt-0123456789abcdef"
	keep(wrongPassword, wrongSecret)
	e.post(t, "/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {wrongPassword}}, "app", atkAppSecret)
	e.post(t, "/token", url.Values{"grant_type": {"password"}, "username": {"nobody"}, "password": {wrongPassword}}, "app", atkAppSecret)
	e.post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, "dyn", wrongSecret)
	e.post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, "nobody", wrongSecret)
	e.post(t, "/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"dyn"}, "client_secret": {wrongSecret}}, "", "")
	e.post(t, "/token", atkCCWith(asrt), "", "")                                                                              // replay
	e.post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pw.RefreshToken}}, "app", atkAppSecret) // reuse: family revoked, logged
	e.post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2.RefreshToken}}, "app", atkAppSecret)
	e.post(t, "/revoke", url.Values{"token": {cc.AccessToken}}, "app", atkAppSecret) // another client's token
	e.do(t, "POST", "/login", map[string]string{"Content-Type": "application/jwt"}, strings.NewReader(asrt))
	e.userinfo(t, pw.AccessToken+"x")
	for i := 0; i < 6; i++ { // into the throttle
		e.post(t, "/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {wrongPassword}}, "app", atkAppSecret)
	}
	// Server errors log their cause: the store goes away mid-flight.
	e.Store.Close()
	e.clock.Advance(time.Second) // past the client cache's version check (idp/clientcache.go): lookups reach the store
	for _, r := range []atkReply{
		e.post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2.RefreshToken}}, "app", atkAppSecret),
		e.post(t, "/token", url.Values{"grant_type": {"password"}, "username": {"root"}, "password": {atkRootPW}}, "app", atkAppSecret),
		e.post(t, "/introspect", url.Values{"token": {rt2.RefreshToken}}, "rs", atkRSSecret),
		e.post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, "dyn", dynSecret),
	} {
		if r.status < 400 {
			t.Errorf("with the store closed: %d %s", r.status, r.body)
		}
	}

	out := logs.String()
	if !strings.Contains(out, "path=/token") || !strings.Contains(out, "status=500") {
		t.Fatalf("the log does not show the requests; is the logger wired?\n%s", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log contains a secret %.12q...:\n%s", s, out)
		}
		// Not even the signature of a token (enough to replay it with the
		// header and claims, which are no secret).
		if parts := strings.Split(s, "."); len(parts) == 3 && strings.Contains(out, parts[2]) {
			t.Errorf("the log contains a token's signature %.12q...", parts[2])
		}
	}
}
