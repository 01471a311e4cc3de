package web

// The second factor in the browser: after a correct password, a user with
// TOTP (or whom login.require_second_factor covers, or whose application
// asked for acr_values urn:keygate:acr:mfa) is not logged in yet. The login
// is pending, server-side (idp.BeginSecondFactor: a short-lived row; the
// cookie holds only a random value naming it), until the code step (or, for
// a user without TOTP, enrolment) completes it. The account page enrols and
// removes TOTP. The QR code is a PNG served by this site (the pages' CSP
// allows images from 'self' only, and no script is needed).

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/store"
)

// pendingCookieName names the pending login; over https it takes the
// __Host- prefix as the session cookie does.
const pendingCookieName = "keygate_login"

// totpView is what the second-factor pages and the account section show.
type totpView struct {
	Action       string   // where the code form posts
	Secret       string   // enrolment: the secret, to type in
	Codes        []string // recovery codes, shown once
	ContinueURL  string   // after the recovery codes
	Active       bool     // account: TOTP is on
	RecoveryLeft int      // account: unused recovery codes
}

func (s *Server) registerSecondFactor(e *echo.Echo, csrf echo.MiddlewareFunc) {
	s.shapeErrors(pageErrors,
		e.POST("/login/totp", s.loginTOTP, csrf),
		e.POST("/login/totp/enrol", s.loginEnrolTOTP, csrf),
		e.GET("/totp/qr.png", s.totpQR),
		e.POST("/account/totp/start", s.accountStartTOTP, csrf),
		e.POST("/account/totp/confirm", s.accountConfirmTOTP, csrf),
		e.POST("/account/totp/remove", s.accountRemoveTOTP, csrf),
		e.POST("/account/totp/recovery-codes", s.accountRecoveryCodes, csrf))
}

func (s *Server) pendingCookie() string {
	if s.ui.secure {
		return "__Host-" + pendingCookieName
	}
	return pendingCookieName
}

func (s *Server) setPendingCookie(c echo.Context, token string) {
	maxAge := int(idp.PendingLoginTTL.Seconds())
	if token == "" {
		maxAge = -1
	}
	c.SetCookie(&http.Cookie{Name: s.pendingCookie(), Value: token, Path: "/", HttpOnly: true, Secure: s.ui.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: maxAge})
}

// secondFactorDue decides, after u's correct password, whether the login
// needs a second factor; if so it starts the pending login and renders the
// code step (or, for a user without TOTP, the enrolment page) and reports
// true. d is the login form's state (request, return_to).
func (s *Server) secondFactorDue(c echo.Context, u store.User, ar *idp.AuthRequest, d pageData) (bool, error) {
	ctx := c.Request().Context()
	has, err := s.cfg.IDP.HasSecondFactor(ctx, u.ID)
	if err != nil {
		return true, s.internalError(c, err)
	}
	asked := ar != nil && !idp.Satisfies([]string{idp.AMRPassword}, ar.RequiredACR())
	if !has && !asked && !s.cfg.IDP.SecondFactorRequired(u) {
		return false, nil
	}
	token, err := s.cfg.IDP.BeginSecondFactor(ctx, u)
	if err != nil {
		return true, s.internalError(c, err)
	}
	s.setPendingCookie(c, token)
	d.Error, d.Notice = "", ""
	if has {
		d.Title, d.TOTP = "Enter your code", &totpView{Action: "/login/totp"}
		return true, s.render(c, http.StatusOK, "totp", d)
	}
	en, err := s.cfg.IDP.StartTOTPEnrolment(ctx, u)
	if err != nil {
		return true, s.internalError(c, err)
	}
	d = enrolPage(d, "/login/totp/enrol", en.Secret)
	d.Notice = "This sign-in needs a second factor. Set up an authenticator app to continue."
	return true, s.render(c, http.StatusOK, "enrol", d)
}

// enrolPage is d as the TOTP enrolment page: secret to type in (or scan),
// and the code form posting to action.
func enrolPage(d pageData, action, secret string) pageData {
	d.Title, d.TOTP = "Set up two-factor authentication", &totpView{Action: action, Secret: secret}
	return d
}

