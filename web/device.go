package web

// The device authorization grant (RFC 8628): POST /device/code, where a
// device or a command-line tool gets a device code and a user code, and the
// verification page /device, where a logged-in user enters the user code
// and allows or denies the device. The device then gets its tokens by
// polling /token (idp's grant_device_code.go).

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/idp"
)

// deviceView is what the verification page shows: the code entry form, the
// request to decide, or the decision.
type deviceView struct {
	UserCode string             // prefilled in the entry form
	Request  *idp.DeviceRequest // the request found, to allow or deny
	Done     bool               // decided
	Approved bool
}

// registerDevice adds the device routes and the verification page's
// template; registerBrowser calls it once the CSRF middleware exists.
func (s *Server) registerDevice(e *echo.Echo) error {
	t, err := template.New("device").ParseFS(templateFiles, "templates/layout.html", "templates/device.html")
	if err != nil {
		return fmt.Errorf("template device: %w", err)
	}
	s.ui.pages["device"] = t
	s.shapeErrors(oauthErrors, e.POST("/device/code", s.deviceAuthorization))
	s.shapeErrors(pageErrors,
		e.GET("/device", s.devicePage, s.ui.csrf),
		e.POST("/device", s.deviceSubmit, s.ui.csrf))
	return nil
}

// deviceAuthorization serves POST /device/code (RFC 8628 §3.1).
func (s *Server) deviceAuthorization(c echo.Context) error {
	req, err := s.formRequest(c, "/device/code")
	var res *idp.DeviceAuthorization
	if err == nil {
		res, err = s.cfg.IDP.AuthorizeDevice(c.Request().Context(), req)
	}
	if err != nil {
		s.oauthFailed(c, "/device/code", req, err)
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, res)
}

// deviceSession returns the logged-in user's session, or redirects to the
// login page, which comes back to the verification page with the code.
func (s *Server) deviceSession(c echo.Context, userCode string) (*idp.Session, bool, error) {
	sess, err := s.session(c)
	if err != nil {
		return nil, false, s.internalError(c, err)
	}
	if sess == nil {
		back := withParams("/device", "user_code", idp.FormatUserCode(idp.NormalizeUserCode(userCode)))
		return nil, false, c.Redirect(http.StatusSeeOther, withParams("/login", "return_to", back))
	}
	return sess, true, nil
}

// devicePage serves GET /device: the code entry form, prefilled from
// verification_uri_complete's user_code. Looking a code up is a POST: every
// lookup is a throttled guess.
func (s *Server) devicePage(c echo.Context) error {
	code := c.QueryParam("user_code")
	sess, ok, err := s.deviceSession(c, code)
	if !ok {
		return err
	}
	v := &deviceView{UserCode: idp.FormatUserCode(idp.NormalizeUserCode(code))}
	return s.render(c, http.StatusOK, "device", pageData{Title: "Connect a device", User: sess.User, Device: v})
}

// deviceSubmit serves POST /device: without an action it looks the code up
// and shows the request; with action=approve or deny it records the
// decision (looking the code up again, through the same throttles).
func (s *Server) deviceSubmit(c echo.Context) error {
	r := c.Request()
	if err := r.ParseForm(); err != nil {
		return s.errorPage(c, http.StatusBadRequest, "Invalid form", "The form could not be read.", "")
	}
	code, action := r.PostFormValue("user_code"), r.PostFormValue("action")
	sess, ok, err := s.deviceSession(c, code)
	if !ok {
		return err
	}
	d := pageData{Title: "Connect a device", User: sess.User, Device: &deviceView{UserCode: code}}
	var dr *idp.DeviceRequest
	switch action {
	case "":
		dr, err = s.cfg.IDP.LookupUserCode(r.Context(), sess, code, c.RealIP())
	case "approve", "deny":
		dr, err = s.cfg.IDP.DecideDevice(r.Context(), sess, code, c.RealIP(), action == "approve")
		d.Device.Done, d.Device.Approved = err == nil, action == "approve"
	default:
		return s.errorPage(c, http.StatusBadRequest, "Invalid form", "The form could not be read.", "")
	}
	var te *idp.ThrottledError
	switch {
	case errors.As(err, &te):
		secs := setRetryAfter(c, te.RetryAfter)
		d.Error = fmt.Sprintf("Too many wrong codes. Try again in %d seconds.", secs)
		return s.render(c, http.StatusTooManyRequests, "device", d)
	case errors.Is(err, idp.ErrUnknownUserCode):
		d.Error = "That code is not valid, or it has expired or been used. Check the code on your device and try again."
		return s.render(c, http.StatusOK, "device", d)
	case err != nil:
		return s.internalError(c, err)
	}
	d.Device.Request = dr
	return s.render(c, http.StatusOK, "device", d)
}
