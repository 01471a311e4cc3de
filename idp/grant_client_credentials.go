package idp

import "context"

// clientCredentialsGrant issues a token to a confidential client for itself
// (RFC 6749 §4.4).
func (p *Provider) clientCredentialsGrant(ctx context.Context, r *Request, c *Client) (*TokenResponse, error) {
	if c.Public {
		return nil, unauthorizedClient("a public client cannot use client_credentials")
	}
	scope, err := grantScope(c, r.get("scope"))
	if err != nil {
		return nil, err
	}
	return p.respond(ctx, grant{client: c, subject: c.ID, scope: scope, jkt: r.dpopJKT}, false)
}
