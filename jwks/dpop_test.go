package jwks_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/keygate/keygate/internal/jwtforge"
	"github.com/keygate/keygate/jwks"
)

const (
	proofURL   = "https://api.example.com/orders"
	proofToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln" // any string: ath hashes it
)

type proofCase struct {
	name    string
	proof   func(t *testing.T) string
	check   func(c *jwks.DPoPProofCheck) // changes to the default check
	wantErr error                        // nil: must verify
	why     string                       // for a refusal, part of the error's detail: the check that refused
	wantJKT *jwtforge.DPoPKey            // for a valid proof, the key whose thumbprint comes back
}

// TestVerifyDPoPProof presents genuine and forged proofs to VerifyDPoPProof.
// The default check is a GET of proofURL at now, with proofToken, bound to
// the ES256 key es.
func TestVerifyDPoPProof(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	es := jwtforge.NewDPoPKey(t, "ES256", "")
	for _, tc := range proofCases(t, es, now) {
		t.Run(tc.name, func(t *testing.T) {
			check := jwks.DPoPProofCheck{Method: "GET", URL: proofURL, AccessToken: proofToken, JKT: es.JKT, Now: now}
			if tc.check != nil {
				tc.check(&check)
			}
			proof := tc.proof(t)
			got, err := jwks.VerifyDPoPProof(proof, check)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.why) {
					t.Fatalf("err = %v, want %v for %s", err, tc.wantErr, tc.why)
				}
				if errors.Is(err, jwks.ErrDPoPUseNonce) == errors.Is(err, jwks.ErrDPoPInvalidProof) {
					t.Fatalf("err = %v wraps both or neither of ErrDPoPUseNonce and ErrDPoPInvalidProof", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := es
			if tc.wantJKT != nil {
				want = tc.wantJKT
			}
			claims := jwtforge.Parse(t, proof).Claims
			iat, _ := claims["iat"].(json.Number).Int64()
			if got.JKT != want.JKT || got.JTI != claims["jti"] || got.IssuedAt.Unix() != iat || got.Nonce != claims["nonce"] && claims["nonce"] != nil {
				t.Fatalf("proof = %+v, want jkt %s, jti %v, iat %v, nonce %v", got, want.JKT, claims["jti"], iat, claims["nonce"])
			}
		})
	}
}

func proofCases(t *testing.T, es *jwtforge.DPoPKey, now time.Time) []proofCase {
	forge := func(k *jwtforge.DPoPKey, hdr, claims map[string]any) func(*testing.T) string {
		return func(t *testing.T) string { return k.Forge(t, hdr, claims, "GET", proofURL, now, proofToken) }
	}
	genuine := forge(es, nil, nil)
	noCheck := func(c *jwks.DPoPProofCheck) { c.JKT = "" }
	other := jwtforge.NewDPoPKey(t, "ES256", "")
	rsaKey := jwtforge.NewDPoPKey(t, "RS256", "a")
	p384 := jwtforge.NewDPoPKey(t, "ES384", "")
	ecPriv := es.Private.(*ecdsa.PrivateKey)
	privJWK, err := jwk.FromRaw(ecPriv)
	if err != nil {
		t.Fatal(err)
	}
	var privMembers map[string]any
	if err := json.Unmarshal(jwtforge.JSON(t, privJWK), &privMembers); err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	cases := []proofCase{
		{name: "genuine ES256", proof: genuine},
		{name: "query and fragment of the request ignored", proof: genuine,
			check: func(c *jwks.DPoPProofCheck) { c.URL = proofURL + "?page=2#top" }},
		{name: "htu normalised: case, default port, escapes", proof: forge(es, nil, map[string]any{"htu": "HTTPS://API.Example.com:443/%6frders"})},
		{name: "htu with a query", proof: forge(es, nil, map[string]any{"htu": proofURL + "?x=1"})},
		{name: "iat at the edge of the window", proof: forge(es, nil, map[string]any{"iat": now.Add(-60 * time.Second).Unix()})},
		{name: "iat slightly ahead", proof: forge(es, nil, map[string]any{"iat": now.Add(59 * time.Second).Unix()})},
		{name: "wider window", proof: forge(es, nil, map[string]any{"iat": now.Add(-5 * time.Minute).Unix()}),
			check: func(c *jwks.DPoPProofCheck) { c.Window = 10 * time.Minute }},
		{name: "no token expected, no ath", proof: forge(es, nil, map[string]any{"ath": nil}),
			check: func(c *jwks.DPoPProofCheck) { c.AccessToken = "" }},
		{name: "nonce required and present", proof: forge(es, nil, map[string]any{"nonce": "n-1"}),
			check: func(c *jwks.DPoPProofCheck) { c.Nonce = "n-1" }},
		{name: "too large", why: `more than the 8192`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"pad": strings.Repeat("x", 8<<10)})},
		{name: "empty", why: `no proof`, wantErr: jwks.ErrDPoPInvalidProof, proof: func(*testing.T) string { return "" }},
		{name: "JSON serialization", why: `not a compact JWS`, wantErr: jwks.ErrDPoPInvalidProof, proof: func(t *testing.T) string {
			p := strings.Split(genuine(t), ".")
			return string(jwtforge.JSON(t, map[string]any{"protected": p[0], "payload": p[1], "signature": p[2]}))
		}},
		{name: "two proofs joined", why: `not a compact JWS`, wantErr: jwks.ErrDPoPInvalidProof, proof: func(t *testing.T) string { return genuine(t) + "," + genuine(t) }},
		{name: "typ missing", why: `"typ"`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, map[string]any{"typ": nil}, nil)},
		{name: "typ JWT", why: `"typ"`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, map[string]any{"typ": "JWT"}, nil)},
		{name: "typ of an access token", why: `"typ"`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, map[string]any{"typ": "at+jwt"}, nil)},
		{name: "alg none", why: `alg "none"`, wantErr: jwks.ErrDPoPInvalidProof, proof: func(t *testing.T) string {
			return jwtforge.Compact(t, jwtforge.With(es.Header(), map[string]any{"alg": "none"}), es.Claims("GET", proofURL, now, proofToken), jwtforge.NoSig)
		}},
		{name: "alg HS256 keyed with the public key", why: `alg "HS256"`, wantErr: jwks.ErrDPoPInvalidProof, proof: func(t *testing.T) string {
			return jwtforge.Compact(t, jwtforge.With(es.Header(), map[string]any{"alg": "HS256"}), es.Claims("GET", proofURL, now, proofToken),
				jwtforge.HS256(jwtforge.JSON(t, es.JWK)))
		}},
		{name: "alg HS256 even when listed", why: `alg "HS256"`, wantErr: jwks.ErrDPoPInvalidProof,
			check: func(c *jwks.DPoPProofCheck) { c.Algorithms = []string{"HS256", "ES256"} },
			proof: func(t *testing.T) string {
				return jwtforge.Compact(t, jwtforge.With(es.Header(), map[string]any{"alg": "HS256"}), es.Claims("GET", proofURL, now, proofToken),
					jwtforge.HS256(jwtforge.JSON(t, es.JWK)))
			}},
		{name: "alg not in the accepted list", why: `alg "ES256" is not accepted`, wantErr: jwks.ErrDPoPInvalidProof, proof: genuine,
			check: func(c *jwks.DPoPProofCheck) { c.Algorithms = []string{"EdDSA"} }},
		{name: "crit header", why: `crit`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, map[string]any{"crit": []string{"exp"}, "exp": 1}, nil)},
		{name: "no jwk", why: `no "jwk"`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, map[string]any{"jwk": nil}, nil)},
		{name: "jwk with the private key", why: `private member "d"`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, map[string]any{"jwk": privMembers}, nil)},
		{name: "RSA jwk with a private prime", why: `private member "p"`, wantErr: jwks.ErrDPoPInvalidProof,
			proof: forge(rsaKey, map[string]any{"jwk": jwtforge.With(rsaKey.JWK, map[string]any{"p": "AQAB"})}, nil)},
		{name: "symmetric jwk", why: `private member "k"`, wantErr: jwks.ErrDPoPInvalidProof,
			proof: forge(es, map[string]any{"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}, nil)},
		{name: "jwk of another key", why: `signature does not verify`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, map[string]any{"jwk": other.JWK}, nil),
			check: noCheck},
		{name: "jwk of another alg", why: `is for alg "ES384"`, wantErr: jwks.ErrDPoPInvalidProof,
			proof: forge(es, map[string]any{"jwk": jwtforge.With(es.JWK, map[string]any{"alg": "ES384"})}, nil)},
		{name: "RSA jwk under ES256", why: `key for RS* or PS*`, wantErr: jwks.ErrDPoPInvalidProof,
			proof: forge(rsaKey, map[string]any{"alg": "ES256"}, nil), check: noCheck},
		{name: "P-384 jwk under ES256", why: `key for ES384`, wantErr: jwks.ErrDPoPInvalidProof,
			proof: forge(p384, map[string]any{"alg": "ES256"}, nil), check: noCheck},
		{name: "RSA-1024 key", why: `1024 bits`, wantErr: jwks.ErrDPoPInvalidProof, check: noCheck,
			proof: func(t *testing.T) string {
				return jwtforge.DPoPKeyFrom(t, "RS256", small).Proof(t, "GET", proofURL, now, proofToken)
			}},
		{name: "tampered claims", why: `signature does not verify`, wantErr: jwks.ErrDPoPInvalidProof, proof: func(t *testing.T) string {
			p := strings.Split(genuine(t), ".")
			p[1] = jwtforge.B64(jwtforge.JSON(t, es.Claims("POST", proofURL, now, proofToken)))
			return strings.Join(p, ".")
		}, check: func(c *jwks.DPoPProofCheck) { c.Method = "POST" }},
		{name: "proof from another key", why: `is not the token's cnf.jkt`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(other, nil, nil)},
		{name: "htm of another method", why: `htm "POST"`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htm": "POST"})},
		{name: "htm in lower case", why: `htm "get"`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htm": "get"})},
		{name: "htm missing", why: `"htm" is missing`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htm": nil})},
		{name: "htu of another path", why: `htu`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htu": "https://api.example.com/admin"})},
		{name: "htu of another host", why: `htu`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htu": "https://evil.example.com/orders"})},
		{name: "htu over http", why: `htu`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htu": "http://api.example.com/orders"})},
		{name: "htu on another port", why: `htu`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htu": "https://api.example.com:8443/orders"})},
		{name: "htu with a trailing slash", why: `htu`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htu": proofURL + "/"})},
		{name: "htu with dot segments", why: `htu`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htu": "https://api.example.com/admin/../orders"})},
		{name: "htu with an encoded slash", why: `htu`, wantErr: jwks.ErrDPoPInvalidProof,
			proof: forge(es, nil, map[string]any{"htu": "https://api.example.com/a%2Forders"}), check: func(c *jwks.DPoPProofCheck) { c.URL = "https://api.example.com/a/orders" }},
		{name: "htu with user information", why: `htu`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htu": "https://u@api.example.com/orders"})},
		{name: "htu host differing by a trailing dot", why: `htu`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htu": "https://api.example.com./orders"})},
		{name: "htu relative", why: `htu`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htu": "/orders"})},
		{name: "htu not a string", why: `"htu" is not a string`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"htu": 7})},
		{name: "request URL unusable", why: `cannot be compared`, wantErr: jwks.ErrDPoPInvalidProof, proof: genuine,
			check: func(c *jwks.DPoPProofCheck) { c.URL = "https://a b/orders" }},
		{name: "iat stale", why: `from now`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"iat": now.Add(-61 * time.Second).Unix()})},
		{name: "iat in the future", why: `from now`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"iat": now.Add(61 * time.Second).Unix()})},
		{name: "iat missing", why: `"iat" is missing`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"iat": nil})},
		{name: "iat a string", why: `NumericDate`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"iat": "1700000000"})},
		{name: "jti missing", why: `"jti" is missing`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"jti": nil})},
		{name: "jti too long", why: `257 bytes`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"jti": strings.Repeat("j", 257)})},
		{name: "ath missing", why: `"ath" is missing`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"ath": nil})},
		{name: "ath of another token", why: `not the hash`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es, nil, map[string]any{"ath": jwks.DPoPAccessTokenHash("other")})},
		{name: "ath of the token with trailing whitespace", why: `not the hash`, wantErr: jwks.ErrDPoPInvalidProof,
			proof: forge(es, nil, map[string]any{"ath": jwks.DPoPAccessTokenHash(proofToken + " ")})},
		{name: "token with trailing whitespace, ath of the token", why: `not the hash`, wantErr: jwks.ErrDPoPInvalidProof, proof: genuine,
			check: func(c *jwks.DPoPProofCheck) { c.AccessToken = proofToken + " " }},
		{name: "key not the token's cnf.jkt", why: `cnf.jkt`, wantErr: jwks.ErrDPoPInvalidProof, proof: genuine,
			check: func(c *jwks.DPoPProofCheck) { c.JKT = other.JKT }},
		{name: "nonce required, none", why: `no nonce`, wantErr: jwks.ErrDPoPUseNonce, proof: genuine,
			check: func(c *jwks.DPoPProofCheck) { c.Nonce = "n-2" }},
		{name: "nonce required, old one", why: `not the current one`, wantErr: jwks.ErrDPoPUseNonce, proof: forge(es, nil, map[string]any{"nonce": "n-1"}),
			check: func(c *jwks.DPoPProofCheck) { c.Nonce = "n-2" }},
		{name: "nonce required, but the proof is stale", why: `from now`, wantErr: jwks.ErrDPoPInvalidProof,
			proof: forge(es, nil, map[string]any{"iat": now.Add(-time.Hour).Unix()}), check: func(c *jwks.DPoPProofCheck) { c.Nonce = "n-2" }},
	}
	for _, alg := range []string{"ES384", "EdDSA", "RS256", "PS256"} {
		k := jwtforge.NewDPoPKey(t, alg, "b")
		cases = append(cases, proofCase{name: "genuine " + alg, proof: forge(k, nil, nil), wantJKT: k,
			check: func(c *jwks.DPoPProofCheck) { c.JKT = k.JKT }})
	}
	es512 := jwtforge.NewDPoPKey(t, "ES512", "")
	return append(cases,
		proofCase{name: "ES512 when allowed", proof: forge(es512, nil, nil), wantJKT: es512,
			check: func(c *jwks.DPoPProofCheck) { c.JKT, c.Algorithms = es512.JKT, []string{"ES512"} }},
		proofCase{name: "ES512 not by default", why: `alg "ES512"`, wantErr: jwks.ErrDPoPInvalidProof, proof: forge(es512, nil, nil), check: noCheck})
}

