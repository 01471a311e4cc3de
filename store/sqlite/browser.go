package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// CreateSession stores a new browser session. It fails with an error wrapping
// store.ErrConflict if the ID is taken. ID, UserID and ExpiresAt are
// required.
func (s *Store) CreateSession(ctx context.Context, ss store.Session) error {
	return insert(ctx, s, fmt.Sprintf("create session %q", ss.ID), ss, columns.SessionToRow,
		`INSERT INTO sessions (`+columns.SessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
}

// GetSession returns the session with the given ID, expired or not (the
// caller applies its timeouts), or an error wrapping store.ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	return getRow(ctx, s, "get session", id, `SELECT `+columns.SessionColumns+` FROM sessions WHERE id = ?`, scanSession)
}

// TouchSession sets the session's LastSeen to now, never moving it back (a
// late, concurrent request cannot shorten the session's idle life). It fails
// with an error wrapping store.ErrNotFound if there is no such session.
func (s *Store) TouchSession(ctx context.Context, id string, now time.Time) error {
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return fmt.Errorf("store/sqlite: touch session %q: now: %w", id, err)
	}
	var seen int64
	err = s.db.QueryRowContext(ctx, `UPDATE sessions SET last_seen = max(last_seen, ?) WHERE id = ? RETURNING last_seen`,
		at, id).Scan(&seen)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store/sqlite: touch session %q: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("store/sqlite: touch session %q: %w", id, err)
	}
	return nil
}

// DeleteSession deletes the session with the given ID (logout). It fails with
// an error wrapping store.ErrNotFound if there is no such session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return execOne(ctx, s.db, fmt.Sprintf("delete session %q", id), `DELETE FROM sessions WHERE id = ?`, id)
}

// ListUserSessions returns the user's sessions, expired or not, most
// recently seen first, at most store.MaxUserSessions (the sessions_user
// index finds them).
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	return listRows(ctx, s, fmt.Sprintf("list sessions of user %q", userID), `SELECT `+columns.SessionColumns+` FROM sessions
		WHERE user_id = ? ORDER BY last_seen DESC, created_at DESC, id DESC LIMIT ?`, scanSession, userID, store.MaxUserSessions)
}

// DeleteUserSessions deletes every session of the user and returns how many
// (0 for a user with none, or an unknown user).
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	n, err := affected(ctx, s.db, fmt.Sprintf("delete sessions of user %q", userID), `DELETE FROM sessions WHERE user_id = ?`, userID)
	return int(n), err
}

func scanSession(r rowScanner) (store.Session, error) {
	return columns.Scan(r.Scan, columns.SessionFromRow)
}

