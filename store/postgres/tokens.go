package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// toRefreshRow validates rt and converts it for binding: the text must be
// storable in PostgreSQL, and the rest is columns.RefreshToRow.
func toRefreshRow(rt store.RefreshToken) (columns.RefreshRow, error) {
	if err := checkText("id", rt.ID, "family id", rt.FamilyID, "client id", rt.ClientID,
		"subject", rt.Subject, "scope", rt.Scope); err != nil {
		return columns.RefreshRow{}, err
	}
	return columns.RefreshToRow(rt)
}

// execer is what insertRefreshToken needs, satisfied by *pgxpool.Pool and
// pgx.Tx.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// insertRefreshToken inserts r; a duplicate ID wraps store.ErrConflict.
func insertRefreshToken(ctx context.Context, db execer, what string, r columns.RefreshRow) error {
	_, err := db.Exec(ctx, `INSERT INTO refresh_tokens (`+columns.RefreshColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, r.Args()...)
	if err != nil {
		return writeError(what, err)
	}
	return nil
}

// CreateRefreshToken stores the first link of a new family (or any link, as
// given). It fails with an error wrapping store.ErrConflict if the ID is taken.
// ID and FamilyID must be set, and so must ExpiresAt: a link that never
// expires is not a thing Keygate issues. A nil or empty Audience reads back as
// nil.
func (s *Store) CreateRefreshToken(ctx context.Context, rt store.RefreshToken) error {
	r, err := toRefreshRow(rt)
	if err != nil {
		return fmt.Errorf("store/postgres: create refresh token %q: %w", rt.ID, err)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	return insertRefreshToken(ctx, s.pool, fmt.Sprintf("create refresh token %q in family %q", r.ID, r.Family), r)
}

// GetRefreshToken returns the link with the given ID, spent and revoked ones
// included (so that a caller whose rotation failed can tell reuse, which
// revokes the family, from mere expiry), or an error wrapping
// store.ErrNotFound.
func (s *Store) GetRefreshToken(ctx context.Context, id string) (store.RefreshToken, error) {
	return getRow(ctx, s, "get refresh token", id, `SELECT `+columns.RefreshColumns+` FROM refresh_tokens WHERE id = $1`, scanRefreshToken)
}

// RotateRefreshToken spends the link oldID at now and stores next in its
// place, in one transaction. The spend is a guarded UPDATE that matches only a
// link that is unspent, unrevoked and not expired at now (ExpiresAt after now).
// It locks the row, and a concurrent rotation's UPDATE waits for that lock and
// then re-checks its guard against the committed row, so of any number of
// concurrent rotations of one link, on any number of replicas sharing the
// database, exactly one succeeds.
//
// If the link cannot be spent, nothing is written and the error wraps
// store.ErrNotFound when oldID does not exist, and store.ErrConflict when it was
// already spent, is revoked or has expired; the caller then reads the link
// (GetRefreshToken) to tell reuse (UsedAt set: revoke the family) from the
// rest. A next whose ID is taken is also store.ErrConflict, with the old link
// left unspent. next must belong to the old link's family; if it does not, or
// next or now is invalid, the error wraps neither and nothing is written.
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, now time.Time, next store.RefreshToken) error {
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return fmt.Errorf("store/postgres: rotate refresh token %q: now: %w", oldID, err)
	}
	r, err := toRefreshRow(next)
	if err != nil {
		return fmt.Errorf("store/postgres: rotate refresh token %q: next token %q: %w", oldID, next.ID, err)
	}
	if !storable(oldID) {
		return fmt.Errorf("store/postgres: rotate refresh token %q: %w", oldID, store.ErrNotFound)
	}

	ctx, cancel := s.callContext(ctx)
	defer cancel()
	return s.inTx(ctx, fmt.Sprintf("rotate refresh token %q", oldID), func(tx pgx.Tx) error {
		// The primary key makes this match at most one row; RETURNING tells
		// us whether it did and which family the link belongs to.
		var family string
		err := tx.QueryRow(ctx, `UPDATE refresh_tokens SET used_at = $1
			WHERE id = $2 AND used_at = 0 AND revoked_at = 0 AND expires_at > $1
			RETURNING family_id`, at, oldID).Scan(&family)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return whyNotSpent(ctx, tx, oldID, now)
		case err != nil:
			return fmt.Errorf("store/postgres: rotate refresh token %q: spend: %w", oldID, err)
		}
		if family != r.Family {
			return fmt.Errorf("store/postgres: rotate refresh token %q: next token %q is in family %q, want the old token's family %q",
				oldID, r.ID, r.Family, family)
		}
		return insertRefreshToken(ctx, tx, fmt.Sprintf("rotate refresh token %q: insert next token %q", oldID, r.ID), r)
	}, nil)
}

