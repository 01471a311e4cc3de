// Package jwks verifies Keygate's tokens and publishes the key sets they
// are verified with.
//
// Keygate signs access tokens with rotating RSA keys and serves the public
// halves as a JSON Web Key Set. A resource server calls NewVerifier once
// (with the issuer URL and a Config) and then Verify, or wraps its handlers
// in Middleware; Verifier keeps the key set fresh in the background, so a
// verification needs no network call. The issuer verifies its own tokens
// with the same code, over its in-process key set (NewLocalVerifier).
// Client-signed requests — a client signs its own request with its
// registered key — are verified by ClientKeyVerifier. Middleware accepts
// either, through the TokenVerifier interface; jwks/echojwks adapts it to
// Echo.
//
// On the publishing side, NewDocument turns public keys into an immutable,
// pre-serialized Document and Publisher serves the current one over HTTP
// with cache validators.
//
// The package imports no other Keygate package and no web framework, only
// the standard library and jwx, so that resource servers can depend on it
// alone.
package jwks

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// PublicKey is one verification key to publish.
//
// It carries the key material together with the identifiers a verifier needs
// to pick the right key for a token (KID matches the token header's "kid")
// and to refuse algorithm substitution (Algorithm is published as "alg").
type PublicKey struct {
	// KID is the key identifier published as "kid". It must be non-empty and
	// unique within a set, because verifiers select keys by it.
	KID string
	// Algorithm is the JWS algorithm the key is used with, published as
	// "alg": one of RS256, RS384, RS512, PS256, PS384, PS512 (an RSA key),
	// ES256 (an ECDSA P-256 key) or EdDSA (an Ed25519 key).
	Algorithm string
	// Key is the public key: *rsa.PublicKey (or rsa.PublicKey),
	// *ecdsa.PublicKey on P-256, or ed25519.PublicKey. Private keys
	// are refused rather than silently reduced to their public part, so that
	// a caller mixing up the two is told instead of getting lucky.
	Key crypto.PublicKey
}

// Document is a serialized JSON Web Key Set, built once by NewDocument and
// then served many times.
//
// Serializing once means every request gets the same bytes, so the ETag is
// stable and the HTTP handler does no encoding work. A Document must be
// treated as immutable; Publisher copies what it serves at Publish time so
// that a later modification cannot tear a response.
type Document struct {
	// Body is the compact JSON encoding of the set: {"keys":[...]}, each
	// entry having exactly the members kty, kid, use, alg and n, e (RSA),
	// crv, x, y (EC) or crv, x (OKP).
	Body []byte
	// ETag is a strong entity tag, quoted, derived only from Body, so that
	// replicas publishing the same key set hand out the same validator and
	// caches behind a load balancer keep revalidating successfully.
	ETag string

	kids []string
}

// KIDs returns the key identifiers in the set, in publication order.
//
// It exists so callers (logs, metrics, health checks) can report what is
// being served without re-parsing Body. The returned slice is a copy.
func (d *Document) KIDs() []string {
	if d == nil {
		return nil
	}
	return append([]string(nil), d.kids...)
}

