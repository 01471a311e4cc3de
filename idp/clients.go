package idp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/keygate/keygate/store"
)

// The grant types Keygate implements.
const (
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantAuthorizationCode = "authorization_code"
)

// GrantTypes lists the grants a client may be allowed, for validation and discovery.
var GrantTypes = []string{GrantClientCredentials, GrantPassword, GrantRefreshToken, GrantJWTBearer, GrantAuthorizationCode, GrantDeviceCode}

// Client is a registered OAuth client, from the configuration file (Static) or
// the store.
type Client struct {
	ID                 string
	Name               string
	SecretHash         []byte  // SHA-256 of the secret
	Keys               jwk.Set // registered public keys; nil for none
	JWKSURI            string  // or where they are published
	GrantTypes         []string
	Scopes             []string
	Audience           []string
	RedirectURIs       []string
	AllowedOrigins     []string // CORS; none: the origins of RedirectURIs (see Origins)
	Public             bool
	AccessTTL          time.Duration
	NotBeforeDelay     time.Duration
	AllowBareAssertion bool
	Introspect         bool // a resource server: may introspect other clients' tokens
	ThirdParty         bool // its users consent before its first code (consent.go)
	// SigningAlg is the algorithm its access and ID tokens are signed
	// with: "" or RS256 (the default), ES256 or EdDSA.
	SigningAlg string
	// DPoPBoundAccessTokens requires a DPoP proof (RFC 9449 §5.2) on every
	// token request, so that none of its access tokens is a bearer token.
	DPoPBoundAccessTokens bool
	Static                bool
	CreatedAt             time.Time

	// PreviousSecretHash is the SHA-256 of the secret RotateClientSecret
	// replaced, accepted beside the current one until PreviousSecretExpiresAt.
	PreviousSecretHash      []byte
	PreviousSecretExpiresAt time.Time

	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser afterwards, matched exactly (logout.go).
	PostLogoutRedirectURIs []string
}

// HasGrant reports whether c may use grant.
func (c *Client) HasGrant(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// HasKeys reports whether c can sign assertions Keygate can check.
func (c *Client) HasKeys() bool { return (c.Keys != nil && c.Keys.Len() > 0) || c.JWKSURI != "" }

// ClientLimits are the provider settings a client's own are checked against.
type ClientLimits struct {
	AccessTTL    time.Duration // the default access-token lifetime (tokens.access_ttl)
	MaxAccessTTL time.Duration // no client may ask for more (tokens.max_access_ttl)
	// SigningAlgs are the configured signing algorithms (keys.algorithms);
	// nil does not restrict beyond SigningAlgorithms.
	SigningAlgs []string
}

// ValidateClient is the one check of a client's settings, for the
// configuration file (config.Load, and NewDirectory for static clients), the
// CLI and the API (RegisterClient) alike. Its errors are *ValidationError
// naming the setting as the configuration file spells it.
func ValidateClient(c *Client, l ClientLimits) error {
	for _, check := range []func(*Client, ClientLimits) error{checkClientID, checkClientGrants, checkClientLifetime,
		checkClientCredentials, checkRedirectURIs, checkAllowedOrigins, checkPostLogoutRedirectURIs, checkSigningAlg} {
		if err := check(c, l); err != nil {
			return err
		}
	}
	return nil
}

func badClient(field, f string, a ...any) error {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(f, a...)}
}

func checkClientID(c *Client, _ ClientLimits) error {
	// Colons are allowed: RFC 6749 §2.3.1 form-encodes the id in the Basic
	// header, and the token endpoint decodes it.
	if c.ID == "" || strings.IndexFunc(c.ID, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return badClient("id", "must be non-empty without spaces or control characters, got %q", c.ID)
	}
	if _, err := uuid.Parse(c.ID); err == nil {
		// User ids are UUIDs; a client named like one could pass for a user.
		return badClient("id", "must not be a UUID (user ids are), got %q", c.ID)
	}
	return nil
}

func checkClientGrants(c *Client, _ ClientLimits) error {
	if len(c.GrantTypes) == 0 {
		return badClient("grant_types", "list at least one grant")
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(GrantTypes, g) {
			return badClient("grant_types", "unknown grant type %q (known: %s)", g, strings.Join(GrantTypes, ", "))
		}
	}
	return nil
}

