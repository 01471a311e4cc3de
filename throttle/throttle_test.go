package throttle

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is an arbitrary instant with a sub-second part, so that nothing depends
// on failures falling on whole seconds.
func t0() time.Time { return time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC) }

func perMinute(burst int) Limits { return Limits{Burst: burst, Every: time.Minute} }

// failAt records one failure for key at each offset from t0.
func failAt(th *Throttle, key string, offsets ...time.Duration) {
	for _, off := range offsets {
		th.Fail(key, t0().Add(off))
	}
}

// times returns n copies of off: n failures at the same instant.
func times(n int, off time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = off
	}
	return out
}

// checkInvariants verifies the map and the heap describe the same buckets and
// the capacity bound holds.
func checkInvariants(t *testing.T, th *Throttle) {
	t.Helper()
	th.mu.Lock()
	defer th.mu.Unlock()
	if len(th.buckets) != len(th.byFull) {
		t.Fatalf("%d buckets in the map, %d in the heap", len(th.buckets), len(th.byFull))
	}
	if len(th.buckets) > th.maxKeys {
		t.Fatalf("%d buckets, more than maxKeys %d", len(th.buckets), th.maxKeys)
	}
	for i, b := range th.byFull {
		if b.index != i || th.buckets[b.key] != b {
			t.Fatalf("heap slot %d holds %q with index %d, map has %p, heap has %p", i, b.key, b.index, th.buckets[b.key], b)
		}
		if i > 0 && th.byFull[(i-1)/2].fullAt.After(b.fullAt) {
			t.Fatalf("heap order broken at slot %d", i)
		}
	}
}

func TestCheck(t *testing.T) {
	s := time.Second
	tests := []struct {
		name      string
		limits    Limits
		fails     []time.Duration // offsets from t0
		at        time.Duration   // Check at t0+at
		wantOK    bool
		wantRetry time.Duration
	}{
		{"unknown key", perMinute(3), nil, 0, true, 0},
		{"below burst", perMinute(3), times(2, 0), 0, true, 0},
		{"burst reached", perMinute(3), times(3, 0), 0, false, 60 * s},
		{"partly regained", perMinute(3), times(3, 0), 10 * s, false, 50 * s},
		{"rounded up to a second", perMinute(3), times(3, 0), 10*s + time.Millisecond, false, 50 * s},
		{"last half second", perMinute(3), times(3, 0), 59*s + 500*time.Millisecond, false, 1 * s},
		{"last microsecond", perMinute(3), times(3, 0), time.Minute - time.Microsecond, false, 1 * s},
		{"within float tolerance", perMinute(3), times(3, 0), time.Minute - 50*time.Nanosecond, true, 0},
		{"token back", perMinute(3), times(3, 0), time.Minute, true, 0},
		{"spread failures", perMinute(3), []time.Duration{0, 20 * s, 40 * s}, 40 * s, false, 20 * s},
		{"regained token spent", perMinute(3), append(times(3, 0), time.Minute), time.Minute, false, 60 * s},
		{"debt from raced failures", perMinute(3), times(5, 0), 0, false, 180 * s},
		{"debt being repaid", perMinute(3), times(5, 0), 150 * s, false, 30 * s},
		{"burst 1", perMinute(1), times(1, 0), time.Millisecond, false, 60 * s},
		{"odd interval", Limits{Burst: 2, Every: 90 * s}, times(2, 0), time.Millisecond, false, 90 * s},
		{"sub-second interval", Limits{Burst: 2, Every: 300 * time.Millisecond}, times(2, 0), 0, false, 1 * s},
		{"long interval", Limits{Burst: 5, Every: 24 * time.Hour}, times(5, 0), time.Hour, false, 23 * time.Hour},
		{"clock stepped back", perMinute(3), times(3, 0), -time.Hour, false, 60 * s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := New(tt.limits, 10)
			failAt(th, "user:alice", tt.fails...)
			retry, ok := th.Check("user:alice", t0().Add(tt.at))
			if ok != tt.wantOK || retry != tt.wantRetry {
				t.Fatalf("Check = %v, %v; want %v, %v", retry, ok, tt.wantRetry, tt.wantOK)
			}
			checkInvariants(t, th)
		})
	}
}

// TestRegain: after a lockout, one more failure is allowed per Every, and a
// full burst once the key has been quiet for Burst×Every.
func TestRegain(t *testing.T) {
	th := New(perMinute(3), 10)
	failAt(th, "k", times(3, 0)...)
	steps := []struct {
		at     time.Duration
		wantOK bool
		fails  int // failures recorded after the check
	}{
		{0, false, 0},
		{59 * time.Second, false, 0},
		{time.Minute, true, 1},
		{time.Minute, false, 0},
		{2 * time.Minute, true, 1},
		{2*time.Minute + time.Second, false, 0},
		{5 * time.Minute, true, 3}, // quiet for three minutes: full again
		{5 * time.Minute, false, 0},
	}
	for _, st := range steps {
		if _, ok := th.Check("k", t0().Add(st.at)); ok != st.wantOK {
			t.Fatalf("Check at +%v: ok = %v, want %v", st.at, ok, st.wantOK)
		}
		failAt(th, "k", times(st.fails, st.at)...)
	}
}

