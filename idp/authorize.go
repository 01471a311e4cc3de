package idp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keygate/keygate/store"
)

// CodeTTL is the life of an authorization code (RFC 6749 §4.1.2 recommends
// at most ten minutes; the exchange follows the redirect at once).
const CodeTTL = 60 * time.Second

// CodeChallengeMethods are the PKCE methods accepted, for discovery: S256
// only (RFC 7636 "plain" offers no protection against a leaked request).
var CodeChallengeMethods = []string{"S256"}

// ResponseTypes are the authorization endpoint's response types, for discovery.
var ResponseTypes = []string{"code"}

// AuthRequest is a validated authorization request (RFC 6749 §4.1.1, OIDC
// Core §3.1.2.1): its client exists and may use the code flow, and its
// redirect URI is one the client registered, character for character.
type AuthRequest struct {
	ClientID      string `json:"client_id"`
	RedirectURI   string `json:"redirect_uri"`
	Scope         string `json:"scope"` // as granted: requested scopes, deduplicated
	State         string `json:"state,omitempty"`
	Nonce         string `json:"nonce,omitempty"`
	CodeChallenge string `json:"code_challenge,omitempty"` // S256
	Prompt        string `json:"prompt,omitempty"`         // "login", "none", ... as sent
	MaxAge        string `json:"max_age,omitempty"`        // seconds, as sent
	LoginHint     string `json:"login_hint,omitempty"`

	// Shown on the login page; not part of the request.
	ClientName string `json:"-"`
}

func (ar *AuthRequest) prompts() []string { return strings.Fields(ar.Prompt) }

// NoPrompt reports prompt=none: the user must not be shown any page.
func (ar *AuthRequest) NoPrompt() bool { return slices.Contains(ar.prompts(), "none") }

// NeedsLogin reports whether a session authenticated at authTime is not
// good enough at now: prompt=login, or max_age exceeded (OIDC Core §3.1.2.1).
// A nil session always needs a login.
func (ar *AuthRequest) NeedsLogin(s *Session, now time.Time) bool {
	if s == nil || slices.Contains(ar.prompts(), "login") {
		return true
	}
	if ar.MaxAge != "" {
		// Validated by ParseAuthorize. max_age=0 is like prompt=login.
		maxAge, _ := strconv.ParseInt(ar.MaxAge, 10, 64)
		return now.Sub(s.AuthTime) >= time.Duration(maxAge)*time.Second
	}
	return false
}

// values is the request as authorization request parameters.
func (ar *AuthRequest) values() url.Values {
	v := url.Values{"response_type": {"code"}, "client_id": {ar.ClientID}, "redirect_uri": {ar.RedirectURI}, "scope": {ar.Scope}}
	for k, s := range map[string]string{"state": ar.State, "nonce": ar.Nonce, "prompt": ar.Prompt, "max_age": ar.MaxAge,
		"login_hint": ar.LoginHint, "code_challenge": ar.CodeChallenge} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if ar.CodeChallenge != "" {
		v.Set("code_challenge_method", "S256")
	}
	return v
}

// AuthorizeError is a refused authorization request. Errors about the client
// or the redirect URI cannot be sent to the redirect URI (RFC 6749
// §4.1.2.1): RedirectURL is empty and the error is shown to the user. The
// others go back to the client as error, error_description and state.
type AuthorizeError struct {
	Code        string // RFC 6749 §4.1.2.1 / OIDC Core §3.1.2.6 error code
	Description string
	redirectURI string
	state       string
	issuer      string
}

func (e *AuthorizeError) Error() string { return e.Code + ": " + e.Description }

// RedirectURL is where to send the browser with the error, or "" when it must
// not be redirected anywhere.
func (e *AuthorizeError) RedirectURL() string {
	if e.redirectURI == "" {
		return ""
	}
	v := url.Values{"error": {e.Code}, "error_description": {ErrorDescription(e.Description)}, "iss": {e.issuer}}
	if e.state != "" {
		v.Set("state", e.state)
	}
	return withQuery(e.redirectURI, v)
}

