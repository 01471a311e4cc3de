package columns

import (
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/store"
)

// TOTPColumns is the column list TOTP queries select (from user_totp t), in
// the order of TOTPRow.Dest: the last is the count of unused recovery codes.
const TOTPColumns = `t.user_id, t.sealed, t.confirmed_at, t.last_step, t.created_at,
	(SELECT count(*) FROM recovery_codes r WHERE r.user_id = t.user_id AND r.used_at = 0)`

// TOTPRow is a store.TOTP in the column form of the user_totp table.
type TOTPRow struct {
	UserID                   string
	Sealed                   []byte
	Confirmed, Step, Created int64
	RecoveryLeft             int64
}

// Dest is what a driver scans a row selected with TOTPColumns into.
func (r *TOTPRow) Dest() []any {
	return []any{&r.UserID, &r.Sealed, &r.Confirmed, &r.Step, &r.Created, &r.RecoveryLeft}
}

// TOTPToRow validates t for PutTOTP (UserID, Sealed and CreatedAt are
// required) and converts it; ConfirmedAt and LastStep are not stored.
func TOTPToRow(t store.TOTP) (TOTPRow, error) {
	if t.UserID == "" || len(t.Sealed) == 0 {
		return TOTPRow{}, errors.New("empty user id or sealed secret")
	}
	created, err := RequiredNanos(t.CreatedAt)
	if err != nil {
		return TOTPRow{}, fmt.Errorf("created_at: %w", err)
	}
	return TOTPRow{UserID: t.UserID, Sealed: t.Sealed, Created: created}, nil
}

// TOTPFromRow converts a scanned row back to a store.TOTP.
func TOTPFromRow(r TOTPRow) store.TOTP {
	return store.TOTP{UserID: r.UserID, Sealed: r.Sealed, ConfirmedAt: FromNanos(r.Confirmed), LastStep: r.Step,
		CreatedAt: FromNanos(r.Created), RecoveryLeft: int(r.RecoveryLeft)}
}

// Recovery validates the arguments of a ConfirmTOTP (a user, at most
// store.MaxRecoveryCodes non-empty digests, now set) and returns now stored.
func Recovery(userID string, recovery [][]byte, now time.Time) (int64, error) {
	if userID == "" {
		return 0, errors.New("empty user id")
	}
	if len(recovery) > store.MaxRecoveryCodes {
		return 0, fmt.Errorf("%d recovery codes, at most %d", len(recovery), store.MaxRecoveryCodes)
	}
	for i, h := range recovery {
		if len(h) == 0 {
			return 0, fmt.Errorf("recovery code %d is empty", i)
		}
	}
	at, err := RequiredNanos(now)
	if err != nil {
		return 0, fmt.Errorf("now: %w", err)
	}
	return at, nil
}
