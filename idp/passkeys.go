package idp

// Passkeys (WebAuthn, with github.com/go-webauthn/webauthn): a user
// registers passkeys from the account page and signs in with one on the
// login page, without a username (discoverable credentials). Keygate is the
// WebAuthn relying party; its RP ID is the issuer's host name and its one
// origin the issuer's scheme, host and port, so the issuer URL is all an
// operator sets. Every ceremony's challenge is kept in the store
// (store.WebAuthnChallenge): single use, short-lived, capped per session or
// client address. Registration and sign-in require user verification, so a
// passkey sign-in is multi-factor (the device, and the PIN or biometric
// that unlocks it).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/throttle"
)

// Bounds of the passkey feature: what one user, session or address may hold.
const (
	// MaxPasskeysPerUser bounds a user's passkeys (the store enforces it).
	MaxPasskeysPerUser = 20
	// passkeyChallengeTTL is how long a ceremony may take: the browser's
	// prompt, the user's touch or PIN.
	passkeyChallengeTTL = 5 * time.Minute
	// maxRegistrationsPerSession bounds the registration ceremonies one
	// session has under way; the oldest is dropped beyond it.
	maxRegistrationsPerSession = 3
	// maxLoginsPerAddress bounds the sign-in ceremonies under way from one
	// client address (a NAT may hide many people behind one address).
	maxLoginsPerAddress = 50
	// maxPasskeyName bounds the name a user gives a passkey, in characters.
	maxPasskeyName = 64
)

// ErrPasskeysUnavailable means the issuer's host cannot be a WebAuthn RP ID
// (an IP address, say), so passkeys are off.
var ErrPasskeysUnavailable = errors.New("passkeys are not available: the issuer's host is not a domain name")

// ErrPasskeyRefused is what every failed passkey ceremony wraps: an unknown,
// spent or expired challenge, an unknown or removed passkey, a signature,
// origin or user-verification failure, a cloned authenticator.
var ErrPasskeyRefused = errors.New("passkey refused")

// ErrTooManyPasskeys refuses a registration beyond MaxPasskeysPerUser.
var ErrTooManyPasskeys = fmt.Errorf("a user may register at most %d passkeys", MaxPasskeysPerUser)

// refused wraps ErrPasskeyRefused with the reason, for logs.
func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPasskeyRefused, fmt.Sprintf(format, args...))
}

// newRelyingParty configures the WebAuthn relying party from the issuer,
// or returns nil when its host cannot be an RP ID.
func newRelyingParty(issuer string) (*webauthn.WebAuthn, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: %w", issuer, err)
	}
	rpID := u.Hostname()
	if err := protocol.ValidateRPID(rpID); err != nil || strings.Trim(rpID, "0123456789.:[]") == "" {
		return nil, nil
	}
	requireResident := true
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: rpID,
		RPOrigins:     []string{u.Scheme + "://" + u.Host},
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			RequireResidentKey: &requireResident,
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			UserVerification:   protocol.VerificationRequired,
		},
		AttestationPreference: protocol.PreferNoAttestation,
	})
	if err != nil {
		return nil, fmt.Errorf("WebAuthn relying party for issuer %q: %w", issuer, err)
	}
	return wa, nil
}

// PasskeysEnabled reports whether passkeys can be used with this issuer.
func (p *Provider) PasskeysEnabled() bool { return p.rp != nil }

// passkeyUser is a user as the WebAuthn library sees one: the user handle
// is the user's ID (at most 64 bytes, and no personal data).
type passkeyUser struct {
	u     store.User
	creds []webauthn.Credential
}

