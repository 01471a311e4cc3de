package idp

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/store"
)

// refreshGrant rotates a refresh token (RFC 6749 §6): the presented token is
// spent and a new one of the same family is issued; presenting a spent token
// again revokes the family.
func (p *Provider) refreshGrant(ctx context.Context, r *Request, c *Client) (*TokenResponse, error) {
	raw := r.get("refresh_token")
	if raw == "" {
		return nil, invalidRequest("refresh_token is required")
	}
	old, err := p.cfg.Store.GetRefreshToken(ctx, digest(raw))
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("unknown refresh token")
	}
	if err != nil {
		return nil, serverError(err)
	}
	if err := checkRefreshHolder(old, c, r.dpopJKT); err != nil {
		return nil, err
	}
	scope := old.Scope
	if req := r.get("scope"); req != "" {
		granted, requested := strings.Fields(old.Scope), strings.Fields(req)
		for _, s := range requested {
			if !slices.Contains(granted, s) {
				return nil, invalidScope("scope %q exceeds the original grant", s)
			}
		}
		scope = strings.Join(requested, " ")
	}
	var user *store.User
	if old.Subject != c.ID {
		u, err := p.grantUser(ctx, old.Subject, "the user of this refresh token")
		if err != nil {
			return nil, err
		}
		user = &u
	}
	if err := checkStillAllowed(c, scope); err != nil {
		return nil, err
	}
	now := p.now().UTC()
	token, id, err := newRefreshToken()
	if err != nil {
		return nil, serverError(err)
	}
	next := store.RefreshToken{ID: id, FamilyID: old.FamilyID, ClientID: old.ClientID, Subject: old.Subject, Scope: old.Scope,
		Audience: old.Audience, AuthTime: old.AuthTime, AMR: old.AMR, CreatedAt: now, ExpiresAt: now.Add(p.cfg.RefreshTTL), DPoPJKT: old.DPoPJKT}
	g := grant{client: c, subject: old.Subject, scope: scope, audience: old.Audience, authTime: old.AuthTime, amr: old.AMR, jkt: r.dpopJKT}
	if user != nil {
		g.username = user.Username
	}
	return p.rotateWhileSigning(ctx, old, now, next, func() (*TokenResponse, error) {
		res, err := p.respond(ctx, g, false)
		if err != nil {
			return nil, err
		}
		res.RefreshToken = token
		if res.IDToken, err = p.refreshIDToken(c, user, old, scope, res.AccessToken); err != nil {
			return nil, serverError(err)
		}
		return res, nil
	})
}

// rotateWhileSigning rotates old to next and returns the response sign
// builds, only if the rotation succeeded. The new access and ID tokens do not
// depend on the rotation, only whether they are sent does, so sign (the
// signatures: most of the grant's CPU) runs while the rotation waits for the
// store's writer instead of after it: the CPU is not left idle while every
// refresh in flight waits behind the same writer. A link that the read
// already showed spent, revoked or expired is rotated first, as before, so
// that presenting one (a leaked token, replayed) costs no signature; only a
// link spent between that read and the rotation (two presentations racing)
// wastes one.
func (p *Provider) rotateWhileSigning(ctx context.Context, old store.RefreshToken, now time.Time, next store.RefreshToken,
	sign func() (*TokenResponse, error)) (*TokenResponse, error) {
	if !old.UsedAt.IsZero() || !old.RevokedAt.IsZero() || !old.ExpiresAt.After(now) {
		if err := p.rotate(ctx, old.ID, now, next); err != nil {
			return nil, err
		}
		return sign()
	}
	rotated := make(chan error, 1)
	go func() { rotated <- p.rotate(ctx, old.ID, now, next) }()
	res, err := sign()
	if rerr := <-rotated; rerr != nil {
		return nil, rerr
	}
	return res, err
}

// rotate spends the link id at now and stores next in its place; a link
// that cannot be spent is explained (and its reuse punished) by
// refreshRefused.
func (p *Provider) rotate(ctx context.Context, id string, now time.Time, next store.RefreshToken) error {
	err := p.cfg.Store.RotateRefreshToken(ctx, id, now, next)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, store.ErrConflict):
		return serverError(err)
	default:
		return p.refreshRefused(ctx, id)
	}
}

// refreshIDToken is the ID token of a refresh response (OIDC Core §12.2):
// when the grant had the openid scope and is a user's, a new one with the
// original auth_time, the same sub, the client as aud, no nonce, and the
// at_hash of the new access token; "" otherwise (and for a token stored
// without auth_time). Its user claims follow the scope of this response.
func (p *Provider) refreshIDToken(c *Client, u *store.User, old store.RefreshToken, scope, accessToken string) (string, error) {
	if u == nil || old.AuthTime.IsZero() || !slices.Contains(strings.Fields(old.Scope), "openid") {
		return "", nil
	}
	return p.issueIDToken(c, *u, scope, "", old.AuthTime, old.AMR, accessToken)
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

// checkRefreshHolder refuses a refresh token presented by another client
// than its own, and the refresh of a family bound to a DPoP key (a public
// client's, RFC 9449 §5) unless the request proved possession of that same
// key: a refresh token copied from such a client is useless without its
// private key.
func checkRefreshHolder(old store.RefreshToken, c *Client, jkt string) error {
	if old.ClientID != c.ID {
		return invalidGrant("the refresh token was issued to another client")
	}
	return checkBoundKey("refresh token", old.DPoPJKT, jkt)
}
