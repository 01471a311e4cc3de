package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// PutTOTP stores an unconfirmed TOTP, replacing an unconfirmed one in the
// same statement; a confirmed one is kept and the answer is ErrConflict.
func (s *Store) PutTOTP(ctx context.Context, t store.TOTP) error {
	r, err := columns.TOTPToRow(t)
	if err != nil {
		return fmt.Errorf("store/sqlite: put TOTP of %q: %w", t.UserID, err)
	}
	n, err := affected(ctx, s.db, fmt.Sprintf("put TOTP of %q", t.UserID), `INSERT INTO user_totp
		(user_id, sealed, confirmed_at, last_step, created_at) VALUES (?, ?, 0, 0, ?)
		ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at, last_step = 0
		WHERE user_totp.confirmed_at = 0`, r.UserID, r.Sealed, r.Created)
	if err == nil && n == 0 {
		err = fmt.Errorf("store/sqlite: put TOTP of %q: a confirmed TOTP exists: %w", t.UserID, store.ErrConflict)
	}
	return err
}

// GetTOTP returns the user's TOTP with the count of unused recovery codes.
func (s *Store) GetTOTP(ctx context.Context, userID string) (store.TOTP, error) {
	return getRow(ctx, s, "get TOTP of", userID, `SELECT `+columns.TOTPColumns+` FROM user_totp t WHERE t.user_id = ?`, scanTOTP)
}

func scanTOTP(r rowScanner) (store.TOTP, error) {
	return columns.Scan(r.Scan, columns.NoError(columns.TOTPFromRow))
}

// ListTOTP returns every TOTP, ordered by user id.
func (s *Store) ListTOTP(ctx context.Context) ([]store.TOTP, error) {
	return listRows(ctx, s, "list TOTP", `SELECT `+columns.TOTPColumns+` FROM user_totp t ORDER BY t.user_id`, scanTOTP)
}

// ResealTOTP swaps the sealed secret from → sealed in one guarded statement.
func (s *Store) ResealTOTP(ctx context.Context, userID string, from, sealed []byte) error {
	what := fmt.Sprintf("reseal TOTP of %q", userID)
	if len(sealed) == 0 {
		return fmt.Errorf("store/sqlite: %s: empty sealed secret", what)
	}
	n, err := affected(ctx, s.db, what, `UPDATE user_totp SET sealed = ? WHERE user_id = ? AND sealed = ?`, sealed, userID, from)
	if err == nil && n == 0 {
		err = fmt.Errorf("store/sqlite: %s: changed or removed since it was read: %w", what, store.ErrConflict)
	}
	return err
}

// ReplaceRecoveryCodes replaces the user's recovery codes in one BEGIN
// IMMEDIATE transaction, if the user has a confirmed TOTP.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, recovery [][]byte, now time.Time) error {
	what := fmt.Sprintf("replace recovery codes of %q", userID)
	if _, err := columns.Recovery(userID, recovery, now); err != nil {
		return fmt.Errorf("store/sqlite: %s: %w", what, err)
	}
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		var one int
		if qerr := tx.QueryRowContext(ctx, `SELECT 1 FROM user_totp WHERE user_id = ? AND confirmed_at <> 0`, userID).Scan(&one); qerr != nil {
			return fmt.Errorf("store/sqlite: %s: no confirmed TOTP: %w", what, store.ErrNotFound)
		}
		return replaceRecovery(ctx, tx, what, userID, recovery)
	})
}

// replaceRecovery deletes the user's recovery codes and stores recovery, in tx.
func replaceRecovery(ctx context.Context, tx *sql.Tx, what, userID string, recovery [][]byte) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("store/sqlite: %s: delete old recovery codes: %w", what, err)
	}
	for _, h := range recovery {
		if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, code_hash, used_at) VALUES (?, ?, 0)`, userID, h); err != nil {
			return writeError(what+": store a recovery code", err)
		}
	}
	return nil
}

// ConfirmTOTP activates the user's unconfirmed TOTP and replaces their
// recovery codes, in one BEGIN IMMEDIATE transaction.
func (s *Store) ConfirmTOTP(ctx context.Context, userID string, step int64, recovery [][]byte, now time.Time) error {
	what := fmt.Sprintf("confirm TOTP of %q", userID)
	at, err := columns.Recovery(userID, recovery, now)
	if err != nil {
		return fmt.Errorf("store/sqlite: %s: %w", what, err)
	}
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		n, err := affected(ctx, tx, what, `UPDATE user_totp SET confirmed_at = ?, last_step = ? WHERE user_id = ? AND confirmed_at = 0`,
			at, step, userID)
		if err != nil {
			return err
		}
		if n == 0 {
			var one int
			if qerr := tx.QueryRowContext(ctx, `SELECT 1 FROM user_totp WHERE user_id = ?`, userID).Scan(&one); qerr != nil {
				return fmt.Errorf("store/sqlite: %s: %w", what, store.ErrNotFound)
			}
			return fmt.Errorf("store/sqlite: %s: already confirmed: %w", what, store.ErrConflict)
		}
		return replaceRecovery(ctx, tx, what, userID, recovery)
	})
}

// UseTOTPStep moves the user's last accepted step forward to step, in one
// guarded statement.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	what := fmt.Sprintf("use TOTP step %d of %q", step, userID)
	n, err := affected(ctx, s.db, what, `UPDATE user_totp SET last_step = ?
		WHERE user_id = ? AND confirmed_at <> 0 AND last_step < ?`, step, userID, step)
	if err == nil && n == 0 {
		err = fmt.Errorf("store/sqlite: %s: step already used, or no confirmed TOTP: %w", what, store.ErrConflict)
	}
	return err
}

// UseRecoveryCode spends an unused recovery code, in one guarded statement.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hash []byte, now time.Time) error {
	what := fmt.Sprintf("use a recovery code of %q", userID)
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return fmt.Errorf("store/sqlite: %s: now: %w", what, err)
	}
	n, err := affected(ctx, s.db, what, `UPDATE recovery_codes SET used_at = ?
		WHERE user_id = ? AND code_hash = ? AND used_at = 0`, at, userID, hash)
	if err == nil && n == 0 {
		err = fmt.Errorf("store/sqlite: %s: no such unused code: %w", what, store.ErrConflict)
	}
	return err
}

// DeleteTOTP removes the user's TOTP and recovery codes in one transaction.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) (bool, error) {
	what := fmt.Sprintf("delete TOTP of %q", userID)
	var had bool
	err := s.inTx(ctx, what, func(tx *sql.Tx) error {
		n, err := affected(ctx, tx, what, `DELETE FROM user_totp WHERE user_id = ?`, userID)
		if err != nil {
			return err
		}
		had = n > 0
		if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
			return fmt.Errorf("store/sqlite: %s: recovery codes: %w", what, err)
		}
		return nil
	})
	return had, err
}

// ListSealedTOTP returns every TOTP secret's sealed bytes.
func (s *Store) ListSealedTOTP(ctx context.Context) ([][]byte, error) {
	return listRows(ctx, s, "list sealed TOTP secrets", `SELECT sealed FROM user_totp`,
		func(r rowScanner) (b []byte, err error) { return b, r.Scan(&b) })
}
