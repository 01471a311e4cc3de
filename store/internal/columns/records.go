package columns

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate/store"
)

// This file converts whole records to and from their rows: the validation
// and column encoding every SQL backend applies identically, written once so
// that the backends cannot drift apart. A backend keeps only what depends on
// its dialect or driver: the SQL text, scanning with its driver's row type
// into a Row struct's fields, and checks of its own (PostgreSQL's refusal of
// NUL characters, for example), which it makes before calling XToRow.
//
// Errors from XToRow carry no backend prefix and no record ID; the caller wraps
// them with both, as in "store/sqlite: create client %q: %w".

// timeField is one time of a record to convert with ToNanos.
type timeField struct {
	name string
	t    time.Time
	dst  *int64
}

// toNanosAll converts each field with ToNanos, naming the first that fails.
func toNanosAll(fields ...timeField) error {
	for _, f := range fields {
		n, err := ToNanos(f.t)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = n
	}
	return nil
}

// FoldName is the form in which usernames and emails are compared: lowercased
// by Go, not by SQL, because SQLite's lower() folds only ASCII and
// PostgreSQL's depends on the database's collation and locale. Folding here
// gives every backend the same answer to "is this the same name?", for
// "Émile" as for "Bob".
func FoldName(s string) string { return strings.ToLower(s) }

// KeyRow is a store.Key in the column form of the signing_keys table. Sealed
// is nil for "no private half", so that it is bound as NULL.
type KeyRow struct {
	KID, Algorithm, State                       string
	PublicDER, Sealed                           []byte
	Created, Activate, Retired, Remove, Revoked int64
}

// KeyToRow validates k (a kid and a known state are required) and converts it
// for binding. An empty Sealed becomes nil.
func KeyToRow(k store.Key) (KeyRow, error) {
	if k.KID == "" {
		return KeyRow{}, errors.New("empty kid")
	}
	if !k.State.Valid() {
		return KeyRow{}, fmt.Errorf("invalid state %q", k.State)
	}
	r := KeyRow{KID: k.KID, Algorithm: k.Algorithm, State: string(k.State), PublicDER: k.PublicDER, Sealed: NilIfEmpty(k.Sealed)}
	if err := toNanosAll(
		timeField{"created_at", k.CreatedAt, &r.Created},
		timeField{"activate_at", k.ActivateAt, &r.Activate},
		timeField{"retired_at", k.RetiredAt, &r.Retired},
		timeField{"remove_after", k.RemoveAfter, &r.Remove},
		timeField{"revoked_at", k.RevokedAt, &r.Revoked},
	); err != nil {
		return KeyRow{}, err
	}
	return r, nil
}

// KeyFromRow converts a scanned signing_keys row back to a store.Key. A state
// the code does not know is an error rather than a key nobody can reason
// about; NULL and an empty blob both read back as a nil Sealed.
func KeyFromRow(r KeyRow) (store.Key, error) {
	k := store.Key{KID: r.KID, Algorithm: r.Algorithm, State: store.KeyState(r.State), PublicDER: r.PublicDER}
	if !k.State.Valid() {
		return store.Key{}, fmt.Errorf("key %q: unknown state %q", r.KID, r.State)
	}
	k.Sealed = NilIfEmpty(r.Sealed)
	k.CreatedAt = FromNanos(r.Created)
	k.ActivateAt = FromNanos(r.Activate)
	k.RetiredAt = FromNanos(r.Retired)
	k.RemoveAfter = FromNanos(r.Remove)
	k.RevokedAt = FromNanos(r.Revoked)
	return k, nil
}

// ClientRow is a store.Client in the column form of the clients table: lists
// as JSON arrays, durations and times as nanoseconds, absent bytes as nil.
type ClientRow struct {
	ID, Name                                   string
	SecretHash, JWKS                           []byte
	JWKSURI                                    string
	GrantTypes, Scopes, Audience, RedirectURIs string
	Public                                     bool
	AccessTTL, NotBeforeDelay                  int64
	AllowBareAssertion, Introspect             bool
	Created                                    int64
	PostLogoutRedirectURIs                     string // JSON array
	PreviousSecretHash                         []byte // nil for none
	PreviousSecretExpires                      int64
	AllowedOrigins                             string
	ThirdParty                                 bool
	SigningAlg                                 string // "" for RS256
	DPoPBound                                  bool
}

