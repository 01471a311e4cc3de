package idp

import (
	"context"
	"sync"
	"time"
)

// Client records from the store are cached, because every token request
// looks its client up. A store that can say cheaply whether any client has
// changed, by any process, (ClientsVersion: SQLite and PostgreSQL count
// every write to clients with a trigger) gets a cache; another store is read
// on every lookup.
//
// The rule: the directory reads the version at most once per
// ClientCheckInterval (default 1 s), on the first lookup after the interval
// has passed, and empties the cache when it changed. So a client write
// committed at time T by anyone (this process, a replica, the CLI on the same
// SQLite file) is seen by every lookup that starts at T+ClientCheckInterval or
// later on the directory's clock; writes through this Directory are seen at
// once. Unknown clients and errors are not cached. At most ClientCacheSize
// (default 4096) clients are kept; beyond that an arbitrary one is dropped.

// clientsVersioner is the store part the cache needs.
type clientsVersioner interface {
	ClientsVersion(ctx context.Context) (int64, error)
}

const (
	defaultClientCacheSize     = 4096
	DefaultClientCheckInterval = time.Second // the bound on other processes' client writes going unseen
)

type clientCache struct {
	src   clientsVersioner
	max   int
	every time.Duration

	mu      sync.Mutex
	m       map[string]*Client
	gen     uint64 // bumped by every invalidation: loads begun before one are not kept
	version int64
	checked time.Time // when the version was last read; zero: never
}

func newClientCache(src clientsVersioner, max int, every time.Duration) *clientCache {
	if max == 0 {
		max = defaultClientCacheSize
	}
	if every <= 0 {
		every = DefaultClientCheckInterval
	}
	return &clientCache{src: src, max: max, every: every, m: make(map[string]*Client)}
}

// get returns the cached client id, or the generation a load of it from the
// store must hand put. The version is checked first when it is due; while it
// cannot be read, nothing is served from the cache.
func (cc *clientCache) get(ctx context.Context, id string, now time.Time) (*Client, uint64, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.checked.IsZero() || now.Sub(cc.checked) >= cc.every || now.Before(cc.checked) {
		// Under the lock: the one read a second is short, and no lookup
		// may be served from entries the read is about to empty.
		v, err := cc.src.ClientsVersion(ctx)
		if err != nil {
			cc.clearLocked()
			cc.checked = time.Time{}
			return nil, cc.gen, false
		}
		if v != cc.version || cc.checked.IsZero() {
			cc.clearLocked()
			cc.version = v
		}
		cc.checked = now
	}
	c, ok := cc.m[id]
	return c, cc.gen, ok
}

// put keeps c, loaded from the store after get returned gen, unless the
// cache was invalidated since.
func (cc *clientCache) put(c *Client, gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if gen != cc.gen {
		return
	}
	if len(cc.m) >= cc.max {
		for k := range cc.m {
			delete(cc.m, k)
			break
		}
	}
	cc.m[c.ID] = c
}

// invalidate drops everything (a write through this process).
func (cc *clientCache) invalidate() {
	cc.mu.Lock()
	cc.clearLocked()
	cc.mu.Unlock()
}

func (cc *clientCache) clearLocked() {
	clear(cc.m)
	cc.gen++
}
