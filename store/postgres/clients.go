package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// CreateClient stores c. A client with the same ID already stored makes it fail
// with an error wrapping store.ErrConflict, so that two administrators
// registering one ID at once cannot silently overwrite each other.
//
// String slices are stored as JSON arrays and a nil or empty one reads back as
// nil; a nil or empty SecretHash or JWKS reads back as nil. Durations keep their
// nanoseconds and times their nanoseconds (read back in UTC). Text PostgreSQL
// cannot hold (invalid UTF-8, NUL characters) is refused.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	return insert(ctx, s, fmt.Sprintf("create client %q", c.ID), c, columns.ClientToRow,
		`INSERT INTO clients (`+columns.ClientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
		"id", c.ID, "name", c.Name, "jwks_uri", c.JWKSURI)
}

// GetClient returns the client with the given ID, or an error wrapping
// store.ErrNotFound.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	return getRow(ctx, s, "get client", id, `SELECT `+columns.ClientColumns+` FROM clients WHERE id = $1`, scanClient)
}

// ListClients returns every stored client ordered by ID (byte order, so the
// order does not depend on a collation), never nil.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	return listRows(ctx, s, "list clients", `SELECT `+columns.ClientColumns+` FROM clients ORDER BY id COLLATE "C"`, scanClient)
}

// DeleteClient deletes the client with the given ID, or fails with an error
// wrapping store.ErrNotFound. The refresh tokens issued to it are deleted in the
// same transaction: a deleted client's sessions must end with it, and must not
// come back to life if a client with the same ID is registered later.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if !storable(id) {
		return fmt.Errorf("store/postgres: delete client %q: %w", id, store.ErrNotFound)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	return s.inTx(ctx, fmt.Sprintf("delete client %q", id), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("store/postgres: delete client %q: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("store/postgres: delete client %q: %w", id, store.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE client_id = $1`, id); err != nil {
			return fmt.Errorf("store/postgres: delete client %q: delete its refresh tokens: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM consents WHERE client_id = $1`, id); err != nil {
			return fmt.Errorf("store/postgres: delete client %q: delete its consents: %w", id, err)
		}
		return nil
	}, nil)
}

// UpdateClient replaces every column of the stored client c.ID but
// created_at, or fails with an error wrapping store.ErrNotFound. It is last
// writer wins: no version is compared, so the later of two concurrent updates
// is what stays, whole. Text PostgreSQL cannot hold is refused.
func (s *Store) UpdateClient(ctx context.Context, c store.Client) error {
	r, err := storableRow(fmt.Sprintf("update client %q", c.ID), c, columns.ClientToRow,
		"id", c.ID, "name", c.Name, "jwks_uri", c.JWKSURI)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE clients SET name = $2, secret_hash = $3, jwks = $4, jwks_uri = $5,
		grant_types = $6, scopes = $7, audience = $8, redirect_uris = $9, is_public = $10, access_ttl = $11,
		not_before_delay = $12, allow_bare_assertion = $13, may_introspect = $14,
		previous_secret_hash = $15, previous_secret_expires_at = $16, allowed_origins = $17, third_party = $18, post_logout_redirect_uris = $19, signing_alg = $20,
		dpop_bound_access_tokens = $21 WHERE id = $1`,
		r.ID, r.Name, r.SecretHash, r.JWKS, r.JWKSURI, r.GrantTypes, r.Scopes, r.Audience, r.RedirectURIs,
		r.Public, r.AccessTTL, r.NotBeforeDelay, r.AllowBareAssertion, r.Introspect,
		r.PreviousSecretHash, r.PreviousSecretExpires, r.AllowedOrigins, r.ThirdParty, r.PostLogoutRedirectURIs, r.SigningAlg,
		r.DPoPBound)
	if err != nil {
		return writeError(fmt.Sprintf("update client %q", c.ID), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store/postgres: update client %q: %w", c.ID, store.ErrNotFound)
	}
	return nil
}

// scanClient reads one clients row selected with columns.ClientColumns.
func scanClient(r pgx.Row) (store.Client, error) { return columns.Scan(r.Scan, columns.ClientFromRow) }

// ClientsVersion returns a counter that every write to clients, from any
// replica or the CLI, increases (trigger of migration 0014): a cache of
// client records is current while it stays the same.
func (s *Store) ClientsVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT version FROM clients_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store/postgres: clients version: %w", err)
	}
	return v, nil
}
