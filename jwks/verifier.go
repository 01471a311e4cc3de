package jwks

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// minRSABits is the smallest RSA modulus a published key may have to be
// used. Keygate generates 2048 bits or more; smaller keys are factorable
// with enough money and are skipped (and logged) rather than trusted.
const minRSABits = 2048

// Verifier checks access tokens issued by one issuer. A resource server
// calls NewVerifier once and then Verify, or mounts Middleware, for every
// request; the issuer itself uses NewLocalVerifier over its own key set.
//
// The issuer's key set is held by a jwx jwk.Cache, which refetches it in the
// background as its Cache-Control allows (clamped by Config.MinRefresh and MaxRefresh) and
// keeps the last good set when a refresh fails, so an issuer outage does not
// stop verification. Each successful fetch is also indexed by kid into an
// immutable map published through an atomic pointer; Verify reads only that
// pointer. So in the steady state Verify makes no network call, takes no
// lock, and does not wait behind a refresh in progress (jwk.Cache.Get would:
// it serializes callers on a per-URL semaphore and holds the entry lock for
// the whole HTTP round trip of a refresh).
//
// A token whose kid is not cached causes one refetch, shared by all the
// requests waiting for it and allowed at most once per
// Config.UnknownKIDInterval, so new keys are found promptly while made-up kids
// cannot turn the verifier into a request amplifier against the issuer.
//
// A Verifier is safe for concurrent use. Close it to stop the background
// refresh.
type Verifier struct {
	cfg     *verifierConfig
	issuer  string
	jwksURL string
	algs    map[string]bool // accepted header algs

	cache   *jwk.Cache       // nil for a local verifier
	local   func() *Document // non-nil for a local verifier
	localMu sync.Mutex       // serializes indexing a new local Document
	bg      context.Context  // lives until Close; bounds every key fetch
	cancel  context.CancelFunc
	closed  atomic.Bool

	keys atomic.Pointer[keyIndex]
	// refreshSem admits one unknown-kid refetch at a time. A one-slot
	// channel rather than a mutex so that waiters can give up when their
	// request's context ends, and rather than x/sync/singleflight because
	// the waiters must not merely share the in-flight fetch but also, after
	// it, re-check the index and the rate limit under the same exclusion:
	// the kid may have arrived, or the interval may forbid another fetch.
	refreshSem chan struct{}
	lastFetch  atomic.Int64 // cfg.now() at the start of the last fetch, UnixNano

	stats counters
}

// keyIndex is one fetched key set, indexed for Verify. byKID and kids are
// immutable once published.
type keyIndex struct {
	byKID map[string]*verifyKey
	kids  []string  // in set order
	doc   *Document // the local Document indexed, if any

	// headers caches parsed protected headers by their base64url segment.
	// An issuer puts the same few headers on all its tokens (one per key),
	// and decoding one costs a few percent of a verification, so headers
	// are remembered, but only after a signature verified under them: a
	// client cannot fill the cache with made-up headers. It starts empty
	// with each fetched set, which keeps it to the live kids, and is bounded
	// by maxCachedHeaders anyway. Parsing is a pure function of the segment,
	// so a hit cannot change any decision.
	headers  sync.Map // string -> tokenHeader
	nHeaders atomic.Int32
}

// maxCachedHeaders bounds keyIndex.headers.
const maxCachedHeaders = 64

func (idx *keyIndex) header(seg string) (tokenHeader, bool) {
	if h, ok := idx.headers.Load(seg); ok {
		return h.(tokenHeader), true
	}
	return tokenHeader{}, false
}

func (idx *keyIndex) rememberHeader(seg string, h tokenHeader) {
	if idx.nHeaders.Load() >= maxCachedHeaders {
		return // racing callers may overshoot the bound a little; harmless
	}
	// Clone: seg points into the token, which must not be retained.
	if _, loaded := idx.headers.LoadOrStore(strings.Clone(seg), h); !loaded {
		idx.nHeaders.Add(1)
	}
}

type verifyKey struct {
	alg    string           // the key's "alg"; "" when the set does not say
	family string           // the algorithms the key's type allows: "RSA", "ES256" or "EdDSA"
	pub    crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey
}

// algFamily returns the key family alg needs (see verifyKey.family).
func algFamily(alg string) string {
	if alg == "ES256" || alg == "EdDSA" {
		return alg
	}
	return "RSA"
}