// checkClientLifetime keeps a client's tokens valid for some time: a
// not_before_delay as long as the lifetime would make tokens never valid.
func checkClientLifetime(c *Client, l ClientLimits) error {
	if c.AccessTTL < 0 || c.AccessTTL > l.MaxAccessTTL {
		return badClient("access_ttl", "must be between 0 (the default) and tokens.max_access_ttl (%s), got %s", l.MaxAccessTTL, c.AccessTTL)
	}
	lifetime, from := c.AccessTTL, "access_ttl"
	if lifetime == 0 {
		lifetime, from = l.AccessTTL, "tokens.access_ttl"
	}
	if c.NotBeforeDelay < 0 || c.NotBeforeDelay >= lifetime {
		return badClient("not_before_delay", "must be at least 0 and shorter than the token lifetime (%s %s), got %s", from, lifetime, c.NotBeforeDelay)
	}
	return nil
}

// checkSigningAlg: a client's token signing algorithm is one Keygate
// supports and the deployment keeps keys for.
func checkSigningAlg(c *Client, l ClientLimits) error {
	if c.SigningAlg == "" || c.SigningAlg == "RS256" {
		return nil
	}
	if !slices.Contains(SigningAlgorithms, c.SigningAlg) {
		return badClient("signing_alg", "%q is not supported (RS256, ES256 or EdDSA)", c.SigningAlg)
	}
	if l.SigningAlgs != nil && !slices.Contains(l.SigningAlgs, c.SigningAlg) {
		return badClient("signing_alg", "%s is not in keys.algorithms (%s), so there is no key to sign with", c.SigningAlg, strings.Join(l.SigningAlgs, ", "))
	}
	return nil
}

// checkClientCredentials: a public client has none, a confidential one a
// secret or public keys, and a jwks_uri is an http(s) URL. Only a
// confidential client may introspect.
func checkClientCredentials(c *Client, _ ClientLimits) error {
	if c.JWKSURI != "" {
		u, err := url.Parse(c.JWKSURI)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return badClient("jwks_uri", "%q is not an http(s) URL", c.JWKSURI)
		}
	}
	if c.Public && (len(c.SecretHash) != 0 || c.HasKeys()) {
		return badClient("public", "a public client has no secret and no keys")
	}
	if !c.Public && len(c.SecretHash) == 0 && !c.HasKeys() {
		return badClient("public", "a confidential client needs a secret or public keys")
	}
	if c.Introspect && c.Public {
		// /introspect authenticates its caller; a public client cannot be one.
		return badClient("introspect", "a public client cannot introspect: a resource server needs a secret or public keys")
	}
	return nil
}

// NewClientSecret returns a fresh client secret: 256 random bits, base64url.
// It is shown once; only its SHA-256 is stored.
func NewClientSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate client secret: %w", err)
	}
	return "kgs_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashSecret is how client secrets are stored. A secret with 256 bits of
// entropy cannot be guessed, so a fast hash is enough and the token endpoint
// does not pay for a password hash on every request.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// ParseSecretSHA256 decodes a hex digest from the configuration file.
func ParseSecretSHA256(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("secret_sha256 must be 64 hex digits")
	}
	return b, nil
}

// ParsePublicKeys reads a client's public keys from PEM (PKIX "PUBLIC KEY",
// PKCS#1 "RSA PUBLIC KEY" or a certificate) or from a JWK Set. Private keys are
// refused: a client registers only what verifies its signatures.
func ParsePublicKeys(data []byte) (jwk.Set, error) {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "{") {
		set, err := jwk.Parse([]byte(trimmed))
		if err != nil {
			return nil, fmt.Errorf("parse JWK Set: %w", err)
		}
		for i := 0; i < set.Len(); i++ {
			k, _ := set.Key(i)
			if isPrivate(k) {
				return nil, errors.New("the JWK Set holds a private key: register only public keys")
			}
		}
		return set, nil
	}
	set := jwk.NewSet()
	rest := []byte(trimmed)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var raw any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			raw, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			raw, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				raw = cert.PublicKey
			}
		default:
			if strings.Contains(block.Type, "PRIVATE") {
				return nil, errors.New("this is a private key: register the public key (openssl rsa -in client.key -pubout)")
			}
			return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("parse PEM %s: %w", block.Type, err)
		}
		k, err := jwk.FromRaw(raw)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		if err := set.AddKey(k); err != nil {
			return nil, err
		}
	}
	if set.Len() == 0 {
		return nil, errors.New("no PEM public key found")
	}
	return set, nil
}

func isPrivate(k jwk.Key) bool {
	switch k.KeyType().String() {
	case "oct":
		return true
	}
	_, hasD := k.Get("d")
	return hasD
}

