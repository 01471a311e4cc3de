package idp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/store"
)

// What a user does with their own account from the account page: see and
// end their browser sessions, and change their password.

// ErrUnknownSessionHandle refuses to end a session that is not one of the
// user's own live sessions (or is the current one).
var ErrUnknownSessionHandle = errors.New("no such session of this user")

// SessionInfo is what the account page shows of one session: never its id
// or the id's digest, only a short opaque handle derived from it.
type SessionInfo struct {
	Handle    string
	CreatedAt time.Time
	AuthTime  time.Time
	LastSeen  time.Time
	Current   bool // the session the request came with
}

// SessionHandle is the short opaque name of a stored session: the first 8
// hex characters of the SHA-256 of its stored id. It tells nothing of the
// cookie value, and is only ever matched against the user's own sessions.
func SessionHandle(storedID string) string {
	sum := sha256.Sum256([]byte("keygate session handle\x00" + storedID))
	return hex.EncodeToString(sum[:4])
}

// live reports whether ss has timed out neither absolutely nor for idleness.
func (p *Provider) live(ss store.Session, now time.Time) bool {
	return now.Before(ss.ExpiresAt) && now.Sub(ss.LastSeen) < p.cfg.SessionIdleTimeout
}

// UserSessions lists the live sessions of cur's user (at most
// store.MaxUserSessions, most recently seen first), marking cur.
func (p *Provider) UserSessions(ctx context.Context, cur *Session) ([]SessionInfo, error) {
	all, err := p.browser.ListUserSessions(ctx, cur.UserID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %s: %w", cur.UserID, err)
	}
	now := p.now()
	out := make([]SessionInfo, 0, len(all))
	for _, ss := range all {
		if ss.Pending || !p.live(ss, now) {
			continue
		}
		out = append(out, SessionInfo{Handle: SessionHandle(ss.ID), CreatedAt: ss.CreatedAt, AuthTime: ss.AuthTime,
			LastSeen: ss.LastSeen, Current: ss.ID == cur.ID})
	}
	return out, nil
}

// EndUserSession ends the session of cur's user whose handle is handle. Only
// the user's own live sessions other than cur match; anything else is
// ErrUnknownSessionHandle and ends nothing.
func (p *Provider) EndUserSession(ctx context.Context, cur *Session, handle string) error {
	all, err := p.browser.ListUserSessions(ctx, cur.UserID)
	if err != nil {
		return fmt.Errorf("list sessions of %s: %w", cur.UserID, err)
	}
	now := p.now()
	for _, ss := range all {
		if ss.ID == cur.ID || ss.UserID != cur.UserID || !p.live(ss, now) || SessionHandle(ss.ID) != handle {
			continue
		}
		if err := p.browser.DeleteSession(ctx, ss.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		p.log.Info("session ended by its user", "user_id", cur.UserID)
		return nil
	}
	return ErrUnknownSessionHandle
}

// EndOtherSessions ends every session of cur's user but this browser's,
// which is rotated: all of the user's sessions are deleted (however many,
// past the listing's bound too) and a new one is started that keeps cur's
// authentication time and absolute expiry, so ending other sessions neither
// claims a new login nor extends this one. It returns the new cookie value.
func (p *Provider) EndOtherSessions(ctx context.Context, cur *Session) (token string, s *Session, err error) {
	return p.rotateSessions(ctx, cur.User, cur.AuthTime, cur.AMR, cur.ExpiresAt)
}

// rotateSessions deletes every session of u and starts one for this browser,
// authenticated at authTime with the methods amr and ending at expires.
func (p *Provider) rotateSessions(ctx context.Context, u store.User, authTime time.Time, amr []string, expires time.Time) (string, *Session, error) {
	if _, err := p.browser.DeleteUserSessions(ctx, u.ID); err != nil {
		return "", nil, fmt.Errorf("end sessions of %s: %w", u.ID, err)
	}
	return p.createSession(ctx, u, authTime, MethodsOf(amr), expires)
}

// ChangePassword changes the password of cur's user. The current password
// is checked first through CheckPassword, so a wrong one is a failed login
// (ErrInvalidCredentials), counted against the account and the address ip
// and throttled like any (a *ThrottledError). The new password is validated
// as at signup (a *ValidationError) before that, so a typo costs no attempt.
// On success every refresh-token family of the user is revoked, every
// session ends, and a fresh one is started for this browser, authenticated
// now: the returned token is its cookie value.
func (p *Provider) ChangePassword(ctx context.Context, cur *Session, current, newPW, ip string) (token string, s *Session, err error) {
	if err := ValidatePassword(newPW, cur.User.Username); err != nil {
		return "", nil, err
	}
	u, err := p.CheckPassword(ctx, cur.User.Username, current, ip)
	if err != nil {
		return "", nil, err
	}
	if u.ID != cur.UserID { // cannot happen: usernames are unique and preferred
		return "", nil, ErrInvalidCredentials
	}
	// SetPassword stores the hash, revokes every refresh family of the user
	// and ends all of their sessions, this one included.
	if err := p.dir.SetPassword(ctx, u.Username, newPW); err != nil {
		return "", nil, err
	}
	p.log.Info("password changed by its user", "user_id", u.ID)
	now := p.now()
	// The new session is authenticated now, by the password just checked.
	return p.rotateSessions(ctx, u, now, []string{AMRPassword}, now.Add(p.cfg.SessionAbsoluteTimeout))
}
