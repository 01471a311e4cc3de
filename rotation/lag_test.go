package rotation_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keygate/keygate/internal/poll"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
)

// gate is a key generator that blocks until the test opens it, so a test can
// hold a Manager in the middle of generating a key.
type gate struct {
	open    chan struct{}
	once    sync.Once
	started atomic.Int32 // generations begun
	ended   atomic.Int32 // generations returned
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{})}
	t.Cleanup(g.release) // before the stores close (cleanups run last-in first-out)
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) generate(bits int) (*rsa.PrivateKey, error) {
	g.started.Add(1)
	defer g.ended.Add(1)
	<-g.open
	return rsa.GenerateKey(rand.Reader, bits)
}

// leaseHolder is a replica's Manager: scheduled writes need the lease, and key
// generation goes through gen.
func leaseHolder(t *testing.T, st store.KeyStore, kek []byte, clk *clock, gen func(int) (*rsa.PrivateKey, error)) *rotation.Manager {
	t.Helper()
	sealer, err := rotation.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rotation.New(rotation.Config{Policy: policy, Store: st, Sealer: sealer, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Holder: "replica-a", LeaseTTL: time.Hour, Generate: gen})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// within runs fn and fails the test if it has not returned after d: what
// must not wait for a key generation.
func within(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s did not return within %s: it waits for the blocked key generation", what, d)
	}
}

// signedKID signs with s and returns the kid in the token's header.
func signedKID(t *testing.T, s *rotation.Signer) string {
	t.Helper()
	tok, err := s.Sign([]byte(`{}`), "JWT")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	return msg.Signatures()[0].ProtectedHeaders().KeyID()
}

func stored(t *testing.T, st store.KeyStore, s store.KeyState) []string {
	t.Helper()
	keys, err := st.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if k.State == s {
			out = append(out, k.KID)
		}
	}
	return out
}

// TestKeySetChangeAppliedWhileGenerating: the lease holder performs a
// scheduled promotion and starts generating the next key, which blocks.
// Meanwhile another process forces a rotation on the same database. The lease
// holder's Tick applies that change at once — its snapshot and its Signer's
// active kid follow the store — instead of queueing behind the generation.
func TestKeySetChangeAppliedWhileGenerating(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	kek := newKEK(t)
	clk := &clock{t: t0}
	other := newManager(t, openStore(t, path), kek, clk, nil) // the CLI, or a replica without the lease
	first, err := other.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := newGate(t)
	a := leaseHolder(t, openStore(t, path), kek, clk, g.generate)
	if _, err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	k1 := first.Signing.KID
	k2 := first.Published()[1].KID

	// The next key is due: A promotes it and must generate a new next key.
	clk.Set(t0.Add(policy.RotationPeriod))
	within(t, 5*time.Second, "the lease holder's Tick at a scheduled rotation", func() error { return a.Tick(ctx) })
	poll.Until(t, 5*time.Second, "the lease holder to start generating", func() bool { return g.started.Load() == 1 })
	if got := a.Signer(); signedKID(t, got) != k2 {
		t.Fatalf("after promoting %s the lease holder signs with %s (the retired %s?)", k2, signedKID(t, got), k1)
	}

	// Another process forces a rotation while A's generation is blocked.
	res, err := other.Rotate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Retired != k2 {
		t.Fatalf("forced rotation retired %s, want %s", res.Retired, k2)
	}
	v, err := openStore(t, path).KeySetVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "the lease holder's Tick after another process rotated", func() error { return a.Tick(ctx) })
	if s := a.Current(); s.Version != v || s.Signing.KID != res.Activated {
		t.Errorf("with its generation blocked, the lease holder holds version %d signing with %s; the store is at %d with %s active",
			s.Version, s.Signing.KID, v, res.Activated)
	}
	if kid, _, _ := a.Signer().Active(); kid != res.Activated {
		t.Errorf("the lease holder's Signer reports %s active, want %s", kid, res.Activated)
	}
	if kid := signedKID(t, a.Signer()); kid != res.Activated {
		t.Errorf("the lease holder signs with %s after learning %s is active", kid, res.Activated)
	}
	if g.ended.Load() != 0 {
		t.Fatal("the generation finished early; the test proves nothing")
	}

	// The blocked generation finishes; the next key another process created
	// in the meantime stands, and the set stays valid.
	g.release()
	poll.Until(t, 10*time.Second, "the blocked generation to end", func() bool { return g.ended.Load() == 1 })
	snap, err := a.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, path)
	if act, next := stored(t, st, store.KeyActive), stored(t, st, store.KeyNext); len(act) != 1 || act[0] != res.Activated || len(next) != 1 {
		t.Errorf("after the generation: active %v next %v, want [%s] and one next key", act, next, res.Activated)
	}
	if snap.Signing.KID != res.Activated {
		t.Errorf("after the generation the lease holder signs with %s, want %s", snap.Signing.KID, res.Activated)
	}
}