type counters struct {
	fetches, refreshFailures, unknownKIDRefetches, verifications, failures atomic.Uint64
}

// counted counts the outcome of one Verify, a failure if err is set and a
// verification otherwise, and passes it on.
func (s *counters) counted(c *Claims, err error) (*Claims, error) {
	if err != nil {
		s.failures.Add(1)
		return nil, err
	}
	s.verifications.Add(1)
	return c, nil
}

// Stats are a verifier's counters since it was created. They exist for
// metrics (wrap them in Prometheus CounterFuncs, say) and for tests that
// must prove how many requests reached the issuer.
type Stats struct {
	// Fetches counts HTTP requests for the key set (the initial one,
	// background refreshes and unknown-kid refetches). For a client-key
	// verifier: requests to the key server.
	Fetches uint64
	// RefreshFailures counts fetches that failed (network, non-200,
	// unparsable). The previous keys stayed in use.
	RefreshFailures uint64
	// UnknownKIDRefetches counts fetches caused by a token whose key was
	// not cached (for a client-key verifier: refetches because a signature
	// did not verify with the cached key of its client).
	UnknownKIDRefetches uint64
	// Verifications counts tokens accepted.
	Verifications uint64
	// Failures counts tokens refused.
	Failures uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Fetches:             c.fetches.Load(),
		RefreshFailures:     c.refreshFailures.Load(),
		UnknownKIDRefetches: c.unknownKIDRefetches.Load(),
		Verifications:       c.verifications.Load(),
		Failures:            c.failures.Load(),
	}
}

// NewVerifier returns a Verifier for the tokens of one issuer, after
// fetching its key set once.
//
// issuerOrJWKSURL is either the issuer URL or the key set's URL:
//
//   - an issuer URL (e.g. "https://id.example.com"): the key set's URL is
//     read from <issuer>/.well-known/openid-configuration, whose "issuer"
//     must equal the expected issuer exactly (the URL given, or Config.Issuer),
//     which stops a misconfigured or hostile endpoint from handing over
//     another issuer's keys;
//   - a URL whose last path element is "jwks" or "jwks.json" (Keygate serves
//     /jwks and /.well-known/jwks.json): used as the key set directly, and
//     Config.Issuer is required;
//   - with Config.JWKSURL set, the argument is the issuer and no discovery
//     is done.
//
// ctx bounds discovery and the first fetch only; the background refresh
// runs until Close. NewVerifier fails if the first fetch fails, because a
// verifier without keys could only refuse every token and a deployment is
// better stopped at startup than half-working.
func NewVerifier(ctx context.Context, issuerOrJWKSURL string, c Config) (*Verifier, error) {
	cfg, err := c.validate("NewVerifier", forRemote)
	if err != nil {
		return nil, err
	}
	given, err := parseHTTPURL(issuerOrJWKSURL)
	if err != nil {
		return nil, fmt.Errorf("jwks: NewVerifier: %w", err)
	}
	var issuer, jwksURL string
	switch {
	case cfg.jwksURL != "":
		if _, err := parseHTTPURL(cfg.jwksURL); err != nil {
			return nil, fmt.Errorf("jwks: NewVerifier: Config.JWKSURL: %w", err)
		}
		issuer, jwksURL = issuerOrJWKSURL, cfg.jwksURL
		if cfg.issuerSet {
			issuer = cfg.issuer
		}
	case looksLikeJWKS(given):
		if !cfg.issuerSet {
			return nil, fmt.Errorf("jwks: NewVerifier: %s is a key set URL; give the expected issuer in Config.Issuer, or any issuer trusting these keys would be accepted", issuerOrJWKSURL)
		}
		issuer, jwksURL = cfg.issuer, issuerOrJWKSURL
	default:
		issuer = issuerOrJWKSURL
		if cfg.issuerSet {
			issuer = cfg.issuer
		}
		d, err := discover(ctx, cfg.httpClient, issuerOrJWKSURL)
		if err != nil {
			return nil, fmt.Errorf("jwks: NewVerifier: discovery: %w", err)
		}
		if d.Issuer != issuer {
			return nil, fmt.Errorf("jwks: NewVerifier: discovery: %w: the document says issuer %q, want %q", ErrWrongIssuer, d.Issuer, issuer)
		}
		ju, err := parseHTTPURL(d.JWKSURI)
		if err != nil {
			return nil, fmt.Errorf("jwks: NewVerifier: discovery: jwks_uri: %w", err)
		}
		if given.Scheme == "https" && ju.Scheme != "https" {
			// Keys fetched in clear text could be swapped by anyone on the
			// path, which would undo the protection of the https issuer.
			return nil, fmt.Errorf("jwks: NewVerifier: discovery: jwks_uri %q is not https although the issuer is", d.JWKSURI)
		}
		jwksURL = d.JWKSURI
	}

	v := newVerifier(cfg, issuer)
	v.jwksURL = jwksURL

	// The cache's goroutines must outlive ctx, which is often a startup
	// timeout: tied to it they would stop at the deadline, and a later
	// refetch would wait forever for a fetch worker that has exited.
	v.bg, v.cancel = context.WithCancel(context.Background())
	v.cache = jwk.NewCache(v.bg,
		// The cache checks its schedule once per window, so the window is
		// the precision of the refresh; a tick is cheap.
		jwk.WithRefreshWindow(max(time.Second, cfg.minRefresh/4)),
		jwk.WithErrSink(errSink{v}),
	)
	err = v.cache.Register(jwksURL,
		jwk.WithHTTPClient(&jwksFetcher{v: v}),
		jwk.WithMinRefreshInterval(cfg.minRefresh),
		jwk.WithPostFetcher(jwk.PostFetchFunc(v.install)),
	)
	if err != nil {
		v.cancel()
		return nil, fmt.Errorf("jwks: NewVerifier: register %s: %w", jwksURL, err)
	}
	if _, err := v.cache.Refresh(ctx, jwksURL); err != nil {
		v.cancel()
		return nil, fmt.Errorf("jwks: NewVerifier: first fetch of the key set: %w", fetchCause(err))
	}
	return v, nil
}

