package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/store"
)

var throttleT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestSharedThrottle: two Stores on one schema stand for two replicas: the
// reservations taken at one lock the key at the other.
func TestSharedThrottle(t *testing.T) {
	dsn, _ := freshSchema(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	ctx := context.Background()
	l := store.ThrottleLimits{Burst: 3, Every: time.Minute}
	ta, tb := a.Throttle("user", l), b.Throttle("user", l)
	t0 := throttleT0

	assertLockedAcross(t, ta, tb, t0)
	if _, ok, _ := tb.Reserve(ctx, "bob", t0); !ok {
		t.Error("keys are not independent")
	}
	if _, ok, _ := a.Throttle("ip", l).Reserve(ctx, "alice", t0); !ok {
		t.Error("throttles with other names share buckets")
	}
	if wait, ok, _ := tb.Reserve(ctx, "alice", t0.Add(59*time.Second)); ok || wait != time.Second {
		t.Errorf("at +59s: wait=%s ok=%v, want 1s", wait, ok)
	}
	if _, ok, _ := tb.Reserve(ctx, "alice", t0.Add(time.Minute)); !ok {
		t.Error("a token is not back after Every")
	}
	if err := ta.Reset(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := tb.Reserve(ctx, "alice", t0); !ok {
		t.Error("Reset at one replica is not seen at the other")
	}

	assertReleaseCapped(t, ta, tb, t0)

	// Full buckets are pruned; limited ones are kept.
	reserveN(t, ta, "dave", t0, 1)
	n, err := ta.PruneFull(ctx, t0.Add(2*time.Minute))
	if err != nil || n != 2 { // bob's and dave's
		t.Errorf("PruneFull removed %d (err %v), want the 2 refilled buckets", n, err)
	}
	// alice was emptied at t0: two tokens back at +2m, not three.
	if n := reserveN(t, tb, "alice", t0.Add(2*time.Minute), 3); n != 2 {
		t.Errorf("alice after pruning: %d reservations, want 2 (pruning freed a limited key)", n)
	}
}

// assertLockedAcross takes the 3 tokens of alice's bucket (Burst) at ta, tb
// and ta at t0, then checks both replicas see alice locked for a minute.
func assertLockedAcross(t *testing.T, ta, tb store.Throttle, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	for i, th := range []store.Throttle{ta, tb, ta} {
		if _, ok, err := th.Reserve(ctx, "alice", t0); err != nil || !ok {
			t.Fatalf("reservation %d: ok=%v err=%v", i, ok, err)
		}
	}
	for name, th := range map[string]store.Throttle{"a": ta, "b": tb} {
		wait, ok, err := th.Reserve(ctx, "alice", t0)
		if err != nil || ok || wait != time.Minute {
			t.Errorf("replica %s after 3 reservations: wait=%s ok=%v err=%v, want locked for 1m", name, wait, ok, err)
		}
	}
}

// assertReleaseCapped checks that Release gives one token back, never
// beyond Burst (3), and accepts an unknown key.
func assertReleaseCapped(t *testing.T, ta, tb store.Throttle, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	for range 5 {
		if err := tb.Release(ctx, "alice", t0); err != nil {
			t.Fatal(err)
		}
	}
	if n := reserveN(t, ta, "alice", t0, 10); n != 3 {
		t.Errorf("after releases: %d reservations, want Burst 3 (released beyond Burst)", n)
	}
	if err := ta.Release(ctx, "nobody", t0); err != nil {
		t.Errorf("release of an unknown key: %v", err)
	}
}

func reserveN(t *testing.T, th store.Throttle, key string, at time.Time, n int) int {
	t.Helper()
	got := 0
	for range n {
		_, ok, err := th.Reserve(t.Context(), key, at)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			got++
		}
	}
	return got
}

// TestSharedThrottleConcurrentReplicasAtMostBurst (attack 1 across
// replicas: concurrent guesses beat a check-then-fail throttle): 40
// simultaneous reservations at one key from two replicas take exactly Burst
// tokens, and the 35 refused ones leave no debt (attack 4): one token is back
// after Every, and the bucket is full after Burst×Every.
func TestSharedThrottleConcurrentReplicasAtMostBurst(t *testing.T) {
	dsn, _ := freshSchema(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	l := store.ThrottleLimits{Burst: 5, Every: time.Minute}
	replicas := []store.Throttle{a.Throttle("user", l), b.Throttle("user", l)}
	n := 0
	for _, ok := range stampede.Run(40, func(i int) bool {
		_, ok, err := replicas[i%2].Reserve(context.Background(), "user:victim", throttleT0)
		if err != nil {
			t.Error(err)
		}
		return ok
	}) {
		if ok {
			n++
		}
	}
	if n != l.Burst {
		t.Fatalf("%d of 40 concurrent reservations from two replicas succeeded, want exactly Burst %d", n, l.Burst)
	}
	if wait, ok, err := replicas[0].Reserve(t.Context(), "user:victim", throttleT0); err != nil || ok || wait != l.Every {
		t.Fatalf("after the burst: wait=%s ok=%v err=%v, want locked for Every (no debt)", wait, ok, err)
	}
	if n := reserveN(t, replicas[1], "user:victim", throttleT0.Add(l.Every), 3); n != 1 {
		t.Fatalf("after Every: %d reservations, want 1", n)
	}
	at := throttleT0.Add(l.Every + time.Duration(l.Burst)*l.Every)
	if n := reserveN(t, replicas[0], "user:victim", at, 10); n != l.Burst {
		t.Fatalf("after Burst×Every of quiet: %d reservations, want Burst %d", n, l.Burst)
	}
	var minTokens float64
	if err := a.pool.QueryRow(t.Context(), `SELECT min(tokens) FROM login_throttle`).Scan(&minTokens); err != nil || minTokens < 0 {
		t.Fatalf("min(tokens) = %v (err %v): a bucket went into debt", minTokens, err)
	}
}