func (w *passkeyUser) WebAuthnID() []byte   { return []byte(w.u.ID) }
func (w *passkeyUser) WebAuthnName() string { return w.u.Username }
func (w *passkeyUser) WebAuthnDisplayName() string {
	if w.u.Name != "" {
		return w.u.Name
	}
	return w.u.Username
}
func (w *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// credentialID is how a credential ID is stored and shown: base64url.
func credentialID(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

// toCredential is a stored passkey as the library's credential record.
func toCredential(pk store.Passkey) (webauthn.Credential, error) {
	id, err := base64.RawURLEncoding.DecodeString(pk.ID)
	if err != nil {
		return webauthn.Credential{}, fmt.Errorf("passkey %q: id: %w", pk.ID, err)
	}
	flags := protocol.FlagUserPresent
	if pk.UserVerified {
		flags |= protocol.FlagUserVerified
	}
	if pk.BackupEligible {
		flags |= protocol.FlagBackupEligible
	}
	if pk.BackupState {
		flags |= protocol.FlagBackupState
	}
	tr := make([]protocol.AuthenticatorTransport, len(pk.Transports))
	for i, t := range pk.Transports {
		tr[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{ID: id, PublicKey: pk.PublicKey, AttestationFormat: pk.AttestationFormat, Transport: tr,
		Flags: webauthn.NewCredentialFlags(flags), Authenticator: webauthn.Authenticator{AAGUID: pk.AAGUID, SignCount: pk.SignCount}}, nil
}

// passkeyUserOf loads u's passkeys as credential records.
func (p *Provider) passkeyUserOf(ctx context.Context, u store.User) (*passkeyUser, []store.Passkey, error) {
	pks, err := p.cfg.Store.ListUserPasskeys(ctx, u.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("list passkeys of %s: %w", u.ID, err)
	}
	w := &passkeyUser{u: u}
	for _, pk := range pks {
		c, err := toCredential(pk)
		if err != nil {
			return nil, nil, err
		}
		w.creds = append(w.creds, c)
	}
	return w, pks, nil
}

// saveChallenge stores a ceremony's state under the digest of its challenge.
func (p *Provider) saveChallenge(ctx context.Context, sd *webauthn.SessionData, ceremony, userID, binding string, limit int) error {
	data, err := json.Marshal(sd)
	if err != nil {
		return fmt.Errorf("encode WebAuthn %s ceremony: %w", ceremony, err)
	}
	now := p.now().UTC()
	c := store.WebAuthnChallenge{ID: digest(sd.Challenge), Ceremony: ceremony, UserID: userID, Binding: binding, Data: data,
		CreatedAt: now, ExpiresAt: now.Add(passkeyChallengeTTL)}
	if err := p.cfg.Store.CreateWebAuthnChallenge(ctx, c, limit); err != nil {
		return fmt.Errorf("store WebAuthn %s challenge: %w", ceremony, err)
	}
	return nil
}

// takeChallenge consumes the challenge the browser's clientDataJSON names,
// which must belong to ceremony; anything else is ErrPasskeyRefused.
func (p *Provider) takeChallenge(ctx context.Context, challenge, ceremony string) (store.WebAuthnChallenge, webauthn.SessionData, error) {
	var sd webauthn.SessionData
	if challenge == "" || len(challenge) > 128 {
		return store.WebAuthnChallenge{}, sd, refused("no challenge")
	}
	c, err := p.cfg.Store.ConsumeWebAuthnChallenge(ctx, digest(challenge), p.now().UTC())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return c, sd, refused("unknown or already used challenge")
	case errors.Is(err, store.ErrConflict):
		return c, sd, refused("expired challenge")
	case err != nil:
		return c, sd, err
	case c.Ceremony != ceremony:
		return c, sd, refused("a %s challenge used for %s", c.Ceremony, ceremony)
	}
	if err := json.Unmarshal(c.Data, &sd); err != nil {
		return c, sd, fmt.Errorf("decode WebAuthn challenge: %w", err)
	}
	return c, sd, nil
}

// PasskeyCreationOptions begins registering a passkey for cur's user: the
// options for navigator.credentials.create (a resident key, user
// verification required, the user's passkeys excluded so one authenticator
// is not registered twice).
func (p *Provider) PasskeyCreationOptions(ctx context.Context, cur *Session) (*protocol.CredentialCreation, error) {
	if p.rp == nil {
		return nil, ErrPasskeysUnavailable
	}
	w, pks, err := p.passkeyUserOf(ctx, cur.User)
	if err != nil {
		return nil, err
	}
	if len(pks) >= MaxPasskeysPerUser {
		return nil, ErrTooManyPasskeys
	}
	creation, sd, err := p.rp.BeginRegistration(w, webauthn.WithExclusions(webauthn.Credentials(w.creds).CredentialDescriptors()))
	if err != nil {
		return nil, fmt.Errorf("begin passkey registration of %s: %w", cur.UserID, err)
	}
	if err := p.saveChallenge(ctx, sd, store.CeremonyRegistration, cur.UserID, "session:"+cur.ID, maxRegistrationsPerSession); err != nil {
		return nil, err
	}
	return creation, nil
}

// ValidatePasskeyName checks the name a user gives a passkey: 1 to 64
// printable characters once trimmed. It returns the trimmed name or a
// *ValidationError.
func ValidatePasskeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > maxPasskeyName || !utf8.ValidString(name) {
		return "", &ValidationError{Field: "name", Problem: fmt.Sprintf("must be 1 to %d characters", maxPasskeyName)}
	}
	if strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return "", &ValidationError{Field: "name", Problem: "must be printable characters"}
	}
	return name, nil
}

// RegisterPasskey finishes a registration cur's browser began: response is
// the PublicKeyCredential JSON from navigator.credentials.create. The
// challenge must be one PasskeyCreationOptions gave this session, unspent
// and unexpired; the attestation must verify for this RP ID and origin, with
// the user verified. Failures wrap ErrPasskeyRefused (or are a
// *ValidationError for the name, or ErrTooManyPasskeys).
func (p *Provider) RegisterPasskey(ctx context.Context, cur *Session, name string, response []byte) (store.Passkey, error) {
	if p.rp == nil {
		return store.Passkey{}, ErrPasskeysUnavailable
	}
	name, err := ValidatePasskeyName(name)
	if err != nil {
		return store.Passkey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return store.Passkey{}, refused("unreadable registration: %v", err)
	}
	c, sd, err := p.takeChallenge(ctx, parsed.Response.CollectedClientData.Challenge, store.CeremonyRegistration)
	if err != nil {
		return store.Passkey{}, err
	}
	if c.UserID != cur.UserID || c.Binding != "session:"+cur.ID {
		return store.Passkey{}, refused("a challenge of another session")
	}
	w, _, err := p.passkeyUserOf(ctx, cur.User)
	if err != nil {
		return store.Passkey{}, err
	}
	cred, err := p.rp.CreateCredential(w, sd, parsed)
	if err != nil {
		return store.Passkey{}, refused("registration: %v", protocolDetail(err))
	}
	tr := make([]string, len(cred.Transport))
	for i, t := range cred.Transport {
		tr[i] = string(t)
	}
	pk := store.Passkey{ID: credentialID(cred.ID), UserID: cur.UserID, Name: name, PublicKey: cred.PublicKey,
		AttestationFormat: cred.AttestationFormat, AAGUID: cred.Authenticator.AAGUID, Transports: tr,
		SignCount: cred.Authenticator.SignCount, UserVerified: cred.Flags.UserVerified,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState, CreatedAt: p.now().UTC()}
	err = p.cfg.Store.CreatePasskey(ctx, pk, MaxPasskeysPerUser)
	switch {
	case errors.Is(err, store.ErrConflict):
		return store.Passkey{}, ErrTooManyPasskeys
	case err != nil:
		return store.Passkey{}, fmt.Errorf("store passkey of %s: %w", cur.UserID, err)
	}
	p.log.Info("passkey registered", "user_id", cur.UserID, "passkey", PasskeyHandle(pk.ID),
		"backup_eligible", pk.BackupEligible, "aaguid", fmt.Sprintf("%x", pk.AAGUID))
	return pk, nil
}

// protocolDetail is a library error with its details, for logs.
func protocolDetail(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return pe.Details + " (" + pe.DevInfo + ")"
	}
	if errors.As(err, &pe) {
		return pe.Details
	}
	return err.Error()
}