// NewDocument serializes keys into a JWKS Document, keeping their order.
//
// The order is kept (rather than sorted) because the caller already orders
// keys deterministically, e.g. by activation time, and verifiers that try
// keys in order benefit from the newest signing key coming first. Two calls
// with the same keys in the same order yield byte-identical Bodies and equal
// ETags. An empty or nil slice yields {"keys":[]}, which is a valid set.
//
// It returns an error for non-RSA keys, private keys, empty or duplicate
// KIDs and algorithms that are not RSA signature algorithms: publishing a
// malformed set would break every verifier at once, so it is refused here.
func NewDocument(keys []PublicKey) (*Document, error) {
	set := jwk.NewSet()
	kids := make([]string, 0, len(keys))
	seen := make(map[string]struct{}, len(keys))
	for i, k := range keys {
		if k.KID == "" {
			return nil, fmt.Errorf("jwks: key #%d: empty kid", i)
		}
		if _, dup := seen[k.KID]; dup {
			return nil, fmt.Errorf("jwks: key #%d: duplicate kid %q", i, k.KID)
		}
		seen[k.KID] = struct{}{}

		jk, err := publicJWK(k.Key, k.Algorithm)
		if err != nil {
			return nil, fmt.Errorf("jwks: key %q: %w", k.KID, err)
		}
		if err := jk.Set(jwk.KeyIDKey, k.KID); err != nil {
			return nil, fmt.Errorf("jwks: key %q: set kid: %w", k.KID, err)
		}
		if err := jk.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
			return nil, fmt.Errorf("jwks: key %q: set use: %w", k.KID, err)
		}
		if err := jk.Set(jwk.AlgorithmKey, k.Algorithm); err != nil {
			return nil, fmt.Errorf("jwks: key %q: set alg: %w", k.KID, err)
		}
		if err := set.AddKey(jk); err != nil {
			return nil, fmt.Errorf("jwks: key %q: %w", k.KID, err)
		}
		kids = append(kids, k.KID)
	}

	raw, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("jwks: marshal key set: %w", err)
	}
	// jwx's encoder emits a newline after each key; compact it so the body
	// is canonical and as small as possible.
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("jwks: compact key set: %w", err)
	}
	body := buf.Bytes()
	if err := checkMembers(body, kids); err != nil {
		return nil, err
	}

	return &Document{Body: body, ETag: etagFor(body), kids: kids}, nil
}

// publicJWK converts a public key to a jwk.Key after checking that its type
// suits alg: RSA for the RS and PS algorithms, ECDSA P-256 for ES256,
// Ed25519 for EdDSA.
func publicJWK(key crypto.PublicKey, alg string) (jwk.Key, error) {
	var raw any
	switch alg {
	case "ES256":
		pub, err := ecPublic(key)
		if err != nil {
			return nil, err
		}
		raw = pub
	case "EdDSA":
		switch k := key.(type) {
		case ed25519.PublicKey:
			if len(k) != ed25519.PublicKeySize {
				return nil, errors.New("invalid Ed25519 public key")
			}
			raw = k
		case ed25519.PrivateKey, *ed25519.PrivateKey:
			return nil, errors.New("refusing to publish a private key; pass its public part")
		default:
			return nil, fmt.Errorf("algorithm EdDSA needs an Ed25519 public key, got %T", key)
		}
	default:
		pub, err := rsaPublic(key)
		if err != nil {
			return nil, err
		}
		if !isRSASignatureAlg(alg) {
			return nil, fmt.Errorf("algorithm %q is not a supported signature algorithm (want RS256, RS384, RS512, PS256, PS384, PS512, ES256 or EdDSA)", alg)
		}
		raw = pub
	}
	jk, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, err
	}
	switch jk.(type) {
	case jwk.RSAPublicKey, jwk.ECDSAPublicKey, jwk.OKPPublicKey:
	default:
		// FromRaw was given a public key, so this cannot happen unless jwx
		// changes behaviour; refuse rather than risk leaking.
		return nil, fmt.Errorf("jwx produced %T, want a public key", jk)
	}
	return jk, nil
}

// ecPublic accepts only ECDSA P-256 public keys and refuses private ones.
func ecPublic(key crypto.PublicKey) (*ecdsa.PublicKey, error) {
	var pub *ecdsa.PublicKey
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		pub = k
	case ecdsa.PublicKey:
		pub = &k
	case *ecdsa.PrivateKey, ecdsa.PrivateKey:
		return nil, errors.New("refusing to publish a private key; pass its public part")
	default:
		return nil, fmt.Errorf("algorithm ES256 needs an ECDSA P-256 public key, got %T", key)
	}
	//lint:ignore SA1019 Bytes dereferences X and Y, so missing ones must be refused first, and only these fields show it
	if pub == nil || pub.Curve != elliptic.P256() || pub.X == nil || pub.Y == nil {
		return nil, errors.New("algorithm ES256 needs an ECDSA key on curve P-256")
	}
	if _, err := pub.Bytes(); err != nil { // a point not on the curve
		return nil, fmt.Errorf("algorithm ES256 needs a valid P-256 public key: %w", err)
	}
	return pub, nil
}

