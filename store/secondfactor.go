package store

import (
	"context"
	"time"
)

// TOTP is a user's time-based one-time password second factor (RFC 6238).
// The shared secret is only ever stored sealed (AES-256-GCM under the
// key-encryption key, as signing keys are), so a copy of the database alone
// cannot mint codes. It is a factor only once confirmed: the user proved,
// with a code, that their authenticator holds the secret.
type TOTP struct {
	UserID      string
	Sealed      []byte    // the sealed secret
	ConfirmedAt time.Time // zero until confirmed: until then it is not a factor
	LastStep    int64     // the last time step accepted; codes of it and earlier steps are refused (replay)
	CreatedAt   time.Time

	// RecoveryLeft is read back only: how many of the user's recovery
	// codes are unused.
	RecoveryLeft int
}

// Confirmed reports whether t is an active second factor.
func (t TOTP) Confirmed() bool { return !t.ConfirmedAt.IsZero() }

// MaxRecoveryCodes bounds the recovery codes ConfirmTOTP stores.
const MaxRecoveryCodes = 20

// SecondFactorStore is the part of a Store that holds second factors: a
// user's TOTP and recovery codes. Every check-and-spend is one atomic
// statement, so a code is accepted once however many replicas race.
type SecondFactorStore interface {
	// PutTOTP stores t as the user's unconfirmed TOTP, replacing an
	// unconfirmed one (enrolment started again); ErrConflict when the user
	// has a confirmed one (remove it first). UserID, Sealed and CreatedAt
	// are required; ConfirmedAt and LastStep are ignored (stored as zero).
	PutTOTP(ctx context.Context, t TOTP) error
	// GetTOTP returns the user's TOTP, confirmed or not, with RecoveryLeft;
	// ErrNotFound when there is none.
	GetTOTP(ctx context.Context, userID string) (TOTP, error)
	// ConfirmTOTP makes the user's unconfirmed TOTP active: ConfirmedAt =
	// now, LastStep = step (the confirming code's step, now spent), and the
	// user's recovery codes replaced by the digests recovery (at most
	// MaxRecoveryCodes, each non-empty), in one transaction. ErrNotFound
	// when the user has no TOTP, ErrConflict when it is already confirmed.
	ConfirmTOTP(ctx context.Context, userID string, step int64, recovery [][]byte, now time.Time) error
	// UseTOTPStep records that the code of time step step was accepted for
	// the user: LastStep = step, but only if the TOTP is confirmed and
	// LastStep < step; otherwise nothing is written and the error wraps
	// ErrConflict (a replayed or older code, or no confirmed TOTP). Of
	// concurrent uses of one step exactly one succeeds.
	UseTOTPStep(ctx context.Context, userID string, step int64) error
	// UseRecoveryCode spends the user's unused recovery code whose digest is
	// hash (UsedAt = now); ErrConflict when there is no such unused code.
	// Of concurrent uses of one code exactly one succeeds.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte, now time.Time) error
	// DeleteTOTP removes the user's TOTP and recovery codes and reports
	// whether there was a TOTP.
	DeleteTOTP(ctx context.Context, userID string) (bool, error)
	// ReplaceRecoveryCodes replaces every recovery code of the user, used
	// or not, by the digests recovery (at most MaxRecoveryCodes, each
	// non-empty), in one transaction, so no moment exists where both the old
	// and the new codes work; ErrNotFound when the user has no confirmed
	// TOTP (the codes back it).
	ReplaceRecoveryCodes(ctx context.Context, userID string, recovery [][]byte, now time.Time) error

	// ListTOTP returns every user's TOTP, confirmed or not, ordered by
	// UserID, with RecoveryLeft: what `keygate keys rewrap` reseals and the
	// start-up check counts.
	ListTOTP(ctx context.Context) ([]TOTP, error)
	// ListSealedTOTP returns every stored TOTP secret's sealed bytes and
	// nothing else, in no particular order: what a check of which
	// key-encryption key sealed them needs, without the per-user recovery
	// code counts ListTOTP computes.
	ListSealedTOTP(ctx context.Context) ([][]byte, error)
	// ResealTOTP replaces the user's sealed secret by sealed, only if it is
	// still from (compare-and-set); otherwise nothing is written and the
	// error wraps ErrConflict (the user enrolled again, removed it, or a
	// concurrent rewrap got there first). Nothing else of the row changes.
	ResealTOTP(ctx context.Context, userID string, from, sealed []byte) error
}
