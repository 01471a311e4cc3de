package jwks

import (
	"strconv"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/stampede"
)

// TestDPoPCachesBounded fills the replay cache and the key cache from many
// goroutines with more distinct entries than they hold: neither grows past
// its bound, the replay cache refuses rather than evicts live entries, and
// expired entries make room.
func TestDPoPCachesBounded(t *testing.T) {
	const max, n = 64, 1000
	now := time.Unix(1_700_000_000, 0)
	rc := newReplayCache(max)
	outcomes := stampede.Run(n, func(i int) int {
		return rc.add("jkt", strconv.Itoa(i), now.Add(time.Minute), now)
	})
	fresh := 0
	for _, o := range outcomes {
		if o == proofFresh {
			fresh++
		}
	}
	if fresh != max || rc.len() != max {
		t.Fatalf("%d fresh, %d held; want exactly %d", fresh, rc.len(), max)
	}
	if got := rc.add("jkt", "new", now.Add(time.Minute), now.Add(time.Minute)); got != proofCacheFull {
		t.Fatalf("at the expiry instant: %d, want full (the entries are still live)", got)
	}
	if got := rc.add("jkt", "new", now.Add(3*time.Minute), now.Add(time.Minute+time.Nanosecond)); got != proofFresh || rc.len() != 1 {
		t.Fatalf("after expiry: %d with %d held, want fresh with 1", got, rc.len())
	}

	kc := newDPoPKeyCache(max)
	stampede.Run(n, func(i int) bool {
		kc.put("seg"+strconv.Itoa(i), &dpopKey{})
		return true
	})
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if len(kc.m) > max || len(kc.m) == 0 {
		t.Fatalf("key cache holds %d, bound %d", len(kc.m), max)
	}
}
