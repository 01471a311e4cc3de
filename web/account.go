package web

// The account page's own actions: the user's browser sessions (listed, one
// or all others ended) and a password change. Every action is a
// CSRF-protected POST that needs the user's live session, answers a success
// with a redirect to /account and a fixed notice (post/redirect/get), and a
// failure with the account page and its error.

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/idp"
)

// accountView is what the account page's sessions section shows.
type accountView struct {
	Sessions []sessionRow
	Others   int // sessions other than this browser's
}

// sessionRow is one listed session, its times formatted for people.
type sessionRow struct {
	Handle   string
	Created  string
	LastSeen string
	Current  bool
}

// accountNotices are the confirmations /account shows after a redirect,
// by the "done" parameter: fixed texts, never anything the request carries.
var accountNotices = map[string]string{
	"password":        "Your password has been changed. Every other session has ended, and applications must sign in again.",
	"session-ended":   "The session has ended.",
	"others-ended":    "Every other session has ended.",
	"nothing-to-end":  "There were no other sessions.",
	"totp-on":         "Two-factor authentication is on. You will enter a code from your app after your password.",
	"totp-off":        "Two-factor authentication is off.",
	"recovery-codes":  "You have new recovery codes; the old ones no longer work.",
	"passkey-added":   "Your passkey has been added. You can now log in with it.",
	"passkey-removed": "The passkey has been removed.",
}

func (s *Server) registerAccount(e *echo.Echo, csrf echo.MiddlewareFunc) {
	s.shapeErrors(pageErrors,
		e.POST("/account/password", s.changePassword, csrf),
		e.POST("/account/sessions/end", s.endOneSession, csrf),
		e.POST("/account/sessions/end-others", s.endOtherSessions, csrf))
}

// renderAccount renders the account page of sess's user with d's notice or
// error, listing the user's live sessions.
func (s *Server) renderAccount(c echo.Context, status int, sess *idp.Session, d pageData) error {
	infos, err := s.cfg.IDP.UserSessions(c.Request().Context(), sess)
	if err != nil {
		return s.internalError(c, err)
	}
	v := &accountView{}
	for _, in := range infos {
		v.Sessions = append(v.Sessions, sessionRow{Handle: in.Handle, Created: showTime(in.CreatedAt),
			LastSeen: showTime(in.LastSeen), Current: in.Current})
		if !in.Current {
			v.Others++
		}
	}
	d.Title, d.User, d.Account = "Your account", sess.User, v
	if err := s.accountApps(c, sess, &d); err != nil {
		return s.internalError(c, err)
	}
	if err := s.accountTOTP(c, sess, &d); err != nil {
		return s.internalError(c, err)
	}
	if err := s.accountPasskeys(c, sess, &d); err != nil {
		return s.internalError(c, err)
	}
	return s.render(c, status, "account", d)
}

func showTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// accountSession returns the request's live session; with none it has
// answered with a redirect to the login page (ok false).
func (s *Server) accountSession(c echo.Context) (sess *idp.Session, ok bool, err error) {
	sess, err = s.session(c)
	if err != nil {
		return nil, false, s.internalError(c, err)
	}
	if sess == nil {
		return nil, false, c.Redirect(http.StatusSeeOther, withParams("/login", "return_to", "/account"))
	}
	return sess, true, nil
}

// reauthNeeded says why a change to how the user signs in was refused.
const reauthNeeded = "Your sign-in is more than 10 minutes old: sign in again (Log out, then Log in) to change how you sign in."

// reauthPath is the login form that asks the session's user to sign in
// again and comes back to /account.
const reauthPath = "/login?reauth=1&return_to=%2Faccount"

// freshAccountSession is accountSession for adding or removing a way to
// sign in (TOTP, passkeys): the session must have authenticated within
// idp.ReauthWindow. An older one is sent to sign in again (the login flow,
// password and second factor, which starts a new session), and nothing
// changes.
func (s *Server) freshAccountSession(c echo.Context) (*idp.Session, bool, error) {
	sess, ok, err := s.accountSession(c)
	if !ok || s.cfg.IDP.RecentlyAuthenticated(sess) {
		return sess, ok, err
	}
	s.cfg.Logger.Info("account change needs a recent sign-in", "user_id", sess.UserID, "path", c.Path())
	return nil, false, c.Redirect(http.StatusSeeOther, reauthPath)
}

func accountDone(c echo.Context, done string) error {
	return c.Redirect(http.StatusSeeOther, withParams("/account", "done", done))
}

// endOneSession serves POST /account/sessions/end: it ends the one session of
// the user whose handle the form names. A handle that names none of the
// user's other live sessions ends nothing and is refused.
func (s *Server) endOneSession(c echo.Context) error {
	sess, ok, err := s.accountSession(c)
	if !ok {
		return err
	}
	err = s.cfg.IDP.EndUserSession(c.Request().Context(), sess, c.FormValue("session"))
	switch {
	case errors.Is(err, idp.ErrUnknownSessionHandle):
		return s.renderAccount(c, http.StatusNotFound, sess, pageData{Error: "That session is not one of yours, or it has already ended."})
	case err != nil:
		return s.internalError(c, err)
	}
	return accountDone(c, "session-ended")
}

// endOtherSessions serves POST /account/sessions/end-others: every session
// of the user ends, and this browser continues in a fresh one.
func (s *Server) endOtherSessions(c echo.Context) error {
	sess, ok, err := s.accountSession(c)
	if !ok {
		return err
	}
	token, _, err := s.cfg.IDP.EndOtherSessions(c.Request().Context(), sess)
	if err != nil {
		return s.internalError(c, err)
	}
	s.setSessionCookie(c, token)
	return accountDone(c, "others-ended")
}

// changePassword serves POST /account/password: the current password (a
// throttled login attempt), and the new one twice.
func (s *Server) changePassword(c echo.Context) error {
	sess, ok, err := s.accountSession(c)
	if !ok {
		return err
	}
	current, pw, again := c.FormValue("current_password"), c.FormValue("new_password"), c.FormValue("new_password2")
	fail := func(status int, msg string) error {
		return s.renderAccount(c, status, sess, pageData{Error: msg})
	}
	if current == "" || pw == "" {
		return fail(http.StatusBadRequest, "Enter your current password and the new one.")
	}
	if pw != again {
		return fail(http.StatusBadRequest, "The two new passwords differ.")
	}
	token, _, err := s.cfg.IDP.ChangePassword(c.Request().Context(), sess, current, pw, c.RealIP())
	var te *idp.ThrottledError
	var ve *idp.ValidationError
	switch {
	case errors.As(err, &ve):
		return fail(http.StatusBadRequest, "The new password "+ve.Problem+".")
	case errors.As(err, &te):
		s.loginFailed(c, LoginForm, &problem{Status: http.StatusTooManyRequests, Message: "throttled"}, sess.User.Username, "")
		secs := setRetryAfter(c, te.RetryAfter)
		return fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed attempts. Try again in %d seconds.", secs))
	case errors.Is(err, idp.ErrInvalidCredentials):
		s.loginFailed(c, LoginForm, &problem{Status: http.StatusBadRequest, Message: "wrong current password"}, sess.User.Username, "")
		return fail(http.StatusBadRequest, "Your current password is not right.")
	case err != nil:
		return s.internalError(c, err)
	}
	s.setSessionCookie(c, token)
	return accountDone(c, "password")
}
