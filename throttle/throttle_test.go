package throttle

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is an arbitrary instant with a sub-second part, so that nothing depends
// on attempts falling on whole seconds.
func t0() time.Time { return time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC) }

func perMinute(burst int) Limits { return Limits{Burst: burst, Every: time.Minute} }

// reserveAt reserves for key at each offset from t0 and returns how many
// reservations succeeded.
func reserveAt(th *Throttle, key string, offsets ...time.Duration) int {
	n := 0
	for _, off := range offsets {
		if _, ok := th.Reserve(key, t0().Add(off)); ok {
			n++
		}
	}
	return n
}

// times returns n copies of off: n attempts at the same instant.
func times(n int, off time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = off
	}
	return out
}

func has(th *Throttle, key string) bool {
	th.mu.Lock()
	defer th.mu.Unlock()
	return th.buckets[sha256.Sum256([]byte(key))] != nil
}

// checkInvariants verifies the map and the heap describe the same buckets,
// the capacity bound holds and no bucket is in debt or overfull.
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
			t.Fatalf("heap slot %d holds %x with index %d", i, b.key, b.index)
		}
		if i > 0 && th.byFull[(i-1)/2].fullAt.After(b.fullAt) {
			t.Fatalf("heap order broken at slot %d", i)
		}
		if b.tokens < 0 || b.tokens > float64(th.limits.Burst) {
			t.Fatalf("bucket %x holds %v tokens, outside [0, %d]", b.key, b.tokens, th.limits.Burst)
		}
	}
}

// TestReserve: the table of Reserve's answers after earlier reservations.
// The "no debt" rows fail on the old Check/Fail throttle, which kept every
// failure taken while empty as debt (attack 4: cheap, long lockouts).
func TestReserve(t *testing.T) {
	s := time.Second
	tests := []struct {
		name      string
		limits    Limits
		before    []time.Duration // earlier Reserves, offsets from t0
		at        time.Duration   // Reserve at t0+at
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
		{"spread attempts", perMinute(3), []time.Duration{0, 20 * s, 40 * s}, 40 * s, false, 20 * s},
		{"regained token spent", perMinute(3), append(times(3, 0), time.Minute), time.Minute, false, 60 * s},
		{"no debt: refused attempts take nothing", perMinute(3), times(120, 0), 0, false, 60 * s},
		{"no debt: one token back after Every", perMinute(3), times(120, 0), time.Minute, true, 0},
		{"no debt: refusals while empty do not push the refill out", perMinute(3), append(times(3, 0), times(50, 30*s)...), time.Minute, true, 0},
		{"burst 1", perMinute(1), times(1, 0), time.Millisecond, false, 60 * s},
		{"odd interval", Limits{Burst: 2, Every: 90 * s}, times(2, 0), time.Millisecond, false, 90 * s},
		{"sub-second interval", Limits{Burst: 2, Every: 300 * time.Millisecond}, times(2, 0), 0, false, 1 * s},
		{"long interval", Limits{Burst: 5, Every: 24 * time.Hour}, times(5, 0), time.Hour, false, 23 * time.Hour},
		{"clock stepped back", perMinute(3), times(3, 0), -time.Hour, false, 60 * s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := New(tt.limits, 10)
			reserveAt(th, "user:alice", tt.before...)
			retry, ok := th.Reserve("user:alice", t0().Add(tt.at))
			if ok != tt.wantOK || retry != tt.wantRetry {
				t.Fatalf("Reserve = %v, %v; want %v, %v", retry, ok, tt.wantRetry, tt.wantOK)
			}
			checkInvariants(t, th)
		})
	}
}