// pendingLogin reads the pending login and the form's sign-in state; with
// none (expired, finished, never started) it has answered with a page (ok
// false).
func (s *Server) pendingLogin(c echo.Context) (pending *idp.Session, ar *idp.AuthRequest, d pageData, ok bool, err error) {
	f, ok, err := s.postedFlow(c)
	if !ok {
		return nil, nil, d, false, err
	}
	ar, d = f.ar, f.page("")
	ck, cerr := c.Cookie(s.pendingCookie())
	if cerr == nil {
		pending, err = s.cfg.IDP.PendingLogin(c.Request().Context(), ck.Value)
	}
	if cerr != nil || errors.Is(err, idp.ErrNoSession) {
		return nil, nil, d, false, s.pendingGone(c)
	}
	if err != nil {
		return nil, nil, d, false, s.internalError(c, err)
	}
	return pending, ar, d, true, nil
}

// pendingGone answers a code step whose pending login cannot finish: it
// expired, was completed, or its user's second factor changed under it (an
// operator's reset-mfa removed it, a concurrent request confirmed the
// enrolment). A 400 page asking to sign in again, never a 500: each of these
// is something a browser (or an attacker holding the form) can cause.
func (s *Server) pendingGone(c echo.Context) error {
	s.setPendingCookie(c, "")
	return s.errorPage(c, http.StatusBadRequest, "This sign-in has expired",
		"The second step of the sign-in took too long, or was already completed.", "Sign in again.")
}

// secondFactorChanged reports whether err says the user's TOTP is not in the
// state the step expected: removed (idp.ErrNoTOTP) or already confirmed
// (idp.ErrTOTPActive).
func secondFactorChanged(err error) bool {
	return errors.Is(err, idp.ErrNoTOTP) || errors.Is(err, idp.ErrTOTPActive)
}

// totpUnavailable is the message for a code that cannot be checked because
// the TOTP secret is sealed under a key-encryption key the server no longer
// has (idp.ErrTOTPUnavailable): the login's code step and /account answer it
// with 503.
const totpUnavailable = "Codes from your authenticator app cannot be checked at the moment. Enter a recovery code, or ask an administrator."

// codeFailed renders page again with the error of a refused code: a
// throttled one is 429 with Retry-After, a wrong one 200 (as a wrong
// password is), and one that cannot be checked because the secret is sealed
// under a key-encryption key the server no longer has 503 (the operator's
// to fix; the log says how), pointing the user at a recovery code.
func (s *Server) codeFailed(c echo.Context, err error, page string, d pageData) error {
	var te *idp.ThrottledError
	switch {
	case errors.Is(err, idp.ErrTOTPUnavailable):
		d.Error = totpUnavailable
		if page == "enrol" {
			d.Error = "This authenticator can no longer be set up. Start again from your account page, or ask an administrator."
		}
		return s.render(c, http.StatusServiceUnavailable, page, d)
	case errors.As(err, &te):
		secs := setRetryAfter(c, te.RetryAfter)
		d.Error = fmt.Sprintf("Too many failed attempts. Try again in %d seconds.", secs)
		return s.render(c, http.StatusTooManyRequests, page, d)
	case errors.Is(err, idp.ErrInvalidCode):
		d.Error = "That code is not valid. Enter the current code from your app, or a recovery code."
		if page == "enrol" {
			d.Error = "That code is not valid. Enter the current code your app shows."
		}
		return s.render(c, http.StatusOK, page, d)
	}
	return s.internalError(c, err)
}

// loginTOTP serves POST /login/totp: the code step of a pending login.
func (s *Server) loginTOTP(c echo.Context) error {
	pending, ar, d, ok, err := s.pendingLogin(c)
	if !ok {
		return err
	}
	d.Title, d.TOTP = "Enter your code", &totpView{Action: "/login/totp"}
	err = s.cfg.IDP.VerifySecondFactor(c.Request().Context(), pending.User, c.Request().PostFormValue("code"), c.RealIP())
	if secondFactorChanged(err) {
		return s.pendingGone(c)
	}
	if err != nil {
		return s.codeFailed(c, err, "totp", d)
	}
	sess, err := s.finishPending(c, pending)
	if err != nil {
		return err
	}
	return s.afterLogin(c, ar, sess, d.ReturnTo)
}

