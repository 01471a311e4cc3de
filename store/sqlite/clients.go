package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// CreateClient stores c. A client with the same ID already stored makes it fail
// with an error wrapping store.ErrConflict, so that two administrators
// registering one ID at once cannot silently overwrite each other.
//
// String slices are stored as JSON arrays and a nil or empty one reads back as
// nil; a nil or empty SecretHash or JWKS reads back as nil. Durations keep their
// nanoseconds and times their nanoseconds (read back in UTC).
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	return insert(ctx, s, fmt.Sprintf("create client %q", c.ID), c, columns.ClientToRow,
		`INSERT INTO clients (`+columns.ClientColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
}

// GetClient returns the client with the given ID, or an error wrapping
// store.ErrNotFound.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	return getRow(ctx, s, "get client", id, `SELECT `+columns.ClientColumns+` FROM clients WHERE id = ?`, scanClient)
}

// ListClients returns every stored client ordered by ID (byte order, so the
// order does not depend on a collation), never nil.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	return listRows(ctx, s, "list clients", `SELECT `+columns.ClientColumns+` FROM clients ORDER BY id`, scanClient)
}

// DeleteClient deletes the client with the given ID, or fails with an error
// wrapping store.ErrNotFound. The refresh tokens issued to it are deleted in the
// same transaction: a deleted client's sessions must end with it, and must not
// come back to life if a client with the same ID is registered later.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	what := fmt.Sprintf("delete client %q", id)
	return s.inTx(ctx, what, func(tx *sql.Tx) error {
		if err := execOne(ctx, tx, what, `DELETE FROM clients WHERE id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE client_id = ?`, id); err != nil {
			return fmt.Errorf("store/sqlite: %s: delete its refresh tokens: %w", what, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM consents WHERE client_id = ?`, id); err != nil {
			return fmt.Errorf("store/sqlite: %s: delete its consents: %w", what, err)
		}
		return nil
	})
}

// rowScanner is what scanClient and the other scanners need, satisfied by both
// *sql.Row and *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// UpdateClient replaces every column of the stored client c.ID but
// created_at, or fails with an error wrapping store.ErrNotFound. It is last
// writer wins: no version is compared, so the later of two concurrent updates
// is what stays, whole.
func (s *Store) UpdateClient(ctx context.Context, c store.Client) error {
	r, err := columns.ClientToRow(c)
	if err != nil {
		return fmt.Errorf("store/sqlite: update client %q: %w", c.ID, err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE clients SET name = ?, secret_hash = ?, jwks = ?, jwks_uri = ?,
		grant_types = ?, scopes = ?, audience = ?, redirect_uris = ?, is_public = ?, access_ttl = ?,
		not_before_delay = ?, allow_bare_assertion = ?, may_introspect = ?,
		previous_secret_hash = ?, previous_secret_expires_at = ?, allowed_origins = ?, third_party = ?, post_logout_redirect_uris = ?, signing_alg = ?,
		dpop_bound_access_tokens = ? WHERE id = ?`,
		r.Name, r.SecretHash, r.JWKS, r.JWKSURI, r.GrantTypes, r.Scopes, r.Audience, r.RedirectURIs,
		r.Public, r.AccessTTL, r.NotBeforeDelay, r.AllowBareAssertion, r.Introspect,
		r.PreviousSecretHash, r.PreviousSecretExpires, r.AllowedOrigins, r.ThirdParty, r.PostLogoutRedirectURIs, r.SigningAlg, r.DPoPBound, r.ID)
	if err != nil {
		return writeError(fmt.Sprintf("update client %q", c.ID), err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store/sqlite: update client %q: %w", c.ID, err)
	} else if n == 0 {
		return fmt.Errorf("store/sqlite: update client %q: %w", c.ID, store.ErrNotFound)
	}
	return nil
}

// scanClient reads one clients row selected with columns.ClientColumns.
func scanClient(r rowScanner) (store.Client, error) {
	return columns.Scan(r.Scan, columns.ClientFromRow)
}

// ClientsVersion returns a counter that every write to clients, from any
// process using the file, increases (triggers of migration 0013): a cache of
// client records is current while it stays the same.
func (s *Store) ClientsVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM clients_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store/sqlite: clients version: %w", err)
	}
	return v, nil
}
