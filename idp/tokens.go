package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keygate/keygate/store"
)

// AccessTokenType is the JOSE "typ" of access tokens (RFC 9068 §2.1).
const AccessTokenType = "at+jwt"

// maxTokenBytes bounds what we parse; real tokens are well under 2 KiB.
const maxTokenBytes = 8 << 10

// Audience marshals as a string when it has one member, as an array otherwise
// (RFC 7519 §4.1.3 allows both), and unmarshals from either.
type Audience []string

// MarshalJSON implements json.Marshaler.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("aud must be a string or an array of strings")
	}
	*a = many
	return nil
}

// AccessClaims are the claims of a Keygate access token (RFC 9068 §2.2).
type AccessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	ID        string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope,omitempty"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	Username  string   `json:"preferred_username,omitempty"`
}

// ForClient reports whether the token speaks for its client rather than for a
// user: client grants (client_credentials, jwt-bearer, script login) issue
// tokens whose subject is the client itself. Such a token never stands for a
// user, whatever the ids look like.
func (c *AccessClaims) ForClient() bool { return c.Subject == c.ClientID }

// Scopes splits the scope claim.
func (c *AccessClaims) Scopes() []string { return strings.Fields(c.Scope) }

// HasScope reports whether the token carries scope s.
func (c *AccessClaims) HasScope(s string) bool {
	for _, x := range strings.Fields(c.Scope) {
		if x == s {
			return true
		}
	}
	return false
}

// grant is what a token is issued for.
type grant struct {
	client   *Client
	subject  string
	username string
	scope    string
	audience []string
	authTime time.Time
}

// TokenResponse is the RFC 6749 §5.1 answer.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// issueAccess signs an access token with the active key: one RSA signature,
// the only costly step on the issuance path.
func (p *Provider) issueAccess(g grant) (token string, claims AccessClaims, err error) {
	now := p.now()
	ttl := g.client.AccessTTL
	if ttl <= 0 {
		ttl = p.cfg.AccessTTL
	}
	aud := g.audience
	if len(aud) == 0 {
		aud = g.client.Audience
	}
	if len(aud) == 0 {
		aud = []string{g.client.ID}
	}
	claims = AccessClaims{Issuer: p.cfg.Issuer, Subject: g.subject, Audience: aud, IssuedAt: now.Unix(),
		NotBefore: now.Add(g.client.NotBeforeDelay).Unix(), Expiry: now.Add(ttl).Unix(), ID: uuid.NewString(),
		ClientID: g.client.ID, Scope: g.scope, Username: g.username}
	if !g.authTime.IsZero() {
		claims.AuthTime = g.authTime.Unix()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", claims, fmt.Errorf("encode claims: %w", err)
	}
	token, err = p.sign(payload, AccessTokenType)
	return token, claims, err
}

func (p *Provider) sign(payload []byte, typ string) (string, error) {
	return p.cfg.Signer.Sign(payload, typ)
}

// TokenError says why a token is not (or no longer) good.
type TokenError struct{ Reason string }

func (e *TokenError) Error() string { return e.Reason }

func badToken(f string, a ...any) error { return &TokenError{Reason: fmt.Sprintf(f, a...)} }

// ValidateAccessToken checks a token Keygate issued: RS256 only (the header's
// alg is checked, never obeyed; jku, x5u and embedded jwk headers are never
// read), a kid among the currently published keys (so a revoked key's tokens
// fail at once), typ at+jwt, our issuer, the time window on our own clock
// (no leeway: the issuer's clock is the reference), and the jti deny list.
func (p *Provider) ValidateAccessToken(ctx context.Context, raw string) (*AccessClaims, error) {
	claims, err := p.verifyAccessSignature(raw)
	if err != nil {
		return nil, err
	}
	now := p.now().Unix()
	if now < claims.NotBefore {
		return nil, badToken("token is not yet valid (nbf)")
	}
	if now >= claims.Expiry {
		return nil, badToken("token has expired")
	}
	revoked, err := p.cfg.Store.IsAccessTokenRevoked(ctx, claims.ID)
	if err != nil {
		return nil, fmt.Errorf("check revocation of %s: %w", claims.ID, err)
	}
	if revoked {
		return nil, badToken("token has been revoked")
	}
	return claims, nil
}

// verifyAccessSignature checks everything but time and revocation.
func (p *Provider) verifyAccessSignature(raw string) (*AccessClaims, error) {
	if len(raw) > maxTokenBytes || strings.Count(raw, ".") != 2 {
		return nil, badToken("malformed token")
	}
	// One parse: jwx hands the parsed header to this provider, which checks
	// it and supplies the published key (or refuses), then verifies.
	var refused error
	checked := false
	provider := jws.KeyProviderFunc(func(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
		checked = true
		h := sig.ProtectedHeaders()
		switch {
		case h.Algorithm() != jwa.RS256:
			refused = badToken("algorithm %q is not accepted", h.Algorithm())
		case !strings.EqualFold(h.Type(), AccessTokenType) && !strings.EqualFold(h.Type(), "application/"+AccessTokenType):
			refused = badToken("not an access token (typ %q)", h.Type())
		}
		if refused != nil {
			return refused
		}
		key, err := p.cfg.Signer.PublicKey(h.KeyID())
		if errors.Is(err, store.ErrNotFound) {
			refused = badToken("unknown or revoked signing key %q", h.KeyID())
			return refused
		}
		if err != nil {
			refused = err
			return refused
		}
		sink.Key(jwa.RS256, key)
		return nil
	})
	payload, err := jws.Verify([]byte(raw), jws.WithCompact(), jws.WithKeyProvider(provider))
	switch {
	case refused != nil:
		return nil, refused
	case err != nil && !checked:
		return nil, badToken("malformed token")
	case err != nil:
		return nil, badToken("bad signature")
	}
	var c AccessClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, badToken("malformed claims")
	}
	if c.Issuer != p.cfg.Issuer {
		return nil, badToken("wrong issuer %q", c.Issuer)
	}
	if c.ID == "" || c.Expiry == 0 {
		return nil, badToken("token lacks jti or exp")
	}
	return &c, nil
}

// respond builds the token response, with a refresh token when the client may
// refresh and the grant calls for one.
func (p *Provider) respond(ctx context.Context, g grant, withRefresh bool, family string) (*TokenResponse, error) {
	at, claims, err := p.issueAccess(g)
	if err != nil {
		return nil, serverError(err)
	}
	res := &TokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: claims.Expiry - p.now().Unix(), Scope: g.scope}
	if withRefresh && g.client.HasGrant(GrantRefreshToken) && family == "" {
		rt, id, err := newRefreshToken()
		if err != nil {
			return nil, serverError(err)
		}
		now := p.now().UTC()
		if err := p.cfg.Store.CreateRefreshToken(ctx, store.RefreshToken{ID: id, FamilyID: uuid.NewString(),
			ClientID: g.client.ID, Subject: g.subject, Scope: g.scope, Audience: g.audience, AuthTime: g.authTime,
			CreatedAt: now, ExpiresAt: now.Add(p.cfg.RefreshTTL)}); err != nil {
			return nil, serverError(err)
		}
		res.RefreshToken = rt
	}
	return res, nil
}
