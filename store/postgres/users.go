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

// CreateUser stores u. It fails with an error wrapping store.ErrConflict if the
// ID is taken, if another user has the same username regardless of case, or if
// u has an email and another user has the same email regardless of case; these
// rules are unique indexes, so they hold against concurrent writers. Any number
// of users may have no email (an empty Email is stored as NULL).
//
// The username and email must be valid UTF-8, since folding case would change
// invalid bytes and so could make different names collide; and no text may
// contain a NUL character, which PostgreSQL cannot store.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	return insert(ctx, s, fmt.Sprintf("create user %q (username %q, email %q)", u.ID, u.Username, u.Email), u, columns.UserToRow,
		`INSERT INTO users
		(`+columns.UserInsertColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		"id", u.ID, "username", u.Username, "email", u.Email,
		"name", u.Name, "password hash", u.PasswordHash)
}

// GetUser returns the user with the given ID, or an error wrapping
// store.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	return getRow(ctx, s, "get user", id, `SELECT `+columns.UserColumns+` FROM users WHERE id = $1`, scanUser)
}

// GetUserByLogin returns the user whose username or email is login, both
// compared without regard to case, so that people may sign in with either. If
// one user's username and another's email both match, the username wins: a
// username is what the login form asks for first, and preferring it makes the
// answer the same on every call. It fails with an error wrapping
// store.ErrNotFound when nobody matches (always for an empty login, and for
// one that is not valid UTF-8 or contains a NUL character, which no stored
// name can be).
func (s *Store) GetUserByLogin(ctx context.Context, login string) (store.User, error) {
	if login == "" || !storable(login) {
		return store.User{}, fmt.Errorf("store/postgres: get user by login %q: %w", login, store.ErrNotFound)
	}
	key := columns.FoldName(login)
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+columns.UserColumns+` FROM users
		WHERE username_lower = $1 OR email_lower = $1
		ORDER BY CASE WHEN username_lower = $1 THEN 0 ELSE 1 END
		LIMIT 1`, key))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.User{}, fmt.Errorf("store/postgres: get user by login %q: %w", login, store.ErrNotFound)
	case err != nil:
		return store.User{}, fmt.Errorf("store/postgres: get user by login %q: %w", login, err)
	}
	return u, nil
}

// ListUsers returns every user ordered by lowercased username in byte order
// (the order does not depend on a collation, and is total because lowercased
// usernames are unique), never nil.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return listRows(ctx, s, "list users", `SELECT `+columns.UserColumns+` FROM users ORDER BY username_lower COLLATE "C"`, scanUser)
}

// DeleteUser deletes the user with the given ID and, in the same transaction,
// every refresh token whose subject is that ID, so that a deleted user's
// sessions cannot be refreshed. It fails with an error wrapping
// store.ErrNotFound if there is no such user.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if !storable(id) {
		return fmt.Errorf("store/postgres: delete user %q: %w", id, store.ErrNotFound)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	return s.inTx(ctx, fmt.Sprintf("delete user %q", id), func(tx pgx.Tx) error {
		if err := guardLastAdmin(ctx, tx, fmt.Sprintf("delete user %q", id), id, false); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("store/postgres: delete user %q: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("store/postgres: delete user %q: %w", id, store.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE subject = $1`, id); err != nil {
			return fmt.Errorf("store/postgres: delete user %q: delete their refresh tokens: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM consents WHERE user_id = $1`, id); err != nil {
			return fmt.Errorf("store/postgres: delete user %q: delete their consents: %w", id, err)
		}
		for _, q := range []string{`DELETE FROM user_totp WHERE user_id = $1`, `DELETE FROM recovery_codes WHERE user_id = $1`,
			`DELETE FROM passkeys WHERE user_id = $1`} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return fmt.Errorf("store/postgres: delete user %q: delete their second factors and passkeys: %w", id, err)
			}
		}
		return nil
	}, nil)
}

// UpdateUserPassword replaces the user's password hash and sets UpdatedAt to
// now, or fails with an error wrapping store.ErrNotFound. It leaves the user's
// refresh tokens alone: whether a password change ends other sessions is the
// caller's decision (RevokeRefreshFamily).
func (s *Store) UpdateUserPassword(ctx context.Context, id, hash string, now time.Time) error {
	updated, err := columns.RequiredNanos(now)
	if err != nil {
		return fmt.Errorf("store/postgres: update password of user %q: %w", id, err)
	}
	if err := checkText("password hash", hash); err != nil {
		return fmt.Errorf("store/postgres: update password of user %q: %w", id, err)
	}
	if !storable(id) {
		return fmt.Errorf("store/postgres: update password of user %q: %w", id, store.ErrNotFound)
	}
	return s.execOne(ctx, fmt.Sprintf("update password of user %q", id),
		`UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`, hash, updated, id)
}

// UpdateUser replaces the email, name, admin flag, disabled_at and updated_at
// of the stored user u.ID, or fails with an error wrapping store.ErrNotFound;
// the username, password hash and created_at are kept. An email another user
// has, regardless of case, is an error wrapping store.ErrConflict (the unique
// index decides, so it holds against concurrent writers). It is last writer
// wins. Text PostgreSQL cannot hold is refused. Leaving the only enabled
// admin demoted or disabled is an error wrapping store.ErrLastAdmin (see
// guardLastAdmin).
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	r, err := storableRow(fmt.Sprintf("update user %q", u.ID), u, columns.UserToRow,
		"id", u.ID, "username", u.Username, "email", u.Email, "name", u.Name)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	what := fmt.Sprintf("update user %q (email %q)", u.ID, u.Email)
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		if err := guardLastAdmin(ctx, tx, what, u.ID, u.Admin && !u.Disabled()); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE users SET email = $2, email_lower = $3, name = $4, admin = $5,
			updated_at = $6, disabled_at = $7 WHERE id = $1`,
			r.ID, r.Email, r.EmailLower, r.Name, r.Admin, r.Updated, r.Disabled)
		if err != nil {
			return writeError(what, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("store/postgres: update user %q: %w", u.ID, store.ErrNotFound)
		}
		return nil
	}, nil)
}

// guardLastAdmin fails with an error wrapping store.ErrLastAdmin when user
// id is an enabled admin, no other user is one, and the write about to be
// made in tx leaves it not an enabled admin (stays is false). It locks every
// enabled admin's row (FOR UPDATE, in id order so that concurrent callers
// queue rather than deadlock) until tx ends: a concurrent demotion of
// another admin waits, and once it commits the row no longer matches and is
// not counted, so of two transactions demoting the last two admins the
// second sees one admin left and is refused.
func guardLastAdmin(ctx context.Context, tx pgx.Tx, what, id string, stays bool) error {
	if stays {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT id FROM users WHERE admin AND disabled_at = 0 ORDER BY id FOR UPDATE`)
	if err != nil {
		return fmt.Errorf("store/postgres: %s: lock enabled admins: %w", what, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("store/postgres: %s: lock enabled admins: %w", what, err)
	}
	if len(ids) == 1 && ids[0] == id {
		return fmt.Errorf("store/postgres: %s: %w", what, store.ErrLastAdmin)
	}
	return nil
}

// scanUser reads one users row selected with columns.UserColumns.
func scanUser(r pgx.Row) (store.User, error) {
	return columns.Scan(r.Scan, columns.NoError(columns.UserFromRow))
}
