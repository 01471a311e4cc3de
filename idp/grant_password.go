package idp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// passwordGrant is the resource owner password credentials grant (RFC 6749
// §4.3), throttled per account and per client IP by CheckPassword.
func (p *Provider) passwordGrant(ctx context.Context, r *Request, c *Client) (*TokenResponse, error) {
	username, pw := r.get("username"), r.get("password")
	if username == "" || pw == "" {
		return nil, invalidRequest("username and password are required")
	}
	scope, err := grantScope(c, r.get("scope"))
	if err != nil {
		return nil, err
	}
	u, err := p.CheckPassword(ctx, username, pw, r.RemoteIP)
	if err != nil {
		return nil, loginError(err)
	}
	return p.respond(ctx, grant{client: c, subject: u.ID, username: u.Username, scope: scope, authTime: p.now(),
		amr: []string{AMRPassword}}, true, "")
}

// loginError maps CheckPassword's errors to OAuth answers.
func loginError(err error) error {
	var te *ThrottledError
	switch {
	case errors.As(err, &te):
		return &Error{Code: "too_many_requests", Status: http.StatusTooManyRequests, RetryAfter: te.RetryAfter,
			Description: fmt.Sprintf("too many failed attempts; retry in %d s", int(te.RetryAfter.Seconds())), cause: err}
	case errors.Is(err, ErrInvalidCredentials):
		return invalidGrant("invalid username or password")
	}
	return serverError(err)
}