// FromStore converts a stored client.
func FromStore(sc store.Client) (*Client, error) {
	c := &Client{ID: sc.ID, Name: sc.Name, SecretHash: sc.SecretHash, JWKSURI: sc.JWKSURI, GrantTypes: sc.GrantTypes,
		Scopes: sc.Scopes, Audience: sc.Audience, RedirectURIs: sc.RedirectURIs, AllowedOrigins: sc.AllowedOrigins, Public: sc.Public,
		AccessTTL: sc.AccessTTL, NotBeforeDelay: sc.NotBeforeDelay, AllowBareAssertion: sc.AllowBareAssertion, Introspect: sc.Introspect, CreatedAt: sc.CreatedAt,
		PreviousSecretHash: sc.PreviousSecretHash, PreviousSecretExpiresAt: sc.PreviousSecretExpiresAt, ThirdParty: sc.ThirdParty, SigningAlg: sc.SigningAlg,
		DPoPBoundAccessTokens: sc.DPoPBoundAccessTokens}
	c.PostLogoutRedirectURIs = sc.PostLogoutRedirectURIs
	if len(sc.JWKS) > 0 {
		set, err := jwk.Parse(sc.JWKS)
		if err != nil {
			return nil, fmt.Errorf("client %q: stored keys: %w", sc.ID, err)
		}
		c.Keys = set
	}
	return c, nil
}

// ToStore converts for storage.
func (c *Client) ToStore() (store.Client, error) {
	sc := store.Client{ID: c.ID, Name: c.Name, SecretHash: c.SecretHash, JWKSURI: c.JWKSURI, GrantTypes: c.GrantTypes,
		Scopes: c.Scopes, Audience: c.Audience, RedirectURIs: c.RedirectURIs, AllowedOrigins: c.AllowedOrigins, Public: c.Public, AccessTTL: c.AccessTTL,
		NotBeforeDelay: c.NotBeforeDelay, AllowBareAssertion: c.AllowBareAssertion, Introspect: c.Introspect, CreatedAt: c.CreatedAt,
		PreviousSecretHash: c.PreviousSecretHash, PreviousSecretExpiresAt: c.PreviousSecretExpiresAt, ThirdParty: c.ThirdParty, SigningAlg: c.SigningAlg,
		DPoPBoundAccessTokens: c.DPoPBoundAccessTokens}
	sc.PostLogoutRedirectURIs = c.PostLogoutRedirectURIs
	if c.Keys != nil && c.Keys.Len() > 0 {
		b, err := json.Marshal(c.Keys)
		if err != nil {
			return sc, fmt.Errorf("client %q: keys: %w", c.ID, err)
		}
		sc.JWKS = b
	}
	return sc, nil
}

// Client finds a client by id: the configuration file first, then the store
// (through the cache, clientcache.go). An unknown id is store.ErrNotFound.
// The client returned may be shared: callers must not change it.
func (d *Directory) Client(ctx context.Context, id string) (*Client, error) {
	if c, ok := d.static[id]; ok {
		return c, nil
	}
	var gen uint64
	if d.cache != nil {
		var c *Client
		var ok bool
		if c, gen, ok = d.cache.get(ctx, id, d.now()); ok {
			return c, nil
		}
	}
	sc, err := d.cfg.Store.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	c, err := FromStore(sc)
	if err != nil {
		return nil, err
	}
	if d.cache != nil {
		d.cache.put(c, gen)
	}
	return c, nil
}

// clientsChanged empties the client cache after a write through d.
func (d *Directory) clientsChanged() {
	if d.cache != nil {
		d.cache.invalidate()
	}
}

