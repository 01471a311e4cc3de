package idp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/keygate/keygate/store"
)

// TOTP (RFC 6238) as a second factor after the password, and the recovery
// codes that stand in for it.
//
// The shared secret is sealed with the key-encryption key's Sealer (the one
// that seals signing keys, rotation.Sealer) under the name "totp:<user id>",
// so a sealed secret copied onto another user's row does not open, and no
// signing-key kid (an RFC 7638 thumbprint) can collide with it. Recovery
// codes are 80 random bits each, stored as SHA-256 digests bound to the user:
// a slow hash defends low-entropy passwords against offline guessing; 2^80
// guesses per code are out of reach without one, and online guesses are
// throttled.
//
// A code is accepted for the current 30-second step or one step either side
// (clock drift), and only for a step after the last one accepted
// (store.UseTOTPStep, atomic on every backend): a code seen once, by a
// shoulder-surfer or a phishing relay, is refused afterwards.

// SecretSealer encrypts secrets at rest; rotation.Sealer implements it.
type SecretSealer interface {
	Seal(name string, plaintext []byte) ([]byte, error)
	Open(name string, sealed []byte) ([]byte, error)
}

// SecondFactorPolicy says which users must have a second factor
// (login.require_second_factor).
type SecondFactorPolicy string

// The policies: nobody (users choose), admin users, everyone.
const (
	SecondFactorNone   SecondFactorPolicy = "none"
	SecondFactorAdmins SecondFactorPolicy = "admins"
	SecondFactorAll    SecondFactorPolicy = "all"
)

// RecoveryCodeCount is how many recovery codes an enrolment gives.
const RecoveryCodeCount = 10

// PendingLoginTTL is how long the second-factor step of a login may take.
const PendingLoginTTL = 5 * time.Minute

// totpPeriod and totpSkew are RFC 6238's time step and the steps either side
// accepted.
const (
	totpPeriod = 30
	totpSkew   = 1
)

// The second-factor errors.
var (
	// ErrInvalidCode is a wrong, reused or expired code.
	ErrInvalidCode = errors.New("invalid code")
	// ErrNoTOTP: the user has no TOTP (to confirm, use or remove).
	ErrNoTOTP = errors.New("no one-time code authenticator is set up")
	// ErrTOTPActive: the user already has a confirmed TOTP.
	ErrTOTPActive = errors.New("a one-time code authenticator is already set up")
	// ErrNoSealer: the provider was built without a SecretSealer.
	ErrNoSealer = errors.New("second factors need the key-encryption key")
	// ErrTOTPUnavailable: the user's TOTP secret is sealed under a
	// key-encryption key the keyring no longer holds, so codes from the app
	// cannot be checked (recovery codes still can: they are digests, not
	// sealed). The operator restores that key to the keyring, or resets the
	// user's second factor; the login page says so instead of failing.
	ErrTOTPUnavailable = errors.New("the one-time code secret cannot be opened with the configured key-encryption keys")
)

// TOTPEnrolment is an unconfirmed TOTP as the enrolment page shows it.
type TOTPEnrolment struct {
	Secret string // base32, for typing into an authenticator
	URL    string // the otpauth:// URL the QR code holds
}

// QRPNG is the enrolment's otpauth URL as a QR code, a PNG of size×size
// pixels (pquerna/otp draws it with boombuler/barcode).
func (e *TOTPEnrolment) QRPNG(size int) ([]byte, error) {
	k, err := otp.NewKeyFromURL(e.URL)
	if err != nil {
		return nil, fmt.Errorf("parse otpauth URL: %w", err)
	}
	img, err := k.Image(size, size)
	if err != nil {
		return nil, fmt.Errorf("draw QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode QR code: %w", err)
	}
	return buf.Bytes(), nil
}

func sealName(userID string) string { return "totp:" + userID }