func newVerifier(cfg *verifierConfig, issuer string) *Verifier {
	v := &Verifier{
		cfg:        cfg,
		issuer:     issuer,
		algs:       make(map[string]bool, len(cfg.algorithms)),
		refreshSem: make(chan struct{}, 1),
	}
	for _, a := range cfg.algorithms {
		v.algs[a] = true
	}
	return v
}

// NewLocalVerifier returns a Verifier over a key set held in the same
// process instead of fetched over HTTP: keys is called on every Verify and
// returns the Document currently published (nil: none yet, so every token
// is refused with ErrUnknownKey). It exists so that an issuer verifies its
// own tokens with exactly the checks its resource servers apply; pass it
// Publisher.Current. A key leaves the set, and stops verifying, as soon as
// keys stops returning it; a new Document is indexed once, the first time
// it is seen. Config.Issuer is required; fetch-related fields must be zero.
func NewLocalVerifier(keys func() *Document, c Config) (*Verifier, error) {
	cfg, err := c.validate("NewLocalVerifier", forLocal)
	if err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, fmt.Errorf("jwks: NewLocalVerifier: nil key source")
	}
	v := newVerifier(cfg, cfg.issuer)
	v.local = keys
	v.keys.Store(&keyIndex{})
	return v, nil
}

func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return u, nil
}

func looksLikeJWKS(u *url.URL) bool {
	base := path.Base(u.Path)
	return base == "jwks" || base == "jwks.json"
}

// errSink receives the errors of jwk.Cache's background refreshes.
type errSink struct{ v *Verifier }

func (s errSink) Error(err error) { s.v.refreshFailed(err, "background refresh") }

// refreshFailed counts and logs a failed fetch. The last good key set stays
// in use: jwk.Cache only replaces its data after a fetch and parse succeed,
// and install (which feeds Verify) only runs then.
func (v *Verifier) refreshFailed(err error, what string) {
	if v.closed.Load() {
		return
	}
	v.stats.refreshFailures.Add(1)
	n := 0
	if idx := v.keys.Load(); idx != nil {
		n = len(idx.kids)
	}
	v.cfg.logger.Warn("jwks: "+what+" of the key set failed; still verifying with the last good set",
		"jwks_uri", v.jwksURL, "cached_keys", n, "err", fetchCause(err))
}

