package idp

import (
	"context"
	"errors"
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
	Endpoint  string   // the URL called, an acceptable assertion audience
	DPoP      []string // the values of the DPoP headers (RFC 9449 §4), one when well-formed

	dpopJKT string // the key the request's DPoP proof proved, once checked (tokenProof)
}

func (r *Request) get(name string) string { return r.Form.Get(name) }

// ClaimedClient is the client id a request claims, unproven: the Basic user,
// the form's client_id, or the iss of its client assertion, or of its
// jwt-bearer grant assertion when nothing else authenticates the client
// (byAssertionOnly). It names the client in logs of failed requests;
// AuthenticateClient is what proves it.
func (r *Request) ClaimedClient() (id string, byAssertionOnly bool) {
	switch {
	case r.HasBasic:
		return r.BasicUser, false
	case r.get("client_id") != "":
		return r.get("client_id"), false
	case r.get("client_assertion") != "":
		return UnverifiedIssuer(r.get("client_assertion")), false
	case r.get("grant_type") == GrantJWTBearer && r.get("client_secret") == "":
		return UnverifiedIssuer(r.get("assertion")), true
	}
	return "", false
}

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
		return p.assertionClient(ctx, r, formID, assertion, atype)
	case formID != "":
		return p.publicClient(ctx, formID, allowPublic)
	}
	return nil, invalidClient("client authentication required (HTTP Basic, client_secret, or client_assertion)")
}

// assertionClient authenticates by private_key_jwt (RFC 7523 §2.2).
func (p *Provider) assertionClient(ctx context.Context, r *Request, formID, assertion, atype string) (*Client, error) {
	if atype != ClientAssertionType {
		return nil, invalidRequest("client_assertion_type must be %s", ClientAssertionType)
	}
	aud := []string{p.cfg.Issuer, p.TokenEndpoint()}
	if r.Endpoint != "" {
		aud = append(aud, r.Endpoint)
	}
	if formID != "" && UnverifiedIssuer(assertion) != formID {
		return nil, invalidClient("client_assertion iss does not match client_id")
	}
	a, err := p.verifyAssertion(ctx, assertion, useClientAuth, aud)
	if err != nil {
		return nil, err
	}
	return a.client, nil
}

// publicClient identifies a public client by its bare client_id.
func (p *Provider) publicClient(ctx context.Context, id string, allowPublic bool) (*Client, error) {
	c, err := p.dir.Client(ctx, id)
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

func (p *Provider) secretClient(ctx context.Context, id, secret string) (*Client, error) {
	if id == "" || secret == "" {
		return nil, invalidClient("client authentication failed")
	}
	c, err := p.dir.Client(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, serverError(err)
	}
	if c == nil {
		checkSecret(&Client{SecretHash: make([]byte, 32)}, secret, p.now()) // same work as a wrong secret
		return nil, invalidClient("client authentication failed")
	}
	if !checkSecret(c, secret, p.now()) {
		return nil, invalidClient("client authentication failed")
	}
	return c, nil
}

// grantUser reads the user a grant is redeemed for (whose: "the user of
// this refresh token", ...) and refuses with invalid_grant one who no longer
// exists or is disabled.
func (p *Provider) grantUser(ctx context.Context, id, whose string) (store.User, error) {
	u, err := p.cfg.Store.GetUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, invalidGrant("%s no longer exists", whose)
	}
	if err != nil {
		return store.User{}, serverError(err)
	}
	if u.Disabled() {
		return store.User{}, invalidGrant("%s is disabled", whose)
	}
	return u, nil
}

// checkStillAllowed refuses a stored grant's scope when the client may no
// longer have all of it (its scopes were narrowed since).
func checkStillAllowed(c *Client, scope string) error {
	for s := range strings.FieldsSeq(scope) {
		if !slices.Contains(c.Scopes, s) {
			return invalidScope("scope %q is no longer allowed for client %q", s, c.ID)
		}
	}
	return nil
}

// grantScope resolves the requested scope against what the client may have:
// empty means all of the client's scopes (RFC 6749 §3.3 default).
func grantScope(c *Client, requested string) (string, error) {
	if strings.TrimSpace(requested) == "" {
		return strings.Join(c.Scopes, " "), nil
	}
	var buf [8]string // the usual handful of scopes, without a heap slice
	out := buf[:0]
	for s := range strings.FieldsSeq(requested) {
		if !slices.Contains(c.Scopes, s) {
			return "", invalidScope("scope %q is not allowed for client %q", s, c.ID)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " "), nil
}

// Token serves POST /token: it authenticates the client, checks that it may
// use the grant, and hands the request to the grant's handler, one file each
// (grant_*.go).
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
	c, err := p.AuthenticateClient(ctx, r, gt == GrantPassword || gt == GrantRefreshToken || gt == GrantAuthorizationCode || gt == GrantDeviceCode)
	if err != nil {
		return nil, err
	}
	if !c.HasGrant(gt) {
		return nil, unauthorizedClient("client %q may not use the %s grant", c.ID, gt)
	}
	if err := p.tokenProof(ctx, r, c); err != nil {
		return nil, err
	}
	switch gt {
	case GrantClientCredentials:
		return p.clientCredentialsGrant(ctx, r, c)
	case GrantPassword:
		return p.passwordGrant(ctx, r, c)
	case GrantRefreshToken:
		return p.refreshGrant(ctx, r, c)
	case GrantAuthorizationCode:
		return p.authorizationCodeGrant(ctx, r, c)
	case GrantDeviceCode:
		return p.deviceCodeGrant(ctx, r, c)
	default:
		return p.jwtBearer(ctx, r, c)
	}
}