// TestRetryAfterContract: for many failure patterns, a client that waits
// exactly retryAfter is let in, and one that retries a second earlier is not.
func TestRetryAfterContract(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	intervals := []time.Duration{
		300 * time.Millisecond, time.Second, 7 * time.Second, time.Minute,
		90 * time.Second, 13*time.Minute + 7*time.Millisecond, time.Hour,
	}
	for i := range 2000 {
		l := Limits{Burst: 1 + rng.IntN(5), Every: intervals[rng.IntN(len(intervals))]}
		th := New(l, 1)
		now := t0()
		for range 1 + rng.IntN(12) {
			now = now.Add(time.Duration(rng.Int64N(int64(l.Every))))
			if _, ok := th.Check("k", now); ok {
				th.Fail("k", now)
			}
		}
		retry, ok := th.Check("k", now)
		if ok {
			continue
		}
		if retry < time.Second || retry%time.Second != 0 {
			t.Fatalf("case %d %+v: retryAfter %v is not a positive whole number of seconds", i, l, retry)
		}
		if _, ok := th.Check("k", now.Add(retry)); !ok {
			t.Fatalf("case %d %+v: refused after waiting retryAfter %v", i, l, retry)
		}
		if retry > time.Second {
			if _, ok := th.Check("k", now.Add(retry-time.Second)); ok {
				t.Fatalf("case %d %+v: allowed a second before retryAfter %v: not the smallest whole second", i, l, retry)
			}
		}
	}
}

func TestCheckDoesNotConsume(t *testing.T) {
	th := New(perMinute(3), 10)
	for i := range 1000 {
		if _, ok := th.Check("k", t0().Add(time.Duration(i)*time.Millisecond)); !ok {
			t.Fatalf("Check %d refused a key that never failed", i)
		}
	}
	if n := len(th.buckets); n != 0 {
		t.Fatalf("Check created %d buckets", n)
	}
	failAt(th, "k", 0, 0)
	for range 1000 {
		if _, ok := th.Check("k", t0()); !ok {
			t.Fatal("Check refused after Burst-1 failures")
		}
	}
	failAt(th, "k", 0)
	if _, ok := th.Check("k", t0()); ok {
		t.Fatal("Check allowed after Burst failures: earlier Checks must not have changed the bucket")
	}
}

func TestKeysIndependent(t *testing.T) {
	th := New(perMinute(2), 10)
	failAt(th, "user:alice", times(2, 0)...)
	failAt(th, "user:bob", 0)
	tests := []struct {
		key    string
		wantOK bool
	}{
		{"user:alice", false},
		{"user:bob", true},
		{"user:Alice", true},
		{"ip:192.0.2.7", true},
		{"user:alice ", true},
	}
	for _, tt := range tests {
		if _, ok := th.Check(tt.key, t0()); ok != tt.wantOK {
			t.Errorf("Check(%q) ok = %v, want %v", tt.key, ok, tt.wantOK)
		}
	}
	// bob's one failure still counts.
	failAt(th, "user:bob", 0)
	if _, ok := th.Check("user:bob", t0()); ok {
		t.Error("bob allowed after two failures")
	}
}

func TestReset(t *testing.T) {
	th := New(perMinute(2), 10)
	failAt(th, "user:alice", times(5, 0)...)
	failAt(th, "ip:192.0.2.7", times(2, 0)...)
	th.Reset("user:alice")
	th.Reset("user:nobody") // unknown keys are fine
	if _, ok := th.Check("user:alice", t0()); !ok {
		t.Fatal("alice refused after Reset")
	}
	if _, ok := th.Check("ip:192.0.2.7", t0()); ok {
		t.Fatal("Reset of one key unlocked another")
	}
	// A reset key starts again from a full burst, debt included.
	failAt(th, "user:alice", 0)
	if _, ok := th.Check("user:alice", t0()); !ok {
		t.Fatal("alice refused after one failure following Reset")
	}
	checkInvariants(t, th)
}

