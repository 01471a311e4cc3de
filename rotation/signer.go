package rotation

import (
	"crypto"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/store"
)

// ErrNoKeySet reports that no key set has been loaded yet (Reconcile has not
// succeeded), so there is nothing to sign or verify with.
var ErrNoKeySet = errors.New("no key set loaded")

// Signer signs with a Manager's active key and hands out its published public
// keys. It is what token issuance needs, and all it gets: the private keys
// never leave package rotation, so code that issues and checks tokens cannot
// leak or misuse them. Every method reads the last loaded snapshot and never
// touches the store, so signing never waits on rotation. The Manager swaps
// the snapshot as soon as it reads a changed key set, before it generates any
// key, so a Signer never signs with a key its Manager knows is retired.
type Signer struct{ m *Manager }

// Signer returns the Manager's Signer.
func (m *Manager) Signer() *Signer { return &Signer{m: m} }

// Sign returns payload signed as a compact JWS with the active RS256 key,
// its kid in the "kid" header and typ in the "typ" header (explicit typing,
// RFC 8725 §3.11, so one kind of token cannot pass for another).
func (s *Signer) Sign(payload []byte, typ string) (string, error) {
	return s.SignWith(Algorithm, payload, typ)
}

// SignWith is Sign with the active key of alg (RS256, or ES256 or EdDSA when
// configured in Policy.Algorithms); "" means RS256.
func (s *Signer) SignWith(alg string, payload []byte, typ string) (string, error) {
	if alg == "" {
		alg = Algorithm
	}
	snap := s.m.snap.Load()
	if snap == nil {
		return "", errors.New("no signing key loaded")
	}
	// Snapshots are only made by Manager.load, which fills Signers; Private
	// is Signer's RSA form, so Signer alone decides.
	k := snap.Signers[alg]
	if k.Signer == nil {
		return "", fmt.Errorf("no %s signing key loaded", alg)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, k.KID); err != nil {
		return "", err
	}
	if err := hdr.Set(jws.TypeKey, typ); err != nil {
		return "", err
	}
	b, err := jws.Sign(payload, jws.WithKey(jwa.SignatureAlgorithm(alg), k.Signer, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("sign token with %s: %w", k.KID, err)
	}
	return string(b), nil
}

// Algorithms returns the signing algorithms configured (Policy.Algorithms),
// RS256 first: what discovery advertises and clients may register for.
func (s *Signer) Algorithms() []string { return s.m.cfg.Policy.algorithms() }

// Active returns the kid and JWS algorithm of the key that signs now, so that
// callers can label what they sign or log which key is in use; ok is false
// before the first key set is loaded.
func (s *Signer) Active() (kid, alg string, ok bool) {
	snap := s.m.snap.Load()
	if snap == nil || snap.Signing.Private == nil {
		return "", "", false
	}
	return snap.Signing.KID, snap.Signing.Algorithm, true
}

// PublicKey returns the published key with kid, to verify a signature with.
// A revoked or unknown kid is ErrUnknownKID (which wraps store.ErrNotFound),
// so tokens signed by a revoked key fail at once; before the first key set is
// loaded the error is ErrNoKeySet.
func (s *Signer) PublicKey(kid string) (crypto.PublicKey, error) {
	snap := s.m.snap.Load()
	if snap == nil {
		return nil, ErrNoKeySet
	}
	k, ok := snap.Find(kid)
	if !ok || k.State == store.KeyRevoked || k.Public == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKID, kid)
	}
	return k.Public, nil
}

// PublicKeys returns the published keys (every key but the revoked ones) in
// publication order, what a JWKS carries; nil before the first key set is
// loaded.
func (s *Signer) PublicKeys() []Key {
	snap := s.m.snap.Load()
	if snap == nil {
		return nil
	}
	return snap.Published()
}

// KeySet returns the published keys as a serialized JWKS (see
// Snapshot.Document), the same pointer until the key set changes; nil before
// the first key set is loaded. The issuer verifies its own tokens against it
// with jwks.NewLocalVerifier.
func (s *Signer) KeySet() *jwks.Document {
	snap := s.m.snap.Load()
	if snap == nil {
		return nil
	}
	doc, err := snap.Document()
	if err != nil {
		return nil
	}
	return doc
}
