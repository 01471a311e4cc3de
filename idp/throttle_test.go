package idp_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/password"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlite"
	"github.com/keygate/keygate/throttle"
)

const (
	thBurst = 5
	thEvery = time.Minute
	thPW    = "correct horse battery"
)

// keyLog records the longest key a throttle was given.
type keyLog struct {
	store.Throttle
	longest atomic.Int64
	keys    sync.Map // key -> struct{}
}

func (k *keyLog) Reserve(ctx context.Context, key string, now time.Time) (time.Duration, bool, error) {
	for {
		cur := k.longest.Load()
		if int64(len(key)) <= cur || k.longest.CompareAndSwap(cur, int64(len(key))) {
			break
		}
	}
	k.keys.Store(key, struct{}{})
	return k.Throttle.Reserve(ctx, key, now)
}

type thEnv struct {
	p      *idp.Provider
	hasher *password.Hasher
	users  *keyLog
	ips    *keyLog
	mu     sync.Mutex
	now    time.Time
}

func (e *thEnv) clock() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }

func (e *thEnv) advance(d time.Duration) { e.mu.Lock(); defer e.mu.Unlock(); e.now = e.now.Add(d) }

// newThEnv is a Provider with alice (alice@example.com), a user burst of 5
// per minute, a generous per-address budget and a settable clock.
func newThEnv(t *testing.T) *thEnv {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &thEnv{
		now:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		hasher: password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, 2),
		users:  &keyLog{Throttle: throttle.Local(throttle.New(throttle.Limits{Burst: thBurst, Every: thEvery}, 1000))},
		ips:    &keyLog{Throttle: throttle.Local(throttle.New(throttle.Limits{Burst: 100_000, Every: time.Millisecond}, 1000))},
	}
	e.p, err = idp.New(idp.Config{Issuer: "https://id.example", RefreshTTL: time.Hour, Signer: idp.StubSigner,
		UserThrottle: e.users, IPThrottle: e.ips,
		DirectoryConfig: idp.DirectoryConfig{AccessTTL: time.Minute, Store: st, Hasher: e.hasher, Now: e.clock}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Directory().CreateUser(t.Context(), idp.NewUser{Username: "alice", Email: "alice@example.com", Password: thPW}); err != nil {
		t.Fatal(err)
	}
	return e
}

// try makes one attempt and says "ok", "invalid" or "throttled".
func (e *thEnv) try(t *testing.T, login, pw string) string {
	t.Helper()
	_, err := e.p.CheckPassword(t.Context(), login, pw, "192.0.2.7")
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, idp.ErrInvalidCredentials):
		return "invalid"
	case errors.Is(err, idp.ErrThrottled):
		return "throttled"
	}
	t.Fatalf("CheckPassword(%q): %v", login, err)
	return ""
}