// TestReserveUnderConcurrencyAtMostBurst (attack 1: concurrent guesses beat
// a check-then-fail throttle): 40 goroutines reserving one key at one instant
// get exactly Burst tokens.
func TestReserveUnderConcurrencyAtMostBurst(t *testing.T) {
	th := New(perMinute(5), 100)
	var got atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 40 {
		wg.Go(func() {
			<-start
			if _, ok := th.Reserve("user:alice", t0()); ok {
				got.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := got.Load(); n != 5 {
		t.Fatalf("%d of 40 concurrent reservations succeeded, want exactly Burst 5", n)
	}
	checkInvariants(t, th)
}

// TestLockoutBoundedAfterBurst (attack 4): after 120 attempts in one burst,
// the key regains one attempt after Every and all of them after Burst×Every.
func TestLockoutBoundedAfterBurst(t *testing.T) {
	l := perMinute(5)
	th := New(l, 100)
	if n := reserveAt(th, "k", times(120, 0)...); n != 5 {
		t.Fatalf("%d of 120 reservations succeeded, want 5", n)
	}
	if retry, ok := th.Reserve("k", t0()); ok || retry != l.Every {
		t.Fatalf("locked key: Reserve = %v, %v; want %v, false", retry, ok, l.Every)
	}
	if n := reserveAt(th, "k", times(5, time.Duration(l.Burst)*l.Every)...); n != 5 {
		t.Fatalf("after Burst×Every, %d of 5 reservations succeeded, want all", n)
	}
}

// TestRelease: a released token comes back, never beyond Burst.
func TestRelease(t *testing.T) {
	tests := []struct {
		name     string
		reserve  int // reservations at t0
		release  int // releases at t0
		wantOK   int // of 10 further reservations at t0
		wantGone bool
	}{
		{"release one of three", 3, 1, 1, false},
		{"release all", 3, 3, 3, true},
		{"release more than reserved", 1, 5, 3, true},
		{"release unknown key", 0, 1, 3, true},
		{"release refused ones does not mint tokens", 10, 3, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := New(perMinute(3), 10)
			reserveAt(th, "k", times(tt.reserve, 0)...)
			for range tt.release {
				th.Release("k", t0())
			}
			if gone := !has(th, "k"); gone != tt.wantGone {
				t.Errorf("bucket dropped = %v, want %v (a full bucket is dropped)", gone, tt.wantGone)
			}
			checkInvariants(t, th)
			if n := reserveAt(th, "k", times(10, 0)...); n != tt.wantOK {
				t.Fatalf("%d further reservations succeeded, want %d", n, tt.wantOK)
			}
		})
	}
}

// TestRetryAfterContract: for many attempt patterns, a client that waits
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
			th.Reserve("k", now)
		}
		retry, ok := th.Reserve("k", now)
		if ok {
			continue
		}
		if retry < time.Second || retry%time.Second != 0 {
			t.Fatalf("case %d %+v: retryAfter %v is not a positive whole number of seconds", i, l, retry)
		}
		if retry > time.Second {
			if _, ok := th.Reserve("k", now.Add(retry-time.Second)); ok {
				t.Fatalf("case %d %+v: allowed a second before retryAfter %v: not the smallest whole second", i, l, retry)
			}
		}
		if _, ok := th.Reserve("k", now.Add(retry)); !ok {
			t.Fatalf("case %d %+v: refused after waiting retryAfter %v", i, l, retry)
		}
	}
}

func TestKeysIndependent(t *testing.T) {
	th := New(perMinute(2), 10)
	reserveAt(th, "user:alice", times(2, 0)...)
	reserveAt(th, "user:bob", 0)
	tests := []struct {
		key    string
		wantOK bool
	}{
		{"user:alice", false},
		{"user:bob", true}, // takes bob's second token
		{"user:bob", false},
		{"user:Alice", true},
		{"ip:192.0.2.7", true},
	}
	for _, tt := range tests {
		if _, ok := th.Reserve(tt.key, t0()); ok != tt.wantOK {
			t.Errorf("Reserve(%q) ok = %v, want %v", tt.key, ok, tt.wantOK)
		}
	}
}

func TestReset(t *testing.T) {
	th := New(perMinute(2), 10)
	reserveAt(th, "user:alice", times(5, 0)...)
	reserveAt(th, "ip:192.0.2.7", times(2, 0)...)
	th.Reset("user:alice")
	th.Reset("user:nobody") // unknown keys are fine
	if n := reserveAt(th, "user:alice", times(3, 0)...); n != 2 {
		t.Fatalf("alice got %d reservations after Reset, want a full burst of 2", n)
	}
	if _, ok := th.Reserve("ip:192.0.2.7", t0()); ok {
		t.Fatal("Reset of one key unlocked another")
	}
	checkInvariants(t, th)
}

// TestFullBucketsDropped: a bucket that is full again carries no information
// and is dropped on the next Reserve, whatever the key.
func TestFullBucketsDropped(t *testing.T) {
	th := New(perMinute(3), 100)
	reserveAt(th, "a", 0)
	reserveAt(th, "b", 3*time.Minute) // a refilled at t0+1m
	if has(th, "a") || !has(th, "b") {
		t.Fatalf("a kept = %v, b kept = %v; want a dropped, b kept", has(th, "a"), has(th, "b"))
	}
	checkInvariants(t, th)
}

