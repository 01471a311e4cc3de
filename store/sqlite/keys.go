package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/keygate/keygate/internal/faults"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// FaultBeforeCommit is the faults.Inject point reached in ApplyKeyChange after
// every write of the change has been made and just before the transaction
// commits. Crash-safety tests kill the process there to check that a change is
// either wholly kept or wholly lost.
const FaultBeforeCommit = "store.before-commit"

// ListKeys returns every stored signing key, revoked ones included, ordered by
// creation time and then kid, so that callers building the JWKS or deciding a
// rotation see the whole key set as of one moment.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	return listRows(ctx, s, "list keys", `SELECT `+columns.KeyColumns+` FROM signing_keys ORDER BY created_at, kid`, scanKey)
}

// scanKey reads one signing_keys row selected with columns.KeyColumns.
func scanKey(rows rowScanner) (store.Key, error) { return columns.Scan(rows.Scan, columns.KeyFromRow) }

// KeySetVersion returns the key-set version, a counter bumped by every applied
// KeyChange. It is one indexed read of a one-row table, cheap enough for servers
// to poll every second or two and reload their keys only when it moves, which is
// how they notice rotations made by the CLI or another replica.
func (s *Store) KeySetVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.rdb.QueryRowContext(ctx, `SELECT version FROM key_set_meta WHERE id = 1`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: read key-set version: %w", err)
	}
	return v, nil
}

// ApplyKeyChange applies c in one transaction, in the order Updates, Deletes,
// Inserts, and bumps the key-set version; or, if any precondition fails, applies
// none of it and returns an error wrapping store.ErrConflict. A precondition
// fails when an updated or deleted key is missing or not in its From state, or
// when a write would break a uniqueness rule: a duplicate kid, a second active
// key or a second next key. Because SQLite checks uniqueness per statement, a
// change that hands over a state must order its Updates accordingly (retire the
// active key before promoting the next one).
//
// An update replaces the key's mutable fields (state, sealed, and the activate,
// retired, remove-after and revoked times); its KID selects the row, and its
// Algorithm, PublicDER and CreatedAt are ignored because they never change. An
// empty change writes nothing and leaves the version alone.
func (s *Store) ApplyKeyChange(ctx context.Context, c store.KeyChange) error {
	if c.Empty() {
		return nil
	}
	// Validate and convert everything before taking the write lock.
	updates, inserts, err := keyChangeRows(c)
	if err != nil {
		return err
	}

	return s.inTx(ctx, "apply key change", func(tx *sql.Tx) error {
		if err := updateKeys(ctx, tx, c.Updates, updates); err != nil {
			return err
		}
		if err := deleteKeys(ctx, tx, c.Deletes); err != nil {
			return err
		}
		if err := insertKeys(ctx, tx, inserts); err != nil {
			return err
		}
		if err := bumpKeySetVersion(ctx, tx); err != nil {
			return err
		}
		faults.Inject(FaultBeforeCommit)
		return nil
	})
}

// keyChangeRows validates c and converts its updates and inserts for binding.
func keyChangeRows(c store.KeyChange) (updates, inserts []columns.KeyRow, err error) {
	updates = make([]columns.KeyRow, len(c.Updates))
	for i, u := range c.Updates {
		if !u.From.Valid() {
			return nil, nil, fmt.Errorf("store/sqlite: update key %q: invalid from state %q", u.Key.KID, u.From)
		}
		if updates[i], err = columns.KeyToRow(u.Key); err != nil {
			return nil, nil, fmt.Errorf("store/sqlite: update key %q: %w", u.Key.KID, err)
		}
	}
	for _, d := range c.Deletes {
		if d.KID == "" || !d.From.Valid() {
			return nil, nil, fmt.Errorf("store/sqlite: delete key %q from state %q: invalid kid or state", d.KID, d.From)
		}
	}
	inserts = make([]columns.KeyRow, len(c.Inserts))
	for i, k := range c.Inserts {
		if inserts[i], err = columns.KeyToRow(k); err != nil {
			return nil, nil, fmt.Errorf("store/sqlite: insert key %q: %w", k.KID, err)
		}
		if len(k.PublicDER) == 0 {
			return nil, nil, fmt.Errorf("store/sqlite: insert key %q: empty public key", k.KID)
		}
	}
	return updates, inserts, nil
}

