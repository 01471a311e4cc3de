package web

// Why a request failed: one structured log line per failed OAuth request
// (token, revocation, introspection) and per failed login (password grant,
// login form, script login), and the token and login counters.
//
// What is logged: the client id, the grant, the RFC 6749 error code and its
// description (reason), the client's address (c.RealIP(): clientIP's rule),
// the request ID and, for a 5xx, the underlying error. Never a client
// secret, a password, a token, an assertion or an authorization code: no
// form value is logged except through the bounded grant label, and an
// identifier taken from the request (a claimed client id, a login) is logged
// only when it names a registered client or an existing user, so that a
// secret or password typed into the wrong field is never written to the log.
// Otherwise the line says client_known=false or login_known=false.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/store"
)

// failureLoggedKey marks a request whose 5xx cause is already logged, so
// writeError does not log it a second time.
const failureLoggedKey = "keygate.failure_logged"

// maxLoggedID bounds an identifier looked up for the log; anything longer
// is no client id or login and is not looked up.
const maxLoggedID = 256

// oauthCode is the error code an OAuth endpoint answers p with (writeError's
// rule).
func oauthCode(p *problem) string {
	switch {
	case p.Status >= 500:
		return "server_error"
	case p.Code == "":
		return "invalid_request"
	}
	return p.Code
}

// reasonOf is the error_description the client was given.
func reasonOf(p *problem) string {
	if p.Status >= 500 {
		return internalMessage
	}
	return idp.ErrorDescription(p.Message)
}

// logFailure writes one failure line: level info for a 4xx, error for a 5xx,
// which adds the underlying error (err).
func (s *Server) logFailure(c echo.Context, msg string, p *problem, attrs []slog.Attr) {
	attrs = append(attrs, slog.Int("status", p.Status),
		slog.String("remote_ip", c.RealIP()),
		slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)))
	level := slog.LevelInfo
	if code := oauthCode(p); code == "authorization_pending" || code == "slow_down" {
		// A device polling while its user decides (RFC 8628 §3.5): the
		// expected answer every few seconds, not a failure worth a line.
		level = slog.LevelDebug
	}
	if p.Status >= 500 {
		level = slog.LevelError
		if p.cause != nil {
			attrs = append(attrs, slog.String("err", causeText(p.cause)))
		}
		c.Set(failureLoggedKey, true)
	}
	s.cfg.Logger.LogAttrs(c.Request().Context(), level, msg, attrs...)
}

// causeText is a 5xx's underlying error with its whole chain: an
// *idp.Error's text leaves out the cause it wraps.
func causeText(err error) string {
	var oe *idp.Error
	if errors.As(err, &oe) && oe.Unwrap() != nil {
		return err.Error() + ": " + oe.Unwrap().Error()
	}
	return err.Error()
}

// oauthFailed logs a failed token, revocation or introspection request and
// returns the error code it was answered with.
func (s *Server) oauthFailed(c echo.Context, endpoint string, req *idp.Request, err error, extra ...slog.Attr) string {
	p := describe(err)
	code := oauthCode(p)
	attrs := []slog.Attr{slog.String("endpoint", endpoint)}
	if req != nil && endpoint == "/token" {
		attrs = append(attrs, slog.String("grant_type", grantLabel(req.Form.Get("grant_type"))))
	}
	attrs = append(attrs, slog.String("error", code), slog.String("reason", reasonOf(p)))
	attrs = append(attrs, s.clientAttrs(c.Request().Context(), req, endpoint, code)...)
	attrs = append(attrs, extra...)
	s.logFailure(c, "oauth request failed", p, attrs)
	return code
}