// install is jwk.Cache's PostFetcher: it indexes a freshly fetched set for
// Verify. Keys that cannot verify tokens here (not RSA, EC P-256 or
// Ed25519; not for signing; an alg Keygate does not verify; RSA too short;
// no kid) are left out, so Verify needs no per-token key checks.
func (v *Verifier) install(_ string, set jwk.Set) (jwk.Set, error) {
	idx := v.index(set)
	v.keys.Store(idx)
	v.cfg.logger.Debug("jwks: key set installed", "jwks_uri", v.jwksURL, "kids", idx.kids)
	return set, nil
}

// current returns the key index to verify with. For a local verifier it
// indexes the key source's Document when it has changed.
func (v *Verifier) current() *keyIndex {
	idx := v.keys.Load()
	if v.local == nil {
		return idx
	}
	doc := v.local()
	if idx.doc == doc {
		return idx
	}
	v.localMu.Lock()
	defer v.localMu.Unlock()
	if idx = v.keys.Load(); idx.doc == doc {
		return idx
	}
	set := jwk.NewSet()
	if doc != nil {
		parsed, err := jwk.Parse(doc.Body)
		if err != nil { // NewDocument only makes parsable sets
			v.cfg.logger.Warn("jwks: the local key set does not parse; every token will be refused", "err", err)
		} else {
			set = parsed
		}
	}
	idx = v.index(set)
	idx.doc = doc
	v.keys.Store(idx)
	v.cfg.logger.Debug("jwks: local key set installed", "kids", idx.kids)
	return idx
}

// index indexes the usable keys of set.
func (v *Verifier) index(set jwk.Set) *keyIndex {
	idx := &keyIndex{byKID: make(map[string]*verifyKey, set.Len())}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		kid := k.KeyID()
		vk, why := usableKey(k)
		if vk != nil {
			if _, dup := idx.byKID[kid]; dup {
				vk, why = nil, "duplicate kid; the first key with it is used"
			}
		}
		if vk == nil {
			if why != "" {
				v.cfg.logger.Warn("jwks: ignoring a key of the set", "jwks_uri", v.jwksURL, "kid", kid, "reason", why)
			}
			continue
		}
		idx.byKID[kid] = vk
		idx.kids = append(idx.kids, kid)
	}
	if len(idx.kids) == 0 && (v.local == nil || set.Len() > 0) {
		v.cfg.logger.Warn("jwks: the key set has no usable key; every token will be refused", "jwks_uri", v.jwksURL)
	}
	return idx
}

// usableKey returns k as a key to verify signatures with, or nil and why
// not ("" when the key is simply not meant for signatures, which deserves
// no warning).
func usableKey(k jwk.Key) (*verifyKey, string) {
	switch {
	case k.KeyID() == "":
		return nil, "no kid"
	case k.KeyType() != jwa.RSA && k.KeyType() != jwa.EC && k.KeyType() != jwa.OKP:
		if k.KeyUsage() != "enc" {
			return nil, "kty " + k.KeyType().String() + " is not supported (RSA, EC P-256 and OKP Ed25519 only)"
		}
		return nil, ""
	case k.KeyUsage() != "" && k.KeyUsage() != string(jwk.ForSignature):
		return nil, "" // an encryption key: not for us, not worth a warning
	case len(k.KeyOps()) > 0 && !slices.Contains(k.KeyOps(), jwk.KeyOpVerify):
		return nil, ""
	}
	alg := k.Algorithm().String()
	pk, err := k.PublicKey()
	if err != nil {
		return nil, err.Error()
	}
	switch k.KeyType() {
	case jwa.EC:
		return ecKey(pk, alg)
	case jwa.OKP:
		return ed25519Key(pk, alg)
	}
	return rsaKey(pk, alg)
}

// ecKey is an EC P-256 key for ES256 ("" reason: another algorithm, such as
// ES384 or ECDH-ES, which Keygate does not verify).
func ecKey(pk jwk.Key, alg string) (*verifyKey, string) {
	if alg != "" && alg != "ES256" {
		return nil, ""
	}
	var pub ecdsa.PublicKey
	if err := pk.Raw(&pub); err != nil {
		return nil, err.Error()
	}
	if pub.Curve != elliptic.P256() {
		return nil, "EC key not on curve P-256"
	}
	return &verifyKey{alg: alg, family: "ES256", pub: &pub}, ""
}

