package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/store"
)

// maxTokenBytes bounds what we parse; real tokens are well under 2 KiB.
const maxTokenBytes = 8 << 10

// Audience marshals as a string when it has one member, as an array otherwise
// (RFC 7519 §4.1.3 allows both), and unmarshals from either.
type Audience []string

// MarshalJSON implements json.Marshaler.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		if plainJSONString(a[0]) { // what json.Marshal would write, in one allocation
			b := make([]byte, 0, len(a[0])+2)
			return append(append(append(b, '"'), a[0]...), '"'), nil
		}
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// plainJSONString reports whether encoding/json writes s as is between
// quotes: printable ASCII without the characters it escapes (" \ < > &).
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
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
	AMR       []string `json:"amr,omitempty"` // how the user authenticated (RFC 9068 §2.2.1); user grants only
	ACR       string   `json:"acr,omitempty"` // ACRFor(AMR)
	Username  string   `json:"preferred_username,omitempty"`
	// Confirmation binds the token to the client's DPoP key (RFC 9449
	// §6.1); nil for a bearer token.
	Confirmation *Confirmation `json:"cnf,omitempty"`
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
	jkt      string   // the DPoP key the token is bound to; "" for a bearer token
	amr      []string // how the user authenticated; nil for client grants
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
		claims.AMR = MethodsOf(g.amr)
		claims.ACR = ACRFor(claims.AMR)
	}
	if g.jkt != "" {
		claims.Confirmation = &Confirmation{JKT: g.jkt}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", claims, fmt.Errorf("encode claims: %w", err)
	}
	token, err = p.signFor(g.client, payload, jwks.AccessTokenType)
	return token, claims, err
}

func (p *Provider) sign(payload []byte, typ string) (string, error) {
	return p.cfg.Signer.Sign(payload, typ)
}

// signFor signs a token issued to c with the algorithm c is registered for.
func (p *Provider) signFor(c *Client, payload []byte, typ string) (string, error) {
	if c == nil || c.SigningAlg == "" || c.SigningAlg == "RS256" {
		return p.sign(payload, typ)
	}
	as, ok := p.cfg.Signer.(AlgorithmSigner)
	if !ok {
		return "", fmt.Errorf("client %q is registered for %s, but the signer signs RS256 only", c.ID, c.SigningAlg)
	}
	return as.SignWith(c.SigningAlg, payload, typ)
}

// TokenError says why a token is not (or no longer) good.
type TokenError struct{ Reason string }

func (e *TokenError) Error() string { return e.Reason }

func badToken(f string, a ...any) error { return &TokenError{Reason: fmt.Sprintf(f, a...)} }

// newVerifiers builds the provider's verifiers on the jwks package's
// verifier over the published key set, so that Keygate checks its own tokens
// exactly as its resource servers do: RS256 only (the header's alg is
// checked, never obeyed; jku, x5u and embedded jwk headers are never read), a
// kid among the currently published keys (so a revoked key's tokens fail at
// once), the expected typ, our issuer, and the time window on our own clock
// (no leeway: the issuer's clock is the reference).
//
// revocable differs only in its time window: revocation must reach a token
// that is not valid yet (a client's not_before_delay) as well as one that just
// expired, so it tolerates MaxAccessTTL either way, longer than any window
// this provider issues.
func (p *Provider) newVerifiers() error {
	keys := p.cfg.Signer.KeySet
	var err error
	cfg := jwks.Config{Issuer: p.cfg.Issuer, ExpectedType: jwks.AccessTokenType, NoLeeway: true, Now: p.now, Logger: p.log,
		Algorithms: p.signingAlgorithms()}
	if p.access, err = jwks.NewLocalVerifier(keys, cfg); err != nil {
		return fmt.Errorf("idp: access-token verifier: %w", err)
	}
	cfg.NoLeeway, cfg.Leeway = false, p.cfg.MaxAccessTTL
	if p.revocable, err = jwks.NewLocalVerifier(keys, cfg); err != nil {
		return fmt.Errorf("idp: revocation verifier: %w", err)
	}
	cfg.ExpectedType, cfg.Leeway, cfg.NoLeeway = authRequestType, 0, true
	if p.sealed, err = jwks.NewLocalVerifier(keys, cfg); err != nil {
		return fmt.Errorf("idp: sealed-request verifier: %w", err)
	}
	return p.newHintVerifier()
}

