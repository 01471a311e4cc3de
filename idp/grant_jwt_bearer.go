package idp

import (
	"context"
	"errors"
	"net/http"
)

// jwtBearer is the RFC 7523 §2.1 grant: a client trades an assertion it
// signed for an access token. With no other client authentication the
// assertion authenticates the client (authenticated is nil).
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
	if authenticated == nil { // Token checked the proof of an authenticated client
		if err := p.tokenProof(ctx, r, a.client); err != nil {
			return nil, err
		}
	}
	scope, err := grantScope(a.client, r.get("scope"))
	if err != nil {
		return nil, err
	}
	return p.respond(ctx, grant{client: a.client, subject: a.client.ID, scope: scope, jkt: r.dpopJKT}, false)
}
