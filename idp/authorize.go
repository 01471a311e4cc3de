package idp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

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
// redirect URI is one the client registered, character for character, or a
// public client's loopback IP redirect URI on another port (RFC 8252 §7.3).
type AuthRequest struct {
	ClientID      string `json:"client_id"`
	RedirectURI   string `json:"redirect_uri"`
	Scope         string `json:"scope"` // as granted: requested scopes, deduplicated
	State         string `json:"state,omitempty"`
	Nonce         string `json:"nonce,omitempty"`
	CodeChallenge string `json:"code_challenge,omitempty"` // S256
	DPoPJKT       string `json:"dpop_jkt,omitempty"`       // RFC 9449 §10: the key the code exchange must prove
	Prompt        string `json:"prompt,omitempty"`         // "login", "none", ... as sent
	MaxAge        string `json:"max_age,omitempty"`        // seconds, as sent
	LoginHint     string `json:"login_hint,omitempty"`
	ACRValues     string `json:"acr_values,omitempty"` // as sent; see RequiredACR

	// Shown on the login page; not part of the request.
	ClientName string `json:"-"`
}

func (ar *AuthRequest) prompts() []string { return strings.Fields(ar.Prompt) }

// NoPrompt reports prompt=none: the user must not be shown any page.
func (ar *AuthRequest) NoPrompt() bool { return slices.Contains(ar.prompts(), "none") }

// RequiredACR is the authentication context class the login must reach for
// this request: the weakest known value of acr_values ("" when none was
// asked for). An app demanding ACRMultiFactor gets a second factor.
func (ar *AuthRequest) RequiredACR() string { return requiredACR(ar.ACRValues) }

// NeedsLogin reports whether a session is not good enough at now:
// prompt=login, max_age exceeded (OIDC Core §3.1.2.1), or a login weaker
// than acr_values asks for (then a fresh login, with the second factor,
// follows). A nil session always needs a login.
func (ar *AuthRequest) NeedsLogin(s *Session, now time.Time) bool {
	if s == nil || slices.Contains(ar.prompts(), "login") {
		return true
	}
	if !Satisfies(s.AMR, ar.RequiredACR()) {
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
		"login_hint": ar.LoginHint, "code_challenge": ar.CodeChallenge, "acr_values": ar.ACRValues, "dpop_jkt": ar.DPoPJKT} {
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
	c, redirectURI, err := p.authorizeClient(ctx, params)
	if err != nil {
		return nil, err
	}
	// From here on, errors go back to the client.
	ar, err := parseAuthorizeParams(c, redirectURI, params)
	var ae *AuthorizeError
	if errors.As(err, &ae) {
		ae.redirectURI, ae.state, ae.issuer = redirectURI, params.Get("state"), p.cfg.Issuer
	}
	if err != nil {
		return nil, err
	}
	return ar, nil
}

// authorizeClient finds the request's client and checks its redirect URI;
// its refusals are shown to the user, never redirected.
func (p *Provider) authorizeClient(ctx context.Context, params url.Values) (*Client, string, error) {
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(params[k]) > 1 {
			return nil, "", pageError("invalid_request", "the %s parameter is repeated", k)
		}
	}
	clientID, redirectURI := params.Get("client_id"), params.Get("redirect_uri")
	if clientID == "" {
		return nil, "", pageError("invalid_request", "the request has no client_id")
	}
	c, err := p.dir.Client(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", pageError("invalid_client", "unknown client %q", clientID)
	}
	if err != nil {
		return nil, "", err
	}
	if len(c.RedirectURIs) == 0 {
		return nil, "", pageError("invalid_client", "client %q has no registered redirect URI", clientID)
	}
	if redirectURI == "" {
		return nil, "", pageError("invalid_request", "the request has no redirect_uri")
	}
	if !c.RedirectAllowed(redirectURI) {
		return nil, "", pageError("invalid_request", "redirect_uri %q is not registered for client %q", redirectURI, clientID)
	}
	return c, redirectURI, nil
}

