package sqlite

import (
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/throttle"
)

// throttleMaxKeys bounds the memory of each in-memory throttle.
const throttleMaxKeys = 100_000

// Throttle returns an in-memory login throttle. A SQLite database serves one
// server process (the CLI does not log users in), so there is no other
// replica to share the budget with, and memory spares every login attempt a
// write to the file. Every call returns a new, independent throttle.
func (s *Store) Throttle(name string, l store.ThrottleLimits) store.Throttle {
	return throttle.Local(throttle.New(throttle.Limits(l), throttleMaxKeys))
}