// issuerLabel is the issuer an authenticator app shows: the issuer's host.
func (p *Provider) issuerLabel() string {
	if u, err := url.Parse(p.cfg.Issuer); err == nil && u.Host != "" {
		return u.Host
	}
	return "Keygate"
}

// HasSecondFactor reports whether the user has a confirmed second factor.
func (p *Provider) HasSecondFactor(ctx context.Context, userID string) (bool, error) {
	active, _, err := p.SecondFactorStatus(ctx, userID)
	return active, err
}

// SecondFactorStatus reports whether the user has a confirmed TOTP and how
// many unused recovery codes, for the account page.
func (p *Provider) SecondFactorStatus(ctx context.Context, userID string) (active bool, recoveryLeft int, err error) {
	t, err := p.cfg.Store.GetTOTP(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("read second factor of %s: %w", userID, err)
	}
	return t.Confirmed(), t.RecoveryLeft, nil
}

// SecondFactorRequired reports whether the deployment's policy makes u
// enrol a second factor at login.
func (p *Provider) SecondFactorRequired(u store.User) bool {
	switch p.cfg.SecondFactor {
	case SecondFactorAll:
		return true
	case SecondFactorAdmins:
		return u.Admin
	}
	return false
}

// StartTOTPEnrolment makes u a new, unconfirmed TOTP secret (replacing an
// unconfirmed one); ErrTOTPActive if u has a confirmed one.
func (p *Provider) StartTOTPEnrolment(ctx context.Context, u store.User) (*TOTPEnrolment, error) {
	if p.cfg.Sealer == nil {
		return nil, ErrNoSealer
	}
	raw := make([]byte, 20) // RFC 4226 §4: 160 bits
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate TOTP secret for %s: %w", u.ID, err)
	}
	e, err := p.enrolment(u, raw)
	if err != nil {
		return nil, err
	}
	sealed, err := p.cfg.Sealer.Seal(sealName(u.ID), raw)
	if err != nil {
		return nil, fmt.Errorf("seal TOTP secret of %s: %w", u.ID, err)
	}
	err = p.cfg.Store.PutTOTP(ctx, store.TOTP{UserID: u.ID, Sealed: sealed, CreatedAt: p.now().UTC()})
	if errors.Is(err, store.ErrConflict) {
		return nil, ErrTOTPActive
	}
	if err != nil {
		return nil, fmt.Errorf("store TOTP of %s: %w", u.ID, err)
	}
	return e, nil
}

// enrolment is the secret raw of u as an authenticator app takes it.
func (p *Provider) enrolment(u store.User, raw []byte) (*TOTPEnrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: p.issuerLabel(), AccountName: u.Username, Secret: raw})
	if err != nil {
		return nil, fmt.Errorf("TOTP key of %s: %w", u.ID, err)
	}
	return &TOTPEnrolment{Secret: key.Secret(), URL: key.URL()}, nil
}

