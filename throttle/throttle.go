// Package throttle slows down password guessing with one token bucket per key:
// each failed login takes a token, tokens come back at a fixed rate, and a key
// with no token left is refused until one returns.
//
// A login handler typically keeps two Throttles, one keyed by account
// ("user:alice") and one by client address ("ip:192.0.2.7"), because they need
// different limits (many users can share one NAT address) and because separate
// capacities mean a flood of addresses cannot push account lockouts out:
//
//	now := clock.Now()
//	if wait, ok := users.Check("user:"+name, now); !ok { return tooMany(wait) }
//	if wait, ok := ips.Check("ip:"+addr, now); !ok { return tooMany(wait) }
//	if !verified { // wrong password or unknown user alike, so lockouts do not reveal which accounts exist
//		users.Fail("user:"+name, now)
//		ips.Fail("ip:"+addr, now)
//		return invalidCredentials()
//	}
//	users.Reset("user:" + name) // not ips: see Reset
//
// The buckets are golang.org/x/time/rate Limiters rather than hand-written
// arithmetic: rate handles fractional refill, clocks that step backwards and
// overflow on long durations, is widely used and tested, and takes the time
// as an argument (TokensAt, ReserveN), so callers inject their clock and
// tests need no sleeps.
package throttle

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits says how many failures a key may have: Burst failures at once, and
// one more regained every Every. With Burst 5 and Every 1 minute, five wrong
// passwords in a row lock the key for a minute, after which it gets one guess
// per minute until it has been quiet for five.
type Limits struct {
	// Burst is the number of failures allowed in a row; at least 1.
	Burst int
	// Every is how long it takes to regain one failure; more than 0.
	Every time.Duration
}

// Validate reports whether l can be used. New panics on invalid Limits, so
// configuration loaders should call Validate first to report a bad setting as
// an error.
func (l Limits) Validate() error {
	var errs []error
	if l.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst %d is less than 1", l.Burst))
	}
	if l.Every <= 0 {
		errs = append(errs, fmt.Errorf("every %v is not positive", l.Every))
	}
	return errors.Join(errs...)
}

// Throttle holds one token bucket per key, at most maxKeys of them, so that a
// flood of distinct keys (random user names, a block of IPv6 addresses) costs
// bounded memory. It is safe for concurrent use.
//
// Which bucket makes room for a new key matters: evicting a locked-out key
// would reset its lockout, so an attacker could unlock an account by sending
// failures for maxKeys made-up names. Throttle therefore evicts in this order:
//
//  1. Buckets that are full again. A full bucket behaves exactly like no
//     bucket at all, so it carries no information; these are dropped on every
//     Fail, not only at capacity.
//  2. Otherwise the unlocked bucket closest to full (least information lost).
//  3. Only when every bucket is locked out, the one whose lockout ends
//     soonest: normally the oldest lockout, unless a later one owes less
//     (see Fail), and in any case the one nearest to expiring anyway.
//
// All three are "the bucket that will be full first", since a locked bucket
// is always further from full than an unlocked one; a heap ordered by that
// instant makes each eviction O(log maxKeys). Flooding new keys thus only
// churns through the flood's own one-failure buckets, and a locked key stays
// locked unless the attacker locks maxKeys other keys (Burst verified
// failures each) whose lockouts all outlast it.
type Throttle struct {
	limits  Limits
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*bucket
	byFull  fullHeap // the same buckets, the one full soonest first
}

type bucket struct {
	key    string
	lim    *rate.Limiter
	fullAt time.Time // when lim is full again if no further failure; changes only in Fail
	index  int       // position in Throttle.byFull
}

// New returns a Throttle that applies l to every key and keeps at most
// maxKeys buckets. Each bucket costs on the order of 200 bytes plus its key,
// so even a million keys stay within a few hundred megabytes.
//
// New panics if l is invalid (see Limits.Validate) or maxKeys is less than 1:
// a server without working login throttling must not start.
func New(l Limits, maxKeys int) *Throttle {
	if err := l.Validate(); err != nil {
		panic("throttle: New: invalid limits: " + err.Error())
	}
	if maxKeys < 1 {
		panic(fmt.Sprintf("throttle: New: maxKeys must be at least 1, got %d", maxKeys))
	}
	return &Throttle{
		limits:  l,
		maxKeys: maxKeys,
		buckets: make(map[string]*bucket),
	}
}