// ErrorDescription fits s to the character set RFC 6749 (§4.1.2.1, §5.2) and
// RFC 6750 (§3) allow for error_description: printable ASCII without '"' and
// '\'. Descriptions quote client ids, scopes and claims that callers chose,
// which may hold anything; every place that sends one calls this.
func ErrorDescription(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r == '\\':
			return '/'
		case r < 0x20 || r > 0x7e:
			return '?'
		}
		return r
	}, s)
}

// withQuery adds v to uri's query, keeping the query it has byte for byte
// (RFC 6749 §3.1.2: the redirect URI's query component is retained).
// Registered redirect URIs have no fragment (checkRedirectURIs).
func withQuery(uri string, v url.Values) string {
	sep := "?"
	switch {
	case strings.HasSuffix(uri, "?") || strings.HasSuffix(uri, "&"):
		sep = ""
	case strings.Contains(uri, "?"):
		sep = "&"
	}
	return uri + sep + v.Encode()
}

// pageError is a refusal shown to the user, never redirected.
func pageError(code, f string, a ...any) *AuthorizeError {
	return &AuthorizeError{Code: code, Description: fmt.Sprintf(f, a...)}
}

// maxNonce bounds the nonce, which is copied into every ID token.
const maxNonce = 512

// ParseAuthorize validates the parameters of an authorization request. It
// returns an *AuthorizeError for a request to refuse, any other error for a
// failure of Keygate's own.
func (p *Provider) ParseAuthorize(ctx context.Context, params url.Values) (*AuthRequest, error) {
	// First the client and the redirect URI: until both are known good,
	// nothing may be sent anywhere.
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(params[k]) > 1 {
			return nil, pageError("invalid_request", "the %s parameter is repeated", k)
		}
	}
	clientID, redirectURI := params.Get("client_id"), params.Get("redirect_uri")
	if clientID == "" {
		return nil, pageError("invalid_request", "the request has no client_id")
	}
	c, err := p.Client(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, pageError("invalid_client", "unknown client %q", clientID)
	}
	if err != nil {
		return nil, err
	}
	if len(c.RedirectURIs) == 0 {
		return nil, pageError("invalid_client", "client %q has no registered redirect URI", clientID)
	}
	if redirectURI == "" {
		return nil, pageError("invalid_request", "the request has no redirect_uri")
	}
	if !slices.Contains(c.RedirectURIs, redirectURI) {
		return nil, pageError("invalid_request", "redirect_uri %q is not registered for client %q", redirectURI, clientID)
	}

	// From here on, errors go back to the client.
	state := params.Get("state")
	fail := func(code, f string, a ...any) (*AuthRequest, error) {
		return nil, &AuthorizeError{Code: code, Description: fmt.Sprintf(f, a...), redirectURI: redirectURI,
			state: state, issuer: p.cfg.Issuer}
	}
	for k, v := range params {
		if len(v) > 1 {
			return fail("invalid_request", "the %s parameter is repeated", k)
		}
	}
	switch {
	case params.Has("request"):
		return fail("request_not_supported", "request objects are not supported")
	case params.Has("request_uri"):
		return fail("request_uri_not_supported", "request_uri is not supported")
	case params.Has("registration"):
		return fail("registration_not_supported", "the registration parameter is not supported")
	}
	switch rt := params.Get("response_type"); rt {
	case "code":
	case "":
		return fail("invalid_request", "the request has no response_type")
	default:
		return fail("unsupported_response_type", "response_type must be code")
	}
	if rm := params.Get("response_mode"); rm != "" && rm != "query" {
		return fail("invalid_request", "response_mode must be query")
	}
	if !c.HasGrant(GrantAuthorizationCode) {
		return fail("unauthorized_client", "client %q may not use the authorization code flow", clientID)
	}
	requested := params.Get("scope")
	if !slices.Contains(strings.Fields(requested), "openid") {
		return fail("invalid_scope", "scope must include openid")
	}
	scope, err := grantScope(c, requested)
	if err != nil {
		var oe *Error
		if errors.As(err, &oe) {
			return fail(oe.Code, "%s", oe.Description)
		}
		return nil, err
	}
	challenge, method := params.Get("code_challenge"), params.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return fail("invalid_request", "code_challenge_method without code_challenge")
	case challenge == "" && c.Public:
		return fail("invalid_request", "a public client must use PKCE: send code_challenge with code_challenge_method=S256")
	case challenge != "" && method != "S256":
		return fail("invalid_request", "code_challenge_method must be S256 (plain is not accepted)")
	case challenge != "" && !validChallenge(challenge):
		return fail("invalid_request", "code_challenge must be the 43-character base64url SHA-256 of the verifier")
	}
	nonce := params.Get("nonce")
	if len(nonce) > maxNonce {
		return fail("invalid_request", "nonce is longer than %d bytes", maxNonce)
	}
	prompts := strings.Fields(params.Get("prompt"))
	for _, pr := range prompts {
		if !slices.Contains([]string{"none", "login", "consent", "select_account"}, pr) {
			return fail("invalid_request", "unsupported prompt value %q", pr)
		}
	}
	if slices.Contains(prompts, "none") && len(prompts) > 1 {
		return fail("invalid_request", "prompt=none cannot be combined with other values")
	}
	maxAge := params.Get("max_age")
	if maxAge != "" {
		if n, err := strconv.ParseInt(maxAge, 10, 64); err != nil || n < 0 || n > 1<<31 {
			return fail("invalid_request", "max_age must be a number of seconds")
		}
	}
	hint := params.Get("login_hint")
	if len(hint) > 256 {
		hint = ""
	}
	name := c.Name
	if name == "" {
		name = c.ID
	}
	return &AuthRequest{ClientID: clientID, RedirectURI: redirectURI, Scope: scope, State: state, Nonce: nonce,
		CodeChallenge: challenge, Prompt: strings.Join(prompts, " "), MaxAge: maxAge, LoginHint: hint, ClientName: name}, nil
}

