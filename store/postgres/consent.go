package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// UpsertConsent stores c, or replaces the scopes and updated_at of the
// consent of c.UserID to c.ClientID, keeping its created_at, in one
// statement (atomic under concurrency: ON CONFLICT). Text PostgreSQL cannot
// hold is refused.
func (s *Store) UpsertConsent(ctx context.Context, c store.Consent) error {
	return insert(ctx, s, fmt.Sprintf("upsert consent of %q to %q", c.UserID, c.ClientID), c, columns.ConsentToRow,
		`INSERT INTO consents (`+columns.ConsentColumns+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
		"user id", c.UserID, "client id", c.ClientID)
}

// GetConsent returns the consent of userID to clientID, or an error wrapping
// store.ErrNotFound.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (store.Consent, error) {
	what := fmt.Sprintf("get consent of %q to %q", userID, clientID)
	if !storable(userID) || !storable(clientID) {
		return store.Consent{}, fmt.Errorf("store/postgres: %s: %w", what, store.ErrNotFound)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	c, err := scanConsent(s.pool.QueryRow(ctx, `SELECT `+columns.ConsentColumns+` FROM consents
		WHERE user_id = $1 AND client_id = $2`, userID, clientID))
	return columns.OneRow("store/postgres", what, c, err, pgx.ErrNoRows)
}

// ListUserConsents returns the consents of userID ordered by client ID (byte
// order: the "C" collation), never nil.
func (s *Store) ListUserConsents(ctx context.Context, userID string) ([]store.Consent, error) {
	if !storable(userID) {
		return []store.Consent{}, nil
	}
	return listRows(ctx, s, fmt.Sprintf("list consents of %q", userID),
		`SELECT `+columns.ConsentColumns+` FROM consents WHERE user_id = $1 ORDER BY client_id`, scanConsent, userID)
}

// DeleteConsent deletes the consent of userID to clientID, or fails with an
// error wrapping store.ErrNotFound.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	what := fmt.Sprintf("delete consent of %q to %q", userID, clientID)
	if !storable(userID) || !storable(clientID) {
		return fmt.Errorf("store/postgres: %s: %w", what, store.ErrNotFound)
	}
	return s.execOne(ctx, what, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
}

// RevokeUserClientRefreshTokens revokes every refresh-token family of
// subject issued to clientID (every link not yet revoked) and returns how
// many links changed.
func (s *Store) RevokeUserClientRefreshTokens(ctx context.Context, subject, clientID string, now time.Time) (int, error) {
	if subject == "" || clientID == "" {
		return 0, fmt.Errorf("store/postgres: revoke refresh tokens: empty subject %q or client %q", subject, clientID)
	}
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return 0, fmt.Errorf("store/postgres: revoke refresh tokens of %q for %q: now: %w", subject, clientID, err)
	}
	if !storable(subject) || !storable(clientID) { // no such row can exist
		return 0, nil
	}
	n, err := s.exec(ctx, fmt.Sprintf("revoke refresh tokens of %q for %q", subject, clientID), `UPDATE refresh_tokens SET revoked_at = $1
		WHERE subject = $2 AND client_id = $3 AND revoked_at = 0`, at, subject, clientID)
	return int(n), err
}

func scanConsent(r pgx.Row) (store.Consent, error) {
	return columns.Scan(r.Scan, columns.ConsentFromRow)
}
