package jwks

import (
	"container/heap"
	"crypto/sha256"
	"strings"
	"sync"
	"time"
)

// DefaultDPoPReplayCacheSize is how many DPoP proofs Middleware remembers at
// most when MiddlewareConfig.DPoPReplayCacheSize is zero: 100 000 entries of
// about 100 bytes, some 10 MB, which is 1 600 requests a second sustained
// over the default 60 s window (each entry lives until its proof's iat plus
// the window).
const DefaultDPoPReplayCacheSize = 100_000

// replayCache remembers the proofs a middleware has accepted until they
// expire, so that each is accepted once (RFC 9449 §11.1). It has a hard
// bound: when it is full of proofs that could still be replayed, it refuses
// new ones (the middleware answers 503) rather than evict any, since
// evicting a live entry would let whoever floods the cache replay a proof
// captured before. Filling it takes valid tokens with their own fresh
// proofs, as the token and the proof are verified before a proof is
// recorded.
//
// Entries expire in their own order (iat differs from proof to proof), so
// they sit in a min-heap on expiry beside the set: each add first drops
// the expired ones from the top, in O(log n) each.
type replayCache struct {
	mu   sync.Mutex
	max  int
	seen map[replayKey]struct{}
	exp  expiryHeap
}

// replayKey is a SHA-256 of the proof key's thumbprint and the jti: a fixed
// 32 bytes per entry whatever the jti, and one client's jti cannot collide
// with another's.
type replayKey [sha256.Size]byte

type replayEntry struct {
	expires time.Time
	key     replayKey
}

// expiryHeap is a container/heap of entries, soonest expiry on top.
type expiryHeap []replayEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(replayEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, seen: make(map[replayKey]struct{})}
}

// Outcomes of replayCache.add.
const (
	proofFresh     = iota // recorded: the first time this proof is seen
	proofReplayed         // seen before and not yet expired
	proofCacheFull        // not recorded: max live entries already
)

// add records the proof (jkt, jti) as seen until expires, at now.
func (rc *replayCache) add(jkt, jti string, expires, now time.Time) int {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var k replayKey
	h.Sum(k[:0])
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for len(rc.exp) > 0 && rc.exp[0].expires.Before(now) {
		delete(rc.seen, heap.Pop(&rc.exp).(replayEntry).key)
	}
	if _, dup := rc.seen[k]; dup {
		return proofReplayed
	}
	if len(rc.seen) >= rc.max {
		return proofCacheFull
	}
	rc.seen[k] = struct{}{}
	heap.Push(&rc.exp, replayEntry{expires: expires, key: k})
	return proofFresh
}

// len is the number of entries held, expired or not.
func (rc *replayCache) len() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.seen)
}

// dpopKeyCacheSize bounds a middleware's cache of proof header keys: a
// few hundred bytes each, and a busy API sees far fewer client keys within
// minutes than this.
const dpopKeyCacheSize = 1024

// dpopKeyCache maps the header segment of proofs that verified to the key
// parsed from it (see verifyDPoPProof). It holds at most max entries; when
// full it is emptied and refilled, so its memory is bounded whatever the
// clients do, and at worst keys are parsed again. A nil cache caches
// nothing.
type dpopKeyCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*dpopKey
}

func newDPoPKeyCache(max int) *dpopKeyCache {
	return &dpopKeyCache{max: max, m: make(map[string]*dpopKey)}
}

func (c *dpopKeyCache) get(seg string) *dpopKey {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[seg]
}

func (c *dpopKeyCache) put(seg string, k *dpopKey) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[seg]; ok {
		return
	}
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[strings.Clone(seg)] = k
}