// ValidateAccessToken checks a token Keygate issued (see newVerifiers for
// what is checked), then that it carries a jti and is not on the deny list.
func (p *Provider) ValidateAccessToken(ctx context.Context, raw string) (*AccessClaims, error) {
	claims, err := p.verifyAccess(ctx, p.access, raw)
	if err != nil {
		return nil, err
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

// readUserClaims copies the claims of a user's access token (auth_time,
// preferred_username, amr, acr) from c to ac; a client's token has none.
func readUserClaims(c *jwks.Claims, ac *AccessClaims) {
	if v, ok := c.Claim("auth_time"); ok {
		if f, ok := v.(float64); ok {
			ac.AuthTime = int64(f)
		}
	}
	if v, ok := c.Claim("preferred_username"); ok {
		ac.Username, _ = v.(string)
	}
	if v, ok := c.Claim("amr"); ok {
		list, _ := v.([]any)
		for _, m := range list {
			if s, ok := m.(string); ok {
				ac.AMR = append(ac.AMR, s)
			}
		}
	}
	if v, ok := c.Claim("acr"); ok {
		ac.ACR, _ = v.(string)
	}
}

// tokenReasons are the jwks verification failures, in the order a reason is
// looked for; their texts are short, fixed and safe to show the holder.
var tokenReasons = [...]error{jwks.ErrExpired, jwks.ErrNotYetValid, jwks.ErrBadSignature, jwks.ErrUnknownKey,
	jwks.ErrWrongIssuer, jwks.ErrWrongType, jwks.ErrAlgorithm, jwks.ErrMalformed}

// verifyAccess verifies raw with v and converts its claims; a refusal is a
// *TokenError whose reason is the verifier's holder-safe sentinel text.
func (p *Provider) verifyAccess(ctx context.Context, v *jwks.Verifier, raw string) (*AccessClaims, error) {
	c, err := v.Verify(ctx, raw)
	if err != nil {
		for _, r := range tokenReasons {
			if errors.Is(err, r) {
				return nil, badToken("%s", r.Error())
			}
		}
		return nil, badToken("invalid token")
	}
	if c.ID == "" {
		return nil, badToken("token lacks jti")
	}
	ac := &AccessClaims{Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, Expiry: c.Expiry.Unix(),
		IssuedAt: c.IssuedAt.Unix(), NotBefore: c.NotBefore.Unix(), ID: c.ID, ClientID: c.ClientID,
		Scope: strings.Join(c.Scope, " ")}
	if c.IssuedAt.IsZero() {
		ac.IssuedAt = 0
	}
	if c.NotBefore.IsZero() {
		ac.NotBefore = 0
	}
	readUserClaims(c, ac)
	if v, ok := c.Claim("cnf"); ok {
		cnf, _ := v.(map[string]any)
		jkt, _ := cnf["jkt"].(string)
		if jkt == "" {
			return nil, badToken("token has a cnf claim without jkt")
		}
		ac.Confirmation = &Confirmation{JKT: jkt}
	}
	return ac, nil
}

// respond builds the token response, with a refresh token (in a new family)
// when the client may refresh and the grant calls for one.
func (p *Provider) respond(ctx context.Context, g grant, withRefresh bool) (*TokenResponse, error) {
	at, claims, err := p.issueAccess(g)
	if err != nil {
		return nil, serverError(err)
	}
	res := &TokenResponse{AccessToken: at, TokenType: tokenType(g), ExpiresIn: claims.Expiry - p.now().Unix(), Scope: g.scope}
	if withRefresh && g.client.HasGrant(GrantRefreshToken) {
		if res.RefreshToken, _, err = p.newRefreshFamily(ctx, g, p.now()); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// newRefreshFamily stores the first refresh token of a new family for g,
// created at now, and returns the token and the family's id.
func (p *Provider) newRefreshFamily(ctx context.Context, g grant, now time.Time) (token, family string, err error) {
	token, id, err := newRefreshToken()
	if err != nil {
		return "", "", serverError(err)
	}
	family = uuid.NewString()
	now = now.UTC()
	if err := p.cfg.Store.CreateRefreshToken(ctx, store.RefreshToken{ID: id, FamilyID: family,
		ClientID: g.client.ID, Subject: g.subject, Scope: g.scope, Audience: g.audience, AuthTime: g.authTime, AMR: g.amr,
		CreatedAt: now, ExpiresAt: now.Add(p.cfg.RefreshTTL), DPoPJKT: refreshBinding(g)}); err != nil {
		return "", "", serverError(err)
	}
	return token, family, nil
}

// tokenType is the token_type of g's access token: DPoP when it is bound to
// a key (RFC 9449 §5), Bearer otherwise.
func tokenType(g grant) string {
	if g.jkt != "" {
		return TokenTypeDPoP
	}
	return "Bearer"
}

// refreshBinding is the key a new refresh-token family is bound to: a public
// client's DPoP key (RFC 9449 §5), since nothing else ties its refresh token
// to it; a confidential client authenticates on every refresh instead, and
// its family is unbound.
func refreshBinding(g grant) string {
	if g.client.Public {
		return g.jkt
	}
	return ""
}
