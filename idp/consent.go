package idp

// Consent for third-party clients. A client marked ThirdParty is an app
// someone else runs: before its first code, the user is shown which scopes it
// asks for and allows or denies. The grant is remembered per user and client
// with the scopes granted, so a later request for those scopes goes straight
// through, one for more asks again, and prompt=consent always asks. The user
// can revoke a grant from the account page, which also revokes the refresh
// tokens the client holds for the user. First-party clients (the default)
// never ask.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/store"
)

// ScopeInfo is a scope as the consent and account pages show it.
type ScopeInfo struct {
	Name        string // as requested
	Description string // for people; "" for a scope Keygate does not know
}

// scopeDescriptions describe the scopes Keygate gives a meaning to.
var scopeDescriptions = map[string]string{
	"openid":         "Sign you in with your account",
	"profile":        "See your name and username",
	"email":          "See your email address",
	"offline_access": "Keep access while you are not using it",
}

// DescribeScopes gives scopes their descriptions, in order.
func DescribeScopes(scopes []string) []ScopeInfo {
	out := make([]ScopeInfo, 0, len(scopes))
	for _, s := range scopes {
		out = append(out, ScopeInfo{Name: s, Description: scopeDescriptions[s]})
	}
	return out
}

// ScopeList is the request's scopes, in order.
func (ar *AuthRequest) ScopeList() []string { return strings.Fields(ar.Scope) }

// ForcesConsent reports prompt=consent: ask even if the user consented before.
func (ar *AuthRequest) ForcesConsent() bool { return slices.Contains(ar.prompts(), "consent") }

// ConsentNeeded reports whether userID must consent to ar before its code:
// the client is third party, and prompt=consent was sent or the user has not
// granted it every requested scope yet.
func (p *Provider) ConsentNeeded(ctx context.Context, ar *AuthRequest, userID string) (bool, error) {
	c, err := p.dir.Client(ctx, ar.ClientID)
	if err != nil {
		return false, fmt.Errorf("consent: client %q: %w", ar.ClientID, err)
	}
	if !c.ThirdParty {
		return false, nil
	}
	if ar.ForcesConsent() {
		return true, nil
	}
	granted, err := p.cfg.Store.GetConsent(ctx, userID, ar.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("consent of %q to %q: %w", userID, ar.ClientID, err)
	}
	return !covers(granted.Scopes, ar.Scope), nil
}

// covers reports whether granted holds every scope of the space-separated
// scope.
func covers(granted []string, scope string) bool {
	for _, s := range strings.Fields(scope) {
		if !slices.Contains(granted, s) {
			return false
		}
	}
	return true
}

// GrantConsent records that userID allowed ar's client the scopes of ar,
// added to those granted before.
func (p *Provider) GrantConsent(ctx context.Context, ar *AuthRequest, userID string) error {
	now := p.now().UTC()
	c := store.Consent{UserID: userID, ClientID: ar.ClientID, CreatedAt: now, UpdatedAt: now}
	prev, err := p.cfg.Store.GetConsent(ctx, userID, ar.ClientID)
	switch {
	case err == nil:
		c.Scopes = prev.Scopes
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("consent of %q to %q: %w", userID, ar.ClientID, err)
	}
	for _, s := range strings.Fields(ar.Scope) {
		if !slices.Contains(c.Scopes, s) {
			c.Scopes = append(c.Scopes, s)
		}
	}
	if err := p.cfg.Store.UpsertConsent(ctx, c); err != nil {
		return fmt.Errorf("record consent: %w", err)
	}
	p.log.Info("consent granted", "user_id", userID, "client_id", ar.ClientID, "scope", strings.Join(c.Scopes, " "))
	return nil
}

// AppAccess is a consent as the account page lists it.
type AppAccess struct {
	ClientID   string
	ClientName string // its name, or its ID when it has none or is gone
	Scopes     []ScopeInfo
	GrantedAt  time.Time // when the user last consented
}

// UserConsents lists the apps userID has consented to, by client ID.
func (p *Provider) UserConsents(ctx context.Context, userID string) ([]AppAccess, error) {
	cs, err := p.cfg.Store.ListUserConsents(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]AppAccess, 0, len(cs))
	for _, c := range cs {
		a := AppAccess{ClientID: c.ClientID, ClientName: c.ClientID, Scopes: DescribeScopes(c.Scopes), GrantedAt: c.UpdatedAt}
		cl, err := p.dir.Client(ctx, c.ClientID)
		switch {
		case err == nil && cl.Name != "":
			a.ClientName = cl.Name
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// RevokeConsent deletes userID's consent to clientID and revokes every
// refresh token the client holds for the user, so the app loses access (its
// access tokens live out their short lifetime) and the next authorization
// asks again. Revoking a consent that is not there is store.ErrNotFound.
func (p *Provider) RevokeConsent(ctx context.Context, userID, clientID string) error {
	// Tokens first: should the delete fail, the consent is still listed and
	// can be revoked again; the reverse would hide tokens that still work.
	n, err := p.cfg.Store.RevokeUserClientRefreshTokens(ctx, userID, clientID, p.now().UTC())
	if err != nil {
		return fmt.Errorf("revoke the refresh tokens of %q for %q: %w", userID, clientID, err)
	}
	if err := p.cfg.Store.DeleteConsent(ctx, userID, clientID); err != nil {
		return err
	}
	p.log.Info("consent revoked", "user_id", userID, "client_id", clientID, "refresh_tokens_revoked", n)
	return nil
}

// checkCodeConsent refuses a third-party client's code whose consent the
// user revoked between its issue and its redemption: revoking must leave the
// app no way back in, not even a code already on its way.
func (p *Provider) checkCodeConsent(ctx context.Context, ac store.AuthCode, c *Client) error {
	if !c.ThirdParty {
		return nil
	}
	granted, err := p.cfg.Store.GetConsent(ctx, ac.UserID, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		return invalidGrant("the user has not consented to this application, or revoked its access")
	}
	if err != nil {
		return serverError(err)
	}
	if !covers(granted.Scopes, ac.Scope) {
		return invalidGrant("the user has not consented to every scope of this code")
	}
	return nil
}
