package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate/store/internal/columns"
)

// AcquireLease takes or renews the lease called name for holder until now+ttl,
// and reports whether holder now holds it; see store.KeyStore for the rules.
// Several processes may share one database file (the server and the CLI, or
// two servers), so the lease is a real row in the leases table: one INSERT ...
// ON CONFLICT DO UPDATE statement under SQLite's write lock, so of any number
// of concurrent acquirers exactly one wins.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	if !utf8.ValidString(name) || !utf8.ValidString(holder) {
		return false, fmt.Errorf("store/sqlite: acquire lease %q for %q: name or holder is not valid UTF-8", name, holder)
	}
	at, exp, err := columns.Lease(name, holder, ttl, now)
	if err != nil {
		return false, fmt.Errorf("store/sqlite: acquire lease %q for %q: %w", name, holder, err)
	}
	// A live lease of someone else's makes the WHERE false: the statement
	// changes nothing and returns no row.
	var got string
	err = s.db.QueryRowContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at <= ? OR leases.holder = excluded.holder
		RETURNING holder`, name, holder, exp, at).Scan(&got)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store/sqlite: acquire lease %q for %q: %w", name, holder, err)
	}
	return got == holder, nil
}

// ReleaseLease gives up the lease called name if holder holds it, so that
// another process may acquire it at once rather than after it expires.
// Releasing a lease holder does not hold changes nothing and is not an error.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if name == "" || holder == "" {
		return fmt.Errorf("store/sqlite: release lease %q for %q: empty name or holder", name, holder)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder); err != nil {
		return fmt.Errorf("store/sqlite: release lease %q for %q: %w", name, holder, err)
	}
	return nil
}

// WatchKeySet waits until ctx is done and returns nil, never calling fn: a
// SQLite file has no change feed across processes. Callers poll KeySetVersion
// (one indexed read) anyway, which is what picks up another process's key
// change; the method exists so that callers need not ask which backend they
// have.
func (s *Store) WatchKeySet(ctx context.Context, fn func()) error {
	if fn == nil {
		return errors.New("store/sqlite: watch key set: nil callback")
	}
	<-ctx.Done()
	return nil
}
