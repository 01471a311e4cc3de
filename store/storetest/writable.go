package storetest

import (
	"sync"
	"testing"

	"github.com/keygate/keygate/store"
)

// testCheckWritable checks the readiness write probe: it succeeds, again and
// again, from several processes sharing the database at once, leaves the key
// set (and its version) alone, and fails once the store is closed.
func testCheckWritable(t *testing.T, stores []store.Store) {
	ctx := t.Context()
	v0, err := stores[0].KeySetVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, s := range stores {
		for range 4 {
			wg.Go(func() {
				for range 5 {
					if err := s.CheckWritable(ctx); err != nil {
						t.Errorf("CheckWritable: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if v, err := stores[1].KeySetVersion(ctx); err != nil || v != v0 {
		t.Errorf("key-set version %d (%v) after write checks, want %d: the probe must touch nothing else", v, err, v0)
	}
	if keys, err := stores[1].ListKeys(ctx); err != nil || len(keys) != 0 {
		t.Errorf("keys after write checks: %v %v, want none", keys, err)
	}
	if err := stores[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := stores[0].CheckWritable(ctx); err == nil {
		t.Error("CheckWritable on a closed store succeeded")
	}
	if err := stores[1].CheckWritable(ctx); err != nil {
		t.Errorf("CheckWritable on the other store after one closed: %v", err)
	}
}
