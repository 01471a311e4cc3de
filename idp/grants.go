package idp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/keygate/keygate/store"
)

// ClientAssertionType is the client_assertion_type of private_key_jwt.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AuthMethods are the token endpoint client authentication methods, for discovery.
var AuthMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}

// Request is a form-encoded request to /token, /revoke or /introspect.
type Request struct {
	Form      url.Values
	BasicUser string // from Authorization: Basic, already form-decoded
	BasicPass string
	HasBasic  bool
	RemoteIP  string
	Endpoint  string // the URL called, an acceptable assertion audience
}

func (r *Request) get(name string) string { return r.Form.Get(name) }

// checkSingle enforces RFC 6749 §3.2: no parameter more than once.
func (r *Request) checkSingle() error {
	for k, v := range r.Form {
		if len(v) > 1 {
			return invalidRequest("parameter %q is repeated", k)
		}
	}
	return nil
}

// AuthenticateClient identifies and authenticates the caller by exactly one
// method: client_secret_basic, client_secret_post, private_key_jwt, or (when
// allowPublic) a public client's bare client_id. It answers invalid_client
// (401) on any failure, saying why without revealing whether a client exists.
func (p *Provider) AuthenticateClient(ctx context.Context, r *Request, allowPublic bool) (*Client, error) {
	if err := r.checkSingle(); err != nil {
		return nil, err
	}
	secret, assertion, atype := r.get("client_secret"), r.get("client_assertion"), r.get("client_assertion_type")
	methods := 0
	for _, used := range []bool{r.HasBasic, secret != "", assertion != "" || atype != ""} {
		if used {
			methods++
		}
	}
	if methods > 1 {
		return nil, invalidRequest("use exactly one client authentication method")
	}
	formID := r.get("client_id")
	switch {
	case r.HasBasic:
		if formID != "" && formID != r.BasicUser {
			return nil, invalidRequest("client_id does not match the Authorization header")
		}
		return p.secretClient(ctx, r.BasicUser, r.BasicPass)
	case secret != "":
		return p.secretClient(ctx, formID, secret)
	case assertion != "" || atype != "":
		if atype != ClientAssertionType {
			return nil, invalidRequest("client_assertion_type must be %s", ClientAssertionType)
		}
		aud := []string{p.cfg.Issuer, p.TokenEndpoint()}
		if r.Endpoint != "" {
			aud = append(aud, r.Endpoint)
		}
		if formID != "" && unverifiedIssuer(assertion) != formID {
			return nil, invalidClient("client_assertion iss does not match client_id")
		}
		a, err := p.verifyAssertion(ctx, assertion, useClientAuth, aud)
		if err != nil {
			return nil, err
		}
		return a.client, nil
	case formID != "":
		c, err := p.Client(ctx, formID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalidClient("client authentication failed")
		}
		if err != nil {
			return nil, serverError(err)
		}
		if !c.Public || !allowPublic {
			// The same answer as for an unknown client: do not reveal which ids exist.
			return nil, invalidClient("client authentication failed")
		}
		return c, nil
	}
	return nil, invalidClient("client authentication required (HTTP Basic, client_secret, or client_assertion)")
}

func (p *Provider) secretClient(ctx context.Context, id, secret string) (*Client, error) {
	if id == "" || secret == "" {
		return nil, invalidClient("client authentication failed")
	}
	c, err := p.Client(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, serverError(err)
	}
	if c == nil {
		checkSecret(&Client{SecretHash: make([]byte, 32)}, secret) // same work as a wrong secret
		return nil, invalidClient("client authentication failed")
	}
	if !checkSecret(c, secret) {
		return nil, invalidClient("client authentication failed")
	}
	return c, nil
}

