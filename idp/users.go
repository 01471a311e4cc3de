package idp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/throttle"
)

// ThrottledError refuses a login attempt while a username or client IP is
// locked out, even with the right password, until RetryAfter has passed.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed attempts; retry after %s", e.RetryAfter)
}

// Unwrap makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// CheckPassword authenticates a user by username or email.
//
// Before any password is verified, the attempt reserves a token from the
// account's bucket and from the client address's bucket (see store.Throttle);
// if either is empty the attempt is refused with a ThrottledError without
// running argon2, even with the right password. A disabled user is refused
// with ErrUserDisabled, which is an ErrInvalidCredentials, after the password
// was checked. Reserving rather than
// checking is what bounds guessing under concurrency: N simultaneous guesses
// at one account are verified at most user_burst times. A failure keeps both
// tokens; a success resets the account's bucket and gives the address its
// token back.
//
// The account's bucket is keyed by the user's id when login names a user, so
// a username and an email of one user share one budget; other logins are
// keyed by their normalized form (trimmed, lower-cased). Keys are SHA-256
// digests, so attacker-sized logins cost fixed-size state. An unknown user
// costs the same lookup, reservation and argon2id work as a wrong password,
// and both answer ErrInvalidCredentials: no user enumeration by answer or
// time.
func (p *Provider) CheckPassword(ctx context.Context, login, pw, ip string) (store.User, error) {
	now := p.now()
	u, err := p.cfg.Store.GetUserByLogin(ctx, login)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("look up user: %w", err)
	}
	err = p.throttled(ctx, "login", accountThrottleKey(u, known, login), addressKey("ip", ip), now, func() error {
		if !known {
			p.cfg.Hasher.VerifyDummy(ctx, pw)
			return ErrInvalidCredentials
		}
		ok, err := p.cfg.Hasher.Verify(ctx, pw, u.PasswordHash)
		if err != nil {
			// Both tokens stay taken: fail closed.
			return fmt.Errorf("verify password of %s: %w", u.ID, err)
		}
		if !ok {
			return ErrInvalidCredentials // the reserved tokens pay for the failure
		}
		return nil
	})
	if err != nil {
		return store.User{}, err
	}
	if u.Disabled() {
		// Checked after the password, so that the answer reveals the state
		// only to someone who knows it, and then no more than "invalid".
		p.log.Info("login refused: user disabled", "user_id", u.ID)
		return store.User{}, ErrUserDisabled
	}
	p.upgradeHash(ctx, u, pw, now)
	return u, nil
}

// throttled runs check under the throttle buckets userKey (of the account)
// and ipKey (of the client address), what naming them in logs ("login",
// "second factor"): one token reserved from each before anything is checked
// (a refusal is a *ThrottledError); a failure keeps them, a success resets
// the account's bucket and gives the address its token back.
func (p *Provider) throttled(ctx context.Context, what, userKey, ipKey string, now time.Time, check func() error) error {
	if err := p.reserveLogin(ctx, userKey, ipKey, now); err != nil {
		return err
	}
	if err := check(); err != nil {
		return err
	}
	if err := p.cfg.UserThrottle.Reset(ctx, userKey); err != nil {
		p.log.Warn(what+" throttle reset failed", "err", err)
	}
	if err := p.cfg.IPThrottle.Release(ctx, ipKey, now); err != nil {
		p.log.Warn(what+" throttle release failed", "err", err)
	}
	return nil
}

// reserveLogin reserves one attempt for the account and one for the address,
// or neither: a refusal by the address gives the account its token back.
func (p *Provider) reserveLogin(ctx context.Context, userKey, ipKey string, now time.Time) error {
	wait, ok, err := p.cfg.UserThrottle.Reserve(ctx, userKey, now)
	if err != nil {
		return fmt.Errorf("reserve login attempt: %w", err)
	}
	if !ok {
		return &ThrottledError{RetryAfter: wait}
	}
	wait, ok, err = p.cfg.IPThrottle.Reserve(ctx, ipKey, now)
	if err == nil && ok {
		return nil
	}
	if rerr := p.cfg.UserThrottle.Release(ctx, userKey, now); rerr != nil {
		p.log.Warn("login throttle release failed", "err", rerr)
	}
	if err != nil {
		return fmt.Errorf("reserve login attempt: %w", err)
	}
	return &ThrottledError{RetryAfter: wait}
}

// upgradeHash stores a fresh hash of pw when u's was made with other argon2id
// parameters, while the password is at hand. A failure only delays it.
func (p *Provider) upgradeHash(ctx context.Context, u store.User, pw string, now time.Time) {
	if !p.cfg.Hasher.NeedsRehash(u.PasswordHash) {
		return
	}
	if hash, err := p.cfg.Hasher.Hash(ctx, pw); err == nil {
		if err := p.cfg.Store.UpdateUserPassword(ctx, u.ID, hash, now.UTC()); err != nil {
			p.log.Warn("password hash upgrade failed", "user_id", u.ID, "err", err)
		}
	}
}

