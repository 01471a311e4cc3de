package rotation_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
)

func ringManager(t *testing.T, st store.KeyStore, clk *clock, keks ...[]byte) *rotation.Manager {
	t.Helper()
	sealer, err := rotation.NewKeyring(keks)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rotation.New(rotation.Config{Policy: policy, Store: st, Sealer: sealer, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ring(t *testing.T, keks ...[]byte) *rotation.Sealer {
	t.Helper()
	s, err := rotation.NewKeyring(keks)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// oldKeySet stores a retired, an active, a next and a revoked key, all sealed
// under kek.
func oldKeySet(t *testing.T, st store.KeyStore, clk *clock, kek []byte) {
	t.Helper()
	ctx := context.Background()
	m := ringManager(t, st, clk, kek)
	if _, err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := m.Rotate(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := st.ListKeys(ctx)
	var retired []store.Key
	for _, k := range keys {
		if k.State == store.KeyRetired {
			retired = append(retired, k)
		}
	}
	if len(retired) != 2 {
		t.Fatalf("after two forced rotations: %d retired keys, want 2", len(retired))
	}
	if _, err := m.Revoke(ctx, retired[0].KID); err != nil { // one of the two retired
		t.Fatal(err)
	}
}

// TestRewrap: a keyring [new, old] opens keys sealed under old; Rewrap seals
// every one again under new, after which new alone opens them all and old alone
// opens none; a second Rewrap changes nothing.
func TestRewrap(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "k.db"))
	clk := &clock{t: t0}
	oldK, newK := newKEK(t), newKEK(t)
	oldKeySet(t, st, clk, oldK)
	before, _ := st.ListKeys(ctx)

	if _, err := ringManager(t, st, clk, newK).Reconcile(ctx); !errors.Is(err, rotation.ErrWrongKEK) {
		t.Fatalf("the new KEK alone before rewrap: %v, want ErrWrongKEK", err)
	}
	if _, err := ringManager(t, st, clk, newK, oldK).Reconcile(ctx); err != nil {
		t.Fatalf("the keyring [new, old] does not open keys sealed under old: %v", err)
	}

	res, err := rotation.Rewrap(ctx, st, ring(t, newK, oldK))
	if err != nil {
		t.Fatal(err)
	}
	if res.Resealed != 3 || res.Current != 0 { // retired, active, next; the revoked key has nothing sealed
		t.Errorf("Rewrap = %+v, want 3 resealed", res)
	}
	after, _ := st.ListKeys(ctx)
	sameExceptSealed(t, before, after)

	if res, err := rotation.Rewrap(ctx, st, ring(t, newK, oldK)); err != nil || res.Resealed != 0 || res.Current != 3 {
		t.Errorf("second Rewrap = %+v, %v; want nothing to do", res, err)
	}
	if res, err := rotation.Rewrap(ctx, st, ring(t, newK)); err != nil || res.Resealed != 0 {
		t.Errorf("Rewrap under new alone = %+v, %v; want nothing to do", res, err)
	}
	snap, err := ringManager(t, st, clk, newK).Reconcile(ctx)
	if err != nil {
		t.Fatalf("the new KEK alone after rewrap: %v", err)
	}
	if snap.Signing.KID != find(t, after, store.KeyActive).KID {
		t.Errorf("signing with %s", snap.Signing.KID)
	}
	if _, err := ringManager(t, st, clk, oldK).Reconcile(ctx); !errors.Is(err, rotation.ErrWrongKEK) {
		t.Errorf("the old KEK alone after rewrap: %v, want ErrWrongKEK", err)
	}
}

// TestRewrapWrongKEKWritesNothing: a keyring that does not open every stored key
// rewrites none of them.
func TestRewrapWrongKEKWritesNothing(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "k.db"))
	clk := &clock{t: t0}
	oldK := newKEK(t)
	oldKeySet(t, st, clk, oldK)
	v0, _ := st.KeySetVersion(ctx)
	if _, err := rotation.Rewrap(ctx, st, ring(t, newKEK(t))); !errors.Is(err, rotation.ErrWrongKEK) {
		t.Fatalf("err = %v, want ErrWrongKEK", err)
	}
	if v1, _ := st.KeySetVersion(ctx); v1 != v0 {
		t.Errorf("key-set version moved %d → %d", v0, v1)
	}
	if _, err := ringManager(t, st, clk, oldK).Reconcile(ctx); err != nil {
		t.Errorf("the old KEK no longer opens the keys: %v", err)
	}
}

// racingStore runs hook once, just before the first key change it forwards.
type racingStore struct {
	store.KeyStore
	once sync.Once
	hook func()
}

func (r *racingStore) ApplyKeyChange(ctx context.Context, c store.KeyChange) error {
	r.once.Do(r.hook)
	return r.KeyStore.ApplyKeyChange(ctx, c)
}

// TestRewrapRacesARotation: a rotation landing in the middle of a rewrap is
// kept (the compare-and-swap write loses, Rewrap re-reads), and every key ends
// under the new KEK.
func TestRewrapRacesARotation(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "k.db"))
	clk := &clock{t: t0}
	oldK, newK := newKEK(t), newKEK(t)
	m := ringManager(t, st, clk, oldK)
	if _, err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Rotate(ctx, true); err != nil { // retired, active, next
		t.Fatal(err)
	}
	server := ringManager(t, st, clk, newK, oldK)
	var rotated rotation.RotateResult
	race := &racingStore{KeyStore: st, hook: func() {
		var err error
		if rotated, err = server.Rotate(ctx, true); err != nil {
			t.Error(err)
		}
	}}
	res, err := rotation.Rewrap(ctx, race, ring(t, newK, oldK))
	if err != nil {
		t.Fatal(err)
	}
	// Three keys under old; the rotation added a fourth, already under new.
	if res.Resealed != 3 || res.Current != 1 {
		t.Errorf("Rewrap = %+v, want 3 resealed and 1 current", res)
	}
	keys, _ := st.ListKeys(ctx)
	if a := find(t, keys, store.KeyActive); a.KID != rotated.Activated {
		t.Errorf("active key %s, want %s: the rotation was undone", a.KID, rotated.Activated)
	}
	if _, err := ringManager(t, st, clk, newK).Reconcile(ctx); err != nil {
		t.Errorf("the new KEK alone after rewrap: %v", err)
	}
}

func find(t *testing.T, keys []store.Key, s store.KeyState) store.Key {
	t.Helper()
	for _, k := range keys {
		if k.State == s {
			return k
		}
	}
	t.Fatalf("no %s key", s)
	return store.Key{}
}

// sameExceptSealed checks that a rewrap changed nothing but the sealed bytes.
func sameExceptSealed(t *testing.T, before, after []store.Key) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("%d keys before, %d after", len(before), len(after))
	}
	for i, b := range before {
		a := after[i]
		if (len(b.Sealed) > 0) == (string(b.Sealed) == string(a.Sealed)) {
			t.Errorf("key %s (%s): sealed bytes changed=%v", b.KID, b.State, string(b.Sealed) != string(a.Sealed))
		}
		b.Sealed, a.Sealed = nil, nil
		if !b.CreatedAt.Equal(a.CreatedAt) || b.State != a.State || !b.ActivateAt.Equal(a.ActivateAt) ||
			!b.RetiredAt.Equal(a.RetiredAt) || !b.RemoveAfter.Equal(a.RemoveAfter) || b.KID != a.KID {
			t.Errorf("key changed beyond its sealed bytes:\n%+v\n%+v", b, a)
		}
	}
}
