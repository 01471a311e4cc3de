package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// CreatePasskey stores p if its user exists and has fewer than maxPerUser
// passkeys: the check and the insert are one BEGIN IMMEDIATE transaction, so
// writers in any process take turns and the cap holds under concurrency.
func (s *Store) CreatePasskey(ctx context.Context, p store.Passkey, maxPerUser int) error {
	what := fmt.Sprintf("create passkey %q of %q", p.ID, p.UserID)
	r, err := columns.PasskeyToRow(p)
	if err != nil {
		return fmt.Errorf("store/sqlite: %s: %w", what, err)
	}
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		var users, have int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM users WHERE id = ?1),
			(SELECT count(*) FROM passkeys WHERE user_id = ?1)`, r.UserID).Scan(&users, &have); err != nil {
			return fmt.Errorf("store/sqlite: %s: count: %w", what, err)
		}
		if users == 0 {
			return fmt.Errorf("store/sqlite: %s: no such user: %w", what, store.ErrNotFound)
		}
		if maxPerUser > 0 && have >= maxPerUser {
			return fmt.Errorf("store/sqlite: %s: the user has %d passkeys already, the most allowed: %w", what, have, store.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO passkeys (`+columns.PasskeyColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.Args()...); err != nil {
			return writeError(what, err)
		}
		return nil
	})
}

// GetPasskey returns the passkey with credential ID id, or an error wrapping
// store.ErrNotFound.
func (s *Store) GetPasskey(ctx context.Context, id string) (store.Passkey, error) {
	return getRow(ctx, s, "get passkey", id, `SELECT `+columns.PasskeyColumns+` FROM passkeys WHERE id = ?`, scanPasskey)
}

// ListUserPasskeys returns userID's passkeys, oldest first; never nil.
func (s *Store) ListUserPasskeys(ctx context.Context, userID string) ([]store.Passkey, error) {
	return listRows(ctx, s, fmt.Sprintf("list passkeys of %q", userID), `SELECT `+columns.PasskeyColumns+` FROM passkeys
		WHERE user_id = ? ORDER BY created_at, id`, scanPasskey, userID)
}

// RecordPasskeyUse stores a sign-in with passkey id in one statement guarded
// by its sign count, so that of concurrent uses reading one count one wins.
func (s *Store) RecordPasskeyUse(ctx context.Context, id string, prev, count uint32, backupState bool, now time.Time) error {
	what := fmt.Sprintf("record use of passkey %q", id)
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return fmt.Errorf("store/sqlite: %s: now: %w", what, err)
	}
	n, err := affected(ctx, s.db, what, `UPDATE passkeys SET sign_count = ?, backup_state = ?, last_used_at = ?
		WHERE id = ? AND sign_count = ?`, int64(count), backupState, at, id, int64(prev))
	if err != nil || n == 1 {
		return err
	}
	if _, err := s.GetPasskey(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("store/sqlite: %s: its sign count is no longer %d: %w", what, prev, store.ErrConflict)
}

// DeletePasskey deletes userID's passkey id, or fails with an error wrapping
// store.ErrNotFound.
func (s *Store) DeletePasskey(ctx context.Context, userID, id string) error {
	return execOne(ctx, s.db, fmt.Sprintf("delete passkey %q of %q", id, userID),
		`DELETE FROM passkeys WHERE id = ? AND user_id = ?`, id, userID)
}

// DeleteUserPasskeys deletes every passkey of userID and returns how many.
func (s *Store) DeleteUserPasskeys(ctx context.Context, userID string) (int, error) {
	n, err := affected(ctx, s.db, fmt.Sprintf("delete passkeys of %q", userID), `DELETE FROM passkeys WHERE user_id = ?`, userID)
	return int(n), err
}

// CreateWebAuthnChallenge stores c and trims its binding's challenges
// (expired ones, and the oldest beyond maxPerBinding) in one BEGIN IMMEDIATE
// transaction.
func (s *Store) CreateWebAuthnChallenge(ctx context.Context, c store.WebAuthnChallenge, maxPerBinding int) error {
	what := fmt.Sprintf("create WebAuthn challenge %q", c.ID)
	r, err := columns.ChallengeToRow(c)
	if err != nil {
		return fmt.Errorf("store/sqlite: %s: %w", what, err)
	}
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webauthn_challenges (`+columns.ChallengeColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, r.Args()...); err != nil {
			return writeError(what, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM webauthn_challenges
			WHERE binding = ?1 AND id <> ?2 AND (expires_at <= ?3 OR id NOT IN (
				SELECT id FROM webauthn_challenges WHERE binding = ?1 AND id <> ?2 AND expires_at > ?3
				ORDER BY created_at DESC, id DESC LIMIT ?4))`,
			r.Binding, r.ID, r.Created, columns.CodeCapLimit(maxPerBinding)); err != nil {
			return fmt.Errorf("store/sqlite: %s: cap the challenges of its binding: %w", what, err)
		}
		return nil
	})
}

// ConsumeWebAuthnChallenge deletes challenge id and returns it, in one
// DELETE … RETURNING statement: of concurrent consumers exactly one reads
// the row.
func (s *Store) ConsumeWebAuthnChallenge(ctx context.Context, id string, now time.Time) (store.WebAuthnChallenge, error) {
	what := fmt.Sprintf("consume WebAuthn challenge %q", id)
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return store.WebAuthnChallenge{}, fmt.Errorf("store/sqlite: %s: now: %w", what, err)
	}
	var r columns.ChallengeRow
	err = s.db.QueryRowContext(ctx, `DELETE FROM webauthn_challenges WHERE id = ? RETURNING `+columns.ChallengeColumns, id).Scan(r.Dest()...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.WebAuthnChallenge{}, fmt.Errorf("store/sqlite: %s: %w", what, store.ErrNotFound)
	case err != nil:
		return store.WebAuthnChallenge{}, fmt.Errorf("store/sqlite: %s: %w", what, err)
	case r.Expires <= at:
		return store.WebAuthnChallenge{}, fmt.Errorf("store/sqlite: %s: expired at %v: %w", what, columns.FromNanos(r.Expires), store.ErrConflict)
	}
	return columns.ChallengeFromRow(r), nil
}

func scanPasskey(r rowScanner) (store.Passkey, error) {
	return columns.Scan(r.Scan, columns.PasskeyFromRow)
}

// CountPasskeysByUser returns the number of passkeys of every user who has one.
func (s *Store) CountPasskeysByUser(ctx context.Context) (map[string]int, error) {
	rows, err := listRows(ctx, s, "count passkeys by user", `SELECT user_id, COUNT(*) FROM passkeys GROUP BY user_id`,
		func(r rowScanner) (columns.UserCount, error) { return columns.ScanUserCount(r.Scan) })
	return columns.CountsByUser(rows), err
}
