package columns

import "reflect"

// This file holds, for each record of records.go and consent.go, the column
// list its queries select and the two views of its Row struct a driver needs
// (Dest to scan into, Args to insert from), in the same order, so that the
// backends share one list per table instead of each repeating it.

// ClientColumns is the column list client queries select, in the order of
// ClientRow.Dest.
const ClientColumns = `id, name, secret_hash, jwks, jwks_uri, grant_types, scopes, audience,
	redirect_uris, is_public, access_ttl, not_before_delay, allow_bare_assertion, may_introspect, created_at,
	previous_secret_hash, previous_secret_expires_at, allowed_origins, third_party, post_logout_redirect_uris, signing_alg,
	dpop_bound_access_tokens`

// Dest is what a driver scans a row selected with ClientColumns into.
func (r *ClientRow) Dest() []any {
	return []any{&r.ID, &r.Name, &r.SecretHash, &r.JWKS, &r.JWKSURI,
		&r.GrantTypes, &r.Scopes, &r.Audience, &r.RedirectURIs,
		&r.Public, &r.AccessTTL, &r.NotBeforeDelay, &r.AllowBareAssertion, &r.Introspect, &r.Created,
		&r.PreviousSecretHash, &r.PreviousSecretExpires, &r.AllowedOrigins, &r.ThirdParty, &r.PostLogoutRedirectURIs, &r.SigningAlg,
		&r.DPoPBound}
}

// Args is the row's values in ClientColumns order, for an INSERT.
func (r ClientRow) Args() []any { return derefAll(r.Dest()) }

// UserColumns is the column list user queries select, in the order of
// UserRow.Dest. An insert also writes the folded names: UserInsertColumns.
const UserColumns = `id, username, email, name, password_hash, admin, created_at, updated_at, disabled_at`

// UserInsertColumns is the column list of an INSERT INTO users, in the order
// of UserRow.Args.
const UserInsertColumns = `id, username, username_lower, email, email_lower, name, password_hash, admin, created_at, updated_at, disabled_at`

// Dest is what a driver scans a row selected with UserColumns into.
func (r *UserRow) Dest() []any {
	return []any{&r.ID, &r.Username, &r.Email, &r.Name, &r.PasswordHash, &r.Admin, &r.Created, &r.Updated, &r.Disabled}
}

// Args is the row's values in UserInsertColumns order, for an INSERT.
func (r UserRow) Args() []any {
	return []any{r.ID, r.Username, r.UsernameLower, r.Email, r.EmailLower, r.Name, r.PasswordHash, r.Admin, r.Created, r.Updated, r.Disabled}
}

// SessionColumns is the column list session queries select, in the order of
// SessionRow.Dest.
const SessionColumns = `id, user_id, auth_time, created_at, last_seen, expires_at, amr, pending`

// Dest is what a driver scans a row selected with SessionColumns into.
func (r *SessionRow) Dest() []any {
	return []any{&r.ID, &r.UserID, &r.Auth, &r.Created, &r.Seen, &r.Expires, &r.AMR, &r.Pending}
}

// Args is the row's values in SessionColumns order, for an INSERT.
func (r SessionRow) Args() []any { return derefAll(r.Dest()) }

// AuthCodeColumns is the column list authorization-code queries select, in
// the order of AuthCodeRow.Dest.
const AuthCodeColumns = `id, client_id, redirect_uri, user_id, scope, nonce, code_challenge,
	auth_time, created_at, expires_at, used_at, family_id, access_jti, access_expires_at, session_id, amr, dpop_jkt`

// Dest is what a driver scans a row selected with AuthCodeColumns into.
func (r *AuthCodeRow) Dest() []any {
	return []any{&r.ID, &r.ClientID, &r.RedirectURI, &r.UserID, &r.Scope, &r.Nonce, &r.CodeChallenge,
		&r.Auth, &r.Created, &r.Expires, &r.Used, &r.FamilyID, &r.AccessJTI, &r.AccessExpires, &r.SessionID, &r.AMR, &r.DPoPJKT}
}

// Args is the row's values in AuthCodeColumns order, for an INSERT.
func (r AuthCodeRow) Args() []any { return derefAll(r.Dest()) }

// RefreshColumns is the column list refresh-token queries select, in the
// order of RefreshRow.Dest.
const RefreshColumns = `id, family_id, client_id, subject, scope, audience,
	auth_time, created_at, expires_at, used_at, revoked_at, dpop_jkt, amr`

// Dest is what a driver scans a row selected with RefreshColumns into.
func (r *RefreshRow) Dest() []any {
	return []any{&r.ID, &r.Family, &r.Client, &r.Subject, &r.Scope, &r.Audience,
		&r.Auth, &r.Created, &r.Expires, &r.Used, &r.Revoked, &r.JKT, &r.AMR}
}

// Args is the row's values in RefreshColumns order, for an INSERT.
func (r RefreshRow) Args() []any { return derefAll(r.Dest()) }

// ConsentColumns is the column list consent queries select, in the order of
// ConsentRow.Dest.
const ConsentColumns = `user_id, client_id, scopes, created_at, updated_at`

// Dest is what a driver scans a row selected with ConsentColumns into.
func (r *ConsentRow) Dest() []any {
	return []any{&r.UserID, &r.ClientID, &r.Scopes, &r.Created, &r.Updated}
}

// Args is the row's values in ConsentColumns order, for an INSERT.
func (r ConsentRow) Args() []any { return derefAll(r.Dest()) }

// KeyColumns is the column list signing-key queries select, in the order of
// KeyRow.Dest.
const KeyColumns = `kid, algorithm, state, public_der, sealed,
	created_at, activate_at, retired_at, remove_after, revoked_at`

// Dest is what a driver scans a row selected with KeyColumns into.
func (r *KeyRow) Dest() []any {
	return []any{&r.KID, &r.Algorithm, &r.State, &r.PublicDER, &r.Sealed,
		&r.Created, &r.Activate, &r.Retired, &r.Remove, &r.Revoked}
}

// Args is the row's values in KeyColumns order, for an INSERT.
func (r KeyRow) Args() []any { return derefAll(r.Dest()) }

// Scan reads one row with scan (a driver row's Scan method) into the column
// form R, through its Dest, and converts it with from: each backend's
// scanX functions are this call with their driver's row.
func Scan[R any, P interface {
	*R
	Dest() []any
}, T any](scan func(dest ...any) error, from func(R) (T, error)) (T, error) {
	var row R
	if err := scan(P(&row).Dest()...); err != nil {
		var zero T
		return zero, err
	}
	return from(row)
}

// NoError adapts a conversion that cannot fail (UserFromRow, TOTPFromRow)
// to Scan's from.
func NoError[R, T any](from func(R) T) func(R) (T, error) {
	return func(r R) (T, error) { return from(r), nil }
}

// derefAll returns the values dest's pointers point to, so that a Row's Args
// is its Dest read back and the two cannot disagree on the order. reflect,
// because the pointers are of several types; the values are what the
// drivers would be given field by field.
func derefAll(dest []any) []any {
	out := make([]any, len(dest))
	for i, p := range dest {
		out[i] = reflect.ValueOf(p).Elem().Interface()
	}
	return out
}
