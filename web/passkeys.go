package web

// Passkeys in the browser: sign in with one on /login, and register, list
// and remove them on /account. The ceremonies need the WebAuthn browser API,
// so a small same-origin script (static/passkeys.js) fetches the options as
// JSON, calls navigator.credentials, and posts the answer back in an
// ordinary CSRF-protected form; the finishing steps are form posts that
// redirect like the password form's. Without JavaScript the passkey
// controls stay hidden and the password form works as before.

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/idp"
)

// passkeyRow is one passkey on the account page.
type passkeyRow struct {
	ID, Handle, Name  string
	Created, LastUsed string // LastUsed empty: never
	Synced            bool
}

// csrfHeader is the header the passkey script sends the CSRF token in.
const csrfHeader = "X-CSRF-Token"

func (s *Server) registerPasskeys(e *echo.Echo, csrf echo.MiddlewareFunc) {
	// The options endpoints are fetched with JSON: the same double-submit
	// token, in a header instead of a form field.
	csrfJSON := s.csrfWith("header:" + csrfHeader)
	s.shapeErrors(jsonErrors,
		e.POST("/login/passkey/options", s.passkeyRequestOptions, csrfJSON),
		e.POST("/account/passkeys/options", s.passkeyCreationOptions, csrfJSON))
	s.shapeErrors(pageErrors,
		e.POST("/login/passkey", s.passkeyLogin, csrf),
		e.POST("/account/passkeys", s.addPasskey, csrf),
		e.POST("/account/passkeys/remove", s.removePasskey, csrf))
	e.GET("/static/passkeys.js", s.passkeyScript)
}

func (s *Server) passkeyScript(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", passkeysJS)
}

// noPasskeys answers an options request when the issuer cannot have
// passkeys.
func noPasskeys(c echo.Context) error {
	return c.JSON(http.StatusNotFound, map[string]string{"error": "passkeys are not available on this server"})
}

// passkeyRequestOptions serves POST /login/passkey/options: the options for
// navigator.credentials.get, with a fresh challenge.
func (s *Server) passkeyRequestOptions(c echo.Context) error {
	if !s.cfg.IDP.PasskeysEnabled() {
		return noPasskeys(c)
	}
	opts, err := s.cfg.IDP.PasskeyRequestOptions(c.Request().Context(), c.RealIP())
	var te *idp.ThrottledError
	if errors.As(err, &te) {
		setRetryAfter(c, te.RetryAfter)
		return c.JSON(http.StatusTooManyRequests, map[string]string{"error": "too many passkey sign-ins are under way; try again shortly"})
	}
	if err != nil {
		return s.internalError(c, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, opts)
}

// passkeyLogin serves POST /login/passkey: the assertion the script got
// from the authenticator, with the login form's state. It continues like a
// password login; a refused passkey shows the login page with an error.
func (s *Server) passkeyLogin(c echo.Context) error {
	f, ok, err := s.postedFlow(c)
	if !ok {
		return err
	}
	r := c.Request()
	pl, err := s.cfg.IDP.LoginWithPasskey(r.Context(), []byte(r.PostFormValue("credential")))
	switch {
	case errors.Is(err, idp.ErrPasskeyRefused), errors.Is(err, idp.ErrPasskeysUnavailable):
		s.loginFailed(c, LoginPasskey, &problem{Status: http.StatusBadRequest, Message: err.Error()}, "", "")
		d := s.loginRetry(f, "")
		d.Error = "That passkey was not accepted. Try again, or log in with your password."
		return s.render(c, http.StatusBadRequest, "login", d)
	case err != nil:
		s.loginFailed(c, LoginPasskey, &problem{Status: http.StatusInternalServerError, cause: err}, "", "")
		return s.internalError(c, err)
	}
	sess, err := s.startSession(c, pl.User, pl.Methods)
	if err != nil {
		s.loginFailed(c, LoginPasskey, &problem{Status: http.StatusInternalServerError, cause: err}, "", "")
		return s.internalError(c, err)
	}
	s.cfg.Metrics.Login(LoginPasskey, LoginSuccess)
	s.cfg.Logger.Info("browser login", "user_id", pl.User.ID, "method", "passkey")
	return s.afterLogin(c, f.ar, sess, f.returnTo)
}

// passkeyCreationOptions serves POST /account/passkeys/options: the options
// for navigator.credentials.create for the session's user.
func (s *Server) passkeyCreationOptions(c echo.Context) error {
	if !s.cfg.IDP.PasskeysEnabled() {
		return noPasskeys(c)
	}
	sess, err := s.session(c)
	if err != nil {
		return s.internalError(c, err)
	}
	if sess == nil {
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "not logged in"})
	}
	if !s.cfg.IDP.RecentlyAuthenticated(sess) {
		return c.JSON(http.StatusForbidden, map[string]string{"error": reauthNeeded, "login": reauthPath})
	}
	opts, err := s.cfg.IDP.PasskeyCreationOptions(c.Request().Context(), sess)
	if errors.Is(err, idp.ErrTooManyPasskeys) {
		return c.JSON(http.StatusConflict, map[string]string{"error": err.Error()})
	}
	if err != nil {
		return s.internalError(c, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, opts)
}

