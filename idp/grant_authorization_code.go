package idp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/store"
)

// authorizationCodeGrant redeems a code at the token endpoint (RFC 6749
// §4.1.3, RFC 7636 §4.5). Every check runs before the code is spent; the
// tokens are then made, and the code is spent and bound to them in one
// atomic step, so that a second use, even a concurrent one, can revoke them.
func (p *Provider) authorizationCodeGrant(ctx context.Context, r *Request, c *Client) (*TokenResponse, error) {
	ac, err := p.lookupCode(ctx, r)
	if err != nil {
		return nil, err
	}
	now := p.now()
	if err := p.checkCode(ctx, ac, c, r.get("redirect_uri"), now); err != nil {
		return nil, err
	}
	if err := checkVerifier(ac, c, r.get("code_verifier")); err != nil {
		return nil, err
	}
	if err := checkCodeKey(ac, r.dpopJKT); err != nil {
		return nil, err
	}
	u, err := p.grantUser(ctx, ac.UserID, "the user of this authorization code")
	if err != nil {
		return nil, err
	}
	if err := p.checkCodeConsent(ctx, ac, c); err != nil {
		return nil, err
	}
	g := grant{client: c, subject: u.ID, username: u.Username, scope: ac.Scope, authTime: ac.AuthTime, amr: ac.AMR, jkt: r.dpopJKT}
	res, family, claims, err := p.userTokens(ctx, g, u, ac.Nonce, now)
	if err != nil {
		return nil, err
	}
	if err := p.redeemCode(ctx, ac, family, claims, now); err != nil {
		return nil, err
	}
	return res, nil
}

// lookupCode checks the request's parameters and finds the code it presents.
func (p *Provider) lookupCode(ctx context.Context, r *Request) (store.AuthCode, error) {
	code, redirectURI := r.get("code"), r.get("redirect_uri")
	if code == "" {
		return store.AuthCode{}, invalidRequest("code is required")
	}
	if redirectURI == "" {
		return store.AuthCode{}, invalidRequest("redirect_uri is required (the one sent in the authorization request)")
	}
	if len(code) > 256 {
		return store.AuthCode{}, invalidGrant("unknown or expired authorization code")
	}
	ac, err := p.browser.GetAuthCode(ctx, digest(code))
	if errors.Is(err, store.ErrNotFound) {
		return store.AuthCode{}, invalidGrant("unknown or expired authorization code")
	}
	if err != nil {
		return store.AuthCode{}, serverError(err)
	}
	return ac, nil
}

// checkCode refuses a spent (revoking what it issued), expired or foreign
// code, or one sent with another redirect URI than its request's.
func (p *Provider) checkCode(ctx context.Context, ac store.AuthCode, c *Client, redirectURI string, now time.Time) error {
	switch {
	case !ac.UsedAt.IsZero():
		return p.codeReused(ctx, ac)
	case !now.Before(ac.ExpiresAt):
		return invalidGrant("the authorization code has expired")
	case ac.ClientID != c.ID:
		return invalidGrant("the authorization code was issued to another client")
	case ac.RedirectURI != redirectURI:
		return invalidGrant("redirect_uri does not match the authorization request")
	}
	return nil
}

// checkVerifier applies PKCE (RFC 7636 §4.6) to the code's challenge.
func checkVerifier(ac store.AuthCode, c *Client, verifier string) error {
	switch {
	case ac.CodeChallenge == "" && c.Public:
		return invalidGrant("a public client must use PKCE") // /authorize refuses this; defence in depth
	case ac.CodeChallenge == "" && verifier != "":
		// RFC 9700 §2.1.1: a verifier for a request without a challenge is
		// refused, or an attacker could strip the challenge (PKCE downgrade).
		return invalidGrant("code_verifier sent, but the authorization request had no code_challenge")
	case ac.CodeChallenge != "" && verifier == "":
		return invalidGrant("code_verifier is required (PKCE)")
	case ac.CodeChallenge != "" && (!validVerifier(verifier) || !pkceMatches(ac.CodeChallenge, verifier)):
		return invalidGrant("code_verifier does not match the code_challenge")
	}
	return nil
}

// checkCodeKey applies DPoP authorization code binding (RFC 9449 §10): a
// code whose request carried dpop_jkt is redeemed only with a proof (already
// verified by tokenProof) from the key of that thumbprint, so that a code
// stolen on its way back from /authorize is useless without the client's
// private key, even to a thief who also has the PKCE verifier.
func checkCodeKey(ac store.AuthCode, jkt string) error {
	return checkBoundKey("authorization code (its request's dpop_jkt)", ac.DPoPJKT, jkt)
}

