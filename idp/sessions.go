package idp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keygate/keygate/store"
)

// Defaults for the browser settings left zero in Config.
const (
	DefaultIDTokenTTL             = time.Hour
	DefaultSessionIdleTimeout     = time.Hour
	DefaultSessionAbsoluteTimeout = 24 * time.Hour
)

// touchEvery is how stale a session's LastSeen may get before a request
// writes it again: idle timeouts are precise to this, and a busy user costs
// one write a minute rather than one per page.
const touchEvery = time.Minute

// ErrNoSession means the cookie names no live session: none, unknown,
// expired, idle too long, or its user is gone or disabled.
var ErrNoSession = errors.New("no live session")

func (p *Provider) initBrowser() {
	if p.cfg.IDTokenTTL <= 0 {
		p.cfg.IDTokenTTL = DefaultIDTokenTTL
	}
	if p.cfg.SessionIdleTimeout <= 0 {
		p.cfg.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if p.cfg.SessionAbsoluteTimeout <= 0 {
		p.cfg.SessionAbsoluteTimeout = DefaultSessionAbsoluteTimeout
	}
	p.browser = p.cfg.Store
}

// SessionAbsoluteTimeout is the longest a session lives; the cookie's Max-Age.
func (p *Provider) SessionAbsoluteTimeout() time.Duration { return p.cfg.SessionAbsoluteTimeout }

// Session is a live browser session and its user.
type Session struct {
	store.Session
	User store.User
}

// maxSessionToken bounds what is hashed and looked up: real values are 43
// characters.
const maxSessionToken = 128

// ReauthWindow is how recently a session must have authenticated for its
// user to add or remove a way to sign in (TOTP, passkeys) from /account: a
// session left open on a shared computer, or a stolen cookie, must not be
// enough to add a second factor an attacker controls or to remove the
// user's own.
const ReauthWindow = 10 * time.Minute

// RecentlyAuthenticated reports whether s authenticated (its AuthTime)
// less than ReauthWindow ago.
func (p *Provider) RecentlyAuthenticated(s *Session) bool {
	return p.now().Sub(s.AuthTime) < ReauthWindow
}

// StartSession logs u in: a new session with a fresh random 256-bit id,
// authenticated now with the methods amr (RFC 8176 values, see authn.go;
// nil is a password login). It is the one entry point of every login
// method: the password form, the TOTP step, passkeys. The returned token is
// the cookie value; only its digest is stored. Every login gets a new id,
// whatever cookie the browser sent, so a value planted before login is never
// the session after it (no fixation). The methods travel from the session to
// the codes and tokens issued from it, as "amr" and "acr".
func (p *Provider) StartSession(ctx context.Context, u store.User, amr []string) (token string, s *Session, err error) {
	now := p.now().UTC()
	return p.createSession(ctx, u, now, MethodsOf(amr), now.Add(p.cfg.SessionAbsoluteTimeout))
}

// createSession stores a new session of u with a fresh random id,
// authenticated at authTime with the methods amr and ending at expires, and
// returns its cookie value.
func (p *Provider) createSession(ctx context.Context, u store.User, authTime time.Time, amr []string, expires time.Time) (token string, s *Session, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("generate session id: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	now := p.now().UTC()
	ss := store.Session{ID: digest(token), UserID: u.ID, AuthTime: authTime.UTC(), AMR: slices.Clone(amr), CreatedAt: now,
		LastSeen: now, ExpiresAt: expires.UTC()}
	if err := p.browser.CreateSession(ctx, ss); err != nil {
		return "", nil, fmt.Errorf("create session: %w", err)
	}
	return token, &Session{Session: ss, User: u}, nil
}

// Session returns the live session the cookie value names, or ErrNoSession.
// A session past its absolute or idle timeout, or whose user no longer
// exists or is disabled, is deleted on the way.
func (p *Provider) Session(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > maxSessionToken {
		return nil, ErrNoSession
	}
	id := digest(token)
	ss, err := p.browser.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	if ss.Pending { // a login half done is no session
		return nil, ErrNoSession
	}
	now := p.now()
	end := func(why string) (*Session, error) {
		if err := p.browser.DeleteSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		p.log.Debug("session ended", "user_id", ss.UserID, "reason", why)
		return nil, ErrNoSession
	}
	if !now.Before(ss.ExpiresAt) {
		return end("absolute timeout")
	}
	if now.Sub(ss.LastSeen) >= p.cfg.SessionIdleTimeout {
		return end("idle timeout")
	}
	u, err := p.cfg.Store.GetUser(ctx, ss.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return end("user deleted")
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled() {
		return end("user disabled")
	}
	if now.Sub(ss.LastSeen) >= touchEvery {
		if err := p.browser.TouchSession(ctx, id, now.UTC()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		ss.LastSeen = now.UTC()
	}
	return &Session{Session: ss, User: u}, nil
}

// EndSession deletes the session the cookie value names (logout). An unknown
// or already ended session is not an error.
func (p *Provider) EndSession(ctx context.Context, token string) error {
	if token == "" || len(token) > maxSessionToken {
		return nil
	}
	if err := p.browser.DeleteSession(ctx, digest(token)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// PruneBrowser deletes expired sessions, authorization codes and device codes.
func (p *Provider) PruneBrowser(ctx context.Context) (int64, error) {
	return p.browser.PruneBrowser(ctx, p.now().UTC())
}