// parseAuthorizeParams checks the rest of the request, in order, once the
// client and redirect URI are known good. Its *AuthorizeError refusals are
// given their redirect by ParseAuthorize.
func parseAuthorizeParams(c *Client, redirectURI string, params url.Values) (*AuthRequest, error) {
	if err := checkAuthorizeShape(params); err != nil {
		return nil, err
	}
	if !c.HasGrant(GrantAuthorizationCode) {
		return nil, pageError("unauthorized_client", "client %q may not use the authorization code flow", c.ID)
	}
	scope, err := authorizeScope(c, params.Get("scope"))
	if err != nil {
		return nil, err
	}
	challenge, err := checkCodeChallenge(c, params.Get("code_challenge"), params.Get("code_challenge_method"))
	if err != nil {
		return nil, err
	}
	jkt := params.Get("dpop_jkt")
	if jkt != "" && !validChallenge(jkt) {
		return nil, pageError("invalid_request", "dpop_jkt must be the 43-character base64url SHA-256 JWK thumbprint (RFC 7638) of the DPoP key")
	}
	nonce := params.Get("nonce")
	if len(nonce) > maxNonce {
		return nil, pageError("invalid_request", "nonce is longer than %d bytes", maxNonce)
	}
	prompts, err := parsePrompt(params.Get("prompt"))
	if err != nil {
		return nil, err
	}
	maxAge := params.Get("max_age")
	if maxAge != "" {
		if n, err := strconv.ParseInt(maxAge, 10, 64); err != nil || n < 0 || n > 1<<31 {
			return nil, pageError("invalid_request", "max_age must be a number of seconds")
		}
	}
	acrValues := params.Get("acr_values")
	if len(acrValues) > maxACRValues {
		return nil, pageError("invalid_request", "acr_values is longer than %d bytes", maxACRValues)
	}
	hint := params.Get("login_hint")
	if len(hint) > 256 {
		hint = ""
	}
	name := c.Name
	if name == "" {
		name = c.ID
	}
	return &AuthRequest{ClientID: c.ID, RedirectURI: redirectURI, Scope: scope, State: params.Get("state"), Nonce: nonce,
		CodeChallenge: challenge, DPoPJKT: jkt, Prompt: strings.Join(prompts, " "), MaxAge: maxAge, LoginHint: hint, ACRValues: acrValues,
		ClientName: name}, nil
}

// checkAuthorizeShape refuses repeated parameters, the request features
// Keygate does not implement, and response types and modes other than code
// and query.
func checkAuthorizeShape(params url.Values) error {
	for k, v := range params {
		if len(v) > 1 {
			return pageError("invalid_request", "the %s parameter is repeated", k)
		}
	}
	switch {
	case params.Has("request"):
		return pageError("request_not_supported", "request objects are not supported")
	case params.Has("request_uri"):
		return pageError("request_uri_not_supported", "request_uri is not supported")
	case params.Has("registration"):
		return pageError("registration_not_supported", "the registration parameter is not supported")
	}
	switch rt := params.Get("response_type"); rt {
	case "code":
	case "":
		return pageError("invalid_request", "the request has no response_type")
	default:
		return pageError("unsupported_response_type", "response_type must be code")
	}
	if rm := params.Get("response_mode"); rm != "" && rm != "query" {
		return pageError("invalid_request", "response_mode must be query")
	}
	return nil
}

// authorizeScope grants the requested scopes, which must include openid.
func authorizeScope(c *Client, requested string) (string, error) {
	if !slices.Contains(strings.Fields(requested), "openid") {
		return "", pageError("invalid_scope", "scope must include openid")
	}
	scope, err := grantScope(c, requested)
	var oe *Error
	if errors.As(err, &oe) {
		return "", pageError(oe.Code, "%s", oe.Description)
	}
	return scope, err
}

// checkCodeChallenge applies the PKCE rules: S256 only, and required of
// public clients.
func checkCodeChallenge(c *Client, challenge, method string) (string, error) {
	switch {
	case challenge == "" && method != "":
		return "", pageError("invalid_request", "code_challenge_method without code_challenge")
	case challenge == "" && c.Public:
		return "", pageError("invalid_request", "a public client must use PKCE: send code_challenge with code_challenge_method=S256")
	case challenge != "" && method != "S256":
		return "", pageError("invalid_request", "code_challenge_method must be S256 (plain is not accepted)")
	case challenge != "" && !validChallenge(challenge):
		return "", pageError("invalid_request", "code_challenge must be the 43-character base64url SHA-256 of the verifier")
	}
	return challenge, nil
}