// CreateAuthCode stores a new authorization code. It fails with an error
// wrapping store.ErrConflict if the ID is taken. ID, ClientID, RedirectURI,
// UserID and ExpiresAt are required; text must be valid UTF-8. UsedAt and
// what is issued at redemption are stored as given (normally unset).
//
// With a SessionID, the insert and the trim of the session's codes (expired
// ones, and unredeemed ones beyond maxPerSession) are one BEGIN IMMEDIATE
// transaction: writers, in this process or another, take turns, so the cap
// holds under any concurrency.
func (s *Store) CreateAuthCode(ctx context.Context, ac store.AuthCode, maxPerSession int) error {
	for _, v := range []string{ac.ClientID, ac.RedirectURI, ac.UserID, ac.SessionID, ac.Scope, ac.Nonce, ac.CodeChallenge, ac.FamilyID, ac.AccessJTI, ac.DPoPJKT} {
		if !utf8.ValidString(v) {
			return fmt.Errorf("store/sqlite: create authorization code %q: %q is not valid UTF-8", ac.ID, v)
		}
	}
	r, err := columns.AuthCodeToRow(ac)
	if err != nil {
		return fmt.Errorf("store/sqlite: create authorization code %q: %w", ac.ID, err)
	}
	what := fmt.Sprintf("create authorization code %q", ac.ID)
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO auth_codes (`+columns.AuthCodeColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.Args()...); err != nil {
			return writeError(what, err)
		}
		if r.SessionID == "" {
			return nil
		}
		// The session's expired codes, and its unredeemed codes other than
		// the new one beyond the newest maxPerSession-1.
		if _, err := tx.ExecContext(ctx, `DELETE FROM auth_codes
			WHERE session_id = ?1 AND id <> ?2 AND (expires_at <= ?3 OR (used_at = 0 AND id NOT IN (
				SELECT id FROM auth_codes WHERE session_id = ?1 AND id <> ?2 AND used_at = 0 AND expires_at > ?3
				ORDER BY created_at DESC, id DESC LIMIT ?4)))`,
			r.SessionID, r.ID, r.Created, columns.CodeCapLimit(maxPerSession)); err != nil {
			return fmt.Errorf("store/sqlite: %s: cap the codes of session %q: %w", what, r.SessionID, err)
		}
		return nil
	})
}

// GetAuthCode returns the code with the given ID, redeemed or not (so that a
// caller whose redemption failed can tell reuse from expiry), or an error
// wrapping store.ErrNotFound.
func (s *Store) GetAuthCode(ctx context.Context, id string) (store.AuthCode, error) {
	return getRow(ctx, s, "get authorization code", id, `SELECT `+columns.AuthCodeColumns+` FROM auth_codes WHERE id = ?`, scanAuthCode)
}

// RedeemAuthCode spends the code id at now and records, in the same single
// statement, what was issued from it: the refresh-token family (empty for
// none), and the access token's jti and expiry. The statement matches only a
// code that is unused and expires after now, so of any number of concurrent
// redemptions of one code, on any number of replicas sharing the database,
// exactly one succeeds. It returns the code as stored after the spend.
//
// If the code cannot be spent, nothing is written and the error wraps
// store.ErrNotFound when id does not exist, and store.ErrConflict when it was
// already used or has expired; the caller then reads the code (GetAuthCode)
// to tell reuse (UsedAt set: revoke what was issued) from expiry. accessJTI
// and accessExpiresAt are required.
func (s *Store) RedeemAuthCode(ctx context.Context, id string, now time.Time, familyID, accessJTI string, accessExpiresAt time.Time) (store.AuthCode, error) {
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return store.AuthCode{}, fmt.Errorf("store/sqlite: redeem authorization code %q: now: %w", id, err)
	}
	if accessJTI == "" || !utf8.ValidString(accessJTI) || !utf8.ValidString(familyID) {
		return store.AuthCode{}, fmt.Errorf("store/sqlite: redeem authorization code %q: empty or invalid access jti", id)
	}
	accessExp, err := columns.RequiredNanos(accessExpiresAt)
	if err != nil {
		return store.AuthCode{}, fmt.Errorf("store/sqlite: redeem authorization code %q: access_expires_at: %w", id, err)
	}
	ac, err := scanAuthCode(s.db.QueryRowContext(ctx, `UPDATE auth_codes
		SET used_at = ?, family_id = ?, access_jti = ?, access_expires_at = ?
		WHERE id = ? AND used_at = 0 AND expires_at > ?
		RETURNING `+columns.AuthCodeColumns, at, familyID, accessJTI, accessExp, id, at))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		cur, gerr := s.GetAuthCode(ctx, id)
		switch {
		case errors.Is(gerr, store.ErrNotFound):
			return store.AuthCode{}, fmt.Errorf("store/sqlite: redeem authorization code %q: %w", id, store.ErrNotFound)
		case gerr != nil:
			return store.AuthCode{}, fmt.Errorf("store/sqlite: redeem authorization code %q: not redeemable (reading why failed: %v): %w", id, gerr, store.ErrConflict)
		case !cur.UsedAt.IsZero():
			return store.AuthCode{}, fmt.Errorf("store/sqlite: redeem authorization code %q: already used at %v: %w", id, cur.UsedAt, store.ErrConflict)
		default:
			return store.AuthCode{}, fmt.Errorf("store/sqlite: redeem authorization code %q: expired at %v (now %v): %w", id, cur.ExpiresAt, now.UTC(), store.ErrConflict)
		}
	case err != nil:
		return store.AuthCode{}, fmt.Errorf("store/sqlite: redeem authorization code %q: %w", id, err)
	}
	return ac, nil
}

func scanAuthCode(r rowScanner) (store.AuthCode, error) {
	return columns.Scan(r.Scan, columns.AuthCodeFromRow)
}

// PruneBrowser deletes sessions whose absolute expiry is at or before now, and
// authorization codes, device codes and WebAuthn challenges that expired at or before now, and returns how many
// rows it deleted. (A session that timed out for idleness is refused when
// used and deleted then, or here once its absolute expiry passes.)
func (s *Store) PruneBrowser(ctx context.Context, now time.Time) (int64, error) {
	return s.deleteExpired(ctx, "prune sessions and codes", now, []pruneQuery{
		{"sessions", `DELETE FROM sessions WHERE expires_at <= ?`},
		{"authorization codes", `DELETE FROM auth_codes WHERE expires_at <= ?`},
		{"device codes", `DELETE FROM device_codes WHERE expires_at <= ?`},
		{"WebAuthn challenges", `DELETE FROM webauthn_challenges WHERE expires_at <= ?`},
	})
}
