package web

// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). The
// end-session endpoint is /end_session, GET or POST (a POST is redirected to
// the GET, the one place requests are served), advertised in discovery as
// end_session_endpoint. POST /logout stays the account page's CSRF-protected
// button, and is also where the end-session confirmation form posts.
//
// A request whose id_token_hint verifies and names the session's user ends
// the session at once; any other (no hint, a forged or foreign one, another
// user's) gets a "Log out of Keygate?" page, and only its CSRF-protected
// POST ends the session. Either way the browser then goes to the
// post_logout_redirect_uri, with state, when one registered for the client
// was given, and to a "You are logged out" page otherwise. An invalid request
// (an unregistered post_logout_redirect_uri above all) is an error page:
// nothing is ever redirected to a URI the client did not register.

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/idp"
)

// logoutPage is what the logout template shows: the confirmation form
// (Confirm), which posts Fields back to POST /logout, or the "You are logged
// out" page.
type logoutPage struct {
	Confirm bool
	Fields  url.Values
}

// registerEndSession adds the end-session endpoint; its errors are pages.
func (s *Server) registerEndSession(e *echo.Echo, csrf echo.MiddlewareFunc) {
	s.shapeErrors(pageErrors,
		e.GET("/end_session", s.endSession, csrf),
		e.POST("/end_session", s.endSessionPost))
}

// endSessionPost accepts an end-session request sent by POST by redirecting
// it to GET. It changes nothing, so it needs no CSRF token (the client's
// form cannot have one).
func (s *Server) endSessionPost(c echo.Context) error {
	if err := c.Request().ParseForm(); err != nil {
		return s.errorPage(c, http.StatusBadRequest, "Invalid logout request", "The request could not be read.", "")
	}
	return c.Redirect(http.StatusSeeOther, "/end_session?"+c.Request().PostForm.Encode())
}

// endSession serves GET /end_session.
func (s *Server) endSession(c echo.Context) error {
	lr, err := s.cfg.IDP.ParseLogout(c.Request().Context(), c.QueryParams())
	if err != nil {
		return s.logoutFailed(c, err)
	}
	sess, err := s.session(c)
	if err != nil {
		return s.internalError(c, err)
	}
	switch {
	case sess == nil: // already logged out: nothing to end or to confirm
		return s.loggedOut(c, lr)
	case lr.Silent(sess):
		if err := s.endBrowserSession(c); err != nil {
			return s.internalError(c, err)
		}
		s.cfg.Logger.Info("rp-initiated logout", "user_id", sess.UserID, "client_id", lr.ClientID)
		return s.loggedOut(c, lr)
	}
	return s.render(c, http.StatusOK, "logout", pageData{Title: "Log out", ClientName: lr.ClientName,
		Username: sess.User.Username, Logout: &logoutPage{Confirm: true, Fields: lr.Values()}})
}

// confirmedLogout reads the end-session request the confirmation form posts
// to POST /logout, validating it again (the browser could have changed it);
// nil for the account page's plain logout button. ok is false when an error
// page has been written instead.
func (s *Server) confirmedLogout(c echo.Context) (lr *idp.LogoutRequest, ok bool, err error) {
	r := c.Request()
	if err := r.ParseForm(); err != nil {
		return nil, false, s.errorPage(c, http.StatusBadRequest, "Invalid form", "The form could not be read.", "")
	}
	params := url.Values{}
	for _, k := range []string{"client_id", "post_logout_redirect_uri", "state"} {
		if v, ok := r.PostForm[k]; ok {
			params[k] = v
		}
	}
	if len(params) == 0 {
		return nil, true, nil
	}
	if lr, err = s.cfg.IDP.ParseLogout(r.Context(), params); err != nil {
		return nil, false, s.logoutFailed(c, err)
	}
	return lr, true, nil
}

// endBrowserSession ends the session the browser's cookie names, in the
// store, and clears the cookie.
func (s *Server) endBrowserSession(c echo.Context) error {
	if ck, err := c.Cookie(s.ui.sessionCookie); err == nil && ck.Value != "" {
		if err := s.cfg.IDP.EndSession(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	s.clearSessionCookie(c)
	return nil
}

// loggedOut finishes an RP-initiated logout: to the client's registered
// post_logout_redirect_uri with state, or the "You are logged out" page.
func (s *Server) loggedOut(c echo.Context, lr *idp.LogoutRequest) error {
	if to := lr.RedirectURL(); to != "" {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusSeeOther, to)
	}
	return s.render(c, http.StatusOK, "logout", pageData{Title: "Logged out", Logout: &logoutPage{}})
}

// logoutFailed answers a refused end-session request with a page, never a
// redirect.
func (s *Server) logoutFailed(c echo.Context, err error) error {
	var le *idp.LogoutError
	if !errors.As(err, &le) {
		return s.internalError(c, err)
	}
	return s.errorPage(c, http.StatusBadRequest, "Invalid logout request",
		"The application sent an invalid logout request: "+le.Description+".",
		"You have not been logged out. Go back to the application; if it keeps happening, tell its operator.")
}