// Refuse returns an error for ar to send back to its client, such as
// login_required for prompt=none.
func (p *Provider) Refuse(ar *AuthRequest, code, description string) *AuthorizeError {
	return &AuthorizeError{Code: code, Description: description, redirectURI: ar.RedirectURI, state: ar.State, issuer: p.cfg.Issuer}
}

// validChallenge reports whether s can be an S256 challenge: base64url
// (no padding) of 32 bytes.
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == sha256.Size
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

// IssueCode creates an authorization code for ar on behalf of the session's
// user and returns the redirect that delivers it: the redirect URI with
// code, state (when the request had one) and iss (RFC 9207).
func (p *Provider) IssueCode(ctx context.Context, ar *AuthRequest, s *Session) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate authorization code: %w", err)
	}
	code := "kgc_" + base64.RawURLEncoding.EncodeToString(b)
	now := p.now().UTC()
	if err := p.browser.CreateAuthCode(ctx, store.AuthCode{ID: refreshID(code), ClientID: ar.ClientID,
		RedirectURI: ar.RedirectURI, UserID: s.UserID, Scope: ar.Scope, Nonce: ar.Nonce, CodeChallenge: ar.CodeChallenge,
		AuthTime: s.AuthTime, CreatedAt: now, ExpiresAt: now.Add(CodeTTL)}); err != nil {
		return "", fmt.Errorf("store authorization code: %w", err)
	}
	v := url.Values{"code": {code}, "iss": {p.cfg.Issuer}}
	if ar.State != "" {
		v.Set("state", ar.State)
	}
	return withQuery(ar.RedirectURI, v), nil
}

// authRequestType is the JOSE typ of a sealed authorization request: never
// an access or ID token, and without iss, sub or aud, so that it cannot pass
// for one.
const authRequestType = "kg-authz-request+jwt"

// authRequestTTL is how long a login form may sit before being sent.
const authRequestTTL = 30 * time.Minute

type sealedRequest struct {
	Params url.Values `json:"params"`
	Expiry int64      `json:"exp"`
}

// SealAuthRequest signs ar so that the login form can carry it: the browser
// holds the request, but cannot change it.
func (p *Provider) SealAuthRequest(ar *AuthRequest) (string, error) {
	payload, err := json.Marshal(sealedRequest{Params: ar.values(), Expiry: p.now().Add(authRequestTTL).Unix()})
	if err != nil {
		return "", err
	}
	return p.sign(payload, authRequestType)
}

