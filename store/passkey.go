package store

import (
	"context"
	"time"
)

// Passkey is a WebAuthn credential a user registered to sign in with: the
// credential record of WebAuthn Level 3 §4 (id, public key, sign count,
// transports, uvInitialized, backup eligibility and state), the
// authenticator's AAGUID, and what the account page shows (a name the user
// gave it, when it was registered and last used). Only the public key is
// stored; the private key never leaves the authenticator.
type Passkey struct {
	ID                string // the credential ID, base64url without padding
	UserID            string
	Name              string   // given by the user
	PublicKey         []byte   // COSE_Key
	AttestationFormat string   // "none", "packed", …
	AAGUID            []byte   // the authenticator model; 16 bytes, may be zeros
	Transports        []string // "internal", "usb", "hybrid", …
	SignCount         uint32
	UserVerified      bool // uvInitialized: registration verified the user
	BackupEligible    bool // BE: the credential may be synced; never changes
	BackupState       bool // BS: the credential is backed up now; may change
	CreatedAt         time.Time
	LastUsedAt        time.Time // zero until the first sign-in
}

// Ceremonies a WebAuthnChallenge belongs to.
const (
	CeremonyRegistration = "registration"
	CeremonyLogin        = "login"
)

// WebAuthnChallenge is the server side of one WebAuthn ceremony: the random
// challenge handed to the browser and what verifying the answer needs. It is
// kept in the store, not in a cookie, so that any replica can finish a
// ceremony another began and so that it is spent exactly once.
type WebAuthnChallenge struct {
	ID        string // hex SHA-256 of the challenge (base64url, as the browser echoes it)
	Ceremony  string // CeremonyRegistration or CeremonyLogin
	UserID    string // registration: the user registering; login: empty
	Binding   string // what the per-binding cap counts: a session (registration) or a digest of the client address (login)
	Data      []byte // the ceremony's state as the WebAuthn library needs it (JSON)
	CreatedAt time.Time
	ExpiresAt time.Time
}

// PasskeyStore is the part of a Store that holds passkeys and the WebAuthn
// challenges of ceremonies under way.
type PasskeyStore interface {
	// CreatePasskey stores p for p.UserID, who must exist (ErrNotFound
	// otherwise). A taken ID is ErrConflict; so is a user who already has
	// maxPerUser passkeys (maxPerUser <= 0 caps nothing): the count and the
	// insert are one transaction serialized per user, so concurrent
	// registrations never pass the cap. ID, UserID, PublicKey and CreatedAt
	// are required.
	CreatePasskey(ctx context.Context, p Passkey, maxPerUser int) error
	// GetPasskey returns a passkey by credential ID.
	GetPasskey(ctx context.Context, id string) (Passkey, error)
	// ListUserPasskeys returns a user's passkeys by CreatedAt then ID; never
	// nil.
	ListUserPasskeys(ctx context.Context, userID string) ([]Passkey, error)
	// RecordPasskeyUse stores a successful sign-in with the passkey id:
	// SignCount = count, BackupState = backupState, LastUsedAt = now, but
	// only if its SignCount is still prev. Of concurrent uses that read one
	// prev exactly one records; the others get ErrConflict (ErrNotFound if
	// there is no such passkey), so two clones racing cannot both pass.
	RecordPasskeyUse(ctx context.Context, id string, prev, count uint32, backupState bool, now time.Time) error
	// DeletePasskey deletes the passkey id of userID (ErrNotFound if userID
	// has no such passkey, whoever else may).
	DeletePasskey(ctx context.Context, userID, id string) error
	// DeleteUserPasskeys deletes every passkey of userID and returns how many.
	DeleteUserPasskeys(ctx context.Context, userID string) (int, error)
	// CountPasskeysByUser returns how many passkeys each user has (users
	// with none are absent), in one query: what a listing of every user
	// shows, without a read per user.
	CountPasskeysByUser(ctx context.Context) (map[string]int, error)

	// CreateWebAuthnChallenge stores c; a taken ID is ErrConflict. ID,
	// Ceremony, Binding and ExpiresAt are required. In the same transaction
	// it deletes c.Binding's challenges that expired at or before
	// c.CreatedAt and, when maxPerBinding > 0, its oldest ones (by CreatedAt,
	// then ID) beyond maxPerBinding, never the new one: so a binding never
	// holds more than maxPerBinding, however many calls run at once.
	CreateWebAuthnChallenge(ctx context.Context, c WebAuthnChallenge, maxPerBinding int) error
	// ConsumeWebAuthnChallenge deletes the challenge id and returns it, if
	// it expires after now. One that has expired is deleted too and is
	// ErrConflict; none is ErrNotFound. Of concurrent consumers of one
	// challenge, on however many replicas, exactly one gets it.
	ConsumeWebAuthnChallenge(ctx context.Context, id string, now time.Time) (WebAuthnChallenge, error)
}