// accountThrottleKey is the per-account throttle key: one per user whatever
// login names them (username or email, any case), and for a login that names
// nobody, one per normalized login, so case and space variants share it.
func accountThrottleKey(u store.User, known bool, login string) string {
	if known {
		return throttleKey("user", "id:"+u.ID)
	}
	return throttleKey("user", "login:"+normalizeLogin(login))
}

// normalizeLogin is the form of a login that throttling keys on: trimmed and
// lower-cased.
func normalizeLogin(login string) string { return strings.ToLower(strings.TrimSpace(login)) }

// throttleKey is kind + ":" + the hex SHA-256 of s: fixed-size whatever the
// client sent.
func throttleKey(kind, s string) string {
	sum := sha256.Sum256([]byte(s))
	return kind + ":" + hex.EncodeToString(sum[:])
}

// addressKey is the throttle key of a client address: its network
// (throttle.NetworkKey: the IPv4 address, or the IPv6 /64), so that an
// attacker holding a /64 cannot get a fresh budget per address.
func addressKey(kind, ip string) string {
	return throttleKey(kind, throttle.NetworkKey(ip))
}

// NewUser is what signup and the CLI provide.
type NewUser struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Admin    bool   `json:"-"`
}

// ValidationError is a bad field in user input, safe to show.
type ValidationError struct{ Field, Problem string }

func (e *ValidationError) Error() string { return e.Field + ": " + e.Problem }

// ErrUserExists is the answer to a taken username or email.
var ErrUserExists = errors.New("that username or email is already registered")

// ErrLastAdmin refuses to demote, disable or delete the only enabled admin
// user, which would leave /admin to the bootstrap token alone (or to nobody).
// It holds whether or not admin.token is set: that token is meant to be
// unset once an admin user exists. The store checks and writes atomically
// (store.ErrLastAdmin), so concurrent demotions cannot both pass.
var ErrLastAdmin = errors.New("the last enabled admin user cannot be demoted, disabled or deleted")

// lastAdminError names the user and what to do instead.
func lastAdminError(login string, err error) error {
	if errors.Is(err, store.ErrLastAdmin) {
		return fmt.Errorf("%w: %q is the only one; make another user an admin first "+
			"(keygate users update OTHER --admin, or PATCH /admin/users/OTHER {\"admin\": true})", ErrLastAdmin, login)
	}
	return err
}

func validateUsername(s string) error {
	if n := utf8.RuneCountInString(s); n < 3 || n > 64 {
		return &ValidationError{"username", "must be 3 to 64 characters"}
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-", r)) {
			return &ValidationError{"username", "may contain letters, digits, '.', '_' and '-' only"}
		}
	}
	return nil
}

// ValidatePassword applies NIST SP 800-63B's rules: at least 8 characters, a
// generous maximum, no composition rules, not the username.
func ValidatePassword(pw, username string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < 8:
		return &ValidationError{"password", "must be at least 8 characters"}
	case len(pw) > 1024:
		return &ValidationError{"password", "must be at most 1024 bytes"}
	case strings.EqualFold(pw, username):
		return &ValidationError{"password", "must not be the username"}
	}
	return nil
}

// validateProfile checks an email (optional) and a display name, trimmed.
func validateProfile(email, name string) error {
	if email != "" {
		if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
			return &ValidationError{"email", "is not an email address"}
		}
	}
	if len(name) > 200 {
		return &ValidationError{"name", "must be at most 200 characters"}
	}
	return nil
}

// CreateUser validates and stores a user with an argon2id hash.
func (d *Directory) CreateUser(ctx context.Context, nu NewUser) (store.User, error) {
	nu.Username, nu.Email, nu.Name = strings.TrimSpace(nu.Username), strings.TrimSpace(nu.Email), strings.TrimSpace(nu.Name)
	if err := validateUsername(nu.Username); err != nil {
		return store.User{}, err
	}
	if err := validateProfile(nu.Email, nu.Name); err != nil {
		return store.User{}, err
	}
	if err := ValidatePassword(nu.Password, nu.Username); err != nil {
		return store.User{}, err
	}
	hash, err := d.cfg.Hasher.Hash(ctx, nu.Password)
	if err != nil {
		return store.User{}, err
	}
	now := d.now().UTC()
	u := store.User{ID: uuid.NewString(), Username: nu.Username, Email: nu.Email, Name: nu.Name, PasswordHash: hash,
		Admin: nu.Admin, CreatedAt: now, UpdatedAt: now}
	if err := d.cfg.Store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, ErrUserExists
		}
		return store.User{}, err
	}
	return u, nil
}

