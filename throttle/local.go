package throttle

import (
	"context"
	"time"

	"github.com/keygate/keygate/store"
)

// Local adapts an in-memory Throttle to store.Throttle, the interface login
// code uses whether the buckets live in this process or in a shared database,
// so that one process (or a backend that serves one process) needs no
// database round trip per attempt. It never returns an error.
func Local(t *Throttle) store.Throttle { return local{t} }

type local struct{ t *Throttle }

func (l local) Reserve(_ context.Context, key string, now time.Time) (time.Duration, bool, error) {
	d, ok := l.t.Reserve(key, now)
	return d, ok, nil
}

func (l local) Release(_ context.Context, key string, now time.Time) error {
	l.t.Release(key, now)
	return nil
}

func (l local) Reset(_ context.Context, key string) error { l.t.Reset(key); return nil }

// PruneFull returns 0: a Throttle drops refilled buckets by itself and is
// bounded by its maxKeys.
func (l local) PruneFull(context.Context, time.Time) (int64, error) { return 0, nil }
