package columns

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/keygate/keygate/store"
)

// PasskeyColumns is the column list passkey queries select, in PasskeyRow.Dest's
// order, and inserts, in PasskeyRow.Args'.
const PasskeyColumns = `id, user_id, name, public_key, attestation_format, aaguid, transports, sign_count,
	user_verified, backup_eligible, backup_state, created_at, last_used_at`

// PasskeyRow is a store.Passkey in the column form of the passkeys table:
// transports as a JSON array, times as nanoseconds, the sign count widened.
type PasskeyRow struct {
	ID, UserID, Name, AttestationFormat, Transports string
	PublicKey, AAGUID                               []byte
	SignCount                                       int64
	UserVerified, BackupEligible, BackupState       bool
	Created, LastUsed                               int64
}

// Dest is where Scan writes, in PasskeyColumns order.
func (r *PasskeyRow) Dest() []any {
	return []any{&r.ID, &r.UserID, &r.Name, &r.PublicKey, &r.AttestationFormat, &r.AAGUID, &r.Transports, &r.SignCount,
		&r.UserVerified, &r.BackupEligible, &r.BackupState, &r.Created, &r.LastUsed}
}

// Args are the insert's values, in PasskeyColumns order.
func (r PasskeyRow) Args() []any {
	return []any{r.ID, r.UserID, r.Name, r.PublicKey, r.AttestationFormat, NilIfEmpty(r.AAGUID), r.Transports, r.SignCount,
		r.UserVerified, r.BackupEligible, r.BackupState, r.Created, r.LastUsed}
}

// PasskeyToRow validates p (ID, UserID, PublicKey and CreatedAt required,
// text UTF-8) and converts it for binding.
func PasskeyToRow(p store.Passkey) (PasskeyRow, error) {
	if p.ID == "" || p.UserID == "" || len(p.PublicKey) == 0 || p.CreatedAt.IsZero() {
		return PasskeyRow{}, errors.New("passkey id, user id, public key and creation time are required")
	}
	for _, v := range []string{p.ID, p.UserID, p.Name, p.AttestationFormat} {
		if !utf8.ValidString(v) {
			return PasskeyRow{}, fmt.Errorf("%q is not valid UTF-8", v)
		}
	}
	r := PasskeyRow{ID: p.ID, UserID: p.UserID, Name: p.Name, PublicKey: p.PublicKey, AttestationFormat: p.AttestationFormat,
		AAGUID: p.AAGUID, SignCount: int64(p.SignCount), UserVerified: p.UserVerified, BackupEligible: p.BackupEligible,
		BackupState: p.BackupState}
	var err error
	if r.Transports, err = EncodeList(p.Transports); err != nil {
		return PasskeyRow{}, fmt.Errorf("transports: %w", err)
	}
	if err := toNanosAll(
		timeField{"created_at", p.CreatedAt, &r.Created},
		timeField{"last_used_at", p.LastUsedAt, &r.LastUsed},
	); err != nil {
		return PasskeyRow{}, err
	}
	return r, nil
}

// PasskeyFromRow converts a scanned passkeys row back to a store.Passkey.
func PasskeyFromRow(r PasskeyRow) (store.Passkey, error) {
	tr, err := DecodeList(r.Transports)
	if err != nil {
		return store.Passkey{}, fmt.Errorf("passkey %q: transports: %w", r.ID, err)
	}
	if r.SignCount < 0 || r.SignCount > 1<<32-1 {
		return store.Passkey{}, fmt.Errorf("passkey %q: sign count %d out of range", r.ID, r.SignCount)
	}
	return store.Passkey{ID: r.ID, UserID: r.UserID, Name: r.Name, PublicKey: r.PublicKey, AttestationFormat: r.AttestationFormat,
		AAGUID: r.AAGUID, Transports: tr, SignCount: uint32(r.SignCount), UserVerified: r.UserVerified,
		BackupEligible: r.BackupEligible, BackupState: r.BackupState,
		CreatedAt: FromNanos(r.Created), LastUsedAt: FromNanos(r.LastUsed)}, nil
}

// ChallengeColumns is the column list WebAuthn challenge queries select and
// insert, in ChallengeRow.Dest's and Args' order.
const ChallengeColumns = `id, ceremony, user_id, binding, data, created_at, expires_at`

// ChallengeRow is a store.WebAuthnChallenge in the column form of the
// webauthn_challenges table.
type ChallengeRow struct {
	ID, Ceremony, UserID, Binding string
	Data                          []byte
	Created, Expires              int64
}

// Dest is where Scan writes, in ChallengeColumns order.
func (r *ChallengeRow) Dest() []any {
	return []any{&r.ID, &r.Ceremony, &r.UserID, &r.Binding, &r.Data, &r.Created, &r.Expires}
}

// Args are the insert's values, in ChallengeColumns order.
func (r ChallengeRow) Args() []any {
	return []any{r.ID, r.Ceremony, r.UserID, r.Binding, NilIfEmpty(r.Data), r.Created, r.Expires}
}

// ChallengeToRow validates c (ID, a known Ceremony, Binding and ExpiresAt
// required, text UTF-8) and converts it for binding.
func ChallengeToRow(c store.WebAuthnChallenge) (ChallengeRow, error) {
	if c.ID == "" || c.Binding == "" {
		return ChallengeRow{}, errors.New("challenge id and binding are required")
	}
	if c.Ceremony != store.CeremonyRegistration && c.Ceremony != store.CeremonyLogin {
		return ChallengeRow{}, fmt.Errorf("unknown ceremony %q", c.Ceremony)
	}
	for _, v := range []string{c.ID, c.UserID, c.Binding} {
		if !utf8.ValidString(v) {
			return ChallengeRow{}, fmt.Errorf("%q is not valid UTF-8", v)
		}
	}
	r := ChallengeRow{ID: c.ID, Ceremony: c.Ceremony, UserID: c.UserID, Binding: c.Binding, Data: c.Data}
	var err error
	if r.Expires, err = RequiredNanos(c.ExpiresAt); err != nil {
		return ChallengeRow{}, fmt.Errorf("expires_at: %w", err)
	}
	if r.Created, err = ToNanos(c.CreatedAt); err != nil {
		return ChallengeRow{}, fmt.Errorf("created_at: %w", err)
	}
	return r, nil
}

// ChallengeFromRow converts a scanned webauthn_challenges row back.
func ChallengeFromRow(r ChallengeRow) store.WebAuthnChallenge {
	return store.WebAuthnChallenge{ID: r.ID, Ceremony: r.Ceremony, UserID: r.UserID, Binding: r.Binding, Data: r.Data,
		CreatedAt: FromNanos(r.Created), ExpiresAt: FromNanos(r.Expires)}
}
