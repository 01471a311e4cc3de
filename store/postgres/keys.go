package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/internal/faults"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// FaultBeforeCommit is the faults.Inject point reached in ApplyKeyChange after
// every write of the change has been made and just before the transaction
// commits. Crash-safety tests kill the process there to check that a change is
// either wholly kept or wholly lost. It is the same point as the SQLite
// backend's.
const FaultBeforeCommit = "store.before-commit"

// KeySetChannel is the channel on which ApplyKeyChange announces every applied
// change (NOTIFY), with "<schema>:<new key-set version>" as the payload;
// WatchKeySet listens on it. Channels are per database, not per schema, so
// the payload names the schema: deployments (or tests) that share a database
// in separate schemas do not wake each other.
const KeySetChannel = "keygate_keys"

// ListKeys returns every stored signing key, revoked ones included, ordered by
// creation time and then kid (in byte order), so that callers building the
// JWKS or deciding a rotation see the whole key set as of one moment (one
// statement, so one snapshot).
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	return listRows(ctx, s, "list keys", `SELECT `+columns.KeyColumns+` FROM signing_keys ORDER BY created_at, kid COLLATE "C"`, scanKey)
}

// scanKey reads one signing_keys row selected with columns.KeyColumns.
func scanKey(rows pgx.Row) (store.Key, error) { return columns.Scan(rows.Scan, columns.KeyFromRow) }

// KeySetVersion returns the key-set version, a counter bumped by every applied
// KeyChange. It is one indexed read of a one-row table, cheap enough for servers
// to poll every second or two and reload their keys only when it moves, which is
// how they notice rotations made by the CLI or another replica when
// notifications (WatchKeySet) are not available.
func (s *Store) KeySetVersion(ctx context.Context) (int64, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT version FROM key_set_meta WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store/postgres: read key-set version: %w", err)
	}
	return v, nil
}

// ApplyKeyChange applies c in one transaction, in the order Updates, Deletes,
// Inserts, and bumps the key-set version; or, if any precondition fails, applies
// none of it and returns an error wrapping store.ErrConflict. A precondition
// fails when an updated or deleted key is missing or not in its From state, or
// when a write would break a uniqueness rule: a duplicate kid, a second active
// key or a second next key. PostgreSQL checks uniqueness row by row, so a
// change that hands over a state must order its Updates accordingly (retire
// the active key before promoting the next one), as with SQLite.
//
// An update replaces the key's mutable fields (state, sealed, and the activate,
// retired, remove-after and revoked times); its KID selects the row, and its
// Algorithm, PublicDER and CreatedAt are ignored because they never change. An
// empty change writes nothing and leaves the version alone.
//
// The transaction runs at READ COMMITTED: each guarded UPDATE or DELETE locks
// its row and re-checks the expected state against the latest committed
// version of it, and the unique indexes make a concurrent second active or
// next key wait for the first and then fail, so of concurrent changes decided
// from the same key set exactly one is applied. A change that deadlocks with
// another is retried, and reported as a conflict if it keeps doing so.
//
// An applied change is announced on KeySetChannel with the new version as the
// payload; the notification is part of the transaction, so it is delivered
// when (and only if) the change commits.
func (s *Store) ApplyKeyChange(ctx context.Context, c store.KeyChange) error {
	if c.Empty() {
		return nil
	}
	// Validate and convert everything before starting the transaction.
	updates, inserts, err := keyChangeRows(c)
	if err != nil {
		return err
	}

	ctx, cancel := s.callContext(ctx)
	defer cancel()
	return s.inTx(ctx, "apply key change", func(tx pgx.Tx) error {
		// Key-set changes are rare and small: taking the version row first
		// makes concurrent ones (replicas, the CLI) queue instead of
		// deadlocking when they update the same keys in different orders,
		// which PostgreSQL would only break after deadlock_timeout (1 s by
		// default) by aborting one. The retry on a deadlock stays for locks
		// taken by anything else.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM key_set_meta WHERE id = 1 FOR UPDATE`); err != nil {
			return writeError("apply key change: lock the key set", err)
		}
		if err := updateKeys(ctx, tx, c.Updates, updates); err != nil {
			return err
		}
		if err := deleteKeys(ctx, tx, c.Deletes); err != nil {
			return err
		}
		if err := insertKeys(ctx, tx, inserts); err != nil {
			return err
		}
		return bumpKeySetVersion(ctx, tx)
	}, func() { faults.Inject(FaultBeforeCommit) })
}

