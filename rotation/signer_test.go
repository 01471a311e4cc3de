package rotation_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
)

// TestSigner: the Signer signs with the active key (kid and typ in the
// header), verifies with published keys only, and fails clearly before the
// first key set is loaded.
func TestSigner(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, openStore(t, filepath.Join(t.TempDir(), "k.db")), newKEK(t), &clock{t: t0}, nil)
	s := m.Signer()
	if _, err := s.Sign([]byte(`{}`), "at+jwt"); err == nil {
		t.Error("Sign before the first Reconcile succeeded")
	}
	if _, err := s.PublicKey("x"); !errors.Is(err, rotation.ErrNoKeySet) {
		t.Errorf("PublicKey before the first Reconcile: %v, want ErrNoKeySet", err)
	}
	if _, _, ok := s.Active(); ok || s.PublicKeys() != nil {
		t.Error("Active or PublicKeys before the first Reconcile")
	}
	snap, err := m.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kid, alg, ok := s.Active()
	if !ok || kid != snap.Signing.KID || alg != rotation.Algorithm {
		t.Errorf("Active = %q %q %v, want %q %q", kid, alg, ok, snap.Signing.KID, rotation.Algorithm)
	}
	if got := len(s.PublicKeys()); got != len(snap.Published()) {
		t.Errorf("%d public keys, want %d", got, len(snap.Published()))
	}
	tok, err := s.Sign([]byte(`{"a":1}`), "at+jwt")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	if h.KeyID() != kid || h.Type() != "at+jwt" || h.Algorithm() != jwa.RS256 {
		t.Errorf("header kid=%q typ=%q alg=%q", h.KeyID(), h.Type(), h.Algorithm())
	}
	pub, err := s.PublicKey(kid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify([]byte(tok), jws.WithKey(jwa.RS256, pub)); err != nil {
		t.Errorf("verify with the published key: %v", err)
	}
	if _, err := s.PublicKey("unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PublicKey(unknown): %v, want store.ErrNotFound", err)
	}
	if _, err := m.Revoke(ctx, kid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PublicKey(kid); !errors.Is(err, rotation.ErrUnknownKID) {
		t.Errorf("PublicKey(revoked): %v, want ErrUnknownKID", err)
	}
}