// rsaPublic accepts only RSA public keys and refuses private ones.
func rsaPublic(key crypto.PublicKey) (*rsa.PublicKey, error) {
	var pub *rsa.PublicKey
	switch k := key.(type) {
	case *rsa.PublicKey:
		pub = k
	case rsa.PublicKey:
		pub = &k
	case *rsa.PrivateKey, rsa.PrivateKey:
		return nil, errors.New("refusing to publish a private key; pass its public part (&priv.PublicKey)")
	case nil:
		return nil, errors.New("missing key")
	default:
		if _, isSigner := key.(crypto.Signer); isSigner {
			return nil, fmt.Errorf("refusing to publish a private key of type %T", key)
		}
		return nil, fmt.Errorf("unsupported key type %T: only RSA public keys are supported", key)
	}
	if pub == nil || pub.N == nil || pub.N.Sign() <= 0 || pub.E < 2 {
		return nil, errors.New("invalid RSA public key (missing modulus or exponent)")
	}
	return pub, nil
}

// isSignatureAlg reports whether alg is one the verifier can check (one of
// signatureAlgorithms): an RSA algorithm, ES256 or EdDSA.
func isSignatureAlg(alg string) bool { return slices.Contains(signatureAlgorithms, alg) }

// isRSASignatureAlg reports whether alg is one of rsaAlgorithms.
func isRSASignatureAlg(alg string) bool { return slices.Contains(rsaAlgorithms, alg) }

// checkMembers re-reads the serialized set and verifies that every key has
// exactly the allowed members, in the expected order of kids. It is a last
// line of defence against a library change leaking private material.
func checkMembers(body []byte, kids []string) error {
	// The complete list of members a published key may carry. Anything else,
	// in particular the private RSA members d, p, q, dp, dq and qi, must
	// never appear.
	common := []string{"kty", "kid", "use", "alg"}
	byKty := map[string][]string{"RSA": {"n", "e"}, "EC": {"crv", "x", "y"}, "OKP": {"crv", "x"}}
	var parsed struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &parsed); err != nil {
		return fmt.Errorf("jwks: re-read serialized set: %w", err)
	}
	if parsed.Keys == nil || len(parsed.Keys) != len(kids) {
		return fmt.Errorf("jwks: serialized set has %d keys, want %d", len(parsed.Keys), len(kids))
	}
	for i, m := range parsed.Keys {
		var kty string
		if err := json.Unmarshal(m["kty"], &kty); err != nil || byKty[kty] == nil {
			return fmt.Errorf("jwks: key %q serialized with kty %s", kids[i], m["kty"])
		}
		allowedMembers := append(slices.Clone(common), byKty[kty]...)
		if len(m) != len(allowedMembers) {
			return fmt.Errorf("jwks: key %q serialized with %d members, want exactly %v", kids[i], len(m), allowedMembers)
		}
		for _, name := range allowedMembers {
			if _, ok := m[name]; !ok {
				return fmt.Errorf("jwks: key %q serialized without member %q", kids[i], name)
			}
		}
		var kid string
		if err := json.Unmarshal(m["kid"], &kid); err != nil || kid != kids[i] {
			return fmt.Errorf("jwks: key #%d serialized with kid %s, want %q", i, m["kid"], kids[i])
		}
	}
	return nil
}

// etagFor derives the strong entity tag from the body bytes alone: 32
// base64url characters (192 bits) of its SHA-256, quoted.
func etagFor(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:])[:32] + `"`
}

