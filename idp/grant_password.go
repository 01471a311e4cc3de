package idp

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/keygate/keygate/store"
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
	if err := p.passwordOnlyAllowed(ctx, u); err != nil {
		return nil, err
	}
	return p.respond(ctx, grant{client: c, subject: u.ID, username: u.Username, scope: scope, authTime: p.now(),
		amr: []string{AMRPassword}, jkt: r.dpopJKT}, true)
}

// passwordOnlyAllowed applies the browser's rule to the password grant,
// which can carry no second factor: a user whom login.require_second_factor
// covers is refused (the browser would not let them in on a password alone
// either, and this grant cannot make them enrol); a user with any second
// factor, TOTP or a passkey, is refused unless the deployment allows it
// (login.password_grant_with_second_factor). It runs after the password
// check, so the refusal tells only someone who knows the password that the
// account has a second factor.
func (p *Provider) passwordOnlyAllowed(ctx context.Context, u store.User) error {
	if p.SecondFactorRequired(u) {
		p.log.Info("password grant refused: login.require_second_factor covers the user", "user_id", u.ID)
		return invalidGrant("this user must sign in with a second factor, which the password grant cannot carry; " +
			"use the authorization code flow (or the device flow)")
	}
	if p.cfg.PasswordGrantWithSecondFactor {
		return nil
	}
	st, err := p.dir.SecondFactorState(ctx, u.ID)
	if err != nil {
		return serverError(err)
	}
	if st.TOTP || st.Passkeys > 0 {
		p.log.Info("password grant refused: the user has a second factor", "user_id", u.ID)
		return invalidGrant("this user signs in with a second factor, which the password grant cannot carry; " +
			"use the authorization code flow (or the device flow)")
	}
	return nil
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
