package store

import (
	"context"
	"time"
)

// Store is everything Keygate asks of its database, written once so that the
// server, the CLI, rotation and idp program against one contract and every
// backend (store/sqlite, store/postgres) implements all of it: no capability
// is optional, so no caller has to discover one at run time or carry a "not
// available" path. The behaviour behind each method is pinned down by the
// shared test suite in store/storetest, which every backend runs.
//
// Rules that hold for every part: a method that takes the ID of something
// that must exist reports its absence with an error wrapping ErrNotFound;
// a write that a uniqueness rule or a lost race refuses returns an error
// wrapping ErrConflict and writes nothing; invalid input (an empty ID, a zero
// time where one is required, text that is not UTF-8) is an error wrapping
// neither. Times read back equal to what was written, to the nanosecond, in
// UTC; a nil or empty string or byte slice may read back as either.
type Store interface {
	KeyStore
	ClientStore
	UserStore
	TokenStore
	BrowserStore
	DeviceStore
	ThrottleStore
	ConsentStore
	PasskeyStore
	SecondFactorStore

	// Ping reports whether the store can serve requests (readiness probes).
	Ping(ctx context.Context) error
	// SchemaVersion reports the schema's migration level: applied, what the
	// database records now, and known, the latest migration this binary
	// carries. Opening a store migrates it, so they start equal; applied is
	// read live, so a newer binary migrating the shared database further
	// (applied > known) or a database restored under a running server
	// (applied < known) shows.
	SchemaVersion(ctx context.Context) (applied, known int64, err error)
	// CheckWritable reports whether the store can commit a write now: it
	// updates a one-row heartbeat table in a transaction of its own and
	// returns the error that stopped it (a full disk, a read-only file,
	// mount, replica or connection). It touches nothing else, so it is safe
	// to call at any time, from any number of processes; readiness probes
	// call it (rate-limited by the caller: it is a real write).
	CheckWritable(ctx context.Context) error
	// PruneExpired deletes deny-list entries, assertion and DPoP proof records expiring
	// at or before now, and refresh-token families whose every link expires
	// at or before now, and returns how many rows it deleted. It exists so
	// that tables written on every token request do not grow for ever.
	PruneExpired(ctx context.Context, now time.Time) (int64, error)
	// Close releases the store's connections.
	Close() error
}

// KeyStore is the part of a Store that holds the signing keys, which package
// rotation drives. Besides the key set itself it offers what several
// processes sharing one database need to agree on it: a cheap version
// counter to notice changes, a lease so that one process at a time makes
// scheduled writes, and a change feed for reloading at once.
type KeyStore interface {
	// ListKeys returns every key, revoked ones included, ordered by CreatedAt
	// and then KID, with times in UTC.
	ListKeys(ctx context.Context) ([]Key, error)
	// KeySetVersion returns a counter that starts at 0 and grows by exactly one
	// with every applied non-empty KeyChange.
	KeySetVersion(ctx context.Context) (int64, error)
	// ApplyKeyChange applies all of a change or none of it; see KeyChange.
	ApplyKeyChange(ctx context.Context, c KeyChange) error

	// AcquireLease takes or renews the lease called name for holder until
	// now+ttl, and reports whether holder now holds it. It succeeds when
	// nobody holds the lease, when its last holder's time ran out (its expiry
	// is at or before now), or when holder already holds it (a renewal, which
	// moves the expiry to now+ttl); it reports false, with no error, while
	// another holder's lease is alive. Of any number of concurrent acquirers,
	// in any number of processes, exactly one wins. Expiry is judged by the
	// callers' clocks (now). name and holder must be non-empty text, ttl
	// positive and now set; otherwise it is an invalid-input error and
	// nothing is written. Rotation uses it so that N replicas do not each
	// generate keys and compete for every transition.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error)
	// ReleaseLease gives up the lease called name if holder holds it, so that
	// another process may take it at once rather than after it expires.
	// Releasing a lease holder does not hold changes nothing and is no error;
	// an empty name or holder is an invalid-input error.
	ReleaseLease(ctx context.Context, name, holder string) error
	// WatchKeySet calls fn, one call at a time, whenever the key set may have
	// changed (a hint to re-read, never a promise that something changed),
	// until ctx is done or the store is closed, and then returns. It lets a
	// process reload keys at once after another one rotated them; polling
	// KeySetVersion remains the fallback that bounds staleness, so a backend
	// without a change feed may call fn never and simply wait for ctx. A nil
	// fn is an error.
	WatchKeySet(ctx context.Context, fn func()) error
}

// ClientStore is the part of a Store that holds registered OAuth clients.
type ClientStore interface {
	// CreateClient stores a client; a taken ID is ErrConflict.
	CreateClient(ctx context.Context, c Client) error
	// GetClient returns a client by ID.
	GetClient(ctx context.Context, id string) (Client, error)
	// ListClients returns every client, ordered by ID in byte order.
	ListClients(ctx context.Context) ([]Client, error)
	// DeleteClient deletes a client, the refresh tokens issued to it and
	// the consents users gave it (a client registered later with the same
	// ID must ask again).
	DeleteClient(ctx context.Context, id string) error
	// UpdateClient replaces every field of the stored client c.ID but
	// CreatedAt with c's (ErrNotFound if there is none). It is last writer
	// wins: callers read, change and write back, so of two concurrent
	// updates of one client the later write is what stays, whole.
	UpdateClient(ctx context.Context, c Client) error
}