// whyNotSpent explains why the guarded spend of id matched nothing: no such
// link (store.ErrNotFound), or a link that is revoked, spent or expired
// (store.ErrConflict).
func whyNotSpent(ctx context.Context, tx pgx.Tx, id string, now time.Time) error {
	var used, revoked, expires int64
	err := tx.QueryRow(ctx, `SELECT used_at, revoked_at, expires_at FROM refresh_tokens WHERE id = $1`, id).
		Scan(&used, &revoked, &expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("store/postgres: rotate refresh token %q: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("store/postgres: rotate refresh token %q: not spendable (reading why failed: %v): %w", id, err, store.ErrConflict)
	default:
		return fmt.Errorf("store/postgres: rotate refresh token %q: %s: %w", id, columns.NotSpentReason(used, revoked, expires, now), store.ErrConflict)
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
func scanRefreshToken(r pgx.Row) (store.RefreshToken, error) {
	return columns.Scan(r.Scan, columns.RefreshFromRow)
}

// RevokeAccessToken puts the access token with the given jti on the deny list
// until expiresAt, when the token would be rejected as expired anyway and
// PruneExpired may drop the entry. Revoking again is not an error; the entry
// then keeps the later of the two expiries, so a second revocation can never
// shorten the first.
func (s *Store) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	if jti == "" {
		return errors.New("store/postgres: revoke access token: empty jti")
	}
	if err := checkText("jti", jti); err != nil {
		return fmt.Errorf("store/postgres: revoke access token: %w", err)
	}
	exp, err := columns.RequiredNanos(expiresAt)
	if err != nil {
		return fmt.Errorf("store/postgres: revoke access token %q: expires_at: %w", jti, err)
	}
	_, err = s.exec(ctx, fmt.Sprintf("revoke access token %q", jti), `INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE
		SET expires_at = GREATEST(revoked_access_tokens.expires_at, excluded.expires_at)`, jti, exp)
	return err
}

// IsAccessTokenRevoked reports whether the access token with the given jti is
// on the deny list. It does not look at the entry's expiry: a token past it is
// rejected for being expired, so the answer for it does not matter.
func (s *Store) IsAccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	if !storable(jti) { // could never have been revoked
		return false, nil
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var revoked bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1)`, jti).Scan(&revoked)
	if err != nil {
		return false, fmt.Errorf("store/postgres: is access token %q revoked: %w", jti, err)
	}
	return revoked, nil
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
	if err == nil {
		err = checkText(r.OwnerName, owner, "jti", jti)
	}
	if err != nil {
		return fmt.Errorf("store/postgres: %s: %w", r.Describe(owner, jti), err)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, r.Upsert([4]string{"$1", "$2", "$3", "$4"}), owner, jti, exp, at)
	if err != nil {
		return fmt.Errorf("store/postgres: %s: %w", r.Describe(owner, jti), writeConflict(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store/postgres: %s: already used and not yet expired (replay): %w", r.Describe(owner, jti), store.ErrConflict)
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
		{"revoked access tokens", `DELETE FROM revoked_access_tokens WHERE expires_at <= $1`},
		{"assertion records", `DELETE FROM seen_assertions WHERE expires_at <= $1`},
		{"DPoP proof records", `DELETE FROM seen_dpop_proofs WHERE expires_at <= $1`},
		{"refresh-token families", `DELETE FROM refresh_tokens WHERE family_id IN (
			SELECT family_id FROM refresh_tokens GROUP BY family_id HAVING max(expires_at) <= $1)`},
	})
}

// pruneQuery is one DELETE of rows that expired at or before its $1.
type pruneQuery struct{ what, sql string }

// deleteExpired runs qs in one transaction with now as $1 and returns how many
// rows they deleted; what names the prune in errors.
func (s *Store) deleteExpired(ctx context.Context, what string, now time.Time, qs []pruneQuery) (int64, error) {
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return 0, fmt.Errorf("store/postgres: %s: now: %w", what, err)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var total int64
	err = s.inTx(ctx, fmt.Sprintf("%s at %v", what, now.UTC()), func(tx pgx.Tx) error {
		total = 0 // a retried attempt starts again
		for _, q := range qs {
			tag, err := tx.Exec(ctx, q.sql, at)
			if err != nil {
				return fmt.Errorf("store/postgres: %s at %v: %s: %w", what, now.UTC(), q.what, err)
			}
			total += tag.RowsAffected()
		}
		return nil
	}, nil)
	if err != nil {
		return 0, err
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
		return 0, fmt.Errorf("store/postgres: revoke refresh tokens: empty %s", what)
	}
	at, err := columns.RequiredNanos(now)
	if err != nil {
		return 0, fmt.Errorf("store/postgres: revoke refresh tokens of %s %q: now: %w", what, value, err)
	}
	if !storable(value) { // no such row can exist
		return 0, nil
	}
	n, err := s.exec(ctx, fmt.Sprintf("revoke refresh tokens of %s %q", what, value),
		`UPDATE refresh_tokens SET revoked_at = $1 WHERE `+column+` = $2 AND revoked_at = 0`, at, value)
	return int(n), err
}
