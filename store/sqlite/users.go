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

// CreateUser stores u. It fails with an error wrapping store.ErrConflict if the
// ID is taken, if another user has the same username regardless of case, or if
// u has an email and another user has the same email regardless of case; these
// rules are unique indexes, so they hold against concurrent writers. Any number
// of users may have no email (an empty Email is stored as NULL).
//
// The username and email must be valid UTF-8, since folding case would change
// invalid bytes and so could make different names collide.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	return insert(ctx, s, fmt.Sprintf("create user %q (username %q, email %q)", u.ID, u.Username, u.Email), u, columns.UserToRow,
		`INSERT INTO users
		(`+columns.UserInsertColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
}

// GetUser returns the user with the given ID, or an error wrapping
// store.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	return getRow(ctx, s, "get user", id, `SELECT `+columns.UserColumns+` FROM users WHERE id = ?`, scanUser)
}

// GetUserByLogin returns the user whose username or email is login, both
// compared without regard to case, so that people may sign in with either. If
// one user's username and another's email both match, the username wins: a
// username is what the login form asks for first, and preferring it makes the
// answer the same on every call. It fails with an error wrapping
// store.ErrNotFound when nobody matches (always for an empty login).
func (s *Store) GetUserByLogin(ctx context.Context, login string) (store.User, error) {
	if login == "" || !utf8.ValidString(login) {
		return store.User{}, fmt.Errorf("store/sqlite: get user by login %q: %w", login, store.ErrNotFound)
	}
	key := columns.FoldName(login)
	u, err := scanUser(s.rdb.QueryRowContext(ctx, `SELECT `+columns.UserColumns+` FROM users
		WHERE username_lower = ? OR email_lower = ?
		ORDER BY CASE WHEN username_lower = ? THEN 0 ELSE 1 END
		LIMIT 1`, key, key, key))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.User{}, fmt.Errorf("store/sqlite: get user by login %q: %w", login, store.ErrNotFound)
	case err != nil:
		return store.User{}, fmt.Errorf("store/sqlite: get user by login %q: %w", login, err)
	}
	return u, nil
}

// ListUsers returns every user ordered by lowercased username in byte order
// (the order does not depend on a collation, and is total because lowercased
// usernames are unique), never nil.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return listRows(ctx, s, "list users", `SELECT `+columns.UserColumns+` FROM users ORDER BY username_lower`, scanUser)
}

// DeleteUser deletes the user with the given ID and, in the same transaction,
// every refresh token whose subject is that ID, so that a deleted user's
// sessions cannot be refreshed. It fails with an error wrapping
// store.ErrNotFound if there is no such user, and with store.ErrLastAdmin if
// the user is the only enabled admin (see guardLastAdmin).
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	what := fmt.Sprintf("delete user %q", id)
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		if err := guardLastAdmin(ctx, tx, what, id, false); err != nil {
			return err
		}
		if err := execOne(ctx, tx, what, `DELETE FROM users WHERE id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE subject = ?`, id); err != nil {
			return fmt.Errorf("store/sqlite: %s: delete their refresh tokens: %w", what, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM consents WHERE user_id = ?`, id); err != nil {
			return fmt.Errorf("store/sqlite: %s: delete their consents: %w", what, err)
		}
		for _, q := range []string{`DELETE FROM user_totp WHERE user_id = ?`, `DELETE FROM recovery_codes WHERE user_id = ?`,
			`DELETE FROM passkeys WHERE user_id = ?`} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("store/sqlite: %s: delete their second factors and passkeys: %w", what, err)
			}
		}
		return nil
	})
}

// UpdateUserPassword replaces the user's password hash and sets UpdatedAt to
// now, or fails with an error wrapping store.ErrNotFound. It leaves the user's
// refresh tokens alone: whether a password change ends other sessions is the
// caller's decision (RevokeRefreshFamily).
func (s *Store) UpdateUserPassword(ctx context.Context, id, hash string, now time.Time) error {
	updated, err := columns.ToNanos(now)
	if err != nil {
		return fmt.Errorf("store/sqlite: update password of user %q: %w", id, err)
	}
	if updated == 0 {
		return fmt.Errorf("store/sqlite: update password of user %q: zero time", id)
	}
	return execOne(ctx, s.db, fmt.Sprintf("update password of user %q", id),
		`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, hash, updated, id)
}

// UpdateUser replaces the email, name, admin flag, disabled_at and updated_at
// of the stored user u.ID, or fails with an error wrapping store.ErrNotFound;
// the username, password hash and created_at are kept. An email another user
// has, regardless of case, is an error wrapping store.ErrConflict (the unique
// index decides, so it holds against concurrent writers). It is last writer
// wins. Leaving the only enabled admin demoted or disabled is an error
// wrapping store.ErrLastAdmin (see guardLastAdmin).
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	what := fmt.Sprintf("update user %q (email %q)", u.ID, u.Email)
	r, err := columns.UserToRow(u)
	if err != nil {
		return fmt.Errorf("store/sqlite: update user %q: %w", u.ID, err)
	}
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		if err := guardLastAdmin(ctx, tx, what, u.ID, u.Admin && !u.Disabled()); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET email = ?, email_lower = ?, name = ?, admin = ?,
			updated_at = ?, disabled_at = ? WHERE id = ?`,
			r.Email, r.EmailLower, r.Name, r.Admin, r.Updated, r.Disabled, r.ID)
		if err != nil {
			return writeError(what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store/sqlite: %s: %w", what, err)
		} else if n == 0 {
			return fmt.Errorf("store/sqlite: update user %q: %w", u.ID, store.ErrNotFound)
		}
		return nil
	})
}

// guardLastAdmin fails with an error wrapping store.ErrLastAdmin when user
// id is an enabled admin, no other user is one, and the write about to be
// made in tx leaves it not an enabled admin (stays is false). It runs in the
// write's own transaction, which BEGIN IMMEDIATE (_txlock=immediate) opened
// holding SQLite's write lock: no other writer can change the admins between
// this count and the write.
func guardLastAdmin(ctx context.Context, tx *sql.Tx, what, id string, stays bool) error {
	if stays {
		return nil
	}
	var self, others int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE id = ?), count(*) FILTER (WHERE id <> ?)
		FROM users WHERE admin = 1 AND disabled_at = 0`, id, id).Scan(&self, &others)
	if err != nil {
		return fmt.Errorf("store/sqlite: %s: count enabled admins: %w", what, err)
	}
	if self == 1 && others == 0 {
		return fmt.Errorf("store/sqlite: %s: %w", what, store.ErrLastAdmin)
	}
	return nil
}

// scanUser reads one users row selected with columns.UserColumns.
func scanUser(r rowScanner) (store.User, error) {
	return columns.Scan(r.Scan, columns.NoError(columns.UserFromRow))
}