// parsePrompt checks the prompt values; none stands alone.
func parsePrompt(prompt string) ([]string, error) {
	prompts := strings.Fields(prompt)
	for _, pr := range prompts {
		if !slices.Contains([]string{"none", "login", "consent", "select_account"}, pr) {
			return nil, pageError("invalid_request", "unsupported prompt value %q", pr)
		}
	}
	if slices.Contains(prompts, "none") && len(prompts) > 1 {
		return nil, pageError("invalid_request", "prompt=none cannot be combined with other values")
	}
	return prompts, nil
}

// Refuse returns an error for ar to send back to its client, such as
// login_required for prompt=none.
func (p *Provider) Refuse(ar *AuthRequest, code, description string) *AuthorizeError {
	return &AuthorizeError{Code: code, Description: description, redirectURI: ar.RedirectURI, state: ar.State, issuer: p.cfg.Issuer}
}

// validChallenge reports whether s can be an S256 challenge, or a dpop_jkt
// (an RFC 7638 SHA-256 thumbprint): base64url (no padding) of 32 bytes.
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// MaxCodesPerSession caps the authorization codes a session holds unredeemed.
// A browser needs one per login it is completing (a few tabs at most); a
// script holding a session cookie could otherwise mint hundreds a second,
// each a row until it is pruned. Past the cap the oldest are deleted rather
// than the new one refused: the newest code is the one a user is about to
// redeem, an old one is most likely abandoned, and refusing would let a
// runaway client lock its own user out of logging in for CodeTTL.
const MaxCodesPerSession = 20

// IssueCode creates an authorization code for ar on behalf of the session's
// user and returns the redirect that delivers it: the redirect URI with
// code, state (when the request had one) and iss (RFC 9207). The session
// keeps at most MaxCodesPerSession unredeemed codes (the store deletes the
// oldest, and the session's expired ones, in the same transaction).
func (p *Provider) IssueCode(ctx context.Context, ar *AuthRequest, s *Session) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate authorization code: %w", err)
	}
	code := "kgc_" + base64.RawURLEncoding.EncodeToString(b)
	now := p.now().UTC()
	if err := p.browser.CreateAuthCode(ctx, store.AuthCode{ID: digest(code), ClientID: ar.ClientID,
		RedirectURI: ar.RedirectURI, UserID: s.UserID, SessionID: s.ID, Scope: ar.Scope, Nonce: ar.Nonce, CodeChallenge: ar.CodeChallenge,
		DPoPJKT: ar.DPoPJKT, AuthTime: s.AuthTime, AMR: MethodsOf(s.AMR), CreatedAt: now, ExpiresAt: now.Add(CodeTTL)}, MaxCodesPerSession); err != nil {
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
	Issuer string     `json:"iss"`
	Params url.Values `json:"params"`
	Expiry int64      `json:"exp"`
}

// SealAuthRequest signs ar so that the login form can carry it: the browser
// holds the request, but cannot change it.
func (p *Provider) SealAuthRequest(ar *AuthRequest) (string, error) {
	payload, err := json.Marshal(sealedRequest{Issuer: p.cfg.Issuer, Params: ar.values(), Expiry: p.now().Add(authRequestTTL).Unix()})
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
	if len(sealed) > 16<<10 {
		return nil, ErrBadAuthRequest
	}
	c, err := p.sealed.Verify(ctx, sealed)
	if err != nil {
		return nil, ErrBadAuthRequest
	}
	// The claims were decoded generically; params is re-read as url.Values.
	raw, _ := c.Claim("params")
	b, err := json.Marshal(raw)
	var params url.Values
	if err != nil || json.Unmarshal(b, &params) != nil {
		return nil, ErrBadAuthRequest
	}
	return p.ParseAuthorize(ctx, params)
}