// UserStore is the part of a Store that holds users and their password
// hashes.
type UserStore interface {
	// CreateUser stores a user. A taken ID, a username equal to another's
	// without regard to case, or a non-empty email equal to another's without
	// regard to case is ErrConflict; any number of users may have no
	// email. "Without regard to case" is Go's strings.ToLower, so it covers
	// non-ASCII letters too.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns a user by ID.
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByLogin returns the user whose username or email equals login
	// without regard to case, preferring a username match if one user's
	// username and another's email both match.
	GetUserByLogin(ctx context.Context, login string) (User, error)
	// ListUsers returns every user, ordered by lowercased username in byte
	// order.
	ListUsers(ctx context.Context) ([]User, error)
	// DeleteUser deletes a user, every refresh token whose Subject is the
	// user's ID, the user's consents, TOTP and recovery codes, and passkeys.
	// Deleting the only enabled admin (Admin and not disabled) is
	// ErrLastAdmin and deletes nothing.
	DeleteUser(ctx context.Context, id string) error
	// UpdateUserPassword sets a user's PasswordHash, and UpdatedAt to now.
	UpdateUserPassword(ctx context.Context, id, hash string, now time.Time) error
	// UpdateUser replaces the Email, Name, Admin, DisabledAt and UpdatedAt of
	// the stored user u.ID (ErrNotFound if there is none); ID, Username,
	// PasswordHash and CreatedAt are kept, so a concurrent password change is
	// never undone. An email equal to another user's without regard to case
	// is ErrConflict. It is last writer wins, as UpdateClient is. A write
	// that leaves the only enabled admin not an admin, or disabled, is
	// ErrLastAdmin and changes nothing; the check and the write are atomic.
	UpdateUser(ctx context.Context, u User) error
}

// TokenStore is the part of a Store that holds what token issuance must
// remember: refresh-token families, the access-token deny list and the
// client-assertion replay cache.
type TokenStore interface {
	// CreateRefreshToken stores a link; a taken ID is ErrConflict.
	// ID, FamilyID and ExpiresAt are required.
	CreateRefreshToken(ctx context.Context, rt RefreshToken) error
	// GetRefreshToken returns a link by ID, spent and revoked ones included.
	GetRefreshToken(ctx context.Context, id string) (RefreshToken, error)
	// RotateRefreshToken atomically spends the link oldID (UsedAt = now) and
	// stores next, which must be in the same family. Only a link that is
	// unspent, unrevoked and expires after now can be spent: otherwise the
	// error wraps ErrConflict (ErrNotFound if there is no such
	// link) and nothing is written. Of concurrent rotations of one link, on
	// however many replicas, exactly one succeeds.
	RotateRefreshToken(ctx context.Context, oldID string, now time.Time, next RefreshToken) error
	// RevokeRefreshFamily sets RevokedAt = now on every link of the family not
	// yet revoked, and returns how many.
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) (int, error)
	// RevokeSubjectRefreshTokens sets RevokedAt = now on every not yet revoked
	// link of every family whose subject is subject (a password change ends
	// every grant the old password made); it returns how many links changed.
	RevokeSubjectRefreshTokens(ctx context.Context, subject string, now time.Time) (int, error)
	// RevokeUserClientRefreshTokens sets RevokedAt = now on every not yet
	// revoked link of every family of subject issued to clientID (a user
	// revoking a client's access), and returns how many links changed.
	// Both are required.
	RevokeUserClientRefreshTokens(ctx context.Context, subject, clientID string, now time.Time) (int, error)

	// RevokeAccessToken puts a jti on the deny list until expiresAt;
	// revoking again is no error and never shortens the entry's life.
	RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error
	// IsAccessTokenRevoked reports whether a jti is on the deny list.
	IsAccessTokenRevoked(ctx context.Context, jti string) (bool, error)

	// RecordAssertion records a client's assertion jti until expiresAt, which
	// must be after now. The pair already recorded with an expiry after now
	// is ErrConflict (a replay); an expired record is replaced. Of
	// concurrent records of one pair exactly one succeeds.
	RecordAssertion(ctx context.Context, clientID, jti string, expiresAt, now time.Time) error
	// RecordDPoPProof records a DPoP proof's jti (RFC 9449 §11.1) for the key
	// thumbprint jkt until expiresAt, the end of the window in which the
	// proof's iat is accepted, with RecordAssertion's rules: the pair
	// already recorded with an expiry after now is ErrConflict (a replay),
	// an expired record is replaced, and of concurrent records of one pair,
	// on however many replicas, exactly one succeeds. PruneExpired deletes
	// expired records, so the table holds at most the proofs of one window.
	RecordDPoPProof(ctx context.Context, jkt, jti string, expiresAt, now time.Time) error
}