// ClientToRow validates c (an ID is required) and converts it for binding.
func ClientToRow(c store.Client) (ClientRow, error) {
	if c.ID == "" {
		return ClientRow{}, errors.New("empty id")
	}
	r := ClientRow{
		ID: c.ID, Name: c.Name, SecretHash: NilIfEmpty(c.SecretHash), JWKS: NilIfEmpty(c.JWKS), JWKSURI: c.JWKSURI,
		Public: c.Public, AccessTTL: int64(c.AccessTTL), NotBeforeDelay: int64(c.NotBeforeDelay),
		AllowBareAssertion: c.AllowBareAssertion, Introspect: c.Introspect, ThirdParty: c.ThirdParty,
		SigningAlg: c.SigningAlg, DPoPBound: c.DPoPBoundAccessTokens,
	}
	r.PreviousSecretHash = NilIfEmpty(c.PreviousSecretHash)
	var err error
	if err = toNanosAll(
		timeField{"created_at", c.CreatedAt, &r.Created},
		timeField{"previous_secret_expires_at", c.PreviousSecretExpiresAt, &r.PreviousSecretExpires},
	); err != nil {
		return ClientRow{}, err
	}
	for _, f := range []struct {
		name string
		v    []string
		dst  *string
	}{
		{"grant_types", c.GrantTypes, &r.GrantTypes},
		{"scopes", c.Scopes, &r.Scopes},
		{"audience", c.Audience, &r.Audience},
		{"redirect_uris", c.RedirectURIs, &r.RedirectURIs},
		{"allowed_origins", c.AllowedOrigins, &r.AllowedOrigins},
		{"post_logout_redirect_uris", c.PostLogoutRedirectURIs, &r.PostLogoutRedirectURIs},
	} {
		if *f.dst, err = EncodeList(f.v); err != nil {
			return ClientRow{}, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return r, nil
}

// ClientFromRow converts a scanned clients row back to a store.Client; a
// stored list that is not a JSON array of strings is an error naming the
// client and the column.
func ClientFromRow(r ClientRow) (store.Client, error) {
	c := store.Client{
		ID: r.ID, Name: r.Name, SecretHash: NilIfEmpty(r.SecretHash), JWKS: NilIfEmpty(r.JWKS), JWKSURI: r.JWKSURI,
		Public: r.Public, AccessTTL: time.Duration(r.AccessTTL), NotBeforeDelay: time.Duration(r.NotBeforeDelay),
		AllowBareAssertion: r.AllowBareAssertion, Introspect: r.Introspect, CreatedAt: FromNanos(r.Created),
		PreviousSecretHash: NilIfEmpty(r.PreviousSecretHash), PreviousSecretExpiresAt: FromNanos(r.PreviousSecretExpires),
		ThirdParty: r.ThirdParty, SigningAlg: r.SigningAlg, DPoPBoundAccessTokens: r.DPoPBound,
	}
	for _, f := range []struct {
		name string
		text string
		dst  *[]string
	}{
		{"grant_types", r.GrantTypes, &c.GrantTypes},
		{"scopes", r.Scopes, &c.Scopes},
		{"audience", r.Audience, &c.Audience},
		{"redirect_uris", r.RedirectURIs, &c.RedirectURIs},
		{"allowed_origins", r.AllowedOrigins, &c.AllowedOrigins},
		{"post_logout_redirect_uris", r.PostLogoutRedirectURIs, &c.PostLogoutRedirectURIs},
	} {
		v, err := DecodeList(f.text)
		if err != nil {
			return store.Client{}, fmt.Errorf("client %q: %s: %w", r.ID, f.name, err)
		}
		*f.dst = v
	}
	return c, nil
}

// RefreshRow is a store.RefreshToken in the column form of the refresh_tokens
// table.
type RefreshRow struct {
	ID, Family, Client, Subject, Scope, Audience string
	Auth, Created, Expires, Used, Revoked        int64
	JKT                                          string // "" for a family bound to no key
	AMR                                          string // JSON array
}

// RefreshToRow validates rt and converts it for binding. ID and FamilyID are
// required, and so is ExpiresAt: a link that never expires is not a thing
// Keygate issues.
func RefreshToRow(rt store.RefreshToken) (RefreshRow, error) {
	switch {
	case rt.ID == "":
		return RefreshRow{}, errors.New("empty id")
	case rt.FamilyID == "":
		return RefreshRow{}, errors.New("empty family id")
	}
	r := RefreshRow{ID: rt.ID, Family: rt.FamilyID, Client: rt.ClientID, Subject: rt.Subject, Scope: rt.Scope, JKT: rt.DPoPJKT}
	var err error
	if r.Audience, err = EncodeList(rt.Audience); err != nil {
		return RefreshRow{}, fmt.Errorf("audience: %w", err)
	}
	if r.AMR, err = EncodeList(rt.AMR); err != nil {
		return RefreshRow{}, fmt.Errorf("amr: %w", err)
	}
	if r.Expires, err = RequiredNanos(rt.ExpiresAt); err != nil {
		return RefreshRow{}, fmt.Errorf("expires_at: %w", err)
	}
	if err := toNanosAll(
		timeField{"auth_time", rt.AuthTime, &r.Auth},
		timeField{"created_at", rt.CreatedAt, &r.Created},
		timeField{"used_at", rt.UsedAt, &r.Used},
		timeField{"revoked_at", rt.RevokedAt, &r.Revoked},
	); err != nil {
		return RefreshRow{}, err
	}
	return r, nil
}

// RefreshFromRow converts a scanned refresh_tokens row back to a
// store.RefreshToken; an empty audience reads back as nil.
func RefreshFromRow(r RefreshRow) (store.RefreshToken, error) {
	aud, err := DecodeList(r.Audience)
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("refresh token %q: audience: %w", r.ID, err)
	}
	amr, err := DecodeList(r.AMR)
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("refresh token %q: amr: %w", r.ID, err)
	}
	return store.RefreshToken{
		ID: r.ID, FamilyID: r.Family, ClientID: r.Client, Subject: r.Subject, Scope: r.Scope, Audience: aud, AMR: amr,
		AuthTime: FromNanos(r.Auth), CreatedAt: FromNanos(r.Created), ExpiresAt: FromNanos(r.Expires),
		UsedAt: FromNanos(r.Used), RevokedAt: FromNanos(r.Revoked), DPoPJKT: r.JKT,
	}, nil
}