// ed25519Key is an OKP Ed25519 key for EdDSA.
func ed25519Key(pk jwk.Key, alg string) (*verifyKey, string) {
	if alg != "" && alg != "EdDSA" {
		return nil, ""
	}
	var raw any
	if err := pk.Raw(&raw); err != nil {
		return nil, err.Error()
	}
	pub, ok := raw.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Sprintf("OKP key of type %T is not Ed25519", raw)
	}
	return &verifyKey{alg: alg, family: "EdDSA", pub: pub}, ""
}

// rsaKey is an RSA signing key of at least minRSABits ("" reason: an RSA
// encryption key such as RSA-OAEP).
func rsaKey(pk jwk.Key, alg string) (*verifyKey, string) {
	if alg != "" && !isRSASignatureAlg(alg) {
		return nil, ""
	}
	var pub rsa.PublicKey
	if err := pk.Raw(&pub); err != nil {
		return nil, err.Error()
	}
	if pub.N == nil || pub.N.BitLen() < minRSABits || pub.E < 3 {
		bits := 0
		if pub.N != nil {
			bits = pub.N.BitLen()
		}
		return nil, fmt.Sprintf("RSA key of %d bits (at least %d needed) or bad exponent", bits, minRSABits)
	}
	return &verifyKey{alg: alg, family: "RSA", pub: &pub}, ""
}

// Issuer returns the issuer whose tokens are accepted ("iss").
func (v *Verifier) Issuer() string { return v.issuer }

// JWKSURL returns the URL the key set is fetched from ("" for a local
// verifier).
func (v *Verifier) JWKSURL() string { return v.jwksURL }

// KeyIDs returns the kids of the usable keys in the cached set, in set
// order, for health checks and debugging.
func (v *Verifier) KeyIDs() []string {
	return slices.Clone(v.current().kids)
}

// Stats returns the verifier's counters.
func (v *Verifier) Stats() Stats { return v.stats.snapshot() }

// Close stops the background refresh. Verify keeps working with the keys
// already cached but no longer refetches. Close is idempotent.
func (v *Verifier) Close() error {
	v.closed.Store(true)
	if v.cancel != nil {
		v.cancel()
	}
	return nil
}

// Verify checks token and returns its claims, or an error wrapping one of
// the Err* sentinels.
//
// The checks, in order: compact form and header; alg in the accepted list
// (so "none" and HMAC never reach a key); a kid, found in the cached set
// (after at most one refetch); the key's own alg equal to the header's; the
// signature; then, on authenticated data only, typ, iss, aud, exp, nbf, iat
// and the required scopes. Header members that point at keys (jku, x5u,
// x5c, jwk) are ignored.
//
// ctx only matters when the kid is unknown and a refetch is made or waited
// for; in the steady state Verify does no I/O.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	return v.stats.counted(v.verify(ctx, token))
}

func (v *Verifier) verify(ctx context.Context, token string) (*Claims, error) {
	buf := getScratch()
	defer putScratch(buf)
	t, err := splitCompact(token, buf)
	if err != nil {
		return nil, err
	}
	if err := v.checkSignature(ctx, &t); err != nil {
		return nil, err
	}
	return v.checkClaims(&t)
}

// checkSignature parses t's header (or finds it cached), chooses the key
// its kid names, refetching once if it is unknown, and verifies the
// signature with that key under the key's algorithm.
func (v *Verifier) checkSignature(ctx context.Context, t *compactToken) error {
	idx := v.current()
	var err error
	hdrCached := false
	if t.tokenHeader, hdrCached = idx.header(t.headerSeg); !hdrCached {
		if t.tokenHeader, err = parseHeader(t.headerSeg); err != nil {
			return err
		}
	}
	if !v.algs[t.alg] {
		return errorf(ErrAlgorithm, "alg %q is not accepted (accepted: %q)", t.alg, v.cfg.algorithms)
	}
	if t.kid == "" {
		return errorf(ErrMalformed, `header has no "kid"; the key cannot be chosen`)
	}
	key := idx.byKID[t.kid]
	if key == nil {
		if v.local != nil {
			return errorf(ErrUnknownKey, "kid %q is not in the local key set", t.kid)
		}
		if key, err = v.refetchFor(ctx, t.kid); err != nil {
			return err
		}
	}
	// The key decides the algorithm: a token cannot ask for a key published
	// for RS512 to be used with RS256, nor for an EC or Ed25519 key to be
	// used with an RSA algorithm (or the reverse). A key published without
	// "alg" is used only with the algorithms of its type.
	if key.alg != "" && key.alg != t.alg {
		return errorf(ErrAlgorithm, "header alg %q differs from alg %q of key %q", t.alg, key.alg, t.kid)
	}
	if algFamily(t.alg) != key.family {
		return errorf(ErrAlgorithm, "header alg %q does not suit the %s key %q", t.alg, key.family, t.kid)
	}
	if err := t.verifySignature(t.alg, key.pub); err != nil {
		return errorf(ErrBadSignature, "does not verify with key %q", t.kid)
	}
	if !hdrCached {
		v.keys.Load().rememberHeader(t.headerSeg, t.tokenHeader)
	}
	return nil
}

