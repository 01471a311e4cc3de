package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// insertRefreshSQL inserts one refresh_tokens row (prepared: Store.insertRefresh).
const insertRefreshSQL = `INSERT INTO refresh_tokens (` + columns.RefreshColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// spendRefreshSQL is the guarded spend of a link (prepared: Store.spendRefresh):
// the primary key makes it match at most one row, and only in the next link's
// family; the count of rows changed tells whether it did (a plain UPDATE
// costs less than one that returns a row, and the rare refusal is explained
// afterwards by whyNotSpent).
const spendRefreshSQL = `UPDATE refresh_tokens SET used_at = ?
		WHERE id = ? AND family_id = ? AND used_at = 0 AND revoked_at = 0 AND expires_at > ?`

// isRevokedSQL is the deny-list check (prepared on the read pool: Store.queryRow).
const isRevokedSQL = `SELECT 1 FROM revoked_access_tokens WHERE jti = ?`

// CreateRefreshToken stores the first link of a new family (or any link, as
// given). It fails with an error wrapping store.ErrConflict if the ID is taken.
// ID and FamilyID must be set, and so must ExpiresAt: a link that never
// expires is not a thing Keygate issues. A nil or empty Audience reads back as
// nil.
func (s *Store) CreateRefreshToken(ctx context.Context, rt store.RefreshToken) error {
	r, err := columns.RefreshToRow(rt)
	if err != nil {
		return fmt.Errorf("store/sqlite: create refresh token %q: %w", rt.ID, err)
	}
	if err := s.db.enter(ctx); err != nil {
		return fmt.Errorf("store/sqlite: create refresh token %q: %w", rt.ID, err)
	}
	defer s.db.leave()
	if _, err := s.insertRefresh.ExecContext(ctx, r.Args()...); err != nil {
		return writeError(fmt.Sprintf("create refresh token %q in family %q", r.ID, r.Family), err)
	}
	return nil
}

// GetRefreshToken returns the link with the given ID, spent and revoked ones
// included (so that a caller whose rotation failed can tell reuse, which
// revokes the family, from mere expiry), or an error wrapping
// store.ErrNotFound.
func (s *Store) GetRefreshToken(ctx context.Context, id string) (store.RefreshToken, error) {
	return getRow(ctx, s, "get refresh token", id, `SELECT `+columns.RefreshColumns+` FROM refresh_tokens WHERE id = ?`, scanRefreshToken)
}

// RotateRefreshToken spends the link oldID at now and stores next in its
// place, in one transaction. The spend is a guarded UPDATE that matches only a
// link that is unspent, unrevoked and not expired at now (ExpiresAt after now),
// so of any number of concurrent rotations of one link, on any number of
// replicas sharing the database, exactly one succeeds.
//
// If the link cannot be spent, nothing is written and the error wraps
// store.ErrNotFound when oldID does not exist, and store.ErrConflict when it was
// already spent, is revoked or has expired; the caller then reads the link
// (GetRefreshToken) to tell reuse (UsedAt set: revoke the family) from the
// rest. A next whose ID is taken is also store.ErrConflict, with the old link
// left unspent. next must belong to the old link's family; if it does not, or
// next or now is invalid, the error wraps neither and nothing is written.
//
// Rotations wait for the writer together: whichever caller gets the writer
// runs every rotation waiting at that moment in one transaction, each under a
// savepoint, so that one that fails writes nothing and does not fail the
// others (group commit; see rotations).
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, now time.Time, next store.RefreshToken) error {
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return fmt.Errorf("store/sqlite: rotate refresh token %q: now: %w", oldID, err)
	}
	r, err := columns.RefreshToRow(next)
	if err != nil {
		return fmt.Errorf("store/sqlite: rotate refresh token %q: next token %q: %w", oldID, next.ID, err)
	}
	return s.rot.run(ctx, s, &rotation{ctx: ctx, oldID: oldID, now: now, at: at, next: r, done: make(chan error, 1)})
}

