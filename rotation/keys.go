package rotation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Algorithm is the JWS algorithm of Keygate's default signing keys: every
// deployment has an RS256 key set, and clients sign with it unless they are
// registered for another algorithm.
const Algorithm = "RS256"

// The optional algorithms a deployment may add beside RS256 (keys.algorithms).
const (
	AlgorithmES256 = "ES256" // ECDSA on P-256 with SHA-256
	AlgorithmEdDSA = "EdDSA" // Ed25519
)

// Algorithms are the signing algorithms Keygate can keep key sets for.
var Algorithms = []string{Algorithm, AlgorithmES256, AlgorithmEdDSA}

// ValidAlgorithm reports whether alg is one of Algorithms.
func ValidAlgorithm(alg string) bool { return slices.Contains(Algorithms, alg) }

// ValidRSABits reports whether bits is a supported RSA modulus size.
func ValidRSABits(bits int) bool { return bits == 2048 || bits == 3072 || bits == 4096 }

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of pub
// (*rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey), which Keygate uses
// as the kid. A thumbprint is derived from the key itself, so any consumer can
// recompute it, two keys can never share a kid, and a stored row whose kid
// does not match its key material is detected on load.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	k, err := jwk.FromRaw(pub)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// algorithmOf returns the JWS algorithm Keygate uses pub with, or "" for a
// key type it does not sign with.
func algorithmOf(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return Algorithm
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return AlgorithmES256
		}
	case ed25519.PublicKey:
		return AlgorithmEdDSA
	}
	return ""
}

// generated is a freshly generated key before it is stored.
type generated struct {
	kid       string
	alg       string
	private   crypto.Signer
	publicDER []byte
	sealed    []byte
}

// generateRSA is the default key generator (Config.Generate).
func generateRSA(bits int) (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, bits) }

// generate makes a key for alg: RSA of bits (through gen), ECDSA P-256 or
// Ed25519, and seals its private half.
func generate(gen func(int) (*rsa.PrivateKey, error), bits int, alg string, sealer *Sealer) (*generated, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case Algorithm:
		priv, err = gen(bits)
		if err != nil {
			return nil, fmt.Errorf("generate RSA-%d key: %w", bits, err)
		}
	case AlgorithmES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgorithmEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("generate key: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	kid, err := Thumbprint(priv.Public())
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("marshal public key %s: %w", kid, err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal private key %s: %w", kid, err)
	}
	sealed, err := sealer.Seal(kid, privDER)
	clear(privDER)
	if err != nil {
		return nil, err
	}
	return &generated{kid: kid, alg: alg, private: priv, publicDER: pubDER, sealed: sealed}, nil
}

// openPrivate decrypts a stored key and checks it belongs to kid.
func openPrivate(sealer *Sealer, kid string, sealed []byte) (crypto.Signer, error) {
	der, err := sealer.Open(kid, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key %s: %w", kid, err)
	}
	// algorithmOf decides which key types are accepted (x509 also returns
	// *ecdh.PrivateKey, which is no crypto.Signer).
	priv, ok := k.(crypto.Signer)
	if !ok || algorithmOf(priv.Public()) == "" {
		return nil, fmt.Errorf("private key %s is %T, want RSA, ECDSA P-256 or Ed25519", kid, k)
	}
	got, err := Thumbprint(priv.Public())
	if err != nil {
		return nil, err
	}
	if got != kid {
		return nil, fmt.Errorf("private key stored as %s has thumbprint %s", kid, got)
	}
	return priv, nil
}

// parsePublic parses a stored public key and checks it belongs to kid and
// suits alg (the row's algorithm; "" skips that check).
func parsePublic(kid, alg string, der []byte) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse public key %s: %w", kid, err)
	}
	got := algorithmOf(pub)
	if got == "" {
		return nil, fmt.Errorf("public key %s is %T, want RSA, ECDSA P-256 or Ed25519", kid, pub)
	}
	if alg != "" && got != alg {
		return nil, fmt.Errorf("public key %s is a %s key, but stored for %s", kid, got, alg)
	}
	tp, err := Thumbprint(pub)
	if err != nil {
		return nil, err
	}
	if tp != kid {
		return nil, fmt.Errorf("public key stored as %s has thumbprint %s", kid, tp)
	}
	return pub, nil
}
