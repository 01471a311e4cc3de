// Package throttle slows down password guessing with one token bucket per key:
// each login attempt reserves a token before the password is verified, a
// failed attempt keeps it, tokens come back at a fixed rate, and a key with
// no token left is refused — without verifying anything — until one returns.
//
// Reserving before verifying is what makes the limit hold under concurrency:
// N simultaneous guesses against one key can take at most Burst tokens, so at
// most Burst of them reach the expensive (and answer-revealing) verification;
// the rest are refused. A refused attempt takes nothing, so there is no debt:
// however many attempts arrive while a key is empty, it is full again
// Burst×Every after its last reserved attempt, and one attempt is allowed
// again after Every.
//
// A login handler typically keeps two Throttles, one keyed by account and one
// by client address, because they need different limits (many users can share
// one NAT address) and because separate capacities mean a flood of addresses
// cannot crowd out account buckets:
//
//	now := clock.Now()
//	if wait, ok := users.Reserve(accountKey, now); !ok { return tooMany(wait) }
//	if wait, ok := ips.Reserve(ipKey, now); !ok { users.Release(accountKey, now); return tooMany(wait) }
//	if !verified { // wrong password or unknown user alike, so lockouts do not reveal which accounts exist
//		return invalidCredentials() // both tokens stay taken
//	}
//	users.Reset(accountKey)  // the owner starts afresh
//	ips.Release(ipKey, now)  // a success costs the address nothing; see Reset
//
// Keys are stored as their SHA-256 digest, so a key's length (an attacker's
// 60 KB user name) does not change what a bucket costs.
package throttle

import (
	"container/heap"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
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
// Making room for a new key must never reset a key that is (partly) locked
// out: otherwise an attacker could unlock an account by sending attempts for
// maxKeys made-up names, or alternate a few guesses at the victim with a
// flood. Throttle therefore only ever drops buckets that are full again —
// a full bucket behaves exactly like no bucket, so dropping it loses nothing —
// and drops them as soon as they are full, on every Reserve. When the map is
// at maxKeys and no bucket is full, a new key is refused (treated as
// throttled, with the wait until the first bucket is full again) rather than
// admitted at the expense of another key. This is the conservative choice: a
// flood of maxKeys distinct keys within a refill period can delay the first
// attempt of keys not yet seen, but can never buy the attacker an extra guess
// at a key that is. Keys already present are never affected by the cap.
type Throttle struct {
	limits  Limits
	maxKeys int

	mu      sync.Mutex
	buckets map[digest]*bucket
	byFull  fullHeap // the same buckets, the one full soonest first
}

// digest is the fixed-size form of a key.
type digest [sha256.Size]byte

type bucket struct {
	key    digest
	tokens float64   // available at at, in [0, Burst]
	at     time.Time // when tokens was computed; never moves backwards
	fullAt time.Time // when tokens reaches Burst without further reservations
	index  int       // position in Throttle.byFull
}

// New returns a Throttle that applies l to every key and keeps at most
// maxKeys buckets. Each bucket costs on the order of 150 bytes whatever the
// key, so even a million keys stay within a few hundred megabytes.
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
		buckets: make(map[digest]*bucket),
	}
}

// tolerance is how many tokens short of one still count as one. The refill
// is computed in floating point, so a key that waits exactly the Retry-After
// it was given could otherwise find itself a rounding error (~1e-16 tokens)
// short and be refused again. A billionth of a token is far above that error
// and far below anything an attacker could use: Every/1e9 of extra time.
const tolerance = 1e-9

// Reserve takes one token from key's bucket at now, atomically, if it has
// one: call it before verifying a password, and verify only when ok. A
// failed attempt keeps the token; a successful one gives it back with Release
// or Reset. When the bucket is empty nothing is taken (no debt) and
// retryAfter is the time until one token is back, rounded up to whole
// seconds and at least 1 s, ready for a Retry-After header; it is 0 when ok.
func (t *Throttle) Reserve(key string, now time.Time) (retryAfter time.Duration, ok bool) {
	k := sha256.Sum256([]byte(key))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneFull(now)
	b := t.buckets[k]
	if b == nil {
		if len(t.buckets) >= t.maxKeys {
			// Every bucket still holds information (pruneFull dropped the
			// full ones): refuse rather than evict; see Throttle.
			return roundUp(t.byFull[0].fullAt.Sub(now)), false
		}
		b = &bucket{key: k, tokens: float64(t.limits.Burst), at: now}
		t.buckets[k] = b
		heap.Push(&t.byFull, b)
	}
	t.refill(b, now)
	if b.tokens < 1-tolerance {
		return roundUp(t.wait(1 - tolerance - b.tokens)), false
	}
	b.tokens = max(0, b.tokens-1)
	t.update(b)
	return 0, true
}

// Release gives back one token reserved for key, for an attempt that turned
// out not to be a failure (or never reached verification). The bucket never
// holds more than Burst. A key without a bucket is already full: nothing to do.
func (t *Throttle) Release(key string, now time.Time) {
	k := sha256.Sum256([]byte(key))
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buckets[k]
	if b == nil {
		return
	}
	t.refill(b, now)
	b.tokens = min(float64(t.limits.Burst), b.tokens+1)
	t.update(b)
	if !b.fullAt.After(b.at) {
		t.remove(b)
	}
}

// Reset forgets key's failures, as if it had none. Call it after a successful
// login for the per-account key: the legitimate user should not carry the
// failures of earlier typos (or of an attacker) into their next session, and
// only someone who knows the password can trigger it. Do not call it for a
// per-address key (use Release): an attacker could then log into an account
// of their own between guesses at other accounts and never run out of tokens.
func (t *Throttle) Reset(key string) {
	k := sha256.Sum256([]byte(key))
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.buckets[k]; b != nil {
		t.remove(b)
	}
}

// refill brings b's tokens forward to now. A clock that stepped backwards
// adds nothing and does not move b.at back.
func (t *Throttle) refill(b *bucket, now time.Time) {
	if !now.After(b.at) {
		return
	}
	gained := float64(now.Sub(b.at)) / float64(t.limits.Every)
	b.tokens = min(float64(t.limits.Burst), b.tokens+gained)
	b.at = now
}

// update recomputes b.fullAt after its tokens changed.
func (t *Throttle) update(b *bucket) {
	b.fullAt = b.at.Add(t.wait(float64(t.limits.Burst) - b.tokens))
	heap.Fix(&t.byFull, b.index)
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

// ceiling is "practically never" (~146 years), the largest wait reported.
const ceiling = time.Duration(math.MaxInt64 / 2)

// wait converts a number of tokens into the time it takes to regain them,
// rounded up to the nanosecond.
func (t *Throttle) wait(tokens float64) time.Duration {
	ns := math.Ceil(tokens * float64(t.limits.Every))
	if ns >= float64(ceiling) {
		return ceiling
	}
	return time.Duration(max(0, ns))
}

// roundUp rounds d up to whole seconds, at least one.
func roundUp(d time.Duration) time.Duration {
	if d >= ceiling {
		return ceiling
	}
	return max((d+time.Second-1)/time.Second*time.Second, time.Second)
}

// fullHeap orders buckets by fullAt, earliest first.
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
