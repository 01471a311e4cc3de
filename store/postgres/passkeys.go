package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// CreatePasskey stores p if its user exists and has fewer than maxPerUser
// passkeys. The transaction first locks the user's row (SELECT … FOR
// UPDATE), so concurrent registrations of one user, on any replica, count
// and insert one at a time and the cap holds.
func (s *Store) CreatePasskey(ctx context.Context, p store.Passkey, maxPerUser int) error {
	what := fmt.Sprintf("create passkey %q of %q", p.ID, p.UserID)
	r, err := storableRow(what, p, columns.PasskeyToRow, "id", p.ID, "user id", p.UserID, "name", p.Name,
		"attestation format", p.AttestationFormat)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, r.UserID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("store/postgres: %s: no such user: %w", what, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store/postgres: %s: lock the user: %w", what, err)
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM passkeys WHERE user_id = $1`, r.UserID).Scan(&have); err != nil {
			return fmt.Errorf("store/postgres: %s: count: %w", what, err)
		}
		if maxPerUser > 0 && have >= maxPerUser {
			return fmt.Errorf("store/postgres: %s: the user has %d passkeys already, the most allowed: %w", what, have, store.ErrConflict)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO passkeys (`+columns.PasskeyColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, r.Args()...); err != nil {
			return writeError(what, err)
		}
		return nil
	}, nil)
}

// GetPasskey returns the passkey with credential ID id, or an error wrapping
// store.ErrNotFound.
func (s *Store) GetPasskey(ctx context.Context, id string) (store.Passkey, error) {
	return getRow(ctx, s, "get passkey", id, `SELECT `+columns.PasskeyColumns+` FROM passkeys WHERE id = $1`, scanPasskey)
}

// ListUserPasskeys returns userID's passkeys, oldest first; never nil.
func (s *Store) ListUserPasskeys(ctx context.Context, userID string) ([]store.Passkey, error) {
	if !storable(userID) {
		return []store.Passkey{}, nil
	}
	return listRows(ctx, s, fmt.Sprintf("list passkeys of %q", userID), `SELECT `+columns.PasskeyColumns+` FROM passkeys
		WHERE user_id = $1 ORDER BY created_at, id`, scanPasskey, userID)
}

// RecordPasskeyUse stores a sign-in with passkey id in one statement guarded
// by its sign count, so that of concurrent uses reading one count one wins.
func (s *Store) RecordPasskeyUse(ctx context.Context, id string, prev, count uint32, backupState bool, now time.Time) error {
	what := fmt.Sprintf("record use of passkey %q", id)
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return fmt.Errorf("store/postgres: %s: now: %w", what, err)
	}
	if !storable(id) {
		return fmt.Errorf("store/postgres: %s: %w", what, store.ErrNotFound)
	}
	ctx, cancel := s.callContext(ctx) // one deadline for the update and the look-up after it
	defer cancel()
	n, err := s.exec(ctx, what, `UPDATE passkeys SET sign_count = $1, backup_state = $2, last_used_at = $3
		WHERE id = $4 AND sign_count = $5`, int64(count), backupState, at, id, int64(prev))
	if err != nil || n == 1 {
		return err
	}
	if _, err := s.GetPasskey(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("store/postgres: %s: its sign count is no longer %d: %w", what, prev, store.ErrConflict)
}

// DeletePasskey deletes userID's passkey id, or fails with an error wrapping
// store.ErrNotFound.
func (s *Store) DeletePasskey(ctx context.Context, userID, id string) error {
	what := fmt.Sprintf("delete passkey %q of %q", id, userID)
	if !storable(userID) || !storable(id) {
		return fmt.Errorf("store/postgres: %s: %w", what, store.ErrNotFound)
	}
	return s.execOne(ctx, what, `DELETE FROM passkeys WHERE id = $1 AND user_id = $2`, id, userID)
}