// checkClaims checks the typ of a token whose signature verified, then
// decodes its claims and checks issuer, audience, times and scopes.
func (v *Verifier) checkClaims(t *compactToken) (*Claims, error) {
	if v.cfg.expectedType != "" && !typeMatches(t.typ, v.cfg.expectedType) {
		if t.typ == "" {
			return nil, errorf(ErrWrongType, "no typ header, want %q", v.cfg.expectedType)
		}
		return nil, errorf(ErrWrongType, "typ %q, want %q", t.typ, v.cfg.expectedType)
	}
	c, err := t.decodeClaims()
	if err != nil {
		return nil, err
	}
	if c.Issuer != v.issuer {
		return nil, errorf(ErrWrongIssuer, "iss %q, want %q", c.Issuer, v.issuer)
	}
	if err := checkAudience(c, v.cfg.audiences); err != nil {
		return nil, err
	}
	if err := checkTimes(c, v.cfg.now(), v.cfg.leeway); err != nil {
		return nil, err
	}
	if missing := c.missingScopes(v.cfg.requiredScopes); len(missing) > 0 {
		return nil, errorf(ErrInsufficientScope, "missing %q", missing)
	}
	return c, nil
}

// refetchFor refetches the key set because kid is not in it, unless another
// caller just did or the last fetch is more recent than the unknown-kid
// interval.
//
// Concurrent callers queue on refreshSem: the first fetches, the others
// then find the kid (one fetch served them all) or find the interval not
// yet elapsed (no second fetch). A refetch that fails leaves the cached set
// as it was, and the failed attempt still counts for the interval, so a
// down issuer is not hammered either.
func (v *Verifier) refetchFor(ctx context.Context, kid string) (*verifyKey, error) {
	select {
	case v.refreshSem <- struct{}{}:
	case <-ctx.Done():
		return nil, errorf(ErrUnknownKey, "kid %q is not cached, and the wait for a refetch was cut short: %w", kid, ctx.Err())
	}
	defer func() { <-v.refreshSem }()

	if key := v.keys.Load().byKID[kid]; key != nil {
		return key, nil
	}
	if v.closed.Load() {
		return nil, errorf(ErrUnknownKey, "kid %q is not cached, and the verifier is closed", kid)
	}
	if err := ctx.Err(); err != nil {
		return nil, errorf(ErrUnknownKey, "kid %q is not cached, and the request ended before a refetch: %w", kid, err)
	}
	now := v.cfg.now()
	last := time.Unix(0, v.lastFetch.Load())
	if since := now.Sub(last); since >= 0 && since < v.cfg.unknownKIDInterval {
		return nil, errorf(ErrUnknownKey, "kid %q is not in the key set fetched %s ago (refetched at most every %s)",
			kid, since.Round(time.Millisecond), v.cfg.unknownKIDInterval)
	}
	v.lastFetch.Store(now.UnixNano())
	v.stats.unknownKIDRefetches.Add(1)
	if _, err := v.cache.Refresh(ctx, v.jwksURL); err != nil {
		if ctx.Err() == nil { // a request that gave up is not an issuer failure
			v.refreshFailed(err, "unknown-kid refetch")
		}
		return nil, errorf(ErrUnknownKey, "kid %q is not cached, and refetching the key set failed: %w", kid, fetchCause(err))
	}
	if key := v.keys.Load().byKID[kid]; key != nil {
		return key, nil
	}
	return nil, errorf(ErrUnknownKey, "kid %q is not in the issuer's key set (refetched just now)", kid)
}
