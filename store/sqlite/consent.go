package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// UpsertConsent stores c, or replaces the scopes and updated_at of the
// consent of c.UserID to c.ClientID, keeping its created_at, in one
// statement.
func (s *Store) UpsertConsent(ctx context.Context, c store.Consent) error {
	return insert(ctx, s, fmt.Sprintf("upsert consent of %q to %q", c.UserID, c.ClientID), c, columns.ConsentToRow,
		`INSERT INTO consents (`+columns.ConsentColumns+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`)
}

// GetConsent returns the consent of userID to clientID, or an error wrapping
// store.ErrNotFound.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (store.Consent, error) {
	c, err := scanConsent(s.rdb.QueryRowContext(ctx, `SELECT `+columns.ConsentColumns+` FROM consents
		WHERE user_id = ? AND client_id = ?`, userID, clientID))
	return columns.OneRow("store/sqlite", fmt.Sprintf("get consent of %q to %q", userID, clientID), c, err, sql.ErrNoRows)
}

// ListUserConsents returns the consents of userID ordered by client ID (byte
// order), never nil.
func (s *Store) ListUserConsents(ctx context.Context, userID string) ([]store.Consent, error) {
	return listRows(ctx, s, fmt.Sprintf("list consents of %q", userID), `SELECT `+columns.ConsentColumns+` FROM consents
		WHERE user_id = ? ORDER BY client_id`, scanConsent, userID)
}

// DeleteConsent deletes the consent of userID to clientID, or fails with an
// error wrapping store.ErrNotFound.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return execOne(ctx, s.db, fmt.Sprintf("delete consent of %q to %q", userID, clientID), `DELETE FROM consents WHERE user_id = ? AND client_id = ?`, userID, clientID)
}

// RevokeUserClientRefreshTokens revokes every refresh-token family of
// subject issued to clientID (every link not yet revoked) and returns how
// many links changed.
func (s *Store) RevokeUserClientRefreshTokens(ctx context.Context, subject, clientID string, now time.Time) (int, error) {
	if subject == "" || clientID == "" {
		return 0, fmt.Errorf("store/sqlite: revoke refresh tokens: empty subject %q or client %q", subject, clientID)
	}
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: revoke refresh tokens of %q for %q: now: %w", subject, clientID, err)
	}
	n, err := affected(ctx, s.db, fmt.Sprintf("revoke refresh tokens of %q for %q", subject, clientID), `UPDATE refresh_tokens SET revoked_at = ?
		WHERE subject = ? AND client_id = ? AND revoked_at = 0`, at, subject, clientID)
	return int(n), err
}

func scanConsent(r rowScanner) (store.Consent, error) {
	return columns.Scan(r.Scan, columns.ConsentFromRow)
}