// observeToken counts a /token answer and, when it failed, logs why. A
// password grant that reached the password check is a login too.
func (s *Server) observeToken(c echo.Context, req *idp.Request, err error) {
	gt := ""
	if req != nil {
		gt = req.Form.Get("grant_type")
	}
	m := s.cfg.Metrics
	if err == nil {
		m.TokenIssued(gt)
		if gt == idp.GrantPassword {
			m.Login(LoginPasswordGrant, LoginSuccess)
		}
		return
	}
	var extra []slog.Attr
	if gt == idp.GrantPassword {
		if outcome := passwordOutcome(describe(err)); outcome != "" {
			m.Login(LoginPasswordGrant, outcome)
			extra = append(extra, slog.String("login_outcome", outcome))
			if outcome == LoginInvalid || outcome == LoginThrottled {
				extra = append(extra, s.loginAttrs(c.Request().Context(), req.Form.Get("username"))...)
			}
		}
	}
	m.TokenFailed(gt, s.oauthFailed(c, "/token", req, err, extra...))
}

// passwordOutcome is the login outcome of a failed password grant, or ""
// when the request failed before the password was checked (the client's
// authentication, a missing field, the scope).
func passwordOutcome(p *problem) string {
	if outcome := loginOutcome(p); outcome != LoginInvalid || p.Code == "invalid_grant" {
		return outcome
	}
	return ""
}

// loginOutcome is the outcome of a failed login answered with p.
func loginOutcome(p *problem) string {
	switch {
	case p.Status >= 500:
		return LoginError
	case p.Status == http.StatusTooManyRequests:
		return LoginThrottled
	}
	return LoginInvalid
}

// clientAttrs names the client of a failed OAuth request: client_id with
// client_id_is "authenticated" when the error could only come after the
// client authenticated, else "claimed" (what the request says, unproven),
// and then only if a client with that id is registered; otherwise
// client_known=false.
func (s *Server) clientAttrs(ctx context.Context, req *idp.Request, endpoint, code string) []slog.Attr {
	if req == nil {
		return nil
	}
	id, byAssertionOnly := req.ClaimedClient()
	if id == "" {
		return []slog.Attr{slog.Bool("client_known", false)}
	}
	if endpoint == "/token" && !byAssertionOnly {
		switch code {
		case "unauthorized_client", "invalid_grant", "invalid_scope", "too_many_requests":
			return []slog.Attr{slog.String("client_id", id), slog.String("client_id_is", "authenticated")}
		}
	}
	if len(id) > maxLoggedID {
		return []slog.Attr{slog.Bool("client_known", false)}
	}
	_, err := s.dir.Client(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return []slog.Attr{slog.Bool("client_known", false)}
	case err != nil:
		return nil // the store is failing; the line says why elsewhere
	}
	return []slog.Attr{slog.String("client_id", id), slog.String("client_id_is", "claimed")}
}

// loginAttrs names the user of a failed login: login_known=true with the
// user's id and stored username when the login string resolves to a user,
// else login_known=false and nothing of the string, which may be a
// password typed into the wrong field.
func (s *Server) loginAttrs(ctx context.Context, login string) []slog.Attr {
	login = strings.TrimSpace(login)
	if login == "" || len(login) > maxLoggedID {
		return []slog.Attr{slog.Bool("login_known", false)}
	}
	u, err := s.dir.UserByLogin(ctx, login)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return []slog.Attr{slog.Bool("login_known", false)}
	case err != nil:
		return nil
	}
	return []slog.Attr{slog.Bool("login_known", true), slog.String("user_id", u.ID), slog.String("username", u.Username)}
}

// loginFailed counts and logs a failed login by method (LoginForm,
// LoginScript) answered with p; login is the login string typed, if any,
// and client the script login's claimed client.
func (s *Server) loginFailed(c echo.Context, method string, p *problem, login, client string) {
	outcome := loginOutcome(p)
	s.cfg.Metrics.Login(method, outcome)
	attrs := []slog.Attr{slog.String("method", method), slog.String("outcome", outcome), slog.String("reason", reasonOf(p))}
	ctx := c.Request().Context()
	switch {
	case method == LoginScript:
		attrs = append(attrs, s.clientAttrs(ctx, &idp.Request{Form: map[string][]string{"client_id": {client}}}, "", "")...)
	case outcome != LoginError:
		attrs = append(attrs, s.loginAttrs(ctx, login)...)
	}
	s.logFailure(c, "login failed", p, attrs)
}