// addPasskey serves POST /account/passkeys: the name and the new
// credential the script got from the authenticator.
func (s *Server) addPasskey(c echo.Context) error {
	sess, ok, err := s.freshAccountSession(c)
	if !ok {
		return err
	}
	_, err = s.cfg.IDP.RegisterPasskey(c.Request().Context(), sess, c.FormValue("name"), []byte(c.FormValue("credential")))
	var ve *idp.ValidationError
	switch {
	case errors.As(err, &ve):
		return s.renderAccount(c, http.StatusBadRequest, sess, pageData{Error: "The passkey's name " + ve.Problem + "."})
	case errors.Is(err, idp.ErrTooManyPasskeys):
		return s.renderAccount(c, http.StatusConflict, sess, pageData{Error: "You have as many passkeys as allowed. Remove one first."})
	case errors.Is(err, idp.ErrPasskeyRefused), errors.Is(err, idp.ErrPasskeysUnavailable):
		s.cfg.Logger.Info("passkey registration refused", "user_id", sess.UserID, "reason", err.Error())
		return s.renderAccount(c, http.StatusBadRequest, sess, pageData{Error: "The passkey could not be added. Try again."})
	case err != nil:
		return s.internalError(c, err)
	}
	return accountDone(c, "passkey-added")
}

// removePasskey serves POST /account/passkeys/remove: the passkey the form
// names, which must be the user's.
func (s *Server) removePasskey(c echo.Context) error {
	sess, ok, err := s.freshAccountSession(c)
	if !ok {
		return err
	}
	err = s.cfg.IDP.RemovePasskey(c.Request().Context(), sess, c.FormValue("passkey"))
	switch {
	case errors.Is(err, idp.ErrUnknownPasskey):
		return s.renderAccount(c, http.StatusNotFound, sess, pageData{Error: "That passkey is not one of yours, or it has already been removed."})
	case err != nil:
		return s.internalError(c, err)
	}
	return accountDone(c, "passkey-removed")
}

// accountPasskeys fills the account page's passkey list.
func (s *Server) accountPasskeys(c echo.Context, sess *idp.Session, d *pageData) error {
	infos, err := s.cfg.IDP.UserPasskeys(c.Request().Context(), sess)
	if err != nil {
		return err
	}
	for _, in := range infos {
		row := passkeyRow{ID: in.ID, Handle: idp.PasskeyHandle(in.ID), Name: in.Name, Created: showTime(in.CreatedAt), Synced: in.Synced}
		if !in.LastUsed.IsZero() {
			row.LastUsed = showTime(in.LastUsed)
		}
		d.PasskeyList = append(d.PasskeyList, row)
	}
	return nil
}