// PasskeyHandle is the short name logs and the account page use for a
// passkey: the first 12 characters of its credential ID, which is public
// (the authenticator shows it to any site that asks) but long.
func PasskeyHandle(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// PasskeyRequestOptions begins a passkey sign-in from the address ip: the
// options for navigator.credentials.get with no allowed credentials (the
// browser offers the user's discoverable passkeys for this site) and user
// verification required.
func (p *Provider) PasskeyRequestOptions(ctx context.Context, ip string) (*protocol.CredentialAssertion, error) {
	if p.rp == nil {
		return nil, ErrPasskeysUnavailable
	}
	// Reserved before the challenge is made and stored, so concurrent
	// requests cannot all pass a check and then all write.
	if wait, ok := p.passkeyStarts.Reserve("passkey sign-ins", p.now()); !ok {
		p.log.Warn("passkey sign-ins refused: new ceremonies from all addresses are over login.passkey_burst/passkey_every",
			"retry_after", wait)
		return nil, &ThrottledError{RetryAfter: wait}
	}
	assertion, sd, err := p.rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("begin passkey sign-in: %w", err)
	}
	if err := p.saveChallenge(ctx, sd, store.CeremonyLogin, "", "address:"+digest(throttle.NetworkKey(ip)), maxLoginsPerAddress); err != nil {
		return nil, err
	}
	return assertion, nil
}

