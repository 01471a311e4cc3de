package jwtforge

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// DPoPKey is a client's DPoP key (RFC 9449): it signs proofs, genuine or
// forged, for the tests of the issuer and of the SDK.
type DPoPKey struct {
	Alg     string         // the JWS alg it signs with
	Private crypto.Signer  // the private key
	JWK     map[string]any // the public key as the header's jwk
	JKT     string         // its RFC 7638 SHA-256 thumbprint, base64url (computed by jwx)
}

// NewDPoPKey makes a DPoP key for alg: a fresh P-256/384/521 or Ed25519 key,
// or the shared RSA-2048 Key(t, "dpop "+name) for RS* and PS* (name keeps
// two RSA DPoP keys of one test apart).
func NewDPoPKey(t testing.TB, alg, name string) *DPoPKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv = Key(t, "dpop "+name)
	}
	if err != nil {
		t.Fatal(err)
	}
	return DPoPKeyFrom(t, alg, priv)
}

// DPoPKeyFrom wraps an existing private key, e.g. an RSA key of another
// size.
func DPoPKeyFrom(t testing.TB, alg string, priv crypto.Signer) *DPoPKey {
	t.Helper()
	pub, err := jwk.FromRaw(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(JSON(t, pub), &m); err != nil {
		t.Fatal(err)
	}
	return &DPoPKey{Alg: alg, Private: priv, JWK: m, JKT: B64(tp)}
}

// Signer signs as the key's alg does, through jwx.
func (k *DPoPKey) Signer() Signer {
	s, err := jws.NewSigner(jwa.SignatureAlgorithm(k.Alg))
	if err != nil {
		panic(err)
	}
	return func(in []byte) []byte {
		sig, err := s.Sign(in, k.Private)
		if err != nil {
			panic(err)
		}
		return sig
	}
}

// Header is a genuine proof header: typ dpop+jwt, the alg and the public jwk.
func (k *DPoPKey) Header() map[string]any {
	return map[string]any{"typ": "dpop+jwt", "alg": k.Alg, "jwk": k.JWK}
}

// Claims are a genuine proof's claims for a request: a fresh random jti,
// htm, htu, iat, and ath when token is not empty.
func (k *DPoPKey) Claims(method, url string, now time.Time, token string) map[string]any {
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	c := map[string]any{"jti": B64(jti), "htm": method, "htu": url, "iat": now.Unix()}
	if token != "" {
		h := sha256.Sum256([]byte(token))
		c["ath"] = B64(h[:])
	}
	return c
}

// Proof is a genuine proof for the request, bound to token when it is not
// empty.
func (k *DPoPKey) Proof(t testing.TB, method, url string, now time.Time, token string) string {
	t.Helper()
	return Compact(t, k.Header(), k.Claims(method, url, now, token), k.Signer())
}

// Forge is a proof whose header and claims are the genuine ones with
// changes applied (a nil value deletes), signed by k.
func (k *DPoPKey) Forge(t testing.TB, hdr, claims map[string]any, method, url string, now time.Time, token string) string {
	t.Helper()
	return Compact(t, With(k.Header(), hdr), With(k.Claims(method, url, now, token), claims), k.Signer())
}