// finishPending turns the pending login into the browser's session.
func (s *Server) finishPending(c echo.Context, pending *idp.Session) (*idp.Session, error) {
	sess, err := s.replaceSession(c, func(ctx context.Context) (string, *idp.Session, error) {
		return s.cfg.IDP.FinishSecondFactor(ctx, pending)
	})
	s.setPendingCookie(c, "")
	if errors.Is(err, idp.ErrNoSession) {
		return nil, s.errorPage(c, http.StatusBadRequest, "This sign-in has expired",
			"The sign-in was already completed.", "Sign in again.")
	}
	if err != nil {
		return nil, s.internalError(c, err)
	}
	s.cfg.Metrics.Login(LoginForm, LoginSuccess)
	s.cfg.Logger.Info("browser login", "user_id", sess.UserID, "amr", sess.AMR)
	return sess, nil
}

// loginEnrolTOTP serves POST /login/totp/enrol: a pending login's user
// without TOTP confirms the one just made; the login completes and the
// recovery codes are shown once.
func (s *Server) loginEnrolTOTP(c echo.Context) error {
	pending, ar, d, ok, err := s.pendingLogin(c)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	en, err := s.cfg.IDP.PendingTOTPEnrolment(ctx, pending.User)
	if secondFactorChanged(err) {
		return s.pendingGone(c)
	}
	if err != nil {
		return s.internalError(c, err)
	}
	d = enrolPage(d, "/login/totp/enrol", en.Secret)
	codes, err := s.cfg.IDP.ConfirmTOTP(ctx, pending.User, c.Request().PostFormValue("code"), c.RealIP())
	if secondFactorChanged(err) {
		return s.pendingGone(c)
	}
	if err != nil {
		return s.codeFailed(c, err, "enrol", d)
	}
	if _, err := s.finishPending(c, pending); err != nil {
		return err
	}
	next := "/account"
	switch {
	case ar != nil:
		next = withParams("/login", "request", d.Request)
	case d.ReturnTo != "":
		next = d.ReturnTo
	}
	return s.showRecoveryCodes(c, codes, next)
}

func (s *Server) showRecoveryCodes(c echo.Context, codes []string, next string) error {
	return s.render(c, http.StatusOK, "recovery", pageData{Title: "Your recovery codes",
		TOTP: &totpView{Codes: codes, ContinueURL: next}})
}

// totpQR serves GET /totp/qr.png: the QR code of the unconfirmed TOTP of
// the browser's user (its session's, or its pending login's). Never
// cached: it carries a secret.
func (s *Server) totpQR(c echo.Context) error {
	ctx := c.Request().Context()
	var u *store.User
	if sess, err := s.session(c); err == nil && sess != nil {
		u = &sess.User
	} else if ck, err := c.Cookie(s.pendingCookie()); err == nil {
		if pending, err := s.cfg.IDP.PendingLogin(ctx, ck.Value); err == nil {
			u = &pending.User
		}
	}
	if u == nil {
		return s.errorPage(c, http.StatusNotFound, "Not found", "There is no authenticator being set up.", "")
	}
	en, err := s.cfg.IDP.PendingTOTPEnrolment(ctx, *u)
	if secondFactorChanged(err) {
		return s.errorPage(c, http.StatusNotFound, "Not found", "There is no authenticator being set up.", "")
	}
	if err != nil {
		return s.internalError(c, err)
	}
	png, err := en.QRPNG(240)
	if err != nil {
		return s.internalError(c, err)
	}
	setPageHeaders(c.Response().Header())
	return c.Blob(http.StatusOK, "image/png", png)
}

// accountTOTP fills the account page's second-factor section.
func (s *Server) accountTOTP(c echo.Context, sess *idp.Session, d *pageData) error {
	active, left, err := s.cfg.IDP.SecondFactorStatus(c.Request().Context(), sess.UserID)
	d.TOTP = &totpView{Active: active, RecoveryLeft: left}
	return err
}

