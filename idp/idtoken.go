package idp

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/store"
)

// IDTokenType is the JOSE "typ" of ID tokens.
const IDTokenType = "JWT"

// IDClaims are the claims of an OpenID Connect ID token (OIDC Core §2, §3.1.3.6).
type IDClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience Audience `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	AuthTime int64    `json:"auth_time"`
	AMR      []string `json:"amr"` // RFC 8176 methods of the login
	ACR      string   `json:"acr"` // ACRFor(AMR): urn:keygate:acr:pwd, :mfa or :phr
	Nonce    string   `json:"nonce,omitempty"`
	AtHash   string   `json:"at_hash,omitempty"`
	UserClaims
}

// UserClaims are the claims about the user that the scope grants: with
// profile, preferred_username and name (when set); with email, email (when
// set) and email_verified. The ID token and userinfo carry the same.
type UserClaims struct {
	PreferredUsername string `json:"preferred_username,omitempty"`
	Name              string `json:"name,omitempty"`
	Email             string `json:"email,omitempty"`
	EmailVerified     *bool  `json:"email_verified,omitempty"`
}

// ClaimsFor returns the user claims scope grants.
func ClaimsFor(u store.User, scope string) UserClaims {
	var c UserClaims
	scopes := strings.Fields(scope)
	if slices.Contains(scopes, "profile") {
		c.PreferredUsername, c.Name = u.Username, u.Name
	}
	if slices.Contains(scopes, "email") && u.Email != "" {
		verified := false // Keygate does not verify addresses
		c.Email, c.EmailVerified = u.Email, &verified
	}
	return c
}

// atHash is OIDC Core §3.1.3.6's at_hash: the left half of the hash of the
// access token's ASCII, base64url without padding. The hash is the one of the
// ID token's alg: SHA-256 for RS256 and ES256, SHA-512 for EdDSA (Ed25519).
func atHash(alg, accessToken string) string {
	if alg == "EdDSA" {
		sum := sha512.Sum512([]byte(accessToken))
		return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	}
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// issueIDToken signs an ID token for u, issued to client c, of a login at
// authTime with the methods amr.
func (p *Provider) issueIDToken(c *Client, u store.User, scope, nonce string, authTime time.Time, amr []string, accessToken string) (string, error) {
	now := p.now()
	amr = MethodsOf(amr)
	claims := IDClaims{Issuer: p.cfg.Issuer, Subject: u.ID, Audience: Audience{c.ID}, IssuedAt: now.Unix(),
		Expiry: now.Add(p.cfg.IDTokenTTL).Unix(), AuthTime: authTime.Unix(), AMR: amr, ACR: ACRFor(amr), Nonce: nonce,
		UserClaims: ClaimsFor(u, scope)}
	if accessToken != "" {
		claims.AtHash = atHash(c.SigningAlg, accessToken)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode id token claims: %w", err)
	}
	return p.signFor(c, payload, IDTokenType)
}