// SessionRow is a store.Session in the column form of the sessions table.
type SessionRow struct {
	ID, UserID                   string
	Auth, Created, Seen, Expires int64
	AMR                          string // JSON array
	Pending                      bool
}

// SessionToRow validates ss (ID, UserID and ExpiresAt are required) and
// converts it for binding.
func SessionToRow(ss store.Session) (SessionRow, error) {
	switch {
	case ss.ID == "":
		return SessionRow{}, errors.New("empty id")
	case ss.UserID == "":
		return SessionRow{}, errors.New("empty user id")
	}
	r := SessionRow{ID: ss.ID, UserID: ss.UserID, Pending: ss.Pending}
	var err error
	if r.Expires, err = RequiredNanos(ss.ExpiresAt); err != nil {
		return SessionRow{}, fmt.Errorf("expires_at: %w", err)
	}
	if r.AMR, err = EncodeList(ss.AMR); err != nil {
		return SessionRow{}, fmt.Errorf("amr: %w", err)
	}
	if err := toNanosAll(
		timeField{"auth_time", ss.AuthTime, &r.Auth},
		timeField{"created_at", ss.CreatedAt, &r.Created},
		timeField{"last_seen", ss.LastSeen, &r.Seen},
	); err != nil {
		return SessionRow{}, err
	}
	return r, nil
}

// SessionFromRow converts a scanned sessions row back to a store.Session.
func SessionFromRow(r SessionRow) (store.Session, error) {
	amr, err := DecodeList(r.AMR)
	if err != nil {
		return store.Session{}, fmt.Errorf("session %q: amr: %w", r.ID, err)
	}
	return store.Session{
		ID: r.ID, UserID: r.UserID, AMR: amr, Pending: r.Pending,
		AuthTime: FromNanos(r.Auth), CreatedAt: FromNanos(r.Created), LastSeen: FromNanos(r.Seen), ExpiresAt: FromNanos(r.Expires),
	}, nil
}

// AuthCodeRow is a store.AuthCode in the column form of the auth_codes table.
type AuthCodeRow struct {
	ID, ClientID, RedirectURI, UserID, Scope, Nonce, CodeChallenge string
	Auth, Created, Expires, Used                                   int64
	FamilyID, AccessJTI                                            string
	AccessExpires                                                  int64
	SessionID                                                      string
	AMR                                                            string // JSON array
	DPoPJKT                                                        string
}