// PendingTOTPEnrolment returns u's unconfirmed TOTP, to show again;
// ErrNoTOTP when there is none, ErrTOTPActive when it is confirmed.
func (p *Provider) PendingTOTPEnrolment(ctx context.Context, u store.User) (*TOTPEnrolment, error) {
	t, secret, err := p.openTOTP(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if t.Confirmed() {
		return nil, ErrTOTPActive
	}
	return p.enrolment(u, secret)
}

// openTOTP reads and unseals userID's TOTP (the raw secret); ErrNoTOTP
// when there is none.
func (p *Provider) openTOTP(ctx context.Context, userID string) (store.TOTP, []byte, error) {
	t, err := p.readTOTP(ctx, userID)
	if err != nil {
		return store.TOTP{}, nil, err
	}
	secret, err := p.openSecret(t)
	if err != nil {
		return store.TOTP{}, nil, err
	}
	return t, secret, nil
}

// readTOTP reads userID's TOTP row without opening its secret; ErrNoTOTP
// when there is none.
func (p *Provider) readTOTP(ctx context.Context, userID string) (store.TOTP, error) {
	if p.cfg.Sealer == nil {
		return store.TOTP{}, ErrNoSealer
	}
	t, err := p.cfg.Store.GetTOTP(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return store.TOTP{}, ErrNoTOTP
	}
	if err != nil {
		return store.TOTP{}, fmt.Errorf("read TOTP of %s: %w", userID, err)
	}
	return t, nil
}

// openSecret unseals t's secret. One that no key of the keyring opens is
// ErrTOTPUnavailable (wrapping the sealer's error), logged with what the
// operator can do about it.
func (p *Provider) openSecret(t store.TOTP) ([]byte, error) {
	secret, err := p.cfg.Sealer.Open(sealName(t.UserID), t.Sealed)
	if err != nil {
		p.log.Error("a TOTP secret cannot be opened: restore the key-encryption key it was sealed under to the keyring, "+
			"or run `keygate users reset-mfa` for this user", "user_id", t.UserID, "err", err)
		return nil, fmt.Errorf("open TOTP secret of %s: %w: %w", t.UserID, ErrTOTPUnavailable, err)
	}
	return secret, nil
}

// matchStep returns the time step, within totpSkew of now's, whose code is
// code, or false. pquerna/otp's ValidateCustom answers only yes or no; the
// step is needed to refuse replays, so each candidate step's code is
// generated with the library and compared in constant time.
func matchStep(raw []byte, code string, now time.Time) (int64, bool) {
	if len(code) != 6 {
		return 0, false
	}
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
	cur := now.Unix() / totpPeriod
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// normalizeCode drops spaces and dashes and upper-cases: "1234 56" and
// "abcd-efgh-..." as typed.
func normalizeCode(code string) string {
	return strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "\t", "").Replace(strings.TrimSpace(code)))
}

// throttledCheck runs check under the second-factor throttle of userID and
// the address ip (see throttled). The user's bucket is its own ("otp:"
// keys), so a correct password never resets it.
func (p *Provider) throttledCheck(ctx context.Context, userID, ip string, check func() error) error {
	return p.throttled(ctx, "second factor", throttleKey("otp", userID), addressKey("ip", ip), p.now(), check)
}