// TestLoginThrottleConcurrentGuessesVerifiedAtMostBurst (attack 1:
// concurrent guesses beat a check-then-fail throttle): 40 simultaneous wrong
// guesses run argon2 at most user_burst times; the others are refused.
func TestLoginThrottleConcurrentGuessesVerifiedAtMostBurst(t *testing.T) {
	e := newThEnv(t)
	before := e.hasher.Computations()
	var invalid, throttled atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 40 {
		wg.Go(func() {
			<-start
			_, err := e.p.CheckPassword(context.Background(), "alice", "wrong guess", "192.0.2.7")
			switch {
			case errors.Is(err, idp.ErrInvalidCredentials):
				invalid.Add(1)
			case errors.Is(err, idp.ErrThrottled):
				throttled.Add(1)
			default:
				t.Errorf("CheckPassword: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if runs := e.hasher.Computations() - before; runs > thBurst {
		t.Errorf("40 concurrent guesses ran argon2 %d times, want at most user_burst %d", runs, thBurst)
	}
	if invalid.Load() != thBurst || throttled.Load() != 40-thBurst {
		t.Errorf("%d verified, %d throttled; want %d and %d", invalid.Load(), throttled.Load(), thBurst, 40-thBurst)
	}
	if got := e.try(t, "alice", thPW); got != "throttled" {
		t.Errorf("right password once the bucket is empty: %s, want throttled", got)
	}
}

// TestLoginThrottleLockoutBoundedAfter120GuessBurst (attack 4: cheap, long
// lockouts from debt): after 120 concurrent bad guesses the owner's right
// password works again after Every (well within user_burst × user_every).
func TestLoginThrottleLockoutBoundedAfter120GuessBurst(t *testing.T) {
	e := newThEnv(t)
	var wg sync.WaitGroup
	for range 120 {
		wg.Go(func() { _, _ = e.p.CheckPassword(context.Background(), "alice", "bad guess", "192.0.2.7") })
	}
	wg.Wait()
	_, err := e.p.CheckPassword(t.Context(), "alice", thPW, "192.0.2.7")
	var te *idp.ThrottledError
	if !errors.As(err, &te) || te.RetryAfter > thEvery {
		t.Fatalf("right password right after the burst: %v, want throttled for at most %v", err, thEvery)
	}
	e.advance(te.RetryAfter)
	if got := e.try(t, "alice", thPW); got != "ok" {
		t.Fatalf("right password after Retry-After %v: %s, want ok", te.RetryAfter, got)
	}
}

// TestLoginThrottleUsernameAndEmailShareOneBucket (attack 6: username and
// email of one user had separate buckets, doubling the guesses): five wrong
// guesses spread over the username, the email and case variants of both
// lock all of them.
func TestLoginThrottleUsernameAndEmailShareOneBucket(t *testing.T) {
	e := newThEnv(t)
	for _, login := range []string{"alice", "alice@example.com", "ALICE", "Alice@Example.COM", "alice"} {
		if got := e.try(t, login, "wrong guess"); got != "invalid" {
			t.Fatalf("guess as %q: %s, want invalid", login, got)
		}
	}
	for _, login := range []string{"alice", "alice@example.com", "ALICE@EXAMPLE.COM", "aLiCe"} {
		if got := e.try(t, login, thPW); got != "throttled" {
			t.Errorf("right password as %q after 5 guesses: %s, want throttled", login, got)
		}
	}
}

// TestLoginThrottleUnknownLoginCaseVariantsShareOneBucket: an attacker
// cannot multiply buckets of a login that names nobody with case and space
// variants, and an unknown login locks exactly like a known one (no
// enumeration by lockout behaviour).
func TestLoginThrottleUnknownLoginCaseVariantsShareOneBucket(t *testing.T) {
	e := newThEnv(t)
	for i, login := range []string{"mallory", "MALLORY", " Mallory ", "mAllory", "mallorY"} {
		if got := e.try(t, login, "guess"); got != "invalid" {
			t.Fatalf("guess %d as %q: %s, want invalid", i, login, got)
		}
	}
	if got := e.try(t, "Mallory", "guess"); got != "throttled" {
		t.Errorf("sixth guess at an unknown login: %s, want throttled like a known one", got)
	}
}

// TestLoginThrottleKeysAreFixedSizeDigests (attack 3: 60 KB user names
// stored as throttle keys): the keys given to both throttles are short
// digests whatever the client sends.
func TestLoginThrottleKeysAreFixedSizeDigests(t *testing.T) {
	e := newThEnv(t)
	huge := strings.Repeat("a", 60<<10)
	e.try(t, huge, "guess")
	e.try(t, "alice", "guess")
	if _, err := e.p.CheckPassword(t.Context(), "x", "guess", strings.Repeat("9", 60<<10)); !errors.Is(err, idp.ErrInvalidCredentials) {
		t.Fatalf("huge address: %v", err)
	}
	for name, k := range map[string]*keyLog{"user": e.users, "ip": e.ips} {
		if n := k.longest.Load(); n > 80 {
			t.Errorf("%s throttle got a key of %d bytes, want a fixed-size digest", name, n)
		}
		k.keys.Range(func(key, _ any) bool {
			if s := key.(string); strings.Contains(s, "alice") || strings.Contains(s, "aaaa") {
				t.Errorf("%s throttle key %.40q… (%d bytes) holds the login itself", name, s, len(s))
			}
			return true
		})
	}
}

// TestLoginThrottleSuccessCostsNothing: a right password resets the account
// and gives the address its token back, so a user who logs in often is never
// throttled by their own successes.
func TestLoginThrottleSuccessCostsNothing(t *testing.T) {
	e := newThEnv(t)
	for range 4 {
		e.try(t, "alice", "typo")
	}
	for i := range 20 {
		if got := e.try(t, "alice", thPW); got != "ok" {
			t.Fatalf("login %d: %s, want ok", i, got)
		}
	}
	for range thBurst {
		if got := e.try(t, "alice", "typo"); got != "invalid" {
			t.Fatalf("after a success the account should have a full burst again: %s", got)
		}
	}
}