// AuthCodeToRow validates ac (ID, ClientID, RedirectURI, UserID and ExpiresAt
// are required) and converts it for binding. UsedAt and what is issued at
// redemption are converted as given.
func AuthCodeToRow(ac store.AuthCode) (AuthCodeRow, error) {
	switch {
	case ac.ID == "":
		return AuthCodeRow{}, errors.New("empty id")
	case ac.ClientID == "" || ac.RedirectURI == "" || ac.UserID == "":
		return AuthCodeRow{}, errors.New("empty client id, redirect URI or user id")
	}
	r := AuthCodeRow{
		ID: ac.ID, ClientID: ac.ClientID, RedirectURI: ac.RedirectURI, UserID: ac.UserID,
		Scope: ac.Scope, Nonce: ac.Nonce, CodeChallenge: ac.CodeChallenge,
		FamilyID: ac.FamilyID, AccessJTI: ac.AccessJTI, SessionID: ac.SessionID, DPoPJKT: ac.DPoPJKT,
	}
	var err error
	if r.Expires, err = RequiredNanos(ac.ExpiresAt); err != nil {
		return AuthCodeRow{}, fmt.Errorf("expires_at: %w", err)
	}
	if r.AMR, err = EncodeList(ac.AMR); err != nil {
		return AuthCodeRow{}, fmt.Errorf("amr: %w", err)
	}
	if err := toNanosAll(
		timeField{"auth_time", ac.AuthTime, &r.Auth},
		timeField{"created_at", ac.CreatedAt, &r.Created},
		timeField{"used_at", ac.UsedAt, &r.Used},
		timeField{"access_expires_at", ac.AccessExpiresAt, &r.AccessExpires},
	); err != nil {
		return AuthCodeRow{}, err
	}
	return r, nil
}

// AuthCodeFromRow converts a scanned auth_codes row back to a store.AuthCode.
func AuthCodeFromRow(r AuthCodeRow) (store.AuthCode, error) {
	amr, err := DecodeList(r.AMR)
	if err != nil {
		return store.AuthCode{}, fmt.Errorf("authorization code %q: amr: %w", r.ID, err)
	}
	return store.AuthCode{
		ID: r.ID, ClientID: r.ClientID, RedirectURI: r.RedirectURI, UserID: r.UserID, SessionID: r.SessionID, AMR: amr,
		Scope: r.Scope, Nonce: r.Nonce, CodeChallenge: r.CodeChallenge, DPoPJKT: r.DPoPJKT,
		AuthTime: FromNanos(r.Auth), CreatedAt: FromNanos(r.Created), ExpiresAt: FromNanos(r.Expires),
		UsedAt: FromNanos(r.Used), FamilyID: r.FamilyID, AccessJTI: r.AccessJTI, AccessExpiresAt: FromNanos(r.AccessExpires),
	}, nil
}

// UserRow is a store.User in the column form of the users table, with the
// folded username and email the unique indexes compare. Email and EmailLower
// are nil for a user without an email, so that they are bound as NULL and any
// number of users may have none.
type UserRow struct {
	ID, Username, UsernameLower string
	Email, EmailLower           *string
	Name, PasswordHash          string
	Admin                       bool
	Created, Updated, Disabled  int64
}

// UserToRow validates u and converts it for binding. ID and Username are
// required, and the username and email must be valid UTF-8, since folding case
// would change invalid bytes and so could make different names collide.
func UserToRow(u store.User) (UserRow, error) {
	switch {
	case u.ID == "":
		return UserRow{}, fmt.Errorf("empty id (username %q)", u.Username)
	case u.Username == "":
		return UserRow{}, errors.New("empty username")
	case !utf8.ValidString(u.Username):
		return UserRow{}, fmt.Errorf("username %q is not valid UTF-8", u.Username)
	case !utf8.ValidString(u.Email):
		return UserRow{}, fmt.Errorf("email %q is not valid UTF-8", u.Email)
	}
	r := UserRow{
		ID: u.ID, Username: u.Username, UsernameLower: FoldName(u.Username),
		Name: u.Name, PasswordHash: u.PasswordHash, Admin: u.Admin,
	}
	if u.Email != "" {
		email, lower := u.Email, FoldName(u.Email)
		r.Email, r.EmailLower = &email, &lower
	}
	if err := toNanosAll(
		timeField{"created_at", u.CreatedAt, &r.Created},
		timeField{"updated_at", u.UpdatedAt, &r.Updated},
		timeField{"disabled_at", u.DisabledAt, &r.Disabled},
	); err != nil {
		return UserRow{}, err
	}
	return r, nil
}