// ErrBadAuthRequest is a sealed authorization request that is forged,
// malformed or expired.
var ErrBadAuthRequest = errors.New("the login request is invalid or has expired")

// OpenAuthRequest checks a sealed request's signature and age, then
// validates it again as at /authorize: the client or its redirect URIs may
// have changed since.
func (p *Provider) OpenAuthRequest(ctx context.Context, sealed string) (*AuthRequest, error) {
	if len(sealed) > 16<<10 || strings.Count(sealed, ".") != 2 {
		return nil, ErrBadAuthRequest
	}
	msg, err := jws.Parse([]byte(sealed), jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, ErrBadAuthRequest
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	if h.Algorithm() != jwa.RS256 || h.Type() != authRequestType {
		return nil, ErrBadAuthRequest
	}
	key, err := p.cfg.Signer.PublicKey(h.KeyID())
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrBadAuthRequest
	}
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify([]byte(sealed), jws.WithKey(jwa.RS256, key))
	if err != nil {
		return nil, ErrBadAuthRequest
	}
	var sr sealedRequest
	if err := json.Unmarshal(payload, &sr); err != nil || p.now().Unix() >= sr.Expiry {
		return nil, ErrBadAuthRequest
	}
	return p.ParseAuthorize(ctx, sr.Params)
}

// authorizationCodeGrant redeems a code at the token endpoint (RFC 6749
// §4.1.3, RFC 7636 §4.5). Every check runs before the code is spent; the
// tokens are then made, and the code is spent and bound to them in one
// atomic step, so that a second use, even a concurrent one, can revoke them.
func (p *Provider) authorizationCodeGrant(ctx context.Context, r *Request, c *Client) (*TokenResponse, error) {
	code, redirectURI, verifier := r.get("code"), r.get("redirect_uri"), r.get("code_verifier")
	if code == "" {
		return nil, invalidRequest("code is required")
	}
	if redirectURI == "" {
		return nil, invalidRequest("redirect_uri is required (the one sent in the authorization request)")
	}
	if len(code) > 256 {
		return nil, invalidGrant("unknown or expired authorization code")
	}
	ac, err := p.browser.GetAuthCode(ctx, refreshID(code))
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("unknown or expired authorization code")
	}
	if err != nil {
		return nil, serverError(err)
	}
	now := p.now()
	switch {
	case !ac.UsedAt.IsZero():
		return nil, p.codeReused(ctx, ac)
	case !now.Before(ac.ExpiresAt):
		return nil, invalidGrant("the authorization code has expired")
	case ac.ClientID != c.ID:
		return nil, invalidGrant("the authorization code was issued to another client")
	case ac.RedirectURI != redirectURI:
		return nil, invalidGrant("redirect_uri does not match the authorization request")
	}
	switch {
	case ac.CodeChallenge == "" && c.Public:
		return nil, invalidGrant("a public client must use PKCE") // /authorize refuses this; defence in depth
	case ac.CodeChallenge == "" && verifier != "":
		// RFC 9700 §2.1.1: a verifier for a request without a challenge is
		// refused, or an attacker could strip the challenge (PKCE downgrade).
		return nil, invalidGrant("code_verifier sent, but the authorization request had no code_challenge")
	case ac.CodeChallenge != "" && verifier == "":
		return nil, invalidGrant("code_verifier is required (PKCE)")
	case ac.CodeChallenge != "" && (!validVerifier(verifier) || !pkceMatches(ac.CodeChallenge, verifier)):
		return nil, invalidGrant("code_verifier does not match the code_challenge")
	}
	u, err := p.cfg.Store.GetUser(ctx, ac.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("the user of this authorization code no longer exists")
	}
	if err != nil {
		return nil, serverError(err)
	}

	g := grant{client: c, subject: u.ID, username: u.Username, scope: ac.Scope, authTime: ac.AuthTime}
	at, claims, err := p.issueAccess(g)
	if err != nil {
		return nil, serverError(err)
	}
	idt, err := p.issueIDToken(c, u, ac.Scope, ac.Nonce, ac.AuthTime, at)
	if err != nil {
		return nil, serverError(err)
	}
	res := &TokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: claims.Expiry - now.Unix(), Scope: ac.Scope, IDToken: idt}
	var family string
	if c.HasGrant(GrantRefreshToken) {
		// Stored before the code is spent, so that a concurrent second use,
		// which revokes the family it finds on the code, finds it complete.
		rt, id, err := newRefreshToken()
		if err != nil {
			return nil, serverError(err)
		}
		family = uuid.NewString()
		t := now.UTC()
		if err := p.cfg.Store.CreateRefreshToken(ctx, store.RefreshToken{ID: id, FamilyID: family, ClientID: c.ID,
			Subject: u.ID, Scope: ac.Scope, AuthTime: ac.AuthTime, CreatedAt: t, ExpiresAt: t.Add(p.cfg.RefreshTTL)}); err != nil {
			return nil, serverError(err)
		}
		res.RefreshToken = rt
	}
	// The deny-list entry must outlive the token: a minute of margin over
	// its exp, which issueAccess computed on a clock read a moment ago.
	if _, err := p.browser.RedeemAuthCode(ctx, ac.ID, now.UTC(), family, claims.ID, time.Unix(claims.Expiry, 0).Add(time.Minute)); err != nil {
		if family != "" { // never handed out
			if _, rerr := p.cfg.Store.RevokeRefreshFamily(ctx, family, now.UTC()); rerr != nil {
				p.log.Warn("revoking an unused refresh token failed", "err", rerr)
			}
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, serverError(err)
		}
		cur, gerr := p.browser.GetAuthCode(ctx, ac.ID)
		if gerr != nil {
			return nil, serverError(gerr)
		}
		if !cur.UsedAt.IsZero() {
			return nil, p.codeReused(ctx, cur)
		}
		return nil, invalidGrant("the authorization code has expired")
	}
	return res, nil
}