// rotate spends r's link and inserts its next one in tx (r's savepoint).
// Error messages are formatted only on failure: this is the refresh grant's
// hot path.
func (r *rotation) rotate(ctx context.Context, tx *sql.Tx, spend, insert *sql.Stmt) error {
	res, err := spend.ExecContext(ctx, r.at, r.oldID, r.next.Family, r.at)
	if err != nil {
		return fmt.Errorf("store/sqlite: rotate refresh token %q: spend: %w", r.oldID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store/sqlite: rotate refresh token %q: spend: %w", r.oldID, err)
	}
	if n == 0 {
		return whyNotSpent(ctx, tx, r)
	}
	if _, err := insert.ExecContext(ctx, r.next.Args()...); err != nil {
		return writeError(fmt.Sprintf("rotate refresh token %q: insert next token %q", r.oldID, r.next.ID), err)
	}
	return nil
}

// whyNotSpent explains why the guarded spend of r's link matched nothing: no
// such link (store.ErrNotFound), a link that is revoked, spent or expired
// (store.ErrConflict), or a spendable link of another family than r's next
// one (neither).
func whyNotSpent(ctx context.Context, tx *sql.Tx, r *rotation) error {
	var used, revoked, expires int64
	var family string
	err := tx.QueryRowContext(ctx, `SELECT used_at, revoked_at, expires_at, family_id FROM refresh_tokens WHERE id = ?`, r.oldID).
		Scan(&used, &revoked, &expires, &family)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store/sqlite: rotate refresh token %q: %w", r.oldID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("store/sqlite: rotate refresh token %q: not spendable (reading why failed: %v): %w", r.oldID, err, store.ErrConflict)
	case used == 0 && revoked == 0 && expires > r.at:
		return fmt.Errorf("store/sqlite: rotate refresh token %q: next token %q is in family %q, want the old token's family %q",
			r.oldID, r.next.ID, r.next.Family, family)
	default:
		return fmt.Errorf("store/sqlite: rotate refresh token %q: %s: %w", r.oldID, columns.NotSpentReason(used, revoked, expires, r.now), store.ErrConflict)
	}
}

// RevokeRefreshFamily marks every link of the family that is not yet revoked
// as revoked at now, and returns how many it marked (0 for an unknown or
// already revoked family; links revoked earlier keep their time). After it,
// no link of the family can be rotated.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) (int, error) {
	return s.revokeRefresh(ctx, "family_id", "family", familyID, now)
}

// scanRefreshToken reads one refresh_tokens row selected with columns.RefreshColumns.
func scanRefreshToken(r rowScanner) (store.RefreshToken, error) {
	return columns.Scan(r.Scan, columns.RefreshFromRow)
}