// ConfirmTOTP checks a code of u's unconfirmed TOTP, throttled; on success
// the TOTP becomes u's second factor and ten recovery codes are made and
// returned, to show once (only their digests are stored).
func (p *Provider) ConfirmTOTP(ctx context.Context, u store.User, code, ip string) ([]string, error) {
	var codes []string
	err := p.throttledCheck(ctx, u.ID, ip, func() error {
		t, secret, err := p.openTOTP(ctx, u.ID)
		if err != nil {
			return err
		}
		if t.Confirmed() {
			return ErrTOTPActive
		}
		step, ok := matchStep(secret, normalizeCode(code), p.now())
		if !ok {
			p.log.Info("second factor enrolment: wrong code", "user_id", u.ID)
			return ErrInvalidCode
		}
		var digests [][]byte
		if codes, digests, err = newRecoveryCodes(u.ID); err != nil {
			return err
		}
		err = p.cfg.Store.ConfirmTOTP(ctx, u.ID, step, digests, p.now().UTC())
		if errors.Is(err, store.ErrConflict) {
			return ErrTOTPActive
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	p.log.Info("second factor enrolled", "user_id", u.ID, "method", "totp")
	return codes, nil
}

// newRecoveryCodes returns RecoveryCodeCount fresh codes, formatted for
// people (XXXX-XXXX-XXXX-XXXX, base32: 80 bits), and their digests.
func newRecoveryCodes(userID string) ([]string, [][]byte, error) {
	codes, digests := make([]string, RecoveryCodeCount), make([][]byte, RecoveryCodeCount)
	for i := range codes {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, fmt.Errorf("generate recovery code: %w", err)
		}
		s := base32.StdEncoding.EncodeToString(b) // 16 characters
		codes[i] = s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
		digests[i] = recoveryDigest(userID, s)
	}
	return codes, digests, nil
}

// recoveryDigest is what is stored of a recovery code: SHA-256 of the code,
// normalized, bound to its user.
func recoveryDigest(userID, normalized string) []byte {
	sum := sha256.Sum256([]byte("keygate recovery code\x00" + userID + "\x00" + normalized))
	return sum[:]
}

// VerifySecondFactor checks a TOTP code, or a recovery code, of u's
// confirmed TOTP, throttled like passwords (reserve first; see
// throttledCheck). It returns the methods the code proves: "otp". A TOTP
// code's step is spent atomically (a replay is ErrInvalidCode), a recovery
// code too.
func (p *Provider) VerifySecondFactor(ctx context.Context, u store.User, code, ip string) error {
	method := "totp"
	err := p.throttledCheck(ctx, u.ID, ip, func() error {
		t, err := p.readTOTP(ctx, u.ID)
		if err != nil {
			return err
		}
		if !t.Confirmed() {
			return ErrNoTOTP
		}
		norm := normalizeCode(code)
		if len(norm) == 16 { // a recovery code: a digest, no secret to open
			method = "recovery code"
			return p.useRecoveryCode(ctx, u.ID, norm)
		}
		secret, err := p.openSecret(t)
		if err != nil {
			return err
		}
		step, ok := matchStep(secret, norm, p.now())
		if !ok {
			return ErrInvalidCode
		}
		if err := p.cfg.Store.UseTOTPStep(ctx, u.ID, step); errors.Is(err, store.ErrConflict) {
			p.log.Warn("second factor: a TOTP code was replayed", "user_id", u.ID)
			return ErrInvalidCode
		} else if err != nil {
			return err
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrInvalidCode):
		p.log.Info("second factor failed", "user_id", u.ID, "method", method)
	case errors.Is(err, ErrThrottled):
		p.log.Info("second factor throttled", "user_id", u.ID)
	case err == nil:
		p.log.Info("second factor used", "user_id", u.ID, "method", method)
	}
	return err
}

func (p *Provider) useRecoveryCode(ctx context.Context, userID, norm string) error {
	err := p.cfg.Store.UseRecoveryCode(ctx, userID, recoveryDigest(userID, norm), p.now().UTC())
	if errors.Is(err, store.ErrConflict) {
		return ErrInvalidCode
	}
	return err
}

// RemoveTOTP removes the second factor of cur's user, after a current code
// (TOTP or recovery) proves the user still holds it; a session alone is not
// enough to drop a factor.
func (p *Provider) RemoveTOTP(ctx context.Context, cur *Session, code, ip string) error {
	if err := p.VerifySecondFactor(ctx, cur.User, code, ip); err != nil {
		return err
	}
	if _, err := p.cfg.Store.DeleteTOTP(ctx, cur.UserID); err != nil {
		return fmt.Errorf("remove TOTP of %s: %w", cur.UserID, err)
	}
	p.log.Info("second factor removed by its user", "user_id", cur.UserID, "method", "totp")
	return nil
}

// NewRecoveryCodes replaces every recovery code of cur's user (used or not)
// with RecoveryCodeCount new ones, returned to show once, after a current
// code (TOTP or recovery) proves the user still holds the second factor; the
// old codes stop working in the same transaction that stores the new ones.
func (p *Provider) NewRecoveryCodes(ctx context.Context, cur *Session, code, ip string) ([]string, error) {
	if err := p.VerifySecondFactor(ctx, cur.User, code, ip); err != nil {
		return nil, err
	}
	codes, digests, err := newRecoveryCodes(cur.UserID)
	if err != nil {
		return nil, err
	}
	err = p.cfg.Store.ReplaceRecoveryCodes(ctx, cur.UserID, digests, p.now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoTOTP // removed meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("replace recovery codes of %s: %w", cur.UserID, err)
	}
	p.log.Info("recovery codes replaced by their user", "user_id", cur.UserID, "count", len(codes))
	return codes, nil
}

// ResetSecondFactor removes the second factor (TOTP and recovery codes) and
// every passkey of the user login names, for a user who lost their device
// (the CLI's `users reset-mfa`, the admin API). It reports whether there was
// any. The user enrols again at their next login if the policy requires it.
//
// Like a password change it ends what the lost factor granted: every
// session of the user (pending logins included) and every refresh-token
// family, so a browser or app on the lost device keeps no multi-factor
// session or token (acr urn:keygate:acr:mfa) that nobody can renew with a
// factor any more.
func (d *Directory) ResetSecondFactor(ctx context.Context, login string) (bool, error) {
	u, err := d.cfg.Store.GetUserByLogin(ctx, login)
	if err != nil {
		return false, fmt.Errorf("user %q: %w", login, err)
	}
	had, err := d.cfg.Store.DeleteTOTP(ctx, u.ID)
	if err != nil {
		return false, fmt.Errorf("reset second factor of %s: %w", u.ID, err)
	}
	n, err := d.cfg.Store.DeleteUserPasskeys(ctx, u.ID)
	if err != nil {
		return false, fmt.Errorf("remove passkeys of %s: %w", u.ID, err)
	}
	families, err := d.cfg.Store.RevokeSubjectRefreshTokens(ctx, u.ID, d.now().UTC())
	if err != nil {
		return false, fmt.Errorf("revoke refresh tokens of %s: %w", u.ID, err)
	}
	sessions, err := d.cfg.Store.DeleteUserSessions(ctx, u.ID)
	if err != nil {
		return false, fmt.Errorf("end sessions of %s: %w", u.ID, err)
	}
	d.log.Info("second factor reset by an operator", "user_id", u.ID, "had_second_factor", had, "passkeys_removed", n,
		"sessions_ended", sessions, "refresh_families_revoked", families)
	return had || n > 0, nil
}

// BeginSecondFactor records that u's password was right and a second
// factor (or its enrolment) is due: a pending login, server-side, that
// lives PendingLoginTTL. The returned token names it (a cookie value); only
// its digest is stored, and it is no session (Session refuses it).
func (p *Provider) BeginSecondFactor(ctx context.Context, u store.User) (string, error) {
	now := p.now().UTC()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate pending login id: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	ss := store.Session{ID: digest(token), UserID: u.ID, AuthTime: now, AMR: []string{AMRPassword}, CreatedAt: now,
		LastSeen: now, ExpiresAt: now.Add(PendingLoginTTL), Pending: true}
	if err := p.browser.CreateSession(ctx, ss); err != nil {
		return "", fmt.Errorf("create pending login of %s: %w", u.ID, err)
	}
	return token, nil
}

// PendingLogin returns the live pending login token names, with its user,
// or ErrNoSession.
func (p *Provider) PendingLogin(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > maxSessionToken {
		return nil, ErrNoSession
	}
	ss, err := p.browser.GetSession(ctx, digest(token))
	if errors.Is(err, store.ErrNotFound) || (err == nil && (!ss.Pending || !p.now().Before(ss.ExpiresAt))) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	u, err := p.cfg.Store.GetUser(ctx, ss.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled()) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	return &Session{Session: ss, User: u}, nil
}

// FinishSecondFactor ends the pending login token names (once: a second
// call finds it gone, ErrNoSession) and starts the user's session,
// authenticated now by the password and the second factor.
func (p *Provider) FinishSecondFactor(ctx context.Context, pending *Session) (token string, s *Session, err error) {
	err = p.browser.DeleteSession(ctx, pending.ID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, ErrNoSession
	}
	if err != nil {
		return "", nil, fmt.Errorf("end pending login: %w", err)
	}
	return p.StartSession(ctx, pending.User, []string{AMRPassword, AMROTP, AMRMultiFactor})
}