// TestDPoPThumbprint checks the thumbprint against RFC 7638 §3.1's example,
// and that a private key has its public key's thumbprint.
func TestDPoPThumbprint(t *testing.T) {
	key, err := jwk.ParseKey([]byte(`{"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29",` +
		`"n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := jwks.DPoPThumbprint(key)
	if err != nil || got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("DPoPThumbprint = %q, %v", got, err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := jwk.FromRaw(priv)
	pub, _ := jwk.FromRaw(&priv.PublicKey)
	a, errA := jwks.DPoPThumbprint(pk)
	b, errB := jwks.DPoPThumbprint(pub)
	if errA != nil || errB != nil || a != b {
		t.Fatalf("private %q (%v), public %q (%v)", a, errA, b, errB)
	}
	if _, err := jwks.DPoPThumbprint(nil); err == nil {
		t.Fatal("nil key: no error")
	}
}

// TestDPoPAccessTokenHash checks ath against RFC 9449 §7.1's example.
func TestDPoPAccessTokenHash(t *testing.T) {
	const token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
	if got := jwks.DPoPAccessTokenHash(token); got != "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo" {
		t.Fatalf("ath = %q", got)
	}
}

// TestDefaultDPoPAlgorithms: the defaults include what RFC 9449 clients use,
// and changing the returned slice changes nothing for the next caller.
func TestDefaultDPoPAlgorithms(t *testing.T) {
	a := jwks.DefaultDPoPAlgorithms()
	for _, want := range []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"} {
		if !strings.Contains(" "+strings.Join(a, " ")+" ", " "+want+" ") {
			t.Errorf("defaults %q lack %s", a, want)
		}
	}
	a[0] = "none"
	if jwks.DefaultDPoPAlgorithms()[0] == "none" {
		t.Fatal("the defaults are shared mutable state")
	}
}
