// Package store is Keygate's storage layer: the records Keygate persists, the
// errors every backend reports, and the one Store interface (contract.go) that
// every backend (store/sqlite, store/postgres) implements in full and every
// user of storage (rotation, idp, the server and the CLI) programs against.
// Its behaviour is pinned down by the shared test suite in store/storetest,
// which each backend runs. The package imports nothing of Keygate, so
// backends and their users depend on it and never on each other.
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

// ErrLastAdmin refuses a write that would leave no enabled admin user:
// demoting, disabling or deleting the only one. The check and the write are
// one transaction in every backend, so two concurrent demotions of the last
// two admins cannot both pass. Nothing of the refused write is kept.
var ErrLastAdmin = errors.New("store: the last enabled admin user")

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

// Client is an OAuth client registered in the store (clients from config.yaml
// never touch the store). Its secret is a high-entropy API key, so a SHA-256
// digest suffices: no slow password hash, which the token endpoint would pay on
// every request.
type Client struct {
	ID                 string
	Name               string
	SecretHash         []byte   // SHA-256 of the secret; nil when the client has none
	JWKS               []byte   // registered public keys as a JWK Set (JSON); nil for none
	JWKSURI            string   // or where to fetch them
	GrantTypes         []string // allowed grants, e.g. "client_credentials"
	Scopes             []string // scopes it may ask for
	Audience           []string // "aud" of its access tokens
	RedirectURIs       []string // exact-match redirect URIs (browser flow)
	AllowedOrigins     []string // web origins (scheme://host[:port]) whose scripts may read its answers (CORS)
	Public             bool     // no secret, no key: may only use flows that need none
	AccessTTL          time.Duration
	NotBeforeDelay     time.Duration // tokens become valid this long after issue
	AllowBareAssertion bool          // accept seed-style assertions without exp/jti (replayable; opt-in)
	Introspect         bool          // a resource server: may introspect other clients' tokens (RFC 7662 §4)
	ThirdParty         bool          // users must consent before its first code (the consent page)
	SigningAlg         string        // the algorithm its tokens are signed with: "" (RS256), "ES256" or "EdDSA"
	// DPoPBoundAccessTokens requires a DPoP proof (RFC 9449) on every token
	// request of this client, so that none of its access tokens is a bare
	// bearer token (RFC 9449 §5.2 dpop_bound_access_tokens).
	DPoPBoundAccessTokens bool
	CreatedAt             time.Time

	// PreviousSecretHash is the SHA-256 of the secret a rotation replaced,
	// still accepted until PreviousSecretExpiresAt (a grace period for
	// deploying the new one); nil and zero when there is none.
	PreviousSecretHash      []byte
	PreviousSecretExpiresAt time.Time

	// PostLogoutRedirectURIs are the exact-match post_logout_redirect_uri
	// values of RP-initiated logout.
	PostLogoutRedirectURIs []string
}

// User is a person (or script) with a password. Username is unique without
// regard to case; Email, when set, too.
type User struct {
	ID           string // uuid
	Username     string
	Email        string // optional
	Name         string
	PasswordHash string // argon2id, PHC string format
	Admin        bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
	DisabledAt   time.Time // when an operator disabled the user; zero while enabled
}

// Disabled reports whether the user may not log in.
func (u User) Disabled() bool { return !u.DisabledAt.IsZero() }

// RefreshToken is one link of a refresh-token family. The token itself is
// never stored: ID is the hex SHA-256 of it. Each use spends the link and adds
// the next; presenting a spent link means the family leaked, and the whole
// family is revoked.
type RefreshToken struct {
	ID        string // hex SHA-256 of the opaque token
	FamilyID  string
	ClientID  string
	Subject   string // user ID, or client ID for client grants
	Scope     string
	Audience  []string
	AuthTime  time.Time
	AMR       []string // how the user authenticated (RFC 8176 values); nil for client grants
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until exchanged
	RevokedAt time.Time // zero unless its family was revoked
	// DPoPJKT is the RFC 7638 thumbprint of the key a public client proved
	// possession of when the family began (RFC 9449 §5): every refresh of
	// the family must come with a proof from that key. "" for an unbound
	// family.
	DPoPJKT string
}

// Session is a browser login: the cookie holds a random 256-bit value, the
// store only its digest. A session ends at logout, at ExpiresAt (the absolute
// timeout), or when it has been idle too long (LastSeen; the idle timeout is
// the caller's policy).
type Session struct {
	ID        string    // hex SHA-256 of the cookie value
	UserID    string    // the user who logged in
	AuthTime  time.Time // when the user authenticated (OIDC auth_time)
	AMR       []string  // how: RFC 8176 authentication method references, e.g. ["pwd", "otp", "mfa"]
	CreatedAt time.Time
	LastSeen  time.Time // last request seen with this session
	ExpiresAt time.Time // absolute expiry

	// Pending marks a login half done: the password was right, a second
	// factor is still due. It is no session: it only lets its holder
	// finish the login, for the short time until ExpiresAt.
	Pending bool
}

// MaxUserSessions bounds what ListUserSessions returns, so that a user with
// very many sessions costs one bounded read.
const MaxUserSessions = 100

// AuthCode is an OAuth 2.0 authorization code (RFC 6749 §4.1). The code
// itself is never stored: ID is the hex SHA-256 of it. It is single use and
// bound to its client, redirect URI, PKCE challenge and nonce. Redeeming it
// records what was issued from it (the refresh-token family and the access
// token's jti), so that a second use can revoke those tokens (RFC 6749 §4.1.2).
type AuthCode struct {
	ID            string // hex SHA-256 of the code
	ClientID      string
	RedirectURI   string // exactly as sent in the authorization request
	UserID        string
	SessionID     string // the browser session it was issued in (the cap on outstanding codes); may be empty
	Scope         string
	Nonce         string    // OIDC nonce, copied into the id_token; may be empty
	CodeChallenge string    // PKCE S256 challenge; empty when the client sent none
	DPoPJKT       string    // RFC 9449 §10 dpop_jkt: the thumbprint the exchange's proof key must have; empty when none was sent
	AuthTime      time.Time // when the user authenticated
	AMR           []string  // how the user authenticated (the session's AMR)
	CreatedAt     time.Time
	ExpiresAt     time.Time
	UsedAt        time.Time // zero until redeemed

	// Set when the code is redeemed.
	FamilyID        string    // refresh-token family issued; empty when none
	AccessJTI       string    // jti of the access token issued
	AccessExpiresAt time.Time // its expiry, for the deny list
}