// Check reports whether key may attempt a login at now: ok is false while its
// bucket holds less than one token. retryAfter is then the time until one
// token is back, rounded up to whole seconds and at least 1 s, ready for a
// Retry-After header; it is 0 when ok. Check never consumes a token, so
// checking before verifying a password costs the key nothing; only Fail does.
func (t *Throttle) Check(key string, now time.Time) (retryAfter time.Duration, ok bool) {
	t.mu.Lock()
	b := t.buckets[key]
	var tokens float64
	if b != nil {
		tokens = b.lim.TokensAt(now)
	}
	t.mu.Unlock()
	if b == nil || tokens >= 1-tolerance {
		return 0, true
	}
	return t.wait(1-tolerance-tokens, time.Second), false
}

// tolerance is how many tokens short of one still count as one. The limiter
// refills in floating point, so a key that waits exactly the Retry-After it
// was given could otherwise find itself a rounding error (~1e-16 tokens) short
// and be refused again. A billionth of a token is far above that error and far
// below anything an attacker could use: Every/1e9 of extra time.
const tolerance = 1e-9

// Fail records a failed attempt for key at now by taking one token from its
// bucket. The token is taken even when the bucket is already empty, leaving it
// in debt: guesses that passed Check together, before any of them failed, are
// each paid for with a later lockout, instead of being free. Call Fail only
// for attempts that were actually verified (Check returned ok), so that the
// debt stays bounded by the attempts in flight at once.
func (t *Throttle) Fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneFull(now)
	b := t.buckets[key]
	if b == nil {
		if len(t.buckets) >= t.maxKeys {
			t.remove(t.byFull[0])
		}
		b = &bucket{key: key, lim: rate.NewLimiter(rate.Every(t.limits.Every), t.limits.Burst)}
		t.buckets[key] = b
		heap.Push(&t.byFull, b)
	}
	b.lim.ReserveN(now, 1) // Burst >= 1, so the reservation always succeeds
	b.fullAt = now.Add(t.wait(float64(t.limits.Burst)-b.lim.TokensAt(now), 0))
	heap.Fix(&t.byFull, b.index)
}

// Reset forgets key's failures, as if it had none. Call it after a successful
// login for the per-account key: the legitimate user should not carry the
// failures of earlier typos (or of an attacker) into their next session, and
// only someone who knows the password can trigger it. Do not call it for a
// per-address key: an attacker could then log into an account of their own
// between guesses at other accounts and never run out of tokens.
func (t *Throttle) Reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.buckets[key]; b != nil {
		t.remove(b)
	}
}

// pruneFull drops the buckets that are full again at now.
func (t *Throttle) pruneFull(now time.Time) {
	for len(t.byFull) > 0 && !t.byFull[0].fullAt.After(now) {
		t.remove(t.byFull[0])
	}
}

func (t *Throttle) remove(b *bucket) {
	heap.Remove(&t.byFull, b.index)
	delete(t.buckets, b.key)
}

// wait converts a number of tokens into the time it takes to regain them,
// rounded up to the nanosecond and, unless unit is 0, to a multiple of unit
// that is at least unit.
func (t *Throttle) wait(tokens float64, unit time.Duration) time.Duration {
	const ceiling = time.Duration(math.MaxInt64 / 2) // ~146 years: "practically never"
	ns := math.Ceil(tokens * float64(t.limits.Every))
	if ns >= float64(ceiling) {
		return ceiling
	}
	d := time.Duration(ns)
	if unit > 0 {
		d = max((d+unit-1)/unit*unit, unit)
	}
	return d
}

// fullHeap orders buckets by fullAt, earliest first; see Throttle on why this
// is also the eviction order.
type fullHeap []*bucket

func (h fullHeap) Len() int           { return len(h) }
func (h fullHeap) Less(i, j int) bool { return h[i].fullAt.Before(h[j].fullAt) }
func (h fullHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *fullHeap) Push(x any) {
	b := x.(*bucket)
	b.index = len(*h)
	*h = append(*h, b)
}

func (h *fullHeap) Pop() any {
	old := *h
	b := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	b.index = -1
	return b
}