// UserFromRow converts a scanned users row back to a store.User; a NULL email
// reads back as "".
func UserFromRow(r UserRow) store.User {
	u := store.User{
		ID: r.ID, Username: r.Username, Name: r.Name, PasswordHash: r.PasswordHash, Admin: r.Admin,
		CreatedAt: FromNanos(r.Created), UpdatedAt: FromNanos(r.Updated), DisabledAt: FromNanos(r.Disabled),
	}
	if r.Email != nil {
		u.Email = *r.Email
	}
	return u
}

// CodeCapLimit is how many of a session's other unredeemed codes a
// CreateAuthCode capped at maxPerSession keeps beside the new one: the
// newest maxPerSession-1, or all of them (a bound no session reaches) when
// maxPerSession is 0 or less.
func CodeCapLimit(maxPerSession int) int64 {
	if maxPerSession <= 0 {
		return 1 << 62
	}
	return int64(maxPerSession) - 1
}

// NotSpentReason says why a guarded spend of an existing refresh-token link
// matched nothing, from its stored columns: revoked first (the family is
// dead), then already spent (reuse), else expired. Both backends report it so
// that callers see the same diagnosis whatever the database.
func NotSpentReason(used, revoked, expires int64, now time.Time) string {
	switch {
	case revoked != 0:
		return fmt.Sprintf("revoked at %v", FromNanos(revoked))
	case used != 0:
		return fmt.Sprintf("already spent at %v", FromNanos(used))
	default:
		return fmt.Sprintf("expired at %v (now %v)", FromNanos(expires), now.UTC())
	}
}

// OnceTable is a table of single-use (owner, jti) records kept until they
// expire, written by one upsert that only takes over an expired record:
// seen_assertions (RFC 7523) and seen_dpop_proofs (RFC 9449).
type OnceTable struct{ Table, OwnerColumn, OwnerName, What string }

// The single-use record tables.
var (
	AssertionRecords = OnceTable{"seen_assertions", "client_id", "client", "assertion"}
	DPoPProofRecords = OnceTable{"seen_dpop_proofs", "jkt", "key", "DPoP proof"}
)

// Describe names the record (owner, jti) in errors.
func (t OnceTable) Describe(owner, jti string) string {
	return fmt.Sprintf("record %s %q of %s %q", t.What, jti, t.OwnerName, owner)
}

// Times validates a record (owner and jti set, expiresAt after now, both
// representable) and returns expiresAt and now as nanoseconds. A record
// already expired at now would be forgotten at once, silently disabling
// replay protection, so it is refused.
func (t OnceTable) Times(owner, jti string, expiresAt, now time.Time) (exp, at int64, err error) {
	if owner == "" || jti == "" {
		return 0, 0, fmt.Errorf("empty %s or jti", t.OwnerName)
	}
	if exp, err = RequiredNanos(expiresAt); err != nil {
		return 0, 0, fmt.Errorf("expires_at: %w", err)
	}
	if at, err = RequiredNanos(now); err != nil {
		return 0, 0, fmt.Errorf("now: %w", err)
	}
	if exp <= at {
		return 0, 0, fmt.Errorf("expires at %v, not after now %v", expiresAt.UTC(), now.UTC())
	}
	return exp, at, nil
}

// Upsert is the statement that records (owner, jti, expires_at) or takes
// over an expired record, with the placeholders p[0..3] for owner, jti,
// expires_at and now: a live record fails the DO UPDATE's WHERE and the
// statement changes no row, which the caller reports as a replay.
func (t OnceTable) Upsert(p [4]string) string {
	return `INSERT INTO ` + t.Table + ` (` + t.OwnerColumn + `, jti, expires_at) VALUES (` + p[0] + `, ` + p[1] + `, ` + p[2] + `)
		ON CONFLICT (` + t.OwnerColumn + `, jti) DO UPDATE SET expires_at = excluded.expires_at
		WHERE ` + t.Table + `.expires_at <= ` + p[3]
}