// accountStartTOTP serves POST /account/totp/start: a new secret, shown
// with its QR code and a form to confirm it.
func (s *Server) accountStartTOTP(c echo.Context) error {
	sess, ok, err := s.freshAccountSession(c)
	if !ok {
		return err
	}
	en, err := s.cfg.IDP.StartTOTPEnrolment(c.Request().Context(), sess.User)
	if errors.Is(err, idp.ErrTOTPActive) {
		return s.renderAccount(c, http.StatusConflict, sess, pageData{Error: "Two-factor authentication is already on."})
	}
	if err != nil {
		return s.internalError(c, err)
	}
	return s.render(c, http.StatusOK, "enrol", enrolPage(pageData{}, "/account/totp/confirm", en.Secret))
}

// accountConfirmTOTP serves POST /account/totp/confirm.
func (s *Server) accountConfirmTOTP(c echo.Context) error {
	sess, ok, err := s.freshAccountSession(c)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	en, err := s.cfg.IDP.PendingTOTPEnrolment(ctx, sess.User)
	if secondFactorChanged(err) {
		return accountDone(c, "")
	}
	if err != nil {
		return s.internalError(c, err)
	}
	codes, err := s.cfg.IDP.ConfirmTOTP(ctx, sess.User, c.FormValue("code"), c.RealIP())
	if secondFactorChanged(err) { // a concurrent confirmation won, or the factor was reset meanwhile
		return accountDone(c, "")
	}
	if err != nil {
		return s.codeFailed(c, err, "enrol", enrolPage(pageData{}, "/account/totp/confirm", en.Secret))
	}
	return s.showRecoveryCodes(c, codes, "/account?done=totp-on")
}

// accountRemoveTOTP serves POST /account/totp/remove: a current code (or a
// recovery code) is required, the session alone is not enough.
func (s *Server) accountRemoveTOTP(c echo.Context) error {
	sess, ok, err := s.accountSession(c)
	if !ok {
		return err
	}
	err = s.cfg.IDP.RemoveTOTP(c.Request().Context(), sess, c.FormValue("code"), c.RealIP())
	if err != nil {
		return s.accountCodeRefused(c, sess, err, "That code is not valid; two-factor authentication is still on.")
	}
	return accountDone(c, "totp-off")
}

// accountRecoveryCodes serves POST /account/totp/recovery-codes: with a
// current code (or a recovery code), ten new recovery codes replace all the
// old ones, and are shown once.
func (s *Server) accountRecoveryCodes(c echo.Context) error {
	sess, ok, err := s.accountSession(c)
	if !ok {
		return err
	}
	codes, err := s.cfg.IDP.NewRecoveryCodes(c.Request().Context(), sess, c.FormValue("code"), c.RealIP())
	if err != nil {
		return s.accountCodeRefused(c, sess, err, "That code is not valid; your recovery codes have not changed.")
	}
	return s.showRecoveryCodes(c, codes, "/account?done=recovery-codes")
}

// accountCodeRefused answers an account action that needed a current code
// and failed with err: a throttled code is a 429 with Retry-After, a wrong
// one the account page with invalid.
func (s *Server) accountCodeRefused(c echo.Context, sess *idp.Session, err error, invalid string) error {
	var te *idp.ThrottledError
	switch {
	case errors.As(err, &te):
		setRetryAfter(c, te.RetryAfter)
		return s.renderAccount(c, http.StatusTooManyRequests, sess, pageData{Error: "Too many failed attempts. Try again later."})
	case errors.Is(err, idp.ErrInvalidCode), errors.Is(err, idp.ErrNoTOTP):
		return s.renderAccount(c, http.StatusOK, sess, pageData{Error: invalid})
	case errors.Is(err, idp.ErrTOTPUnavailable):
		return s.renderAccount(c, http.StatusServiceUnavailable, sess, pageData{Error: totpUnavailable})
	}
	return s.internalError(c, err)
}
