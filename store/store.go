// Package store holds the records Keygate persists and the errors every storage
// backend reports, so that the packages that use storage (rotation, idp) and the
// backends that implement it (store/sqlite, store/postgres) agree on one vocabulary
// without depending on each other. The interfaces themselves are declared by the
// packages that use them; the contract every backend must meet is the test suite in
// store/storetest.
package store

import (
	"errors"
	"time"
)

// ErrNotFound reports that the record asked for does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict reports that a write lost a race: a precondition (an expected state,
// a uniqueness rule such as "one active key") no longer held when it was applied.
// Nothing of the write was kept; the caller re-reads and decides again.
var ErrConflict = errors.New("store: conflict")

// KeyState is where a signing key is in its life.
type KeyState string

// The states of a signing key. A key is published in the JWKS in every state but
// revoked; only the single active key signs.
const (
	KeyNext    KeyState = "next"    // published ahead of use, not signing yet
	KeyActive  KeyState = "active"  // the one key that signs
	KeyRetired KeyState = "retired" // published until tokens it signed have expired
	KeyRevoked KeyState = "revoked" // withdrawn at once; kept only as a record
)

// Valid reports whether s is one of the four known states.
func (s KeyState) Valid() bool {
	switch s {
	case KeyNext, KeyActive, KeyRetired, KeyRevoked:
		return true
	}
	return false
}

// Key is one signing key as stored. The private half is only ever stored sealed
// (AES-256-GCM under the key-encryption key, with the kid as associated data); a
// revoked key's sealed private half is erased.
type Key struct {
	KID       string   // RFC 7638 thumbprint of the public key
	Algorithm string   // JWS algorithm, e.g. "RS256"
	State     KeyState // next, active, retired or revoked
	PublicDER []byte   // PKIX DER of the public key
	Sealed    []byte   // sealed PKCS#8 private key; nil once revoked

	CreatedAt   time.Time // generated and published
	ActivateAt  time.Time // when it starts (or started) signing
	RetiredAt   time.Time // when it stopped signing; zero while next or active
	RemoveAfter time.Time // when it may be deleted; zero while next or active
	RevokedAt   time.Time // zero unless revoked
}

// KeyUpdate replaces a stored key's mutable fields, but only if the key is still in
// state From: the compare-and-swap that makes concurrent rotators (the server, the
// CLI, other replicas) safe.
type KeyUpdate struct {
	Key  Key
	From KeyState
}

// KeyDelete removes a key, but only if it is still in state From.
type KeyDelete struct {
	KID  string
	From KeyState
}

// KeyChange is a set of writes to the key set applied in one transaction, in the
// order Updates, Deletes, Inserts, each Updates element in its given order. Either
// all of it is applied and the key-set version is bumped, or none of it (ErrConflict
// when a precondition failed, including "at most one next and exactly one active
// key", which backends enforce with unique indexes).
type KeyChange struct {
	Updates []KeyUpdate
	Deletes []KeyDelete
	Inserts []Key
}

// Empty reports whether the change writes nothing.
func (c KeyChange) Empty() bool {
	return len(c.Updates) == 0 && len(c.Deletes) == 0 && len(c.Inserts) == 0
}