// RevokeAccessToken puts the access token with the given jti on the deny list
// until expiresAt, when the token would be rejected as expired anyway and
// PruneExpired may drop the entry. Revoking again is not an error; the entry
// then keeps the later of the two expiries, so a second revocation can never
// shorten the first.
func (s *Store) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	if jti == "" {
		return errors.New("store/sqlite: revoke access token: empty jti")
	}
	exp, err := columns.RequiredNanos(expiresAt)
	if err != nil {
		return fmt.Errorf("store/sqlite: revoke access token %q: expires_at: %w", jti, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?)
		ON CONFLICT (jti) DO UPDATE SET expires_at = CASE
			WHEN excluded.expires_at > revoked_access_tokens.expires_at THEN excluded.expires_at
			ELSE revoked_access_tokens.expires_at END`, jti, exp)
	if err != nil {
		return fmt.Errorf("store/sqlite: revoke access token %q: %w", jti, err)
	}
	return nil
}

// IsAccessTokenRevoked reports whether the access token with the given jti is
// on the deny list. It does not look at the entry's expiry: a token past it is
// rejected for being expired, so the answer for it does not matter.
func (s *Store) IsAccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	var one int
	err := s.queryRow(ctx, isRevokedSQL, jti).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store/sqlite: is access token %q revoked: %w", jti, err)
	}
	return true, nil
}

// RecordAssertion records that the client used a client assertion with the
// given jti, valid until expiresAt, so that the same assertion is refused for
// the rest of its life (RFC 7523 section 3, item 7). It fails with an error
// wrapping store.ErrConflict if the pair is already recorded with an expiry
// after now; a record that expired by now is replaced, so a jti may be reused
// once its earlier assertion could no longer be accepted. It is a single
// statement, so of concurrent records of one pair exactly one succeeds.
//
// expiresAt must be after now, and should include any clock-skew leeway the
// verifier allows: an assertion already expired at now would be recorded only
// to be forgotten, which is a caller's mistake that would silently disable
// replay protection, so it is refused (an error wrapping neither sentinel).
func (s *Store) RecordAssertion(ctx context.Context, clientID, jti string, expiresAt, now time.Time) error {
	return s.recordOnce(ctx, columns.AssertionRecords, clientID, jti, expiresAt, now)
}

// RecordDPoPProof records a DPoP proof's jti for the key thumbprint jkt until
// expiresAt (the end of the proof's iat window), with RecordAssertion's
// rules: a live record of the pair is ErrConflict (a replay), an expired one
// is replaced, and of concurrent records exactly one succeeds.
func (s *Store) RecordDPoPProof(ctx context.Context, jkt, jti string, expiresAt, now time.Time) error {
	return s.recordOnce(ctx, columns.DPoPProofRecords, jkt, jti, expiresAt, now)
}

// recordOnce inserts the record (owner, jti) of r's table until expiresAt,
// or takes over an expired one, in one statement; a live record is
// ErrConflict.
func (s *Store) recordOnce(ctx context.Context, r columns.OnceTable, owner, jti string, expiresAt, now time.Time) error {
	exp, at, err := r.Times(owner, jti, expiresAt, now)
	if err != nil {
		return fmt.Errorf("store/sqlite: %s: %w", r.Describe(owner, jti), err)
	}
	n, err := affected(ctx, s.db, r.Describe(owner, jti), r.Upsert([4]string{"?", "?", "?", "?"}), owner, jti, exp, at)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store/sqlite: %s: already used and not yet expired (replay): %w", r.Describe(owner, jti), store.ErrConflict)
	}
	return nil
}

// PruneExpired deletes what can no longer matter at now, and returns how many
// rows it deleted: deny-list entries, assertion and DPoP proof records whose expiry is at
// or before now, and refresh-token families all of whose links have expired by
// now. A family is kept whole while any link is alive, because its spent links
// are how reuse of a leaked token is detected and answered by revoking the
// family.
func (s *Store) PruneExpired(ctx context.Context, now time.Time) (int64, error) {
	return s.deleteExpired(ctx, "prune expired", now, []pruneQuery{
		{"revoked access tokens", `DELETE FROM revoked_access_tokens WHERE expires_at <= ?`},
		{"assertion records", `DELETE FROM seen_assertions WHERE expires_at <= ?`},
		{"DPoP proof records", `DELETE FROM seen_dpop_proofs WHERE expires_at <= ?`},
		{"refresh-token families", `DELETE FROM refresh_tokens WHERE family_id IN (
			SELECT family_id FROM refresh_tokens GROUP BY family_id HAVING max(expires_at) <= ?)`},
	})
}

// pruneQuery is one DELETE of rows that expired at or before its ? parameter.
type pruneQuery struct{ what, sql string }

// deleteExpired runs qs in one transaction with now as their parameter and
// returns how many rows they deleted; what names the prune in errors.
func (s *Store) deleteExpired(ctx context.Context, what string, now time.Time, qs []pruneQuery) (total int64, err error) {
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: %s: now: %w", what, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: %s at %v: begin: %w", what, now.UTC(), err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	for _, q := range qs {
		res, err := tx.ExecContext(ctx, q.sql, at)
		if err != nil {
			return 0, fmt.Errorf("store/sqlite: %s at %v: %s: %w", what, now.UTC(), q.what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("store/sqlite: %s at %v: %s: %w", what, now.UTC(), q.what, err)
		}
		total += n
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store/sqlite: %s at %v: commit: %w", what, now.UTC(), err)
	}
	return total, nil
}

// RevokeSubjectRefreshTokens revokes every refresh-token family of subject
// (every link not yet revoked), so a password change ends every grant the old
// password made. It returns how many links changed.
func (s *Store) RevokeSubjectRefreshTokens(ctx context.Context, subject string, now time.Time) (int, error) {
	return s.revokeRefresh(ctx, "subject", "subject", subject, now)
}

// revokeRefresh revokes every not yet revoked link whose column (family_id or
// subject, fixed by the callers, never user input) equals value.
func (s *Store) revokeRefresh(ctx context.Context, column, what, value string, now time.Time) (int, error) {
	if value == "" {
		return 0, fmt.Errorf("store/sqlite: revoke refresh tokens: empty %s", what)
	}
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return 0, fmt.Errorf("store/sqlite: revoke refresh tokens of %s %q: now: %w", what, value, err)
	}
	n, err := affected(ctx, s.db, fmt.Sprintf("revoke refresh tokens of %s %q", what, value),
		`UPDATE refresh_tokens SET revoked_at = ? WHERE `+column+` = ? AND revoked_at = 0`, at, value)
	return int(n), err
}
