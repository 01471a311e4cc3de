package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/store/internal/columns"
)

// AcquireLease takes or renews the lease called name for holder until now+ttl,
// and reports whether holder now holds it. It succeeds when nobody holds the
// lease, when its last holder's time ran out (its expiry is at or before now),
// or when holder already holds it (a renewal, which moves the expiry to
// now+ttl); it reports false, with no error, while another holder's lease is
// alive. It is one INSERT ... ON CONFLICT DO UPDATE statement, so of any
// number of concurrent acquirers, on any number of replicas, exactly one wins.
//
// Replicas use a lease so that one of them at a time performs a coordinated
// job such as a key rotation: each tries to acquire it before the job and
// renews it well within ttl while working. Expiry is judged by the callers'
// clocks (now), so the replicas' clocks must agree to well within ttl, and a
// holder must stop working for the lease once now+ttl has passed without a
// successful renewal. holder should be unique per process (a host name and a
// random suffix, say).
//
// name and holder must be non-empty text, ttl positive and now set; otherwise
// the error is an invalid-input error and nothing is written.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	if err := checkText("name", name, "holder", holder); err != nil {
		return false, fmt.Errorf("store/postgres: acquire lease: %w", err)
	}
	at, exp, err := columns.Lease(name, holder, ttl, now)
	if err != nil {
		return false, fmt.Errorf("store/postgres: acquire lease %q for %q: %w", name, holder, err)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	// A competing insert of the same name waits for this one and then takes
	// the ON CONFLICT path, whose WHERE sees the committed row: a live lease
	// of someone else's makes the statement change nothing and return no
	// row.
	var got string
	err = s.pool.QueryRow(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder
		RETURNING holder`, name, holder, exp, at).Scan(&got)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store/postgres: acquire lease %q for %q: %w", name, holder, err)
	}
	return got == holder, nil
}

// ReleaseLease gives up the lease called name if holder holds it, so that
// another replica may acquire it at once rather than after it expires.
// Releasing a lease that holder does not hold (never did, or lost it when it
// expired and someone else took it) changes nothing and is not an error.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if name == "" || holder == "" {
		return fmt.Errorf("store/postgres: release lease %q for %q: empty name or holder", name, holder)
	}
	if !storable(name) || !storable(holder) { // cannot be held
		return nil
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("store/postgres: release lease %q for %q: %w", name, holder, err)
	}
	return nil
}