// keyChangeRows validates c and converts its updates and inserts for binding.
func keyChangeRows(c store.KeyChange) (updates, inserts []columns.KeyRow, err error) {
	updates = make([]columns.KeyRow, len(c.Updates))
	for i, u := range c.Updates {
		if !u.From.Valid() {
			return nil, nil, fmt.Errorf("store/postgres: update key %q: invalid from state %q", u.Key.KID, u.From)
		}
		if updates[i], err = toRow(u.Key); err != nil {
			return nil, nil, fmt.Errorf("store/postgres: update key %q: %w", u.Key.KID, err)
		}
	}
	for _, d := range c.Deletes {
		if d.KID == "" || !d.From.Valid() {
			return nil, nil, fmt.Errorf("store/postgres: delete key %q from state %q: invalid kid or state", d.KID, d.From)
		}
		if err := checkText("kid", d.KID); err != nil {
			return nil, nil, fmt.Errorf("store/postgres: delete key: %w", err)
		}
	}
	inserts = make([]columns.KeyRow, len(c.Inserts))
	for i, k := range c.Inserts {
		if inserts[i], err = toRow(k); err != nil {
			return nil, nil, fmt.Errorf("store/postgres: insert key %q: %w", k.KID, err)
		}
		if len(k.PublicDER) == 0 {
			return nil, nil, fmt.Errorf("store/postgres: insert key %q: empty public key", k.KID)
		}
		if err := checkText("algorithm", k.Algorithm); err != nil {
			return nil, nil, fmt.Errorf("store/postgres: insert key %q: %w", k.KID, err)
		}
	}
	return updates, inserts, nil
}

// updateKeys applies the guarded updates; rows[i] is ups[i].Key converted.
func updateKeys(ctx context.Context, tx pgx.Tx, ups []store.KeyUpdate, rows []columns.KeyRow) error {
	for i, u := range ups {
		r := rows[i]
		tag, err := tx.Exec(ctx, `UPDATE signing_keys
			SET state = $1, sealed = $2, activate_at = $3, retired_at = $4, remove_after = $5, revoked_at = $6
			WHERE kid = $7 AND state = $8`,
			r.State, r.Sealed, r.Activate, r.Retired, r.Remove, r.Revoked, r.KID, string(u.From))
		if err != nil {
			return writeError(fmt.Sprintf("update key %q from state %q to %q", r.KID, u.From, r.State), err)
		}
		if err := checkOneRow(ctx, tx, tag.RowsAffected(), "update", r.KID, u.From); err != nil {
			return err
		}
	}
	return nil
}

// deleteKeys applies the guarded deletes.
func deleteKeys(ctx context.Context, tx pgx.Tx, dels []store.KeyDelete) error {
	for _, d := range dels {
		tag, err := tx.Exec(ctx, `DELETE FROM signing_keys WHERE kid = $1 AND state = $2`, d.KID, string(d.From))
		if err != nil {
			return writeError(fmt.Sprintf("delete key %q in state %q", d.KID, d.From), err)
		}
		if err := checkOneRow(ctx, tx, tag.RowsAffected(), "delete", d.KID, d.From); err != nil {
			return err
		}
	}
	return nil
}

// insertKeys inserts the new keys.
func insertKeys(ctx context.Context, tx pgx.Tx, rows []columns.KeyRow) error {
	for _, r := range rows {
		_, err := tx.Exec(ctx, `INSERT INTO signing_keys
			(kid, algorithm, state, public_der, sealed, created_at, activate_at, retired_at, remove_after, revoked_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, r.Args()...)
		if err != nil {
			return writeError(fmt.Sprintf("insert key %q in state %q", r.KID, r.State), err)
		}
	}
	return nil
}

// bumpKeySetVersion increments the key-set version and announces it on
// KeySetChannel; the notification is delivered when the transaction commits.
func bumpKeySetVersion(ctx context.Context, tx pgx.Tx) error {
	var version int64
	err := tx.QueryRow(ctx, `UPDATE key_set_meta SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return errors.New("store/postgres: apply key change: bump version: no key_set_meta row: the schema is damaged")
	case err != nil:
		return fmt.Errorf("store/postgres: apply key change: bump version: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, current_schema() || ':' || $2)`, KeySetChannel, strconv.FormatInt(version, 10)); err != nil {
		return fmt.Errorf("store/postgres: apply key change: notify: %w", err)
	}
	return nil
}

// checkOneRow turns a guarded UPDATE or DELETE that matched no row into
// store.ErrConflict, saying what the key's state actually is so the message
// explains the lost race.
func checkOneRow(ctx context.Context, tx pgx.Tx, n int64, op, kid string, from store.KeyState) error {
	if n == 1 {
		return nil
	}
	var now string
	switch err := tx.QueryRow(ctx, `SELECT state FROM signing_keys WHERE kid = $1`, kid).Scan(&now); {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("store/postgres: %s key %q: expected state %q, but no such key: %w", op, kid, from, store.ErrConflict)
	case err != nil:
		return fmt.Errorf("store/postgres: %s key %q: expected state %q, but it is not (reading its state failed: %v): %w", op, kid, from, err, store.ErrConflict)
	default:
		return fmt.Errorf("store/postgres: %s key %q: expected state %q, but it is %q: %w", op, kid, from, now, store.ErrConflict)
	}
}

// toRow validates k and converts it for binding: the kid must be storable
// in PostgreSQL, and the rest is columns.KeyToRow.
func toRow(k store.Key) (columns.KeyRow, error) {
	if err := checkText("kid", k.KID); err != nil {
		return columns.KeyRow{}, err
	}
	return columns.KeyToRow(k)
}