// TestFloodCannotFlushLockout (attack: evicting a victim's bucket to reset
// its lockout): when the map is full of buckets that are not full, new keys
// are refused instead of evicting anyone, so the victim stays locked, and
// keys already present keep working.
func TestFloodCannotFlushLockout(t *testing.T) {
	const maxKeys = 100
	th := New(perMinute(3), maxKeys)
	reserveAt(th, "user:alice", times(3, 0)...) // locked out
	reserveAt(th, "user:bob", times(2, 0)...)   // partly used
	reserveAt(th, "user:carol", times(1, 0)...) // nearly full
	for i := range 10_000 {
		now := t0().Add(time.Duration(i) * time.Millisecond) // 10 s: nothing refills
		th.Reserve(fmt.Sprintf("user:flood-%d", i), now)
	}
	checkInvariants(t, th)
	if n := len(th.buckets); n != maxKeys {
		t.Fatalf("%d buckets, want exactly maxKeys %d", n, maxKeys)
	}
	at := t0().Add(10 * time.Second)
	if retry, ok := th.Reserve("user:alice", at); ok || retry != 50*time.Second {
		t.Fatalf("alice after the flood: Reserve = %v, %v; want 50s, false", retry, ok)
	}
	if n := reserveAt(th, "user:bob", times(2, 10*time.Second)...); n != 1 {
		t.Fatalf("bob got %d reservations after the flood, want the 1 he had left", n)
	}
	if n := reserveAt(th, "user:carol", times(3, 10*time.Second)...); n != 2 {
		t.Fatalf("carol got %d reservations after the flood, want the 2 she had left", n)
	}
	// A new key is refused until the first bucket is full again (carol's
	// was at 0 with one token short: full at +1m).
	if retry, ok := th.Reserve("user:dave", at); ok || retry <= 0 {
		t.Fatalf("new key with the map full: Reserve = %v, %v; want refused", retry, ok)
	}
	if _, ok := th.Reserve("user:dave", t0().Add(4*time.Minute)); !ok {
		t.Fatal("new key still refused once every bucket had refilled")
	}
	checkInvariants(t, th)
}

// TestHugeKeysCostFixedMemory (attack 3: 60 KB user names as throttle keys):
// buckets keep a digest, not the key.
func TestHugeKeysCostFixedMemory(t *testing.T) {
	th := New(perMinute(3), 10_000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 1000 {
		th.Reserve(fmt.Sprintf("%d:%s", i, strings.Repeat("x", 60<<10)), t0())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := len(th.buckets); n != 1000 {
		t.Fatalf("%d buckets, want 1000", n)
	}
	// 1000 retained 60 KB keys would be 60 MB; digests are a few hundred KB.
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 10<<20 {
		t.Fatalf("heap grew by %d bytes for 1000 buckets: keys are retained", grown)
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
				case 1, 2:
					th.Release(key, now)
				default:
					th.Reserve(key, now)
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

// TestFloodDistinctAttackerKeysHeap sends 100k distinct attacker-chosen keys
// (unknown logins of 256 bytes) through one throttle at one instant and
// reports the heap growth; it fails only if the map outgrows its cap or the
// heap grows past what the cap allows, so removing either bound fails it.
// Figures: go test -count=1 -run TestFloodDistinctAttackerKeysHeap -v ./throttle/
func TestFloodDistinctAttackerKeysHeap(t *testing.T) {
	const maxKeys, n = 10_000, 100_000
	th := New(perMinute(5), maxKeys)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	suffix := strings.Repeat("x", 250)
	refused := 0
	for i := range n {
		if _, ok := th.Reserve(fmt.Sprintf("%06d%s", i, suffix), t0()); !ok {
			refused++
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d distinct keys: %d buckets kept (cap %d), %d refused, heap grew %.2f MiB",
		n, len(th.buckets), maxKeys, refused, float64(grown)/(1<<20))
	if len(th.buckets) > maxKeys {
		t.Fatalf("%d buckets, cap %d", len(th.buckets), maxKeys)
	}
	if grown > maxKeys*1024 { // ~150 bytes a bucket; 1 KiB each is generous
		t.Fatalf("heap grew %d bytes for at most %d buckets", grown, maxKeys)
	}
}

func TestNetworkKey(t *testing.T) {
	cases := []struct{ in, want string }{
		{"198.51.100.7", "198.51.100.7"},
		{"::ffff:198.51.100.7", "198.51.100.7"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not an address", "not an address"},
		{"", ""},
	}
	for _, c := range cases {
		if got := NetworkKey(c.in); got != c.want {
			t.Errorf("NetworkKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
