package web

// How Keygate answers a request that fails. Every route has one error shape,
// declared where the route is registered (shapeErrors); handlers describe what
// went wrong (a *problem, an *idp.Error, an *echo.HTTPError, or any other
// error for a 5xx) and writeError answers it in that shape. Handlers that
// return an error instead reach writeError through Echo's error handler.
// WWW-Authenticate challenges are built in one place too: challenge.

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/idp"
)

// errorShape is how a route writes its errors.
type errorShape uint8

const (
	// jsonErrors is {"error": "what went wrong"}: the users API, the script
	// login, the key server, the admin API and operations routes.
	jsonErrors errorShape = iota
	// oauthErrors is RFC 6749 §5.2, {"error": code, "error_description":
	// text}, never cached: the token, revocation and introspection endpoints.
	oauthErrors
	// pageErrors is a readable HTML page: the browser pages.
	pageErrors
)

// shapeErrors declares the error shape of routes; routes not declared (and
// requests that match no route) answer jsonErrors. It holds from routing on,
// so errors from the middleware that runs before the handler (the body
// limit, rate limits, CSRF) take the route's shape too.
func (s *Server) shapeErrors(shape errorShape, routes ...*echo.Route) {
	for _, r := range routes {
		s.shapes[r.Method+" "+r.Path] = shape
	}
}

// errorShapeKey overrides the route's shape for one request: POST /login
// answers the HTML form with pages.
const errorShapeKey = "keygate.error_shape"

// errorsAs answers next's errors in shape, whatever the route's shape.
func errorsAs(shape errorShape, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(errorShapeKey, shape)
		return next(c)
	}
}

func (s *Server) shapeOf(c echo.Context) errorShape {
	if shape, ok := c.Get(errorShapeKey).(errorShape); ok {
		return shape
	}
	return s.shapes[c.Request().Method+" "+c.Path()]
}

// problem is an error answer, described once for every shape.
type problem struct {
	Status     int
	Code       string // the RFC 6749 §5.2 error code; "invalid_request" when empty
	Message    string // the JSON "error", the OAuth error_description, the page's text
	Title      string // the page's heading
	Hint       string // the page's advice on what to do next
	RetryAfter time.Duration
	cause      error // a 5xx's cause, logged, never shown
}

func (p *problem) Error() string { return fmt.Sprintf("%d %s", p.Status, p.Message) }

// Messages for a 5xx, whose detail goes to the log only.
const (
	internalMessage = "internal server error"
	internalTitle   = "Something went wrong"
	internalText    = "Keygate could not complete this request."
	internalHint    = "Please try again in a moment."
)

// describe turns any error a handler returns into a problem.
func describe(err error) *problem {
	var (
		p  *problem
		oe *idp.Error
		he *echo.HTTPError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &oe):
		return &problem{Status: oe.Status, Code: oe.Code, Message: oe.Description, RetryAfter: oe.RetryAfter, cause: err}
	case errors.As(err, &he):
		return &problem{Status: he.Code, Message: fmt.Sprint(he.Message), cause: err}
	}
	return &problem{Status: http.StatusInternalServerError, cause: err}
}

// internalError answers err as a 500 whatever it is, logged.
func (s *Server) internalError(c echo.Context, err error) error {
	return s.writeError(c, &problem{Status: http.StatusInternalServerError, cause: err})
}

// errorPage shows a problem to a person (on a page route); it never redirects.
func (s *Server) errorPage(c echo.Context, status int, title, message, hint string) error {
	return s.writeError(c, &problem{Status: status, Title: title, Message: message, Hint: hint})
}

// handleError is Echo's error handler: it answers what handlers return.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if err := s.writeError(c, err); err != nil {
		s.cfg.Logger.Error("error answer failed", "err", err, "path", c.Request().URL.Path)
	}
}

// writeError answers err in the shape of the request's route. A 5xx shows a
// generic message; its cause goes to the log.
func (s *Server) writeError(c echo.Context, err error) error {
	p := *describe(err)
	shape := s.shapeOf(c)
	if p.Status >= 500 && c.Get(failureLoggedKey) == nil {
		s.cfg.Logger.Error("request failed", "err", p.cause, "path", c.Request().URL.Path,
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	}
	if p.Status >= 500 {
		p.Code, p.Message, p.Title, p.Hint = "server_error", internalMessage, internalTitle, internalHint
		if shape == pageErrors {
			p.Message = internalText
		}
	}
	h := c.Response().Header()
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(p.RetryAfter.Seconds())))
	}
	if shape == oauthErrors {
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		if p.Status == http.StatusUnauthorized && h.Get(echo.HeaderWWWAuthenticate) == "" {
			challenge{Scheme: "Basic", Realm: realm}.set(c) // RFC 6749 §5.2: client authentication failed
		}
	}
	if c.Request().Method == http.MethodHead {
		return c.NoContent(p.Status)
	}
	switch shape {
	case oauthErrors:
		if p.Code == "" {
			p.Code = "invalid_request"
		}
		return c.JSON(p.Status, map[string]string{"error": p.Code, "error_description": idp.ErrorDescription(p.Message)})
	case pageErrors:
		if p.Title == "" {
			p.Title = http.StatusText(p.Status)
		}
		if err := s.render(c, p.Status, "error", pageData{Title: p.Title, Error: p.Message, Notice: p.Hint}); err != nil {
			s.cfg.Logger.Error("error page failed", "err", err)
			return c.String(p.Status, p.Message)
		}
		return nil
	}
	return c.JSON(p.Status, map[string]string{"error": p.Message})
}

// The realms of Keygate's challenges.
const (
	realm      = "keygate"
	adminRealm = "keygate-admin"
)

// challenge is one WWW-Authenticate challenge: RFC 6750 §3 for Bearer (and
// the same auth-params for the other schemes), every value a quoted-string
// (RFC 9110 §11.2), empty ones left out.
type challenge struct {
	Scheme      string // "Bearer", "Basic", "JWT", "DPoP"
	Realm       string
	Error       string // invalid_request, invalid_token, insufficient_scope, ...
	Description string // human-readable; reduced to the characters RFC 6750 §3 allows
	Scope       string // the scope the request needs (insufficient_scope)
	Algs        string // DPoP: the proof algorithms accepted, space-separated (RFC 9449 §7.1)
}

func (ch challenge) String() string {
	var b strings.Builder
	b.WriteString(ch.Scheme)
	sep := " "
	for _, kv := range [...][2]string{{"realm", ch.Realm}, {"error", ch.Error},
		{"error_description", idp.ErrorDescription(ch.Description)}, {"scope", ch.Scope}, {"algs", ch.Algs}} {
		if kv[1] == "" {
			continue
		}
		b.WriteString(sep)
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(quoted(kv[1]))
		sep = ", "
	}
	return b.String()
}

// set puts the challenge on the response.
func (ch challenge) set(c echo.Context) {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, ch.String())
}

// add adds the challenge beside those already set (RFC 9110 §11.6.1 allows
// several) and returns the JSON error answer that goes with it.
func (ch challenge) add(c echo.Context, status int, message string) error {
	c.Response().Header().Add(echo.HeaderWWWAuthenticate, ch.String())
	return &problem{Status: status, Message: message}
}

// deny sets the challenge and returns the JSON error answer that goes with it.
func (ch challenge) deny(c echo.Context, status int, message string) error {
	ch.set(c)
	return &problem{Status: status, Message: message}
}

// quoted is v as an RFC 9110 §5.6.4 quoted-string: backslash before '"' and
// '\', and no control characters (a header cannot carry them).
func quoted(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
		case r < 0x20 || r == 0x7f:
			r = '?'
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
