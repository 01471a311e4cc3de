package idp

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keygate/keygate/store"
)

// ThrottledError refuses a login attempt while a username or client IP is
// locked out, even with the right password, until RetryAfter has passed.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed attempts; retry after %s", e.RetryAfter)
}

// Unwrap makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// CheckPassword authenticates a user by username or email. Throttling is
// checked first, so a locked-out username is refused even with the right
// password; an unknown user costs the same argon2id work as a wrong password,
// and both answer ErrInvalidCredentials: no user enumeration by answer or time.
func (p *Provider) CheckPassword(ctx context.Context, login, pw, ip string) (store.User, error) {
	now := p.now()
	userKey, ipKey := "user:"+strings.ToLower(login), "ip:"+ip
	for _, c := range []struct {
		t   store.Throttle
		key string
	}{{p.cfg.UserThrottle, userKey}, {p.cfg.IPThrottle, ipKey}} {
		wait, ok, err := c.t.Check(ctx, c.key, now)
		if err != nil {
			return store.User{}, fmt.Errorf("check login throttle: %w", err)
		}
		if !ok {
			return store.User{}, &ThrottledError{RetryAfter: wait}
		}
	}
	u, err := p.cfg.Store.GetUserByLogin(ctx, login)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("look up user: %w", err)
	}
	ok := false
	if err == nil {
		if ok, err = p.cfg.Hasher.Verify(ctx, pw, u.PasswordHash); err != nil {
			return store.User{}, fmt.Errorf("verify password of %s: %w", u.ID, err)
		}
	} else {
		p.cfg.Hasher.VerifyDummy(ctx, pw)
	}
	if !ok {
		if err := p.cfg.UserThrottle.Fail(ctx, userKey, now); err != nil {
			return store.User{}, fmt.Errorf("count failed login: %w", err)
		}
		if err := p.cfg.IPThrottle.Fail(ctx, ipKey, now); err != nil {
			return store.User{}, fmt.Errorf("count failed login: %w", err)
		}
		return store.User{}, ErrInvalidCredentials
	}
	if err := p.cfg.UserThrottle.Reset(ctx, userKey); err != nil {
		p.log.Warn("login throttle reset failed", "err", err)
	}
	if p.cfg.Hasher.NeedsRehash(u.PasswordHash) {
		// The argon2id parameters changed since this hash was made: upgrade it
		// now, while the password is at hand. A failure only delays the upgrade.
		if hash, err := p.cfg.Hasher.Hash(ctx, pw); err == nil {
			if err := p.cfg.Store.UpdateUserPassword(ctx, u.ID, hash, now.UTC()); err != nil {
				p.log.Warn("password hash upgrade failed", "user_id", u.ID, "err", err)
			}
		}
	}
	return u, nil
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

// CreateUser validates and stores a user with an argon2id hash.
func (p *Provider) CreateUser(ctx context.Context, nu NewUser) (store.User, error) {
	nu.Username, nu.Email, nu.Name = strings.TrimSpace(nu.Username), strings.TrimSpace(nu.Email), strings.TrimSpace(nu.Name)
	if err := validateUsername(nu.Username); err != nil {
		return store.User{}, err
	}
	if nu.Email != "" {
		if a, err := mail.ParseAddress(nu.Email); err != nil || a.Address != nu.Email {
			return store.User{}, &ValidationError{"email", "is not an email address"}
		}
	}
	if len(nu.Name) > 200 {
		return store.User{}, &ValidationError{"name", "must be at most 200 characters"}
	}
	if err := ValidatePassword(nu.Password, nu.Username); err != nil {
		return store.User{}, err
	}
	hash, err := p.cfg.Hasher.Hash(ctx, nu.Password)
	if err != nil {
		return store.User{}, err
	}
	now := p.now().UTC()
	u := store.User{ID: uuid.NewString(), Username: nu.Username, Email: nu.Email, Name: nu.Name, PasswordHash: hash,
		Admin: nu.Admin, CreatedAt: now, UpdatedAt: now}
	if err := p.cfg.Store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, ErrUserExists
		}
		return store.User{}, err
	}
	return u, nil
}

// SetPassword replaces a user's password.
func (p *Provider) SetPassword(ctx context.Context, login, pw string) error {
	u, err := p.cfg.Store.GetUserByLogin(ctx, login)
	if err != nil {
		return fmt.Errorf("user %q: %w", login, err)
	}
	if err := ValidatePassword(pw, u.Username); err != nil {
		return err
	}
	hash, err := p.cfg.Hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	if err := p.cfg.Store.UpdateUserPassword(ctx, u.ID, hash, p.now().UTC()); err != nil {
		return err
	}
	// A new password ends what the old one granted: refresh tokens (a leaked
	// one must not outlive the password change) and browser sessions.
	if _, err := p.cfg.Store.RevokeSubjectRefreshTokens(ctx, u.ID, p.now().UTC()); err != nil {
		return fmt.Errorf("revoke refresh tokens of %s: %w", u.ID, err)
	}
	return p.endUserSessions(ctx, u.ID)
}

// User returns a user by id.
func (p *Provider) User(ctx context.Context, id string) (store.User, error) {
	return p.cfg.Store.GetUser(ctx, id)
}

// UserByLogin returns a user by username or email.
func (p *Provider) UserByLogin(ctx context.Context, login string) (store.User, error) {
	return p.cfg.Store.GetUserByLogin(ctx, login)
}

// Users lists users.
func (p *Provider) Users(ctx context.Context) ([]store.User, error) {
	return p.cfg.Store.ListUsers(ctx)
}

// DeleteUser removes a user (and, in the store, their refresh tokens) and
// ends their browser sessions.
func (p *Provider) DeleteUser(ctx context.Context, login string) error {
	u, err := p.cfg.Store.GetUserByLogin(ctx, login)
	if err != nil {
		return fmt.Errorf("user %q: %w", login, err)
	}
	if err := p.cfg.Store.DeleteUser(ctx, u.ID); err != nil {
		return err
	}
	return p.endUserSessions(ctx, u.ID)
}