// PasskeyLogin is a successful passkey sign-in.
type PasskeyLogin struct {
	User    store.User
	Passkey store.Passkey
	Methods []string // amr: hwk (a device-bound passkey) or swk (a synced one), user, mfa
}

// LoginWithPasskey finishes a sign-in a browser began with
// PasskeyRequestOptions: response is the PublicKeyCredential JSON from
// navigator.credentials.get. The challenge must be an unspent, unexpired
// sign-in challenge; the credential a registered passkey whose user handle
// is its owner's ID; the signature must verify for this RP ID and origin
// with the user verified; the sign counter must move forward (a counter
// that does not is a cloned authenticator: refused and logged). Failures
// wrap ErrPasskeyRefused.
func (p *Provider) LoginWithPasskey(ctx context.Context, response []byte) (*PasskeyLogin, error) {
	if p.rp == nil {
		return nil, ErrPasskeysUnavailable
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, refused("unreadable assertion: %v", err)
	}
	_, sd, err := p.takeChallenge(ctx, parsed.Response.CollectedClientData.Challenge, store.CeremonyLogin)
	if err != nil {
		return nil, err
	}
	var pk store.Passkey
	var lookupErr error
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		pk, lookupErr = p.passkeyOwner(ctx, rawID, userHandle)
		if lookupErr != nil {
			return nil, lookupErr
		}
		u, err := p.cfg.Store.GetUser(ctx, pk.UserID)
		if err != nil {
			lookupErr = err
			return nil, err
		}
		if u.Disabled() {
			lookupErr = refused("user %s is disabled", u.ID)
			return nil, lookupErr
		}
		c, err := toCredential(pk)
		if err != nil {
			lookupErr = err
			return nil, err
		}
		return &passkeyUser{u: u, creds: []webauthn.Credential{c}}, nil
	}
	wu, cred, err := p.rp.ValidatePasskeyLogin(handler, sd, parsed)
	if lookupErr != nil && !errors.Is(lookupErr, ErrPasskeyRefused) && !errors.Is(lookupErr, store.ErrNotFound) {
		return nil, lookupErr
	}
	if err != nil {
		return nil, refused("assertion: %v", protocolDetail(err))
	}
	u := wu.(*passkeyUser).u
	if cred.Authenticator.CloneWarning {
		p.log.Warn("passkey sign counter did not advance: possibly a cloned authenticator; sign-in refused",
			"user_id", u.ID, "passkey", PasskeyHandle(pk.ID), "stored_count", pk.SignCount,
			"presented_count", parsed.Response.AuthenticatorData.Counter)
		return nil, refused("sign counter regression (stored %d, presented %d)", pk.SignCount, parsed.Response.AuthenticatorData.Counter)
	}
	err = p.cfg.Store.RecordPasskeyUse(ctx, pk.ID, pk.SignCount, cred.Authenticator.SignCount, cred.Flags.BackupState, p.now().UTC())
	switch {
	case errors.Is(err, store.ErrConflict):
		p.log.Warn("passkey used twice at once from one sign counter: possibly a cloned authenticator; sign-in refused",
			"user_id", u.ID, "passkey", PasskeyHandle(pk.ID))
		return nil, refused("concurrent use of one sign counter")
	case errors.Is(err, store.ErrNotFound):
		return nil, refused("passkey removed during sign-in")
	case err != nil:
		return nil, fmt.Errorf("record passkey use: %w", err)
	}
	if cred.Flags.BackupState != pk.BackupState {
		p.log.Info("passkey backup state changed", "user_id", u.ID, "passkey", PasskeyHandle(pk.ID), "backed_up", cred.Flags.BackupState)
	}
	key := AMRHardwareKey
	if pk.BackupEligible {
		key = AMRSoftwareKey
	}
	pk.SignCount, pk.BackupState, pk.LastUsedAt = cred.Authenticator.SignCount, cred.Flags.BackupState, p.now().UTC()
	p.log.Info("passkey sign-in", "user_id", u.ID, "passkey", PasskeyHandle(pk.ID))
	return &PasskeyLogin{User: u, Passkey: pk, Methods: []string{key, AMRUser, AMRMultiFactor}}, nil
}

