package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// TestSharedThrottle: two Stores on one schema stand for two replicas: the
// failures counted at one lock the key at the other.
func TestSharedThrottle(t *testing.T) {
	dsn, _ := freshSchema(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	ctx := context.Background()
	l := store.ThrottleLimits{Burst: 3, Every: time.Minute}
	ta, tb := a.Throttle("user", l), b.Throttle("user", l)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	for i, th := range []interface {
		Fail(context.Context, string, time.Time) error
	}{ta, tb, ta} {
		if err := th.Fail(ctx, "alice", t0); err != nil {
			t.Fatalf("fail %d: %v", i, err)
		}
	}
	for name, th := range map[string]interface {
		Check(context.Context, string, time.Time) (time.Duration, bool, error)
	}{"a": ta, "b": tb} {
		wait, ok, err := th.Check(ctx, "alice", t0)
		if err != nil || ok || wait != time.Minute {
			t.Errorf("replica %s after 3 failures: wait=%s ok=%v err=%v, want locked for 1m", name, wait, ok, err)
		}
	}
	if _, ok, _ := tb.Check(ctx, "bob", t0); !ok {
		t.Error("keys are not independent")
	}
	if _, ok, _ := a.Throttle("ip", l).Check(ctx, "alice", t0); !ok {
		t.Error("throttles with other names share buckets")
	}
	if wait, ok, _ := tb.Check(ctx, "alice", t0.Add(59*time.Second)); ok || wait != time.Second {
		t.Errorf("at +59s: wait=%s ok=%v, want 1s", wait, ok)
	}
	if _, ok, _ := tb.Check(ctx, "alice", t0.Add(time.Minute)); !ok {
		t.Error("a token is not back after Every")
	}
	if err := ta.Reset(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := tb.Check(ctx, "alice", t0); !ok {
		t.Error("Reset at one replica is not seen at the other")
	}

	// Concurrent failures from both replicas are all counted.
	var wg sync.WaitGroup
	for i := range 8 {
		th := ta
		if i%2 == 1 {
			th = tb
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := th.Fail(ctx, "carol", t0); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// 8 failures on a bucket of 3: 5 in debt, 6 minutes to the next token.
	if wait, ok, _ := ta.Check(ctx, "carol", t0); ok || wait != 6*time.Minute {
		t.Errorf("after 8 concurrent failures: wait=%s ok=%v, want 6m (none lost)", wait, ok)
	}

	// Full buckets are pruned; limited ones are kept.
	ta.Fail(ctx, "dave", t0)
	n, err := ta.(interface {
		PruneFull(context.Context, time.Time) (int64, error)
	}).PruneFull(ctx, t0.Add(2*time.Minute))
	if err != nil || n != 1 {
		t.Errorf("PruneFull removed %d (err %v), want dave's refilled bucket only", n, err)
	}
	if _, ok, _ := tb.Check(ctx, "carol", t0.Add(2*time.Minute)); ok {
		t.Error("pruning freed a limited key")
	}
}