// grantScope resolves the requested scope against what the client may have:
// empty means all of the client's scopes (RFC 6749 §3.3 default).
func grantScope(c *Client, requested string) (string, error) {
	if strings.TrimSpace(requested) == "" {
		return strings.Join(c.Scopes, " "), nil
	}
	var out []string
	for _, s := range strings.Fields(requested) {
		if !slices.Contains(c.Scopes, s) {
			return "", invalidScope("scope %q is not allowed for client %q", s, c.ID)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " "), nil
}

// Token serves POST /token.
func (p *Provider) Token(ctx context.Context, r *Request) (*TokenResponse, error) {
	if err := r.checkSingle(); err != nil {
		return nil, err
	}
	gt := r.get("grant_type")
	if gt == "" {
		return nil, invalidRequest("grant_type is required")
	}
	if !slices.Contains(GrantTypes, gt) {
		return nil, oauthErr(http.StatusBadRequest, "unsupported_grant_type", "grant_type %q is not supported", gt)
	}
	if gt == GrantJWTBearer && !r.HasBasic && r.get("client_secret") == "" && r.get("client_assertion") == "" {
		return p.jwtBearer(ctx, r, nil) // the assertion authenticates the client
	}
	c, err := p.AuthenticateClient(ctx, r, gt == GrantPassword || gt == GrantRefreshToken || gt == GrantAuthorizationCode)
	if err != nil {
		return nil, err
	}
	if !c.HasGrant(gt) {
		return nil, unauthorizedClient("client %q may not use the %s grant", c.ID, gt)
	}
	switch gt {
	case GrantClientCredentials:
		if c.Public {
			return nil, unauthorizedClient("a public client cannot use client_credentials")
		}
		scope, err := grantScope(c, r.get("scope"))
		if err != nil {
			return nil, err
		}
		return p.respond(ctx, grant{client: c, subject: c.ID, scope: scope}, false, "")
	case GrantPassword:
		return p.passwordGrant(ctx, r, c)
	case GrantRefreshToken:
		return p.refreshGrant(ctx, r, c)
	case GrantAuthorizationCode:
		return p.authorizationCodeGrant(ctx, r, c)
	default:
		return p.jwtBearer(ctx, r, c)
	}
}

func (p *Provider) jwtBearer(ctx context.Context, r *Request, authenticated *Client) (*TokenResponse, error) {
	raw := r.get("assertion")
	if raw == "" {
		return nil, invalidRequest("assertion is required")
	}
	a, err := p.verifyAssertion(ctx, raw, useGrant, []string{p.cfg.Issuer, p.TokenEndpoint()})
	if err != nil {
		// RFC 7523 §3.1: an assertion grant that is not valid — unknown issuer,
		// bad signature, no usable key included — is invalid_grant (400).
		// verifyAssertion answers invalid_client (401) for those, which is
		// right when the assertion authenticates a client, not here.
		var oe *Error
		if errors.As(err, &oe) && oe.Code == "invalid_client" {
			return nil, &Error{Code: "invalid_grant", Description: oe.Description, Status: http.StatusBadRequest, cause: err}
		}
		return nil, err
	}
	if authenticated != nil && authenticated.ID != a.client.ID {
		return nil, invalidGrant("the assertion was issued by %q, not by the authenticated client", a.client.ID)
	}
	if !a.client.HasGrant(GrantJWTBearer) {
		return nil, unauthorizedClient("client %q may not use the %s grant", a.client.ID, GrantJWTBearer)
	}
	scope, err := grantScope(a.client, r.get("scope"))
	if err != nil {
		return nil, err
	}
	return p.respond(ctx, grant{client: a.client, subject: a.client.ID, scope: scope}, false, "")
}

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
	return p.respond(ctx, grant{client: c, subject: u.ID, username: u.Username, scope: scope, authTime: p.now()}, true, "")
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

func (p *Provider) refreshGrant(ctx context.Context, r *Request, c *Client) (*TokenResponse, error) {
	raw := r.get("refresh_token")
	if raw == "" {
		return nil, invalidRequest("refresh_token is required")
	}
	old, err := p.cfg.Store.GetRefreshToken(ctx, refreshID(raw))
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("unknown refresh token")
	}
	if err != nil {
		return nil, serverError(err)
	}
	if old.ClientID != c.ID {
		return nil, invalidGrant("the refresh token was issued to another client")
	}
	scope := old.Scope
	if req := r.get("scope"); req != "" {
		for _, s := range strings.Fields(req) {
			if !slices.Contains(strings.Fields(old.Scope), s) {
				return nil, invalidScope("scope %q exceeds the original grant", s)
			}
		}
		scope = strings.Join(strings.Fields(req), " ")
	}
	var username string
	if old.Subject != c.ID {
		u, err := p.cfg.Store.GetUser(ctx, old.Subject)
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalidGrant("the user of this refresh token no longer exists")
		}
		if err != nil {
			return nil, serverError(err)
		}
		username = u.Username
	}
	now := p.now().UTC()
	token, id, err := newRefreshToken()
	if err != nil {
		return nil, serverError(err)
	}
	next := store.RefreshToken{ID: id, FamilyID: old.FamilyID, ClientID: old.ClientID, Subject: old.Subject, Scope: old.Scope,
		Audience: old.Audience, AuthTime: old.AuthTime, CreatedAt: now, ExpiresAt: now.Add(p.cfg.RefreshTTL)}
	if err := p.cfg.Store.RotateRefreshToken(ctx, old.ID, now, next); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			return nil, serverError(err)
		}
		return nil, p.refreshRefused(ctx, old.ID)
	}
	res, err := p.respond(ctx, grant{client: c, subject: old.Subject, username: username, scope: scope,
		audience: old.Audience, authTime: old.AuthTime}, false, old.FamilyID)
	if err != nil {
		return nil, err
	}
	res.RefreshToken = token
	return res, nil
}

// refreshRefused explains a failed rotation; a spent token presented again
// means it leaked, so its whole family is revoked (reuse detection).
func (p *Provider) refreshRefused(ctx context.Context, id string) error {
	cur, err := p.cfg.Store.GetRefreshToken(ctx, id)
	if err != nil {
		return serverError(err)
	}
	switch {
	case !cur.RevokedAt.IsZero():
		return invalidGrant("the refresh token has been revoked")
	case !cur.UsedAt.IsZero():
		n, err := p.cfg.Store.RevokeRefreshFamily(ctx, cur.FamilyID, p.now().UTC())
		if err != nil {
			return serverError(err)
		}
		p.log.Warn("refresh token reuse detected; family revoked", "client_id", cur.ClientID, "family", cur.FamilyID, "revoked", n)
		return invalidGrant("the refresh token was already used; every token of this grant has been revoked")
	default:
		return invalidGrant("the refresh token has expired")
	}
}
