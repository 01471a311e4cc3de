package idp_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/password"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/postgres"
	"github.com/keygate/keygate/store/sqlite"
)

// Both backends offer the cache its invalidation signal; without it the
// directory would silently read the store on every lookup.
var (
	_ interface {
		ClientsVersion(context.Context) (int64, error)
	} = (*sqlite.Store)(nil)
	_ interface {
		ClientsVersion(context.Context) (int64, error)
	} = (*postgres.Store)(nil)
)

// fakeClock is a settable clock for the directory.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func dirOver(t *testing.T, st store.Store, now func() time.Time) *idp.Directory {
	t.Helper()
	d, err := idp.NewDirectory(idp.DirectoryConfig{AccessTTL: time.Hour, Store: st, Now: now,
		Hasher: password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestClientCacheSeesOtherProcessesWithinOneSecond: the server's directory
// caches a stored client; the CLI, through its own handle on the same SQLite
// file, changes it, rotates its secret and deletes it. Each change may go
// unseen until one second (ClientCheckInterval) after it on the server's
// clock, and is seen from then on.
func TestClientCacheSeesOtherProcessesWithinOneSecond(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	open := func() *sqlite.Store {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	clock := newFakeClock()
	server := dirOver(t, open(), clock.Now)
	cli := dirOver(t, open(), time.Now)

	if _, err := cli.RegisterClient(ctx, &idp.Client{ID: "svc", GrantTypes: []string{idp.GrantClientCredentials},
		Scopes: []string{"read"}}, true); err != nil {
		t.Fatal(err)
	}
	scopes := func() []string {
		t.Helper()
		c, err := server.Client(ctx, "svc")
		if err != nil {
			t.Fatal(err)
		}
		return c.Scopes
	}
	first, err := server.Client(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := server.Client(ctx, "svc"); again != first {
		t.Fatal("second lookup not served from the cache")
	}

	clock.Add(300 * time.Millisecond)
	write := []string{"read", "write"}
	if _, err := cli.UpdateClient(ctx, "svc", idp.ClientPatch{Scopes: &write}); err != nil {
		t.Fatal(err)
	}
	// The write is at 0.3 s; the last version check was at 0: the cache
	// may serve the old record until 1 s, and must not after.
	clock.Add(699 * time.Millisecond)
	if got := scopes(); !slices.Equal(got, []string{"read"}) {
		t.Logf("seen early (allowed): %v", got)
	}
	clock.Add(time.Millisecond)
	if got := scopes(); !slices.Equal(got, write) {
		t.Fatalf("1 s after the CLI's update: scopes %v, want %v", got, write)
	}

	// A rotation: the old record (old secret hash) must be gone within 1 s.
	before, _ := server.Client(ctx, "svc")
	if _, _, err := cli.RotateClientSecret(ctx, "svc", 0); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Second)
	after, err := server.Client(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(after.SecretHash, before.SecretHash) {
		t.Fatal("1 s after the CLI's rotation the server still has the old secret")
	}

	// A deletion.
	if err := cli.DeleteClient(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Second)
	if _, err := server.Client(ctx, "svc"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("1 s after the CLI's delete: %v, want ErrNotFound", err)
	}
}

// TestClientCacheOwnWritesAtOnce: writes through the same directory are seen
// by the next lookup, with no clock movement.
func TestClientCacheOwnWritesAtOnce(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	d := dirOver(t, idp.TempStore(t), clock.Now)
	if _, err := d.RegisterClient(ctx, &idp.Client{ID: "svc", GrantTypes: []string{idp.GrantClientCredentials},
		Scopes: []string{"read"}}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	write := []string{"write"}
	if _, err := d.UpdateClient(ctx, "svc", idp.ClientPatch{Scopes: &write}); err != nil {
		t.Fatal(err)
	}
	if c, _ := d.Client(ctx, "svc"); !slices.Equal(c.Scopes, write) {
		t.Fatalf("scopes %v after our own update, want %v", c.Scopes, write)
	}
	if err := d.DeleteClient(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client(ctx, "svc"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after our own delete: %v, want ErrNotFound", err)
	}
}

// TestClientCacheBounded: with a cap of 2, many clients are all still found
// (beyond the cap, lookups read the store).
func TestClientCacheBounded(t *testing.T) {
	ctx := context.Background()
	st := idp.TempStore(t)
	d, err := idp.NewDirectory(idp.DirectoryConfig{AccessTTL: time.Hour, Store: st, ClientCacheSize: 2,
		Hasher: password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"a1", "b2", "c3", "d4", "e5"}
	for _, id := range ids {
		if _, err := d.RegisterClient(ctx, &idp.Client{ID: id, GrantTypes: []string{idp.GrantClientCredentials}}, true); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		for _, id := range ids {
			if c, err := d.Client(ctx, id); err != nil || c.ID != id {
				t.Fatalf("client %s: %v %v", id, c, err)
			}
		}
	}
	if n := idp.ClientCacheLen(d); n > 2 {
		t.Fatalf("cache holds %d clients, cap 2", n)
	}
}
