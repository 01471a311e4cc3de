package idp

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/keygate/keygate/store"
)

// The device grant's answers while no tokens are due (RFC 8628 §3.5).
func authorizationPending() *Error {
	return oauthErr(http.StatusBadRequest, "authorization_pending", "the user has not approved the device yet")
}
func slowDown(interval time.Duration) *Error {
	return oauthErr(http.StatusBadRequest, "slow_down", "polling too fast; wait at least %d seconds between requests", int(interval/time.Second))
}
func expiredToken() *Error {
	return oauthErr(http.StatusBadRequest, "expired_token", "the device code has expired; start again")
}
func accessDenied() *Error {
	return oauthErr(http.StatusBadRequest, "access_denied", "the user denied the device authorization")
}

// deviceCodeGrant serves the device grant at the token endpoint (RFC 8628
// §3.4): authorization_pending until the user decides, slow_down to a
// client polling faster than its interval (which grows by five seconds
// each time), expired_token after DeviceCodeTTL, access_denied after a
// denial, and after an approval the tokens, exactly once.
func (p *Provider) deviceCodeGrant(ctx context.Context, r *Request, c *Client) (*TokenResponse, error) {
	raw := r.get("device_code")
	if raw == "" {
		return nil, invalidRequest("device_code is required")
	}
	if len(raw) > 256 {
		return nil, invalidGrant("unknown device code")
	}
	d, err := p.cfg.Store.GetDeviceCode(ctx, digest(raw))
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("unknown device code")
	}
	if err != nil {
		return nil, serverError(err)
	}
	now := p.now().UTC()
	switch {
	case d.ClientID != c.ID:
		return nil, invalidGrant("the device code was issued to another client")
	case !d.UsedAt.IsZero():
		return nil, p.deviceReused(ctx, d)
	case !now.Before(d.ExpiresAt):
		return nil, expiredToken()
	case d.Status == store.DeviceDenied:
		return nil, accessDenied()
	case d.Status == store.DevicePending:
		return nil, p.devicePoll(ctx, d, now)
	}
	return p.deviceTokens(ctx, d, c, now, r.dpopJKT)
}

// devicePoll records a poll of a pending code and answers it: slow_down,
// with the interval grown, when it came sooner than the interval after the
// previous one (or raced another poll), authorization_pending otherwise.
func (p *Provider) devicePoll(ctx context.Context, d store.DeviceCode, now time.Time) error {
	interval := d.Interval
	early := !d.LastPollAt.IsZero() && now.Sub(d.LastPollAt) < d.Interval
	if early {
		interval += deviceSlowDown
	}
	err := p.cfg.Store.RecordDevicePoll(ctx, d.ID, d.LastPollAt, now, interval)
	switch {
	case errors.Is(err, store.ErrConflict):
		return slowDown(interval) // another poll of this code at the same moment
	case errors.Is(err, store.ErrNotFound):
		return expiredToken() // pruned meanwhile
	case err != nil:
		return serverError(err)
	case early:
		return slowDown(interval)
	}
	return authorizationPending()
}

// deviceTokens issues the tokens of an approved code: access, ID (with
// openid) and refresh (when the client may refresh); then it spends the code
// and binds them to it in one atomic step, as the authorization code grant
// does, so that of concurrent polls exactly one gets tokens and a later use
// of the code revokes them.
func (p *Provider) deviceTokens(ctx context.Context, d store.DeviceCode, c *Client, now time.Time, jkt string) (*TokenResponse, error) {
	u, err := p.grantUser(ctx, d.UserID, "the user who approved this device")
	if err != nil {
		return nil, err
	}
	if err := checkStillAllowed(c, d.Scope); err != nil {
		return nil, err
	}
	g := grant{client: c, subject: u.ID, username: u.Username, scope: d.Scope, authTime: d.AuthTime, amr: d.AMR, jkt: jkt}
	res, family, claims, err := p.userTokens(ctx, g, u, "", now)
	if err != nil {
		return nil, err
	}
	if _, err := p.cfg.Store.RedeemDeviceCode(ctx, d.ID, now, family, claims.ID, denyUntil(claims)); err != nil {
		p.dropUnused(ctx, family, now)
		if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			return nil, serverError(err)
		}
		if cur, gerr := p.cfg.Store.GetDeviceCode(ctx, d.ID); gerr == nil && !cur.UsedAt.IsZero() {
			return nil, p.deviceReused(ctx, cur)
		}
		return nil, invalidGrant("the device code was already used or has expired")
	}
	return res, nil
}

// deviceReused answers a second use of a device code: the tokens issued
// from it are revoked, as for a reused authorization code (RFC 6749
// §4.1.2; RFC 8628 does not require it, but a device code redeemed twice
// has leaked just the same).
func (p *Provider) deviceReused(ctx context.Context, d store.DeviceCode) error {
	return p.revokeIssued(ctx, "device code", d.ClientID, d.UserID, d.FamilyID, d.AccessJTI, d.AccessExpiresAt)
}
