package idp

import (
	"context"
	"errors"
	"time"

	"github.com/keygate/keygate/store"
)

// Revoke serves RFC 7009. A refresh token revokes its whole family; an access
// token goes on the deny list until it expires. Unknown tokens are not an
// error (§2.2). A token issued to another client is refused.
func (p *Provider) Revoke(ctx context.Context, c *Client, token, hint string) error {
	if token == "" {
		return invalidRequest("token is required")
	}
	if hint != "" && hint != "access_token" && hint != "refresh_token" {
		return oauthErr(400, "unsupported_token_type", "token_type_hint %q is not supported", hint)
	}
	if rt, err := p.cfg.Store.GetRefreshToken(ctx, digest(token)); err == nil {
		if rt.ClientID != c.ID {
			return unauthorizedClient("the token was issued to another client")
		}
		if _, err := p.cfg.Store.RevokeRefreshFamily(ctx, rt.FamilyID, p.now().UTC()); err != nil {
			return serverError(err)
		}
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return serverError(err)
	}
	claims, err := p.verifyAccess(ctx, p.revocable, token)
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) {
			return nil // not ours, or no longer verifiable: nothing to revoke
		}
		return serverError(err)
	}
	if claims.ClientID != c.ID {
		return unauthorizedClient("the token was issued to another client")
	}
	if err := p.cfg.Store.RevokeAccessToken(ctx, claims.ID, time.Unix(claims.Expiry, 0)); err != nil {
		return serverError(err)
	}
	return nil
}

// Introspect serves RFC 7662 to the authenticated client caller:
// {"active": false} for anything that is not a currently valid token
// (expired, not yet valid, revoked, signed by a revoked kid, forged), the
// token's claims otherwise. Only the token's own client and clients
// registered as resource servers (Introspect) learn that a token is active;
// any other caller is told {"active": false}, so that a client cannot scan
// for, or read, other clients' tokens (RFC 7662 §4).
func (p *Provider) Introspect(ctx context.Context, caller *Client, token string) (map[string]any, error) {
	out, err := p.introspect(ctx, token)
	if err != nil {
		return nil, err
	}
	if out["active"] == true && !caller.Introspect && out["client_id"] != caller.ID {
		return map[string]any{"active": false}, nil
	}
	return out, nil
}

func (p *Provider) introspect(ctx context.Context, token string) (map[string]any, error) {
	if token == "" {
		return nil, invalidRequest("token is required")
	}
	inactive := map[string]any{"active": false}
	if rt, err := p.cfg.Store.GetRefreshToken(ctx, digest(token)); err == nil {
		now := p.now()
		if !rt.UsedAt.IsZero() || !rt.RevokedAt.IsZero() || !now.Before(rt.ExpiresAt) {
			return inactive, nil
		}
		// No token_type: RFC 7662 §2.2 takes it from RFC 6749 §5.1, where
		// it is an access token's type ("Bearer"); a refresh token has none
		// ("refresh_token" is an RFC 7009 token_type_hint, not a type).
		out := map[string]any{"active": true, "client_id": rt.ClientID, "sub": rt.Subject,
			"scope": rt.Scope, "exp": rt.ExpiresAt.Unix(), "iat": rt.CreatedAt.Unix(), "iss": p.cfg.Issuer}
		if rt.DPoPJKT != "" {
			out["cnf"] = Confirmation{JKT: rt.DPoPJKT}
		}
		authnMembers(out, MethodsOf(rt.AMR))
		return out, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, serverError(err)
	}
	c, err := p.ValidateAccessToken(ctx, token)
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) {
			return inactive, nil
		}
		return nil, serverError(err)
	}
	out := map[string]any{"active": true, "token_type": "Bearer", "iss": c.Issuer, "sub": c.Subject, "aud": c.Audience,
		"exp": c.Expiry, "iat": c.IssuedAt, "nbf": c.NotBefore, "jti": c.ID, "client_id": c.ClientID}
	if c.Scope != "" {
		out["scope"] = c.Scope
	}
	if c.Username != "" {
		out["username"] = c.Username
	}
	if c.Confirmation != nil { // RFC 9449 §6.2: a bound token's key, for the resource server to check
		out["token_type"], out["cnf"] = TokenTypeDPoP, c.Confirmation
	}
	if len(c.AMR) > 0 {
		out["amr"], out["acr"] = c.AMR, c.ACR // as signed
	}
	return out, nil
}

// authnMembers adds how the user authenticated to the introspection answer
// for a refresh token (RFC 7662 §2.2 allows members beyond its list): "amr"
// and "acr" as the tokens it issues carry them, so a resource server can
// demand a second factor without decoding a token. An access token's answer
// takes both from its signed claims; a client's own token has neither.
func authnMembers(out map[string]any, amr []string) {
	out["amr"], out["acr"] = amr, ACRFor(amr)
}
