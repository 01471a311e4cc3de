package web

// The consent page of third-party clients (idp/consent.go): after login, in
// the /authorize flow, a third-party client's first code waits for the user
// to allow the scopes it asks for; denying sends the client access_denied
// (RFC 6749 §4.1.2.1). The account page lists the apps with access and
// revokes them.

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/store"
)

// registerConsent adds the consent form's and the account page's revoke
// routes, both CSRF-protected POSTs answering with pages.
func (s *Server) registerConsent(e *echo.Echo) {
	s.shapeErrors(pageErrors,
		e.POST("/consent", s.consentSubmit, s.ui.csrf),
		e.POST("/account/apps/revoke", s.revokeApp, s.ui.csrf))
}

// askConsent shows the consent page instead of a code when the session's
// user must consent to ar first (asked: the answer is written), or, for
// prompt=none, sends the client consent_required (OIDC Core §3.1.2.6).
func (s *Server) askConsent(c echo.Context, ar *idp.AuthRequest, sess *idp.Session) (asked bool, err error) {
	need, err := s.cfg.IDP.ConsentNeeded(c.Request().Context(), ar, sess.UserID)
	switch {
	case err != nil:
		return true, s.internalError(c, err)
	case !need:
		return false, nil
	case ar.NoPrompt():
		return true, c.Redirect(http.StatusFound, s.cfg.IDP.Refuse(ar, "consent_required", "the user has not consented to this application").RedirectURL())
	}
	sealed, err := s.cfg.IDP.SealAuthRequest(ar)
	if err != nil {
		return true, s.internalError(c, err)
	}
	return true, s.render(c, http.StatusOK, "consent", pageData{Title: "Allow access", ClientName: ar.ClientName,
		Request: sealed, Username: sess.User.Username, Scopes: idp.DescribeScopes(ar.ScopeList())})
}

// consentSubmit serves POST /consent: Allow records the consent and issues
// the code, Deny sends the client access_denied. Without a session (it ended
// while the page was open) the login form comes first, and then the page
// again.
func (s *Server) consentSubmit(c echo.Context) error {
	r := c.Request()
	if err := r.ParseForm(); err != nil {
		return s.errorPage(c, http.StatusBadRequest, "Invalid form", "The form could not be read.", "")
	}
	ar, ok, err := s.openRequest(c, r.PostFormValue("request"))
	if !ok {
		return err
	}
	if ar == nil {
		return s.errorPage(c, http.StatusBadRequest, "Invalid form", "The form carries no sign-in request.", "Go back to the application and sign in again.")
	}
	sess, err := s.session(c)
	if err != nil {
		return s.internalError(c, err)
	}
	if sess == nil {
		return s.continueAuthorization(c, ar, nil)
	}
	switch r.PostFormValue("decision") {
	case "allow":
		if err := s.cfg.IDP.GrantConsent(r.Context(), ar, sess.UserID); err != nil {
			return s.internalError(c, err)
		}
		return s.deliverCode(c, ar, sess, http.StatusSeeOther)
	case "deny":
		s.cfg.Logger.Info("consent denied", "user_id", sess.UserID, "client_id", ar.ClientID)
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusSeeOther, s.cfg.IDP.Refuse(ar, "access_denied", "the user denied the application access").RedirectURL())
	}
	return s.errorPage(c, http.StatusBadRequest, "Invalid form", "Choose Allow or Deny.", "")
}

// accountApps adds the apps with access to the account page's data.
func (s *Server) accountApps(c echo.Context, sess *idp.Session, d *pageData) error {
	apps, err := s.cfg.IDP.UserConsents(c.Request().Context(), sess.UserID)
	if err != nil {
		return err
	}
	d.Apps = apps
	if c.QueryParam("revoked") != "" {
		d.AppsNotice = "The app's access has been revoked."
	}
	return nil
}

// revokeApp serves POST /account/apps/revoke: the user withdraws an app's
// consent, and its refresh tokens with it.
func (s *Server) revokeApp(c echo.Context) error {
	sess, err := s.session(c)
	if err != nil {
		return s.internalError(c, err)
	}
	if sess == nil {
		return c.Redirect(http.StatusSeeOther, withParams("/login", "return_to", "/account"))
	}
	clientID := c.FormValue("client_id")
	err = s.cfg.IDP.RevokeConsent(c.Request().Context(), sess.UserID, clientID)
	if err != nil && !errors.Is(err, store.ErrNotFound) { // already revoked (another tab): done
		return s.internalError(c, err)
	}
	return c.Redirect(http.StatusSeeOther, "/account?revoked=1")
}