// DeleteUserPasskeys deletes every passkey of userID and returns how many.
func (s *Store) DeleteUserPasskeys(ctx context.Context, userID string) (int, error) {
	if !storable(userID) {
		return 0, nil
	}
	n, err := s.exec(ctx, fmt.Sprintf("delete passkeys of %q", userID), `DELETE FROM passkeys WHERE user_id = $1`, userID)
	return int(n), err
}

// CreateWebAuthnChallenge stores c and trims its binding's challenges
// (expired ones, and the oldest beyond maxPerBinding) in one transaction
// that first takes a transaction-scoped advisory lock on the binding, so
// concurrent creations for one binding, on any replica, trim one at a time.
func (s *Store) CreateWebAuthnChallenge(ctx context.Context, c store.WebAuthnChallenge, maxPerBinding int) error {
	what := fmt.Sprintf("create WebAuthn challenge %q", c.ID)
	r, err := storableRow(what, c, columns.ChallengeToRow, "id", c.ID, "user id", c.UserID, "binding", c.Binding)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('keygate webauthn ' || $1, 0))`, r.Binding); err != nil {
			return fmt.Errorf("store/postgres: %s: lock its binding: %w", what, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webauthn_challenges (`+columns.ChallengeColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, r.Args()...); err != nil {
			return writeError(what, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM webauthn_challenges
			WHERE binding = $1 AND id <> $2 AND (expires_at <= $3 OR id NOT IN (
				SELECT id FROM webauthn_challenges WHERE binding = $1 AND id <> $2 AND expires_at > $3
				ORDER BY created_at DESC, id DESC LIMIT $4))`,
			r.Binding, r.ID, r.Created, columns.CodeCapLimit(maxPerBinding)); err != nil {
			return fmt.Errorf("store/postgres: %s: cap the challenges of its binding: %w", what, err)
		}
		return nil
	}, nil)
}

// ConsumeWebAuthnChallenge deletes challenge id and returns it, in one
// DELETE … RETURNING statement: of concurrent consumers exactly one reads
// the row.
func (s *Store) ConsumeWebAuthnChallenge(ctx context.Context, id string, now time.Time) (store.WebAuthnChallenge, error) {
	what := fmt.Sprintf("consume WebAuthn challenge %q", id)
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return store.WebAuthnChallenge{}, fmt.Errorf("store/postgres: %s: now: %w", what, err)
	}
	if !storable(id) {
		return store.WebAuthnChallenge{}, fmt.Errorf("store/postgres: %s: %w", what, store.ErrNotFound)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var r columns.ChallengeRow
	err = s.pool.QueryRow(ctx, `DELETE FROM webauthn_challenges WHERE id = $1 RETURNING `+columns.ChallengeColumns, id).Scan(r.Dest()...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.WebAuthnChallenge{}, fmt.Errorf("store/postgres: %s: %w", what, store.ErrNotFound)
	case err != nil:
		return store.WebAuthnChallenge{}, fmt.Errorf("store/postgres: %s: %w", what, err)
	case r.Expires <= at:
		return store.WebAuthnChallenge{}, fmt.Errorf("store/postgres: %s: expired at %v: %w", what, columns.FromNanos(r.Expires), store.ErrConflict)
	}
	return columns.ChallengeFromRow(r), nil
}

func scanPasskey(r pgx.Row) (store.Passkey, error) {
	return columns.Scan(r.Scan, columns.PasskeyFromRow)
}

// CountPasskeysByUser returns the number of passkeys of every user who has one.
func (s *Store) CountPasskeysByUser(ctx context.Context) (map[string]int, error) {
	rows, err := listRows(ctx, s, "count passkeys by user", `SELECT user_id, COUNT(*) FROM passkeys GROUP BY user_id`,
		func(r pgx.Row) (columns.UserCount, error) { return columns.ScanUserCount(r.Scan) })
	return columns.CountsByUser(rows), err
}