// Option configures a Publisher. Options exist so that optional integrations
// such as metrics can be added without widening NewPublisher's signature.
type Option func(*options)

type options struct {
	onServe func(status int)
}

// WithObserver registers fn to be called exactly once per request handled by
// the Publisher, with the status code sent (200, 304, 405 or 503).
//
// It is the hook for metrics (e.g. a Prometheus counter by status) without
// this package depending on a metrics library. fn runs on the request
// goroutine, after the response has been written, and must be safe for
// concurrent use and cheap. A nil fn is ignored.
func WithObserver(fn func(status int)) Option {
	return func(o *options) { o.onServe = fn }
}

// served is everything the handler needs for one published Document, built
// once in Publish so that serving is a handful of map assignments and a
// single Write. Swapping one pointer to it keeps body and ETag consistent.
type served struct {
	doc           *Document
	body          []byte
	etag          []string
	opaque        string // the entity tag without quotes, for If-None-Match
	contentLength []string
}

// Publisher is an http.Handler serving the most recently published Document.
//
// The key rotation loop calls Publish whenever the set changes, while any
// number of requests are served concurrently; the swap is a single atomic
// pointer store, so readers never block and never see a half-updated
// response. Create it with NewPublisher; the zero value is not usable.
type Publisher struct {
	cur  atomic.Pointer[served]
	opts options

	// Header values, built once. Every slice has len == cap so that a
	// downstream Header().Add copies instead of appending into shared memory.
	cacheControl []string
	contentType  []string
	cors         []string
	allow        []string
	noStore      []string

	errMethod       []byte
	errMethodLen    []string
	errNotLoaded    []byte
	errNotLoadedLen []string
}

// NewPublisher returns a Publisher that tells clients to cache the set for
// maxAge (Cache-Control: public, max-age=N, in whole seconds; negative
// values are treated as zero).
//
// maxAge bounds how long a verifier may keep using a stale set, so it should
// be shorter than the time between publishing a new key and starting to sign
// with it. Until the first Publish, the handler answers 503.
func NewPublisher(maxAge time.Duration, opts ...Option) *Publisher {
	secs := int64(maxAge / time.Second)
	if secs < 0 {
		secs = 0
	}
	p := &Publisher{
		cacheControl: []string{"public, max-age=" + strconv.FormatInt(secs, 10)},
		contentType:  []string{"application/json"},
		cors:         []string{"*"},
		allow:        []string{"GET, HEAD"},
		noStore:      []string{"no-store"},
		errMethod:    []byte(`{"error":"method not allowed"}`),
		errNotLoaded: []byte(`{"error":"key set not loaded yet"}`),
	}
	p.errMethodLen = []string{strconv.Itoa(len(p.errMethod))}
	p.errNotLoadedLen = []string{strconv.Itoa(len(p.errNotLoaded))}
	for _, o := range opts {
		if o != nil {
			o(&p.opts)
		}
	}
	return p
}

// Publish makes doc the set served from now on. It is safe to call
// concurrently with ServeHTTP and with other Publish calls (the last store
// wins).
//
// Publish copies doc.Body and recomputes the ETag from that copy, so what is
// served is always self-consistent even if doc is later modified or was not
// built by NewDocument. Publishing nil withdraws the set: the handler
// answers 503 again, as before the first Publish.
func (p *Publisher) Publish(doc *Document) {
	if doc == nil {
		p.cur.Store(nil)
		return
	}
	body := bytes.Clone(doc.Body)
	if body == nil {
		body = []byte{}
	}
	etag := etagFor(body)
	p.cur.Store(&served{
		doc:           doc,
		body:          body,
		etag:          []string{etag},
		opaque:        etag[1 : len(etag)-1],
		contentLength: []string{strconv.Itoa(len(body))},
	})
}

