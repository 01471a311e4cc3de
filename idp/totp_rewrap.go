package idp

import (
	"context"
	"errors"
	"fmt"

	"github.com/keygate/keygate/store"
)

// SecretResealer seals a secret again under the current key-encryption key;
// rotation.Sealer implements it.
type SecretResealer interface {
	// Reseal opens sealed under any key of the keyring and, unless it is
	// already under the current key, seals it again under that key.
	Reseal(name string, sealed []byte) (out []byte, changed bool, err error)
}

// rewrapTOTPAttempts bounds how often RewrapTOTP re-reads after losing a race.
const rewrapTOTPAttempts = 20

// reseal is one planned ResealTOTP write.
type reseal struct {
	userID   string
	from, to []byte
}

// RewrapTOTP seals every stored TOTP secret again under the current (first)
// key-encryption key, the second half of `keygate keys rewrap` (the first is
// rotation.Rewrap, for signing keys): without it, dropping the old key from
// the keyring would lock every TOTP user out. Every secret is opened first: if
// one does not open, nothing is written. Each is then written on its own with
// store.ResealTOTP, a compare-and-set on the sealed bytes, so a user enrolling
// again or removing their TOTP at the same moment is never undone: a lost
// race re-reads. Secrets already under the current key are left alone, so a
// second run changes nothing. It returns how many it resealed and how many
// already were under the current key.
func RewrapTOTP(ctx context.Context, st store.SecondFactorStore, sealer SecretResealer) (resealed, current int, err error) {
	done := map[string]bool{} // users whose secret this call resealed
	for attempt := 0; attempt < rewrapTOTPAttempts; attempt++ {
		plan, cur, err := planTOTPRewrap(ctx, st, sealer, done)
		if err != nil {
			return resealed, 0, err
		}
		conflict := false
		for _, r := range plan {
			err := st.ResealTOTP(ctx, r.userID, r.from, r.to)
			if errors.Is(err, store.ErrConflict) {
				conflict = true
				break // changed under us: re-read
			}
			if err != nil {
				return resealed, 0, fmt.Errorf("reseal the TOTP secret of user %s: %w", r.userID, err)
			}
			if !done[r.userID] {
				done[r.userID] = true
				resealed++
			}
		}
		if !conflict {
			return resealed, cur, nil
		}
	}
	return resealed, 0, fmt.Errorf("rewrap: TOTP secrets kept changing; %d resealed so far, run it again", resealed)
}

// planTOTPRewrap opens every stored TOTP secret and returns the writes that
// reseal those not under the current key, and how many of the others this
// call did not reseal itself.
func planTOTPRewrap(ctx context.Context, st store.SecondFactorStore, sealer SecretResealer, done map[string]bool) ([]reseal, int, error) {
	all, err := st.ListTOTP(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("list TOTP secrets: %w", err)
	}
	var plan []reseal
	current := 0
	for _, t := range all {
		out, changed, err := sealer.Reseal(sealName(t.UserID), t.Sealed)
		if err != nil {
			return nil, 0, fmt.Errorf("open the TOTP secret of user %s: %w", t.UserID, err)
		}
		switch {
		case changed:
			plan = append(plan, reseal{userID: t.UserID, from: t.Sealed, to: out})
		case !done[t.UserID]:
			current++
		}
	}
	return plan, current, nil
}
