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
	algs := []string{"RS256", "ES256", "EdDSA"}
	m := algManager(t, st, newKEK(t), clk, algs...)
	snap, err := m.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oneActiveOneNext := map[store.KeyState]int{store.KeyActive: 1, store.KeyNext: 1}
	assertKeysPerAlg(t, snap, algs, oneActiveOneNext, "after Reconcile")
	assertSigners(t, snap, algs)

	// Every algorithm's tokens verify against the published set.
	signer := m.Signer()
	v, err := jwks.NewLocalVerifier(signer.KeySet, jwks.Config{Issuer: "https://id.example", Algorithms: signer.Algorithms(), SkipTypeCheck: true, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	verifyAll := func(when string) {
		t.Helper()
		verifyEachAlg(t, signer, v, clk.Now(), algs, when)
	}
	verifyAll("initially")

	// A day later every algorithm has rotated: its next key signs.
	before := snap.Signers
	clk.Set(t0.Add(25 * time.Hour))
	if snap, err = m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for _, alg := range algs {
		if snap.Signers[alg].KID == before[alg].KID {
			t.Errorf("%s did not rotate", alg)
		}
	}
	assertKeysPerAlg(t, snap, algs, map[store.KeyState]int{store.KeyActive: 1, store.KeyNext: 1, store.KeyRetired: 1}, "after a rotation")
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
	assertKeysPerAlg(t, snap, algs, oneActiveOneNext, "after the revocation")
	verifyAll("after revocation")

	for _, kv := range rotation.ViewKeys(snap.Keys) {
		if kv.Bits == 0 {
			t.Errorf("key %s (%s) shows 0 bits", kv.KID, kv.Algorithm)
		}
	}

	for _, c := range []struct {
		what string
		algs []string
	}{
		{"a policy without RS256", []string{"ES256"}},
		{"a policy with ES384", []string{"RS256", "ES384"}},
	} {
		if err := (rotation.Policy{RotationPeriod: time.Hour, PublishAhead: time.Minute, Retention: time.Hour, RSABits: 2048, Algorithms: c.algs}).Validate(); err == nil {
			t.Errorf("%s validated", c.what)
		}
	}
}

// algManager is a manager of the test policy with algs configured.
func algManager(t *testing.T, st store.KeyStore, kek []byte, clk *clock, algs ...string) *rotation.Manager {
	t.Helper()
	sealer, err := rotation.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	p := policy
	p.Algorithms = algs
	m, err := rotation.New(rotation.Config{Policy: p, Store: st, Sealer: sealer, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// keyCounts counts s's keys per algorithm and state.
func keyCounts(s *rotation.Snapshot) map[string]map[store.KeyState]int {
	out := map[string]map[store.KeyState]int{}
	for _, k := range s.Keys {
		if out[k.Algorithm] == nil {
			out[k.Algorithm] = map[store.KeyState]int{}
		}
		out[k.Algorithm][k.State]++
	}
	return out
}

// assertKeysPerAlg fails unless every algorithm of algs has, in each state
// of want, that many keys.
func assertKeysPerAlg(t *testing.T, snap *rotation.Snapshot, algs []string, want map[store.KeyState]int, when string) {
	t.Helper()
	counts := keyCounts(snap)
	for _, alg := range algs {
		c := counts[alg]
		for state, n := range want {
			if c[state] != n {
				t.Errorf("%s keys %s: %v, want %v", alg, when, c, want)
				break
			}
		}
	}
}

// assertSigners checks there is a signer per algorithm, of the algorithm's
// key type, and that Signing is the RS256 one.
func assertSigners(t *testing.T, snap *rotation.Snapshot, algs []string) {
	t.Helper()
	for _, alg := range algs {
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
}

// verifyEachAlg signs a token valid for an hour from now with each of algs
// and verifies it with v.
func verifyEachAlg(t *testing.T, signer *rotation.Signer, v *jwks.Verifier, now time.Time, algs []string, when string) {
	t.Helper()
	for _, alg := range algs {
		payload := []byte(`{"iss":"https://id.example","exp":` + itoa(now.Add(time.Hour).Unix()) + `}`)
		tok, err := signer.SignWith(alg, payload, "at+jwt")
		if err != nil {
			t.Fatalf("%s: SignWith %s: %v", when, alg, err)
		}
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s: %s token: %v", when, alg, err)
		}
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
	m := algManager(t, st, kek, clk, "RS256", "ES256")
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
