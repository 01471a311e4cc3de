package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// Throttle returns login throttling whose buckets live in the database, shared
// by every replica. name separates independent throttles ("user", "ip"); l is
// the bucket: Burst failures at once, one more regained every Every. The
// arithmetic is the same token bucket as package throttle's, done in one
// atomic statement per reservation so that concurrent replicas can never
// together take more tokens than the bucket holds.
func (s *Store) Throttle(name string, l store.ThrottleLimits) store.Throttle {
	return &sharedThrottle{s: s, prefix: name + ":", l: l}
}

type sharedThrottle struct {
	s      *Store
	prefix string
	l      store.ThrottleLimits
}

// available is the bucket's tokens at now, given what was stored.
func (t *sharedThrottle) available(tokens float64, updated, now int64) float64 {
	elapsed := max(0, now-updated) // a replica whose clock is behind adds nothing
	return math.Min(float64(t.l.Burst), tokens+float64(elapsed)/float64(t.l.Every.Nanoseconds()))
}

// refilled is the SQL for the bucket's tokens at $3 (Unix nanoseconds), given
// burst $2 and the refill period $4 in nanoseconds: the same arithmetic as
// available, done by the database on the locked row.
const refilled = `LEAST($2::float8, login_throttle.tokens + GREATEST(0, $3 - login_throttle.updated_at)::float8 / $4::float8)`

// reserveSQL takes one token in one atomic statement: a new key starts full
// and loses one; an existing row is refilled and loses one only if it then
// holds at least one (the tolerance forgives float error). The conflicting
// row is locked by ON CONFLICT, so concurrent reservations at any number of
// replicas are serialised and at most Burst succeed per refill. A row that
// fails the WHERE is left untouched (no debt) and RETURNING yields nothing.
const reserveSQL = `INSERT INTO login_throttle (key, tokens, updated_at) VALUES ($1, $2::float8 - 1, $3)
	ON CONFLICT (key) DO UPDATE SET
	  tokens = GREATEST(0, ` + refilled + ` - 1),
	  updated_at = GREATEST(login_throttle.updated_at, $3)
	WHERE ` + refilled + ` >= 1 - 1e-9
	RETURNING tokens`

// Reserve takes one token if the bucket holds one, atomically across
// replicas; see reserveSQL. When refused, a second, read-only query finds the
// wait for Retry-After; it decides nothing.
func (t *sharedThrottle) Reserve(ctx context.Context, key string, now time.Time) (time.Duration, bool, error) {
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return 0, false, fmt.Errorf("store/postgres: throttle reserve: %w", err)
	}
	ctx, cancel := t.s.callContext(ctx)
	defer cancel()
	var left float64
	err = t.s.pool.QueryRow(ctx, reserveSQL, t.prefix+key, t.l.Burst, at, t.l.Every.Nanoseconds()).Scan(&left)
	if err == nil {
		return 0, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Errorf("store/postgres: throttle reserve %q: %w", key, err)
	}
	var tokens float64
	var updated int64
	err = t.s.pool.QueryRow(ctx, `SELECT tokens, updated_at FROM login_throttle WHERE key = $1`, t.prefix+key).Scan(&tokens, &updated)
	if errors.Is(err, pgx.ErrNoRows) { // reset in between: still refused this time, retry soon
		return time.Second, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store/postgres: throttle reserve %q: %w", key, err)
	}
	avail := min(t.available(tokens, updated, at), 1)
	// Whole seconds for Retry-After, rounded up; the microsecond forgives
	// float error (a wait of 1.00000002 s is 1 s).
	wait := time.Duration((1 - avail) * float64(t.l.Every.Nanoseconds()))
	secs := time.Duration(math.Ceil((wait - time.Microsecond).Seconds())) * time.Second
	return max(time.Second, secs), false, nil
}

// Release gives back one token (an attempt that was not a failure), refilling
// first for the time elapsed and never beyond Burst, in one statement.
func (t *sharedThrottle) Release(ctx context.Context, key string, now time.Time) error {
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return fmt.Errorf("store/postgres: throttle release: %w", err)
	}
	ctx, cancel := t.s.callContext(ctx)
	defer cancel()
	_, err = t.s.pool.Exec(ctx, `UPDATE login_throttle SET
		  tokens = LEAST($2::float8, `+refilled+` + 1),
		  updated_at = GREATEST(login_throttle.updated_at, $3)
		WHERE key = $1`,
		t.prefix+key, t.l.Burst, at, t.l.Every.Nanoseconds())
	if err != nil {
		return fmt.Errorf("store/postgres: throttle release %q: %w", key, err)
	}
	return nil
}

// Reset forgets a key's failures (after a successful login).
func (t *sharedThrottle) Reset(ctx context.Context, key string) error {
	ctx, cancel := t.s.callContext(ctx)
	defer cancel()
	if _, err := t.s.pool.Exec(ctx, `DELETE FROM login_throttle WHERE key = $1`, t.prefix+key); err != nil {
		return fmt.Errorf("store/postgres: throttle reset %q: %w", key, err)
	}
	return nil
}

// PruneFull deletes buckets that have refilled by now: they carry no
// information, and a flood of distinct usernames must not grow the table.
func (t *sharedThrottle) PruneFull(ctx context.Context, now time.Time) (int64, error) {
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return 0, err
	}
	ctx, cancel := t.s.callContext(ctx)
	defer cancel()
	tag, err := t.s.pool.Exec(ctx, `DELETE FROM login_throttle WHERE left(key, length($1)) = $1
		AND tokens + GREATEST(0, $2 - updated_at)::float8 / $3::float8 >= $4::float8`,
		t.prefix, at, t.l.Every.Nanoseconds(), t.l.Burst)
	if err != nil {
		return 0, fmt.Errorf("store/postgres: prune throttle %s: %w", t.prefix, err)
	}
	return tag.RowsAffected(), nil
}