// codeReused answers a second use of a code: RFC 6749 §4.1.2 says the
// tokens issued from it should be revoked, since the code has leaked.
func (p *Provider) codeReused(ctx context.Context, ac store.AuthCode) error {
	now := p.now().UTC()
	revoked := 0
	if ac.FamilyID != "" {
		n, err := p.cfg.Store.RevokeRefreshFamily(ctx, ac.FamilyID, now)
		if err != nil {
			return serverError(err)
		}
		revoked += n
	}
	if ac.AccessJTI != "" && !ac.AccessExpiresAt.IsZero() && ac.AccessExpiresAt.After(now) {
		if err := p.cfg.Store.RevokeAccessToken(ctx, ac.AccessJTI, ac.AccessExpiresAt); err != nil {
			return serverError(err)
		}
		revoked++
	}
	p.log.Warn("authorization code reuse detected; tokens issued from it revoked", "client_id", ac.ClientID,
		"user_id", ac.UserID, "revoked", revoked)
	return &Error{Code: "invalid_grant", Status: http.StatusBadRequest,
		Description: "the authorization code was already used; the tokens issued from it have been revoked"}
}

// checkRedirectURIs validates a client's redirect URIs at registration:
// absolute URIs without a fragment (RFC 6749 §3.1.2), and at least one for
// a client allowed the authorization code flow.
func checkRedirectURIs(c *Client) error {
	for _, ru := range c.RedirectURIs {
		u, err := url.Parse(ru)
		switch {
		case err != nil || !u.IsAbs():
			return fmt.Errorf("redirect URI %q is not an absolute URI", ru)
		case u.Fragment != "" || strings.Contains(ru, "#"):
			return fmt.Errorf("redirect URI %q must not have a fragment", ru)
		case (u.Scheme == "http" || u.Scheme == "https") && u.Host == "":
			return fmt.Errorf("redirect URI %q has no host", ru)
		case strings.ContainsAny(ru, " \t\r\n"):
			return fmt.Errorf("redirect URI %q contains whitespace", ru)
		}
	}
	if c.HasGrant(GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return errors.New("a client with the authorization_code grant needs at least one redirect URI")
	}
	return nil
}