// BrowserStore is the part of a Store that holds browser sessions and OAuth
// 2.0 authorization codes, what browser login (/authorize and the login
// pages) needs.
type BrowserStore interface {
	// CreateSession stores a session; a taken ID is ErrConflict. ID,
	// UserID and ExpiresAt are required.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns a session by ID, expired or not.
	GetSession(ctx context.Context, id string) (Session, error)
	// TouchSession sets LastSeen to now, never earlier than it was.
	TouchSession(ctx context.Context, id string, now time.Time) error
	// DeleteSession deletes a session.
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions deletes every session of a user and returns how many.
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
	// ListUserSessions returns a user's sessions, expired or not (the caller
	// applies its timeouts), most recently seen first (then by CreatedAt and
	// ID, both descending), at most MaxUserSessions of them: a user with more
	// gets the most recently seen ones. A user with none, or an unknown user,
	// has an empty list.
	ListUserSessions(ctx context.Context, userID string) ([]Session, error)

	// CreateAuthCode stores a code; a taken ID is ErrConflict. ID,
	// ClientID, RedirectURI, UserID and ExpiresAt are required. When
	// c.SessionID is set it also, in the same transaction, deletes the
	// session's codes that expired at or before c.CreatedAt and, when
	// maxPerSession > 0, the session's oldest unredeemed codes (by CreatedAt,
	// then ID) beyond maxPerSession, never the new one: so a session never
	// holds more than maxPerSession unredeemed codes, however many
	// CreateAuthCode calls run at once on however many replicas. Redeemed
	// codes are kept until they expire (a second use must still revoke what
	// the first one issued). maxPerSession <= 0 caps nothing.
	CreateAuthCode(ctx context.Context, c AuthCode, maxPerSession int) error
	// GetAuthCode returns a code by ID, redeemed or not.
	GetAuthCode(ctx context.Context, id string) (AuthCode, error)
	// RedeemAuthCode atomically spends the code (UsedAt = now) and records
	// the refresh-token family and the access token's jti and expiry issued
	// from it, and returns the code as stored. Only a code that is unused and
	// expires after now can be redeemed: otherwise the error wraps
	// ErrConflict (ErrNotFound if there is no such code) and
	// nothing is written. Of concurrent redemptions of one code, on however
	// many replicas, exactly one succeeds.
	RedeemAuthCode(ctx context.Context, id string, now time.Time, familyID, accessJTI string, accessExpiresAt time.Time) (AuthCode, error)

	// PruneBrowser deletes sessions, authorization codes, device codes
	// (DeviceStore) and WebAuthn challenges (PasskeyStore) whose ExpiresAt is
	// at or before now, and returns how many rows it deleted.
	PruneBrowser(ctx context.Context, now time.Time) (int64, error)
}

// ThrottleStore is the part of a Store that keeps login throttling state.
// It is part of the store so that replicas sharing a database share one
// budget: a password guesser cannot multiply it by the number of replicas.
// A backend that only ever serves one process may answer with an in-memory
// throttle.
type ThrottleStore interface {
	// Throttle returns the throttle called name ("user", "ip"): independent
	// names never share buckets. l is the bucket: Burst failures at once, one
	// more regained every Every.
	Throttle(name string, l ThrottleLimits) Throttle
}

// ThrottleLimits says how many failed attempts a key may have: Burst at once,
// and one more regained every Every. It has the fields of throttle.Limits, so
// one converts to the other; it is declared here so that backends need not
// import the in-memory implementation.
type ThrottleLimits struct {
	Burst int
	Every time.Duration
}

// Throttle counts password attempts per key in token buckets, so that
// guessing slows to the refill rate whatever the concurrency. An attempt
// first Reserves a token, atomically (across replicas too, for a shared
// backend), and the password is verified only if it got one; a failed
// attempt keeps the token, a successful one gives it back (Reset for the
// account key, Release for the address key). N concurrent attempts at one key
// therefore reach verification at most Burst times. A refused Reserve takes
// nothing: an empty bucket accrues no debt, so a lockout never outlasts
// Burst×Every.
//
// Keys should be fixed-size digests, never raw client input; the login code
// passes SHA-256 hex digests.
type Throttle interface {
	// Reserve takes one token from key's bucket at now if it holds one (ok),
	// and otherwise takes nothing and reports how long until one is back,
	// in whole seconds, at least 1 s.
	Reserve(ctx context.Context, key string, now time.Time) (retryAfter time.Duration, ok bool, err error)
	// Release gives back one token taken by Reserve, never filling the
	// bucket beyond Burst.
	Release(ctx context.Context, key string, now time.Time) error
	// Reset forgets key's failures.
	Reset(ctx context.Context, key string) error
	// PruneFull deletes buckets that have refilled by now, which carry no
	// information, and returns how many; a flood of distinct keys must not
	// grow the state for ever. An implementation that bounds its state by
	// itself returns 0.
	PruneFull(ctx context.Context, now time.Time) (int64, error)
}