// TestRetiredKeyNeverSignsAfterForcedRotation: another process (the CLI)
// forces a rotation and is still generating the new next key when the lease
// holder hears of it. The lease holder, whose own generation of the missing
// next key blocks, signs with the new active key as soon as it reconciles —
// before generating anything — and never again with the retired one.
func TestRetiredKeyNeverSignsAfterForcedRotation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	kek := newKEK(t)
	clk := &clock{t: t0}
	first, err := newManager(t, openStore(t, path), kek, clk, nil).Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	retired, activated := first.Signing.KID, first.Published()[1].KID
	ga, gcli := newGate(t), newGate(t)
	a := leaseHolder(t, openStore(t, path), kek, clk, ga.generate)
	if _, err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if kid := signedKID(t, a.Signer()); kid != retired {
		t.Fatalf("before the rotation A signs with %s, want %s", kid, retired)
	}

	sealer, err := rotation.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := rotation.New(rotation.Config{Policy: policy, Store: openStore(t, path), Sealer: sealer, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Generate: gcli.generate})
	if err != nil {
		t.Fatal(err)
	}
	cliDone := make(chan error, 1)
	go func() { _, err := cli.Rotate(ctx, true); cliDone <- err }()
	st := openStore(t, path)
	poll.Until(t, 5*time.Second, "the CLI to promote and start generating the next key", func() bool {
		act := stored(t, st, store.KeyActive)
		return gcli.started.Load() == 1 && len(act) == 1 && act[0] == activated
	})

	// A hears of the change and reconciles; its own generation of the missing
	// next key blocks, and must not hold back the swap.
	recDone := make(chan error, 1)
	go func() { _, err := a.Reconcile(ctx); recDone <- err }()
	poll.Until(t, 5*time.Second, "the lease holder to sign with the newly active key", func() bool {
		kid, _, _ := a.Signer().Active()
		return kid == activated
	})
	for range 50 {
		if kid := signedKID(t, a.Signer()); kid != activated {
			t.Fatalf("the lease holder signed with %s after it knew %s was active (retired: %s)", kid, activated, retired)
		}
	}
	if ga.started.Load() != 1 || ga.ended.Load() != 0 {
		t.Errorf("the lease holder's generation: %d started, %d ended; want one, still blocked", ga.started.Load(), ga.ended.Load())
	}

	gcli.release()
	if err := <-cliDone; err != nil {
		t.Fatal(err)
	}
	if kid := signedKID(t, a.Signer()); kid != activated {
		t.Errorf("the lease holder signs with %s, want %s", kid, activated)
	}
	ga.release()
	if err := <-recDone; err != nil {
		t.Fatal(err)
	}
	if act, next := stored(t, st, store.KeyActive), stored(t, st, store.KeyNext); len(act) != 1 || act[0] != activated || len(next) != 1 {
		t.Errorf("finally: active %v next %v, want [%s] and one next key", act, next, activated)
	}
	if kid := signedKID(t, a.Signer()); kid != activated {
		t.Errorf("finally the lease holder signs with %s, want %s", kid, activated)
	}
}