// Clients lists static then stored clients.
func (d *Directory) Clients(ctx context.Context) ([]*Client, error) {
	var out []*Client
	for _, c := range d.cfg.Clients {
		if sc, ok := d.static[c.ID]; ok {
			out = append(out, sc)
		}
	}
	stored, err := d.cfg.Store.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	for _, sc := range stored {
		c, err := FromStore(sc)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// RegisterClient validates c, gives it a secret unless it is public or
// key-only (withSecret=false), stores it, and returns the secret (shown once).
func (d *Directory) RegisterClient(ctx context.Context, c *Client, withSecret bool) (secret string, err error) {
	if _, ok := d.static[c.ID]; ok {
		return "", fmt.Errorf("client %q is declared in the configuration file: %w", c.ID, store.ErrConflict)
	}
	if withSecret && !c.Public {
		if secret, err = NewClientSecret(); err != nil {
			return "", err
		}
		c.SecretHash = HashSecret(secret)
	}
	if err := ValidateClient(c, d.clientLimits()); err != nil {
		return "", err
	}
	c.CreatedAt = d.now().UTC()
	sc, err := c.ToStore()
	if err != nil {
		return "", err
	}
	err = d.cfg.Store.CreateClient(ctx, sc)
	d.clientsChanged()
	if err != nil {
		return "", fmt.Errorf("register client %q: %w", c.ID, err)
	}
	return secret, nil
}

func (d *Directory) clientLimits() ClientLimits {
	return ClientLimits{AccessTTL: d.cfg.AccessTTL, MaxAccessTTL: d.cfg.MaxAccessTTL, SigningAlgs: d.cfg.SigningAlgs}
}

// DeleteClient removes a stored client; static ones live in the configuration file.
func (d *Directory) DeleteClient(ctx context.Context, id string) error {
	if _, ok := d.static[id]; ok {
		return fmt.Errorf("client %q is declared in the configuration file; remove it there", id)
	}
	err := d.cfg.Store.DeleteClient(ctx, id)
	d.clientsChanged()
	return err
}

// checkSecret compares secret with c's current secret and, until it expires
// at now, with the one a rotation replaced: both in constant time over
// fixed-length digests, and both always, so the answer's timing tells
// neither which matched nor whether there is a previous secret.
func checkSecret(c *Client, secret string, now time.Time) bool {
	hs := sha256.Sum256([]byte(secret)) // HashSecret's digest, on the stack
	h := hs[:]
	cur, prev := 0, 0
	if len(c.SecretHash) == sha256.Size {
		cur = subtle.ConstantTimeCompare(h, c.SecretHash)
	}
	if len(c.PreviousSecretHash) == sha256.Size {
		prev = subtle.ConstantTimeCompare(h, c.PreviousSecretHash)
	} else {
		subtle.ConstantTimeCompare(h, h) // the same work
	}
	if !now.Before(c.PreviousSecretExpiresAt) {
		prev = 0
	}
	return cur|prev == 1
}

// clientKeys returns the keys that may verify c's assertions.
func (p *Provider) clientKeys(ctx context.Context, c *Client) (jwk.Set, error) {
	if c.JWKSURI != "" {
		return p.remote.get(ctx, c.JWKSURI)
	}
	if c.Keys == nil {
		return jwk.NewSet(), nil
	}
	return c.Keys, nil
}

// remoteKeys fetches clients' jwks_uri through jwx's jwk.Cache, which honours
// Cache-Control and refreshes in the background.
type remoteKeys struct {
	hc    *http.Client
	once  sync.Once
	cache *jwk.Cache
	mu    sync.Mutex
}

func newRemoteKeys(hc *http.Client) *remoteKeys { return &remoteKeys{hc: hc} }

func (r *remoteKeys) get(ctx context.Context, u string) (jwk.Set, error) {
	r.once.Do(func() { r.cache = jwk.NewCache(context.Background()) })
	r.mu.Lock()
	if !r.cache.IsRegistered(u) {
		if err := r.cache.Register(u, jwk.WithHTTPClient(r.hc), jwk.WithMinRefreshInterval(time.Minute)); err != nil {
			r.mu.Unlock()
			return nil, fmt.Errorf("client jwks_uri %s: %w", u, err)
		}
	}
	r.mu.Unlock()
	set, err := r.cache.Get(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("fetch client keys from %s: %w", u, err)
	}
	return set, nil
}

// checkRedirectURIs: absolute URIs without a fragment (RFC 6749 §3.1.2), and
// at least one for a client allowed the authorization code flow. A scheme
// other than http(s) must be a private-use one (RFC 8252 §7.1: a reverse
// domain name, with a dot, such as com.example.app), and only a public
// client (a native app) may register one.
func checkRedirectURIs(c *Client, _ ClientLimits) error {
	for _, ru := range c.RedirectURIs {
		u, err := url.Parse(ru)
		switch {
		case err != nil || !u.IsAbs():
			return badClient("redirect_uris", "%q is not an absolute URI", ru)
		case u.Fragment != "" || strings.Contains(ru, "#"):
			return badClient("redirect_uris", "%q must not have a fragment", ru)
		case (u.Scheme == "http" || u.Scheme == "https") && u.Host == "":
			return badClient("redirect_uris", "%q has no host", ru)
		case strings.ContainsAny(ru, " \t\r\n"):
			return badClient("redirect_uris", "%q contains whitespace", ru)
		case u.Scheme == "http" || u.Scheme == "https":
		case !strings.Contains(u.Scheme, "."):
			return badClient("redirect_uris", "%q: a scheme other than http(s) must be a private-use one, a reverse domain name such as com.example.app:/callback (RFC 8252 §7.1)", ru)
		case !c.Public:
			return badClient("redirect_uris", "%q: a private-use URI scheme is for native apps, which are public clients (RFC 8252 §8.4)", ru)
		}
	}
	if c.HasGrant(GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return badClient("redirect_uris", "a client with the authorization_code grant needs at least one redirect URI")
	}
	return nil
}

// RedirectAllowed reports whether uri may be the redirect URI of c's
// authorization request: one it registered, character for character, or,
// for a public client only, one of its loopback IP redirect URIs on another
// port (RFC 8252 §7.3: a native app listens on a port the system gives it).
// Scheme, host, path and query still match exactly, and only the IP
// literals 127.0.0.1 and [::1] count as loopback: "localhost" may resolve
// elsewhere (RFC 8252 §8.3), so it is matched exactly like any host.
func (c *Client) RedirectAllowed(uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	if !c.Public {
		return false
	}
	host, rest, ok := splitLoopback(uri)
	if !ok {
		return false
	}
	for _, reg := range c.RedirectURIs {
		if h, r, ok := splitLoopback(reg); ok && h == host && r == rest {
			return true
		}
	}
	return false
}

// splitLoopback splits an http redirect URI to a loopback IP literal into
// its host without the port and the rest (path and query), as written; ok is
// false for any other URI, or a port that is not 1 to 65535.
func splitLoopback(uri string) (host, rest string, ok bool) {
	after, found := strings.CutPrefix(uri, "http://")
	if !found {
		return "", "", false
	}
	end := strings.IndexAny(after, "/?#")
	if end < 0 {
		end = len(after)
	}
	authority, rest := after[:end], after[end:]
	for _, h := range []string{"127.0.0.1", "[::1]"} {
		port, found := strings.CutPrefix(authority, h)
		if !found {
			continue
		}
		if port == "" {
			return h, rest, true
		}
		n, err := strconv.ParseUint(strings.TrimPrefix(port, ":"), 10, 16)
		if port[0] == ':' && err == nil && n > 0 {
			return h, rest, true
		}
	}
	return "", "", false
}

// ErrStaticClient refuses to change a client declared in the configuration
// file: the file is its one source, and the store never holds it.
var ErrStaticClient = errors.New("defined in config.yaml; edit it there")

// Bounds of the grace period during which a rotated-out client secret still
// works.
const (
	DefaultSecretGrace = time.Hour
	MaxSecretGrace     = 30 * 24 * time.Hour
)

// ClientPatch changes some settings of a stored client; nil fields stay as
// they are. The result must pass ValidateClient like a new client.
type ClientPatch struct {
	Name           *string
	GrantTypes     *[]string
	Scopes         *[]string
	Audience       *[]string
	RedirectURIs   *[]string
	AllowedOrigins *[]string
	AccessTTL      *time.Duration
	NotBeforeDelay *time.Duration
	Introspect     *bool
	ThirdParty     *bool
	SigningAlg     *string // "" or RS256 for the default; ES256 or EdDSA need keys.algorithms

	PostLogoutRedirectURIs *[]string
	DPoPBoundAccessTokens  *bool
	// AllowBareAssertion: accept a bare client-signed login assertion.
	AllowBareAssertion *bool
}

func (pt ClientPatch) apply(c *Client) {
	setIf(&c.Name, pt.Name)
	setIf(&c.GrantTypes, pt.GrantTypes)
	setIf(&c.Scopes, pt.Scopes)
	setIf(&c.Audience, pt.Audience)
	setIf(&c.RedirectURIs, pt.RedirectURIs)
	setIf(&c.AllowedOrigins, pt.AllowedOrigins)
	setIf(&c.AccessTTL, pt.AccessTTL)
	setIf(&c.NotBeforeDelay, pt.NotBeforeDelay)
	setIf(&c.Introspect, pt.Introspect)
	setIf(&c.ThirdParty, pt.ThirdParty)
	setIf(&c.SigningAlg, pt.SigningAlg)
	setIf(&c.PostLogoutRedirectURIs, pt.PostLogoutRedirectURIs)
	setIf(&c.DPoPBoundAccessTokens, pt.DPoPBoundAccessTokens)
	setIf(&c.AllowBareAssertion, pt.AllowBareAssertion)
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// storedClient reads client id for a change: a static client is
// ErrStaticClient, an unknown one store.ErrNotFound.
func (d *Directory) storedClient(ctx context.Context, id string) (*Client, error) {
	if _, ok := d.static[id]; ok {
		return nil, fmt.Errorf("client %q is %w", id, ErrStaticClient)
	}
	sc, err := d.cfg.Store.GetClient(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("client %q: %w", id, err)
	}
	return FromStore(sc)
}

// UpdateClient applies pt to the stored client id, checks the result with
// ValidateClient, and stores it. Concurrent updates of one client are last
// writer wins (store.ClientStore.UpdateClient): each reads, changes and
// writes back the whole client.
func (d *Directory) UpdateClient(ctx context.Context, id string, pt ClientPatch) (*Client, error) {
	c, err := d.storedClient(ctx, id)
	if err != nil {
		return nil, err
	}
	pt.apply(c)
	if err := ValidateClient(c, d.clientLimits()); err != nil {
		return nil, err
	}
	if err := d.saveClient(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

func (d *Directory) saveClient(ctx context.Context, c *Client) error {
	sc, err := c.ToStore()
	if err != nil {
		return err
	}
	err = d.cfg.Store.UpdateClient(ctx, sc)
	d.clientsChanged()
	if err != nil {
		return fmt.Errorf("update client %q: %w", c.ID, err)
	}
	return nil
}

// RotateClientSecret gives the stored client id a new secret and returns it
// (shown once). The secret it replaces keeps working for grace (0: not at
// all), so that the client can be redeployed with the new one; after that
// only the new one does. Only the latest replaced secret is kept: rotating
// again within the grace period ends the older one at once. A client without
// a secret (public or key-only) has none to rotate.
func (d *Directory) RotateClientSecret(ctx context.Context, id string, grace time.Duration) (string, *Client, error) {
	if grace < 0 || grace > MaxSecretGrace {
		return "", nil, badClient("grace", "must be between 0 (revoke the old secret at once) and %s, got %s", MaxSecretGrace, grace)
	}
	c, err := d.storedClient(ctx, id)
	if err != nil {
		return "", nil, err
	}
	if len(c.SecretHash) == 0 {
		return "", nil, badClient("secret", "client %q has no secret to rotate (it is public or key-only)", id)
	}
	secret, err := NewClientSecret()
	if err != nil {
		return "", nil, err
	}
	c.PreviousSecretHash, c.PreviousSecretExpiresAt = nil, time.Time{}
	if grace > 0 {
		c.PreviousSecretHash, c.PreviousSecretExpiresAt = c.SecretHash, d.now().UTC().Add(grace)
	}
	c.SecretHash = HashSecret(secret)
	if err := d.saveClient(ctx, c); err != nil {
		return "", nil, err
	}
	d.log.Info("client secret rotated", "client_id", id, "grace", grace)
	return secret, c, nil
}

// EffectiveAccessTTL is the lifetime of c's access tokens: its own, or the
// configured default (AccessTTL) when it has none; def reports the latter.
func (d *Directory) EffectiveAccessTTL(c *Client) (ttl time.Duration, def bool) {
	if c.AccessTTL > 0 {
		return c.AccessTTL, false
	}
	return d.cfg.AccessTTL, true
}

// SecretGraceActive reports whether c's previous secret still works at the
// directory's clock, and until when.
func (d *Directory) SecretGraceActive(c *Client) (time.Time, bool) {
	if len(c.PreviousSecretHash) == 0 || !d.now().Before(c.PreviousSecretExpiresAt) {
		return time.Time{}, false
	}
	return c.PreviousSecretExpiresAt, true
}

// EffectiveAudience is the "aud" of c's access tokens when a grant names
// none: its audience, or its own id when it has none.
func (c *Client) EffectiveAudience() (aud []string, def bool) {
	if len(c.Audience) > 0 {
		return c.Audience, false
	}
	return []string{c.ID}, true
}

// EffectiveSigningAlg is the algorithm c's tokens are signed with: its
// SigningAlg, or RS256 when it has none, so that listings show what a
// verifier must accept rather than an empty field.
func (c *Client) EffectiveSigningAlg() string {
	if c.SigningAlg == "" {
		return "RS256"
	}
	return c.SigningAlg
}