// SetPassword replaces a user's password.
func (d *Directory) SetPassword(ctx context.Context, login, pw string) error {
	u, err := d.cfg.Store.GetUserByLogin(ctx, login)
	if err != nil {
		return fmt.Errorf("user %q: %w", login, err)
	}
	if err := ValidatePassword(pw, u.Username); err != nil {
		return err
	}
	hash, err := d.cfg.Hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	if err := d.cfg.Store.UpdateUserPassword(ctx, u.ID, hash, d.now().UTC()); err != nil {
		return err
	}
	// A new password ends what the old one granted: refresh tokens (a leaked
	// one must not outlive the password change) and browser sessions.
	if _, err := d.cfg.Store.RevokeSubjectRefreshTokens(ctx, u.ID, d.now().UTC()); err != nil {
		return fmt.Errorf("revoke refresh tokens of %s: %w", u.ID, err)
	}
	return d.endUserSessions(ctx, u.ID)
}

// User returns a user by id.
func (d *Directory) User(ctx context.Context, id string) (store.User, error) {
	return d.cfg.Store.GetUser(ctx, id)
}

// UserByLogin returns a user by username or email.
func (d *Directory) UserByLogin(ctx context.Context, login string) (store.User, error) {
	return d.cfg.Store.GetUserByLogin(ctx, login)
}

// Users lists users.
func (d *Directory) Users(ctx context.Context) ([]store.User, error) {
	return d.cfg.Store.ListUsers(ctx)
}

// DeleteUser removes a user (and, in the store, their refresh tokens) and
// ends their browser sessions. Deleting the only enabled admin is
// ErrLastAdmin.
func (d *Directory) DeleteUser(ctx context.Context, login string) error {
	u, err := d.cfg.Store.GetUserByLogin(ctx, login)
	if err != nil {
		return fmt.Errorf("user %q: %w", login, err)
	}
	if err := d.cfg.Store.DeleteUser(ctx, u.ID); err != nil {
		return lastAdminError(login, err)
	}
	return d.endUserSessions(ctx, u.ID)
}

// ErrUserDisabled refuses a login by a disabled user. It is an
// ErrInvalidCredentials, so every login path answers it as a wrong password.
var ErrUserDisabled = fmt.Errorf("user disabled: %w", ErrInvalidCredentials)

// UserPatch changes some of a user's settings; nil fields stay as they are.
type UserPatch struct {
	Email    *string
	Name     *string
	Admin    *bool
	Disabled *bool
}

// UpdateUser applies pt to the user login names (username or email). A taken
// email is ErrUserExists. Disabling a user stamps DisabledAt (kept if already
// disabled), revokes their refresh tokens and ends their browser sessions;
// from then on no grant or form logs them in. An access token issued before
// stays valid until it expires (at most the access-token lifetime): it is a
// self-contained JWT, and resource servers do not ask Keygate about the user.
// Concurrent updates of one user are last writer wins. Demoting or disabling
// the only enabled admin is ErrLastAdmin.
func (d *Directory) UpdateUser(ctx context.Context, login string, pt UserPatch) (store.User, error) {
	u, err := d.cfg.Store.GetUserByLogin(ctx, login)
	if err != nil {
		return store.User{}, fmt.Errorf("user %q: %w", login, err)
	}
	setIf(&u.Email, pt.Email)
	setIf(&u.Name, pt.Name)
	setIf(&u.Admin, pt.Admin)
	u.Email, u.Name = strings.TrimSpace(u.Email), strings.TrimSpace(u.Name)
	if err := validateProfile(u.Email, u.Name); err != nil {
		return store.User{}, err
	}
	now := d.now().UTC()
	disabling := pt.Disabled != nil && *pt.Disabled && !u.Disabled()
	switch {
	case disabling:
		u.DisabledAt = now
	case pt.Disabled != nil && !*pt.Disabled:
		u.DisabledAt = time.Time{}
	}
	u.UpdatedAt = now
	if err := d.cfg.Store.UpdateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, ErrUserExists
		}
		return store.User{}, lastAdminError(login, err)
	}
	if disabling {
		if _, err := d.cfg.Store.RevokeSubjectRefreshTokens(ctx, u.ID, now); err != nil {
			return store.User{}, fmt.Errorf("revoke refresh tokens of %s: %w", u.ID, err)
		}
		if err := d.endUserSessions(ctx, u.ID); err != nil {
			return store.User{}, err
		}
		d.log.Info("user disabled", "user_id", u.ID)
	}
	return u, nil
}
