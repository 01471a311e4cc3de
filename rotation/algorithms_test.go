package rotation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
)

// TestAlgorithms: with ES256 and EdDSA configured beside RS256, each
// algorithm has its own next and active key, rotates on its own schedule
// (here: together, by the clock; a revocation touches one algorithm only),
// every key is published, and the signer signs with each.
func TestAlgorithms(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	st := openStore(t, filepath.Join(t.TempDir(), "k.db"))
	sealer, err := rotation.NewSealer(newKEK(t))
	if err != nil {
		t.Fatal(err)
	}
	p := policy
	p.Algorithms = []string{"RS256", "ES256", "EdDSA"}
	m, err := rotation.New(rotation.Config{Policy: p, Store: st, Sealer: sealer, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := m.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	count := func(s *rotation.Snapshot) map[string]map[store.KeyState]int {
		out := map[string]map[store.KeyState]int{}
		for _, k := range s.Keys {
			if out[k.Algorithm] == nil {
				out[k.Algorithm] = map[store.KeyState]int{}
			}
			out[k.Algorithm][k.State]++
		}
		return out
	}
	for _, alg := range p.Algorithms {
		if c := count(snap)[alg]; c[store.KeyActive] != 1 || c[store.KeyNext] != 1 {
			t.Errorf("%s keys after Reconcile: %v, want one active and one next", alg, c)
		}
		if snap.Signers[alg].KID == "" {
			t.Errorf("no %s signer", alg)
		}
	}
	if _, ok := snap.Signers["ES256"].Signer.(*ecdsa.PrivateKey); !ok {
		t.Errorf("ES256 signer is %T", snap.Signers["ES256"].Signer)
	}
	if _, ok := snap.Signers["EdDSA"].Signer.(ed25519.PrivateKey); !ok {
		t.Errorf("EdDSA signer is %T", snap.Signers["EdDSA"].Signer)
	}
	if snap.Signing.KID != snap.Signers["RS256"].KID || snap.Signing.Private == nil {
		t.Errorf("Signing is not the RS256 key")
	}

	// Every algorithm's tokens verify against the published set.
	signer := m.Signer()
	v, err := jwks.NewLocalVerifier(signer.KeySet, jwks.Config{Issuer: "https://id.example", Algorithms: signer.Algorithms(), SkipTypeCheck: true, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	verifyAll := func(when string) {
		t.Helper()
		for _, alg := range p.Algorithms {
			payload := []byte(`{"iss":"https://id.example","exp":` + itoa(clk.Now().Add(time.Hour).Unix()) + `}`)
			tok, err := signer.SignWith(alg, payload, "at+jwt")
			if err != nil {
				t.Fatalf("%s: SignWith %s: %v", when, alg, err)
			}
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Errorf("%s: %s token: %v", when, alg, err)
			}
		}
	}
	verifyAll("initially")

	// A day later every algorithm has rotated: its next key signs.
	before := snap.Signers
	clk.Set(t0.Add(25 * time.Hour))
	if snap, err = m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for _, alg := range p.Algorithms {
		if snap.Signers[alg].KID == before[alg].KID {
			t.Errorf("%s did not rotate", alg)
		}
		if c := count(snap)[alg]; c[store.KeyActive] != 1 || c[store.KeyNext] != 1 || c[store.KeyRetired] != 1 {
			t.Errorf("%s keys after a rotation: %v", alg, c)
		}
	}
	verifyAll("after rotation")

	// Revoking the active ES256 key promotes the ES256 next key only.
	rs, ed := snap.Signers["RS256"].KID, snap.Signers["EdDSA"].KID
	res, err := m.Revoke(ctx, snap.Signers["ES256"].KID)
	if err != nil {
		t.Fatal(err)
	}
	snap = m.Current()
	if snap.Signers["ES256"].KID != res.Activated || snap.Signers["RS256"].KID != rs || snap.Signers["EdDSA"].KID != ed {
		t.Errorf("after revoking the ES256 key: signers %v, activated %s", snap.Signers, res.Activated)
	}
	for _, alg := range p.Algorithms {
		if c := count(snap)[alg]; c[store.KeyActive] != 1 || c[store.KeyNext] != 1 {
			t.Errorf("%s keys after the revocation: %v", alg, c)
		}
	}
	verifyAll("after revocation")

	views := rotation.ViewKeys(snap.Keys)
	for _, kv := range views {
		if kv.Bits == 0 {
			t.Errorf("key %s (%s) shows 0 bits", kv.KID, kv.Algorithm)
		}
	}

	if err := (rotation.Policy{RotationPeriod: time.Hour, PublishAhead: time.Minute, Retention: time.Hour, RSABits: 2048, Algorithms: []string{"ES256"}}).Validate(); err == nil {
		t.Error("a policy without RS256 validated")
	}
	if err := (rotation.Policy{RotationPeriod: time.Hour, PublishAhead: time.Minute, Retention: time.Hour, RSABits: 2048, Algorithms: []string{"RS256", "ES384"}}).Validate(); err == nil {
		t.Error("a policy with ES384 validated")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestAlgorithmDropped: when an algorithm leaves the policy, its keys stay
// published (tokens it signed still verify) but nothing signs with it or
// rotates it, and revoking its active key makes no successor.
func TestAlgorithmDropped(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	st := openStore(t, filepath.Join(t.TempDir(), "k.db"))
	kek := newKEK(t)
	sealer, err := rotation.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	p := policy
	p.Algorithms = []string{"RS256", "ES256"}
	m, err := rotation.New(rotation.Config{Policy: p, Store: st, Sealer: sealer, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := m.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es := snap.Signers["ES256"].KID
	m2 := newManager(t, st, kek, clk, nil) // RS256 only
	snap, err = m2.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Signers["ES256"]; ok {
		t.Error("an unconfigured algorithm has a signer")
	}
	if _, ok := snap.Find(es); !ok {
		t.Error("the ES256 key is no longer published")
	}
	if _, err := m2.Signer().SignWith("ES256", []byte(`{}`), "JWT"); err == nil {
		t.Error("signed with an unconfigured algorithm")
	}
	res, err := m2.Revoke(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	if res.Activated != "" {
		t.Errorf("revoking the ES256 key activated %s", res.Activated)
	}
	n := 0
	for _, k := range m2.Current().Keys {
		if k.Algorithm == "ES256" && k.State == store.KeyActive {
			n++
		}
	}
	if n != 0 {
		t.Errorf("%d active ES256 keys after the revocation", n)
	}
}