// Current returns the Document most recently published, or nil before the
// first Publish. It lets health checks and admin endpoints report what is
// live without going through HTTP.
func (p *Publisher) Current() *Document {
	if s := p.cur.Load(); s != nil {
		return s.doc
	}
	return nil
}

// ServeHTTP serves the current key set.
//
// GET and HEAD get 200 with the body (HEAD: headers only), or 304 when
// If-None-Match lists the current ETag (weak comparison, as RFC 9110
// requires for If-None-Match) or is "*". Other methods get 405 with
// Allow: GET, HEAD; before the first Publish every GET/HEAD gets 503.
// Responses are CORS-enabled (Access-Control-Allow-Origin: *) because the
// set is public and browser-based clients need to read it.
//
// Headers are assigned from pre-built slices using canonical keys, so the
// handler itself performs no allocations per request.
func (p *Publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status := p.serve(w, r)
	if fn := p.opts.onServe; fn != nil {
		fn(status)
	}
}

func (p *Publisher) serve(w http.ResponseWriter, r *http.Request) int {
	h := w.Header()
	head := r.Method == http.MethodHead
	if r.Method != http.MethodGet && !head {
		h["Allow"] = p.allow
		return p.writeError(w, h, http.StatusMethodNotAllowed, p.errMethod, p.errMethodLen, false)
	}
	s := p.cur.Load()
	if s == nil {
		return p.writeError(w, h, http.StatusServiceUnavailable, p.errNotLoaded, p.errNotLoadedLen, head)
	}

	h["Etag"] = s.etag
	h["Cache-Control"] = p.cacheControl
	// Sent on 304 as well: a browser revalidating a cross-origin cached
	// response updates the stored headers from the 304.
	h["Access-Control-Allow-Origin"] = p.cors
	if inm, ok := r.Header["If-None-Match"]; ok && ifNoneMatchHit(inm, s.opaque) {
		w.WriteHeader(http.StatusNotModified)
		return http.StatusNotModified
	}
	h["Content-Type"] = p.contentType
	h["Content-Length"] = s.contentLength
	w.WriteHeader(http.StatusOK)
	if !head {
		_, _ = w.Write(s.body)
	}
	return http.StatusOK
}

// writeError sends a small JSON error that must not be cached: a 503 from a
// replica that has not loaded keys yet must not stick in a shared cache.
func (p *Publisher) writeError(w http.ResponseWriter, h http.Header, status int, body []byte, length []string, head bool) int {
	h["Content-Type"] = p.contentType
	h["Content-Length"] = length
	h["Cache-Control"] = p.noStore
	h["Access-Control-Allow-Origin"] = p.cors
	w.WriteHeader(status)
	if !head {
		_, _ = w.Write(body)
	}
	return status
}

// ifNoneMatchHit reports whether any If-None-Match field line lists "*" or
// an entity tag whose opaque part equals opaque. Weak tags (W/"x") match
// their strong counterpart, per the weak comparison RFC 9110 §13.1.2
// prescribes for If-None-Match. Entity tags may contain commas, so the list
// is scanned tag by tag rather than split on commas; a malformed element is
// skipped up to the next comma. It does not allocate.
func ifNoneMatchHit(lines []string, opaque string) bool {
	for _, v := range lines {
		for {
			i := 0
			for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
				i++
			}
			v = v[i:]
			if v == "" {
				break
			}
			if v[0] == '*' {
				return true
			}
			v = strings.TrimPrefix(v, "W/")
			if v != "" && v[0] == '"' {
				if end := strings.IndexByte(v[1:], '"'); end >= 0 {
					if v[1:1+end] == opaque {
						return true
					}
					v = v[end+2:]
					continue
				}
				break // unterminated tag: nothing further can be parsed
			}
			// Malformed element: skip to the next comma.
			comma := strings.IndexByte(v, ',')
			if comma < 0 {
				break
			}
			v = v[comma+1:]
		}
	}
	return false
}
