// Package jwtforge builds the JWTs that security tests present to a
// verifier: tokens no well-behaved library would produce (alg "none",
// HMAC signed with a public key, key-carrying jku/x5u/x5c/jwk headers,
// tampered payloads or signatures), and an attacker's web server for the
// headers that point at keys. It is test-support code, shared by the attack
// tests of the issuer (web) and of the SDK (jwks), so that both suites
// forge the same way.
package jwtforge

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"hash"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// B64 is unpadded base64url, the encoding of every JWS segment.
func B64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JSON marshals v or fails the test.
func JSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Signer signs a JWS signing input (header.payload) and returns the raw
// signature.
type Signer func(signingInput []byte) []byte

// RS256 signs with k as RS256 does.
func RS256(k *rsa.PrivateKey) Signer {
	return func(in []byte) []byte {
		h := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
		if err != nil {
			panic(err)
		}
		return sig
	}
}

// HMAC signs with an HMAC of newHash keyed by secret (HS256/384/512), e.g.
// with the issuer's public key as the secret, for algorithm confusion.
func HMAC(newHash func() hash.Hash, secret []byte) Signer {
	return func(in []byte) []byte {
		m := hmac.New(newHash, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

// HS256 is HMAC with SHA-256.
func HS256(secret []byte) Signer { return HMAC(sha256.New, secret) }

// NoSig is the empty signature of alg "none".
func NoSig([]byte) []byte { return nil }

// Compact builds header.payload.signature. payload is used as is when it
// is a []byte and JSON-encoded otherwise.
func Compact(t testing.TB, hdr map[string]any, payload any, sign Signer) string {
	t.Helper()
	p, ok := payload.([]byte)
	if !ok {
		p = JSON(t, payload)
	}
	in := B64(JSON(t, hdr)) + "." + B64(p)
	return in + "." + B64(sign([]byte(in)))
}

// Token is a compact JWS taken apart, to derive forgeries from a genuine
// token. Numbers stay json.Number, so a re-encoded payload carries exactly
// the issuer's values.
type Token struct {
	Raw     string
	Parts   []string // the three base64url segments
	Header  map[string]any
	Claims  map[string]any
	Payload []byte // the decoded payload segment
}

// Parse takes tok apart or fails the test.
func Parse(t testing.TB, tok string) Token {
	t.Helper()
	p := Token{Raw: tok, Parts: strings.Split(tok, ".")}
	if len(p.Parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	h, err := base64.RawURLEncoding.DecodeString(p.Parts[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.Payload, err = base64.RawURLEncoding.DecodeString(p.Parts[1]); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		b   []byte
		dst *map[string]any
	}{{h, &p.Header}, {p.Payload, &p.Claims}} {
		dec := json.NewDecoder(strings.NewReader(string(d.b)))
		dec.UseNumber()
		if err := dec.Decode(d.dst); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// KID is the header's kid, or "".
func (p Token) KID() string { s, _ := p.Header["kid"].(string); return s }

// Exp is the exp claim.
func (p Token) Exp(t testing.TB) time.Time {
	t.Helper()
	n, err := p.Claims["exp"].(json.Number).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return time.Unix(n, 0)
}

// HeaderWith is a copy of the header with changes applied (nil deletes).
func (p Token) HeaderWith(changes map[string]any) map[string]any { return With(p.Header, changes) }

// ClaimsWith is a copy of the claims with changes applied (nil deletes).
func (p Token) ClaimsWith(changes map[string]any) map[string]any { return With(p.Claims, changes) }

// With returns a copy of m with changes applied; a nil value deletes.
func With(m, changes map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

var (
	keyMu   sync.Mutex
	keyPool = map[string]*rsa.PrivateKey{}
)

// Key is an RSA-2048 key generated once per test binary for name, so tests
// share the cost of key generation.
func Key(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if k, ok := keyPool[name]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPool[name] = k
	return k
}

// Attacker is an attacker with an RSA key (Key(t, "attacker")) and a web
// server offering it where jku and x5u headers point: its JWKS at any path
// (kid "attacker", plus copies under the kids given to NewAttacker), and a
// self-signed certificate at any path ending in ".pem". Hits counts the
// requests the server got: any means a verifier followed a header.
type Attacker struct {
	Key     *rsa.PrivateKey
	CertDER []byte
	JWK     map[string]any // the public key as a JWK, kid "attacker"
	Srv     *httptest.Server
	Hits    atomic.Int64
}

// NewAttacker starts the attacker's server; its certificate is valid
// around now. aliasKIDs also publish the attacker's key under those kids
// (e.g. a genuine kid, to catch a verifier that trusts a fetched set).
func NewAttacker(t testing.TB, now time.Time, aliasKIDs ...string) *Attacker {
	t.Helper()
	a := &Attacker{Key: Key(t, "attacker")}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "keygate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	var err error
	if a.CertDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &a.Key.PublicKey, a.Key); err != nil {
		t.Fatal(err)
	}
	a.JWK = map[string]any{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "attacker",
		"n": B64(a.Key.N.Bytes()), "e": B64(big.NewInt(int64(a.Key.E)).Bytes())}
	keys := []any{a.JWK}
	for _, kid := range aliasKIDs {
		keys = append(keys, With(a.JWK, map[string]any{"kid": kid}))
	}
	set := JSON(t, map[string]any{"keys": keys})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.CertDER})
	a.Srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Hits.Add(1)
		if strings.HasSuffix(r.URL.Path, ".pem") {
			_, _ = w.Write(certPEM)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(set)
	}))
	t.Cleanup(a.Srv.Close)
	return a
}

// Sign signs hdr and payload (as for Compact) with the attacker's key.
func (a *Attacker) Sign(t testing.TB, hdr map[string]any, payload any) string {
	t.Helper()
	return Compact(t, hdr, payload, RS256(a.Key))
}