// updateKeys applies the guarded updates; rows[i] is ups[i].Key converted.
func updateKeys(ctx context.Context, tx *sql.Tx, ups []store.KeyUpdate, rows []columns.KeyRow) error {
	for i, u := range ups {
		r := rows[i]
		res, err := tx.ExecContext(ctx, `UPDATE signing_keys
			SET state = ?, sealed = ?, activate_at = ?, retired_at = ?, remove_after = ?, revoked_at = ?
			WHERE kid = ? AND state = ?`,
			r.State, r.Sealed, r.Activate, r.Retired, r.Remove, r.Revoked, r.KID, string(u.From))
		if err != nil {
			return writeError(fmt.Sprintf("update key %q from state %q to %q", r.KID, u.From, r.State), err)
		}
		if err := checkOneRow(ctx, tx, res, "update", r.KID, u.From); err != nil {
			return err
		}
	}
	return nil
}

// deleteKeys applies the guarded deletes.
func deleteKeys(ctx context.Context, tx *sql.Tx, dels []store.KeyDelete) error {
	for _, d := range dels {
		res, err := tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE kid = ? AND state = ?`,
			d.KID, string(d.From))
		if err != nil {
			return writeError(fmt.Sprintf("delete key %q in state %q", d.KID, d.From), err)
		}
		if err := checkOneRow(ctx, tx, res, "delete", d.KID, d.From); err != nil {
			return err
		}
	}
	return nil
}

// insertKeys inserts the new keys.
func insertKeys(ctx context.Context, tx *sql.Tx, rows []columns.KeyRow) error {
	for _, r := range rows {
		_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys
			(kid, algorithm, state, public_der, sealed, created_at, activate_at, retired_at, remove_after, revoked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.Args()...)
		if err != nil {
			return writeError(fmt.Sprintf("insert key %q in state %q", r.KID, r.State), err)
		}
	}
	return nil
}

// bumpKeySetVersion increments the key-set version inside the change's transaction.
func bumpKeySetVersion(ctx context.Context, tx *sql.Tx) error {
	res, err := tx.ExecContext(ctx, `UPDATE key_set_meta SET version = version + 1 WHERE id = 1`)
	if err != nil {
		return fmt.Errorf("store/sqlite: apply key change: bump version: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("store/sqlite: apply key change: bump version: %d rows affected (err %v), want 1: key_set_meta is damaged", n, err)
	}
	return nil
}

// checkOneRow turns a guarded UPDATE or DELETE that matched no row into
// store.ErrConflict, saying what the key's state actually is so the message
// explains the lost race.
func checkOneRow(ctx context.Context, tx *sql.Tx, res sql.Result, op, kid string, from store.KeyState) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store/sqlite: %s key %q: %w", op, kid, err)
	}
	if n == 1 {
		return nil
	}
	var now string
	switch err := tx.QueryRowContext(ctx, `SELECT state FROM signing_keys WHERE kid = ?`, kid).Scan(&now); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store/sqlite: %s key %q: expected state %q, but no such key: %w", op, kid, from, store.ErrConflict)
	case err != nil:
		return fmt.Errorf("store/sqlite: %s key %q: expected state %q, but it is not (reading its state failed: %v): %w", op, kid, from, err, store.ErrConflict)
	default:
		return fmt.Errorf("store/sqlite: %s key %q: expected state %q, but it is %q: %w", op, kid, from, now, store.ErrConflict)
	}
}

// writeError wraps a failed write. A uniqueness violation (duplicate kid, second
// active or next key) is a lost race or a stale decision, so it wraps
// store.ErrConflict as well as the driver's error.
func writeError(what string, err error) error {
	if isUniqueViolation(err) {
		return fmt.Errorf("store/sqlite: %s: %w: %w", what, store.ErrConflict, err)
	}
	return fmt.Errorf("store/sqlite: %s: %w", what, err)
}

// isUniqueViolation reports whether err is SQLite's UNIQUE or PRIMARY KEY
// constraint failure, read from the driver's extended result code (which the
// driver enables on every connection) rather than from the message text.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}
