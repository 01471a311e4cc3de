package rotation

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Algorithm is the JWS algorithm every Keygate signing key uses.
const Algorithm = "RS256"

// ValidRSABits reports whether bits is a supported RSA modulus size.
func ValidRSABits(bits int) bool { return bits == 2048 || bits == 3072 || bits == 4096 }

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of pub,
// which Keygate uses as the kid. A thumbprint is derived from the key itself, so
// any consumer can recompute it, two keys can never share a kid, and a stored row
// whose kid does not match its key material is detected on load.
func Thumbprint(pub *rsa.PublicKey) (string, error) {
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

// generated is a freshly generated key before it is stored.
type generated struct {
	kid       string
	private   *rsa.PrivateKey
	publicDER []byte
	sealed    []byte
}

// generateRSA is the default key generator (Config.Generate).
func generateRSA(bits int) (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, bits) }

func generate(gen func(int) (*rsa.PrivateKey, error), bits int, sealer *Sealer) (*generated, error) {
	priv, err := gen(bits)
	if err != nil {
		return nil, fmt.Errorf("generate RSA-%d key: %w", bits, err)
	}
	kid, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
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
	return &generated{kid: kid, private: priv, publicDER: pubDER, sealed: sealed}, nil
}

// openPrivate decrypts a stored key and checks it belongs to kid.
func openPrivate(sealer *Sealer, kid string, sealed []byte) (*rsa.PrivateKey, error) {
	der, err := sealer.Open(kid, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key %s: %w", kid, err)
	}
	priv, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key %s is %T, want RSA", kid, k)
	}
	got, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	if got != kid {
		return nil, fmt.Errorf("private key stored as %s has thumbprint %s", kid, got)
	}
	return priv, nil
}

func parsePublic(kid string, der []byte) (*rsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse public key %s: %w", kid, err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key %s is %T, want RSA", kid, k)
	}
	got, err := Thumbprint(pub)
	if err != nil {
		return nil, err
	}
	if got != kid {
		return nil, fmt.Errorf("public key stored as %s has thumbprint %s", kid, got)
	}
	return pub, nil
}
