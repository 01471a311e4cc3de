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

// Browser sessions and authorization codes: the PostgreSQL side of
// store.BrowserStore, behaving exactly as the
// SQLite backend's browser.go does. Every write that can race another is a
// single statement (an INSERT the primary key refuses, or an UPDATE guarded
// by its WHERE), so replicas sharing the database need no coordination beyond
// the row locks PostgreSQL takes.

// CreateSession stores a new browser session. It fails with an error wrapping
// store.ErrConflict if the ID is taken. ID, UserID and ExpiresAt are
// required, and the text must be storable (valid UTF-8 without NUL).
func (s *Store) CreateSession(ctx context.Context, ss store.Session) error {
	return insert(ctx, s, fmt.Sprintf("create session %q of user %q", ss.ID, ss.UserID), ss, columns.SessionToRow,
		`INSERT INTO sessions (`+columns.SessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		"id", ss.ID, "user id", ss.UserID)
}

// GetSession returns the session with the given ID, expired or not (the
// caller applies its timeouts), or an error wrapping store.ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	return getRow(ctx, s, "get session", id, `SELECT `+columns.SessionColumns+` FROM sessions WHERE id = $1`, scanSession)
}

// TouchSession sets the session's LastSeen to now, never moving it back: the
// GREATEST is evaluated against the row as locked, so a late, concurrent
// request, on this replica or another, cannot shorten the session's idle
// life. It fails with an error wrapping store.ErrNotFound if there is no such
// session.
func (s *Store) TouchSession(ctx context.Context, id string, now time.Time) error {
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return fmt.Errorf("store/postgres: touch session %q: now: %w", id, err)
	}
	if !storable(id) {
		return fmt.Errorf("store/postgres: touch session %q: %w", id, store.ErrNotFound)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	// PostgreSQL counts a matched row as affected even when the value does
	// not change, so RowsAffected is 0 only for a missing session.
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen = GREATEST(last_seen, $1) WHERE id = $2`, at, id)
	if err != nil {
		return fmt.Errorf("store/postgres: touch session %q at %v: %w", id, now.UTC(), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store/postgres: touch session %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// DeleteSession deletes the session with the given ID (logout). It fails with
// an error wrapping store.ErrNotFound if there is no such session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if !storable(id) {
		return fmt.Errorf("store/postgres: delete session %q: %w", id, store.ErrNotFound)
	}
	return s.execOne(ctx, fmt.Sprintf("delete session %q", id), `DELETE FROM sessions WHERE id = $1`, id)
}

// ListUserSessions returns the user's sessions, expired or not, most
// recently seen first, at most store.MaxUserSessions (the sessions_user
// index finds them).
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	if !storable(userID) { // no such user can have sessions
		return []store.Session{}, nil
	}
	return listRows(ctx, s, fmt.Sprintf("list sessions of user %q", userID), `SELECT `+columns.SessionColumns+` FROM sessions
		WHERE user_id = $1 ORDER BY last_seen DESC, created_at DESC, id DESC LIMIT $2`, scanSession, userID, store.MaxUserSessions)
}

// DeleteUserSessions deletes every session of the user and returns how many
// (0 for a user with none, or an unknown user).
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	if !storable(userID) { // no such user can have sessions
		return 0, nil
	}
	n, err := s.exec(ctx, fmt.Sprintf("delete sessions of user %q", userID), `DELETE FROM sessions WHERE user_id = $1`, userID)
	return int(n), err
}

// scanSession reads one sessions row selected with columns.SessionColumns.
func scanSession(r pgx.Row) (store.Session, error) {
	return columns.Scan(r.Scan, columns.SessionFromRow)
}

// CreateAuthCode stores a new authorization code. It fails with an error
// wrapping store.ErrConflict if the ID is taken. ID, ClientID, RedirectURI,
// UserID and ExpiresAt are required; text must be storable (valid UTF-8
// without NUL). UsedAt and what is issued at redemption are stored as given
// (normally unset).
//
// With a SessionID, the insert and the trim of the session's codes (expired
// ones, and unredeemed ones beyond maxPerSession) are one transaction that
// first takes a transaction-scoped advisory lock on the session: concurrent
// calls for one session, on any replica, take turns, and each sees the codes
// the previous ones committed (READ COMMITTED), so the cap holds.
func (s *Store) CreateAuthCode(ctx context.Context, ac store.AuthCode, maxPerSession int) error {
	r, err := storableRow(fmt.Sprintf("create authorization code %q", ac.ID), ac, columns.AuthCodeToRow,
		"id", ac.ID, "client id", ac.ClientID, "redirect URI", ac.RedirectURI, "user id", ac.UserID, "session id", ac.SessionID,
		"scope", ac.Scope, "nonce", ac.Nonce, "code challenge", ac.CodeChallenge,
		"family id", ac.FamilyID, "access jti", ac.AccessJTI, "dpop jkt", ac.DPoPJKT)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store/postgres: create authorization code %q: begin: %w", ac.ID, err)
	}
	defer tx.Rollback(ctx) // after Commit, a no-op
	if r.SessionID != "" {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('keygate auth codes ' || $1, 0))`, r.SessionID); err != nil {
			return fmt.Errorf("store/postgres: create authorization code %q: lock session %q: %w", ac.ID, r.SessionID, err)
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO auth_codes (`+columns.AuthCodeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`, r.Args()...)
	if err != nil {
		return writeError(fmt.Sprintf("create authorization code %q for client %q", ac.ID, ac.ClientID), err)
	}
	if r.SessionID != "" {
		// The session's expired codes, and its unredeemed codes other than
		// the new one beyond the newest maxPerSession-1.
		_, err = tx.Exec(ctx, `DELETE FROM auth_codes
			WHERE session_id = $1 AND id <> $2 AND (expires_at <= $3 OR (used_at = 0 AND id NOT IN (
				SELECT id FROM auth_codes WHERE session_id = $1 AND id <> $2 AND used_at = 0 AND expires_at > $3
				ORDER BY created_at DESC, id DESC LIMIT $4)))`,
			r.SessionID, r.ID, r.Created, columns.CodeCapLimit(maxPerSession))
		if err != nil {
			return fmt.Errorf("store/postgres: create authorization code %q: cap the codes of session %q: %w", ac.ID, r.SessionID, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return writeError(fmt.Sprintf("create authorization code %q: commit", ac.ID), err)
	}
	return nil
}

// GetAuthCode returns the code with the given ID, redeemed or not (so that a
// caller whose redemption failed can tell reuse from expiry), or an error
// wrapping store.ErrNotFound.
func (s *Store) GetAuthCode(ctx context.Context, id string) (store.AuthCode, error) {
	return getRow(ctx, s, "get authorization code", id, `SELECT `+columns.AuthCodeColumns+` FROM auth_codes WHERE id = $1`, scanAuthCode)
}

// RedeemAuthCode spends the code id at now and records, in the same single
// statement, what was issued from it: the refresh-token family (empty for
// none), and the access token's jti and expiry. The statement is a guarded
// UPDATE that matches only a code that is unused and expires after now. It
// locks the row, and a concurrent redemption's UPDATE waits for that lock and
// then re-checks its guard against the committed row (READ COMMITTED), so of
// any number of concurrent redemptions of one code, on any number of replicas
// sharing the database, exactly one succeeds. It returns the code as stored
// after the spend.
//
// If the code cannot be spent, nothing is written and the error wraps
// store.ErrNotFound when id does not exist, and store.ErrConflict when it was
// already used or has expired; the caller then reads the code (GetAuthCode)
// to tell reuse (UsedAt set: revoke what was issued) from expiry. accessJTI
// and accessExpiresAt are required.
func (s *Store) RedeemAuthCode(ctx context.Context, id string, now time.Time, familyID, accessJTI string, accessExpiresAt time.Time) (store.AuthCode, error) {
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return store.AuthCode{}, fmt.Errorf("store/postgres: redeem authorization code %q: now: %w", id, err)
	}
	if accessJTI == "" {
		return store.AuthCode{}, fmt.Errorf("store/postgres: redeem authorization code %q: empty access jti", id)
	}
	if err := checkText("family id", familyID, "access jti", accessJTI); err != nil {
		return store.AuthCode{}, fmt.Errorf("store/postgres: redeem authorization code %q: %w", id, err)
	}
	accessExp, err := columns.RequiredNanos(accessExpiresAt)
	if err != nil {
		return store.AuthCode{}, fmt.Errorf("store/postgres: redeem authorization code %q: access_expires_at: %w", id, err)
	}
	if !storable(id) {
		return store.AuthCode{}, fmt.Errorf("store/postgres: redeem authorization code %q: %w", id, store.ErrNotFound)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	ac, err := scanAuthCode(s.pool.QueryRow(ctx, `UPDATE auth_codes
		SET used_at = $1, family_id = $2, access_jti = $3, access_expires_at = $4
		WHERE id = $5 AND used_at = 0 AND expires_at > $1
		RETURNING `+columns.AuthCodeColumns, at, familyID, accessJTI, accessExp, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.AuthCode{}, s.whyNotRedeemed(ctx, id, now)
	case err != nil:
		return store.AuthCode{}, fmt.Errorf("store/postgres: redeem authorization code %q: %w", id, err)
	}
	return ac, nil
}

// whyNotRedeemed explains why the guarded redemption of id matched nothing:
// no such code (store.ErrNotFound), or a code that is used or expired
// (store.ErrConflict). It reads in a statement of its own, whose snapshot
// includes the redemption that won a race, if one did.
func (s *Store) whyNotRedeemed(ctx context.Context, id string, now time.Time) error {
	var used, expires int64
	err := s.pool.QueryRow(ctx, `SELECT used_at, expires_at FROM auth_codes WHERE id = $1`, id).Scan(&used, &expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("store/postgres: redeem authorization code %q: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("store/postgres: redeem authorization code %q: not redeemable (reading why failed: %v): %w", id, err, store.ErrConflict)
	case used != 0:
		return fmt.Errorf("store/postgres: redeem authorization code %q: already used at %v: %w", id, columns.FromNanos(used), store.ErrConflict)
	default:
		return fmt.Errorf("store/postgres: redeem authorization code %q: expired at %v (now %v): %w", id, columns.FromNanos(expires), now.UTC(), store.ErrConflict)
	}
}

// scanAuthCode reads one auth_codes row selected with columns.AuthCodeColumns.
func scanAuthCode(r pgx.Row) (store.AuthCode, error) {
	return columns.Scan(r.Scan, columns.AuthCodeFromRow)
}

// PruneBrowser deletes sessions whose absolute expiry is at or before now, and
// authorization codes, device codes and WebAuthn challenges that expired at or before now, and returns how many
// rows it deleted. (A session that timed out for idleness is refused when
// used and deleted then, or here once its absolute expiry passes.) Both
// deletes run in one transaction, so the count is of one consistent prune.
func (s *Store) PruneBrowser(ctx context.Context, now time.Time) (int64, error) {
	return s.deleteExpired(ctx, "prune sessions and codes", now, []pruneQuery{
		{"sessions", `DELETE FROM sessions WHERE expires_at <= $1`},
		{"authorization codes", `DELETE FROM auth_codes WHERE expires_at <= $1`},
		{"device codes", `DELETE FROM device_codes WHERE expires_at <= $1`},
		{"WebAuthn challenges", `DELETE FROM webauthn_challenges WHERE expires_at <= $1`},
	})
}