func TestEviction(t *testing.T) {
	s := time.Second
	type fail struct {
		key string
		at  time.Duration
		n   int
	}
	tests := []struct {
		name    string
		maxKeys int
		fails   []fail
		at      time.Duration // when to inspect
		kept    []string
		gone    []string
		locked  []string
	}{
		{
			name:    "full buckets dropped below capacity",
			maxKeys: 100,
			fails:   []fail{{"a", 0, 1}, {"b", 61 * s, 1}},
			at:      61 * s,
			kept:    []string{"b"},
			gone:    []string{"a"},
		},
		{
			name:    "full bucket goes before an older partial one",
			maxKeys: 2,
			// a: 2 failures at 0 (full at 120s); b: 1 failure at 10s (full at 70s).
			fails: []fail{{"a", 0, 2}, {"b", 10 * s, 1}, {"c", 80 * s, 1}},
			at:    80 * s,
			kept:  []string{"a", "c"},
			gone:  []string{"b"},
		},
		{
			name:    "unlocked bucket goes before an older locked one",
			maxKeys: 2,
			fails:   []fail{{"a", 0, 3}, {"b", 50 * s, 1}, {"c", 51 * s, 1}},
			at:      51 * s,
			kept:    []string{"a", "c"},
			gone:    []string{"b"},
			locked:  []string{"a"},
		},
		{
			name:    "all locked: the oldest lockout goes",
			maxKeys: 2,
			fails:   []fail{{"a", 0, 3}, {"b", 10 * s, 3}, {"c", 20 * s, 1}},
			at:      20 * s,
			kept:    []string{"b", "c"},
			gone:    []string{"a"},
			locked:  []string{"b"},
		},
		{
			name:    "all locked: the lockout ending soonest goes, not the first made",
			maxKeys: 2,
			// a is locked first but owes 6 minutes; b ends at 3m10s.
			fails:  []fail{{"a", 0, 6}, {"b", 10 * s, 3}, {"c", 20 * s, 1}},
			at:     20 * s,
			kept:   []string{"a", "c"},
			gone:   []string{"b"},
			locked: []string{"a"},
		},
		{
			name:    "capacity 1",
			maxKeys: 1,
			fails:   []fail{{"a", 0, 3}, {"b", 0, 1}},
			kept:    []string{"b"},
			gone:    []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := New(perMinute(3), tt.maxKeys)
			for _, f := range tt.fails {
				failAt(th, f.key, times(f.n, f.at)...)
			}
			checkInvariants(t, th)
			for _, k := range tt.kept {
				if th.buckets[k] == nil {
					t.Errorf("%q evicted, want kept", k)
				}
			}
			for _, k := range tt.gone {
				if th.buckets[k] != nil {
					t.Errorf("%q kept, want evicted", k)
				}
			}
			for _, k := range tt.locked {
				if _, ok := th.Check(k, t0().Add(tt.at)); ok {
					t.Errorf("%q allowed, want still locked", k)
				}
			}
		})
	}
}

// TestFloodOfKeys: 10k made-up keys cannot grow the Throttle past maxKeys nor
// push out a key that is locked.
func TestFloodOfKeys(t *testing.T) {
	const maxKeys = 100
	th := New(perMinute(3), maxKeys)
	failAt(th, "user:alice", times(3, 0)...)
	for i := range 10_000 {
		now := t0().Add(time.Duration(i) * time.Millisecond)
		key := fmt.Sprintf("user:flood-%d", i)
		if _, ok := th.Check(key, now); ok {
			th.Fail(key, now)
		}
		if i%1000 == 0 {
			checkInvariants(t, th)
		}
	}
	checkInvariants(t, th)
	if n := len(th.buckets); n != maxKeys {
		t.Fatalf("%d buckets, want exactly maxKeys %d", n, maxKeys)
	}
	retry, ok := th.Check("user:alice", t0().Add(10*time.Second))
	if ok || retry != 50*time.Second {
		t.Fatalf("alice after the flood: Check = %v, %v; want 50s, false", retry, ok)
	}
}

func TestConcurrentUse(t *testing.T) {
	const maxKeys = 50
	th := New(Limits{Burst: 3, Every: 100 * time.Millisecond}, maxKeys)
	var clock atomic.Int64 // milliseconds since t0, shared by all goroutines
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			for range 3000 {
				now := t0().Add(time.Duration(clock.Add(1)) * time.Millisecond)
				key := fmt.Sprintf("k%d", rng.IntN(200))
				switch rng.IntN(10) {
				case 0:
					th.Reset(key)
				case 1, 2, 3, 4:
					th.Fail(key, now)
				default:
					th.Check(key, now)
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, th)
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		l       Limits
		wantErr string // substring; "" for valid
	}{
		{Limits{Burst: 5, Every: time.Minute}, ""},
		{Limits{Burst: 1, Every: time.Nanosecond}, ""},
		{Limits{Burst: 0, Every: time.Minute}, "burst 0"},
		{Limits{Burst: -1, Every: time.Minute}, "burst -1"},
		{Limits{Burst: 5, Every: 0}, "every 0s"},
		{Limits{Burst: 5, Every: -time.Second}, "every -1s"},
		{Limits{}, "burst 0"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.l), func(t *testing.T) {
			err := tt.l.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewPanics(t *testing.T) {
	tests := []struct {
		name    string
		l       Limits
		maxKeys int
	}{
		{"zero limits", Limits{}, 10},
		{"zero every", Limits{Burst: 3}, 10},
		{"zero maxKeys", perMinute(3), 0},
		{"negative maxKeys", perMinute(3), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("New did not panic")
				}
			}()
			New(tt.l, tt.maxKeys)
		})
	}
}