// userTokens makes the tokens a code (an authorization code, a device code)
// redeems for user u: the access token, the ID token when the scope has
// openid, and a refresh token (stored, in a new family) when the client may
// refresh. The code is spent afterwards, bound to what was made here.
func (p *Provider) userTokens(ctx context.Context, g grant, u store.User, nonce string, now time.Time) (res *TokenResponse, family string, claims AccessClaims, err error) {
	c := g.client
	at, claims, err := p.issueAccess(g)
	if err != nil {
		return nil, "", claims, serverError(err)
	}
	res = &TokenResponse{AccessToken: at, TokenType: tokenType(g), ExpiresIn: claims.Expiry - now.Unix(), Scope: g.scope}
	if slices.Contains(strings.Fields(g.scope), "openid") {
		if res.IDToken, err = p.issueIDToken(c, u, g.scope, nonce, g.authTime, g.amr, at); err != nil {
			return nil, "", claims, serverError(err)
		}
	}
	if c.HasGrant(GrantRefreshToken) {
		// Stored before the code is spent, so that a concurrent second use,
		// which revokes the family it finds on the code, finds it complete.
		if res.RefreshToken, family, err = p.newRefreshFamily(ctx, g, now); err != nil {
			return nil, "", claims, err
		}
	}
	return res, family, claims, nil
}

// redeemCode spends the code and binds the tokens to it. When another use
// got there first, the unused refresh family is revoked and the answer is
// the reuse's.
func (p *Provider) redeemCode(ctx context.Context, ac store.AuthCode, family string, claims AccessClaims, now time.Time) error {
	_, err := p.browser.RedeemAuthCode(ctx, ac.ID, now.UTC(), family, claims.ID, denyUntil(claims))
	if err == nil {
		return nil
	}
	p.dropUnused(ctx, family, now)
	if !errors.Is(err, store.ErrConflict) {
		return serverError(err)
	}
	cur, gerr := p.browser.GetAuthCode(ctx, ac.ID)
	if gerr != nil {
		return serverError(gerr)
	}
	if !cur.UsedAt.IsZero() {
		return p.codeReused(ctx, cur)
	}
	return invalidGrant("the authorization code has expired")
}

// codeReused answers a second use of a code: RFC 6749 §4.1.2 says the
// tokens issued from it should be revoked, since the code has leaked.
func (p *Provider) codeReused(ctx context.Context, ac store.AuthCode) error {
	return p.revokeIssued(ctx, "authorization code", ac.ClientID, ac.UserID, ac.FamilyID, ac.AccessJTI, ac.AccessExpiresAt)
}

// revokeIssued answers a second use of a code (what: "authorization code",
// "device code"): it revokes the refresh family and the access token the
// first use issued, since the code has leaked, and refuses with
// invalid_grant.
func (p *Provider) revokeIssued(ctx context.Context, what, clientID, userID, familyID, accessJTI string, accessExp time.Time) error {
	now := p.now().UTC()
	revoked := 0
	if familyID != "" {
		n, err := p.cfg.Store.RevokeRefreshFamily(ctx, familyID, now)
		if err != nil {
			return serverError(err)
		}
		revoked += n
	}
	if accessJTI != "" && !accessExp.IsZero() && accessExp.After(now) {
		if err := p.cfg.Store.RevokeAccessToken(ctx, accessJTI, accessExp); err != nil {
			return serverError(err)
		}
		revoked++
	}
	p.log.Warn(what+" reuse detected; tokens issued from it revoked", "client_id", clientID, "user_id", userID, "revoked", revoked)
	return &Error{Code: "invalid_grant", Status: http.StatusBadRequest,
		Description: "the " + what + " was already used; the tokens issued from it have been revoked"}
}

// denyUntil is how long the deny-list entry of the access token of claims
// must last: a minute of margin over its exp, which issueAccess computed on
// a clock read a moment ago.
func denyUntil(claims AccessClaims) time.Time { return time.Unix(claims.Expiry, 0).Add(time.Minute) }

// dropUnused revokes the refresh family made for a code whose redemption
// failed: it was never handed out.
func (p *Provider) dropUnused(ctx context.Context, family string, now time.Time) {
	if family == "" {
		return
	}
	if _, err := p.cfg.Store.RevokeRefreshFamily(ctx, family, now.UTC()); err != nil {
		p.log.Warn("revoking an unused refresh token failed", "err", err)
	}
}

// validVerifier checks RFC 7636 §4.1: 43 to 128 unreserved characters.
func validVerifier(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !('A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' || strings.IndexByte("-._~", ch) >= 0) {
			return false
		}
	}
	return true
}

// pkceMatches computes S256(verifier) and compares it with the challenge in
// constant time.
func pkceMatches(challenge, verifier string) bool {
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}