// passkeyOwner finds the passkey rawID names and checks that the user
// handle the authenticator returned is its owner's: an assertion made with
// one user's credential never signs another user in.
func (p *Provider) passkeyOwner(ctx context.Context, rawID, userHandle []byte) (store.Passkey, error) {
	pk, err := p.cfg.Store.GetPasskey(ctx, credentialID(rawID))
	if errors.Is(err, store.ErrNotFound) {
		return pk, refused("unknown passkey %s", PasskeyHandle(credentialID(rawID)))
	}
	if err != nil {
		return pk, err
	}
	if string(userHandle) != pk.UserID {
		return pk, refused("passkey %s belongs to another user than its user handle names", PasskeyHandle(pk.ID))
	}
	return pk, nil
}

// PasskeyInfo is what the account page shows of a passkey.
type PasskeyInfo struct {
	ID, Name            string
	CreatedAt, LastUsed time.Time // LastUsed zero: never
	Synced, BackedUp    bool
}

// UserPasskeys lists cur's user's passkeys, oldest first.
func (p *Provider) UserPasskeys(ctx context.Context, cur *Session) ([]PasskeyInfo, error) {
	pks, err := p.cfg.Store.ListUserPasskeys(ctx, cur.UserID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys of %s: %w", cur.UserID, err)
	}
	out := make([]PasskeyInfo, len(pks))
	for i, pk := range pks {
		out[i] = PasskeyInfo{ID: pk.ID, Name: pk.Name, CreatedAt: pk.CreatedAt, LastUsed: pk.LastUsedAt,
			Synced: pk.BackupEligible, BackedUp: pk.BackupState}
	}
	return out, nil
}

// ErrUnknownPasskey refuses to remove a passkey that is not the user's.
var ErrUnknownPasskey = errors.New("no such passkey of this user")

// RemovePasskey removes cur's user's passkey id; another user's, or an
// unknown one, is ErrUnknownPasskey.
func (p *Provider) RemovePasskey(ctx context.Context, cur *Session, id string) error {
	err := p.cfg.Store.DeletePasskey(ctx, cur.UserID, id)
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknownPasskey
	}
	if err != nil {
		return fmt.Errorf("remove passkey of %s: %w", cur.UserID, err)
	}
	p.log.Info("passkey removed", "user_id", cur.UserID, "passkey", PasskeyHandle(id), "by", "user")
	return nil
}
