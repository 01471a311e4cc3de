package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// DPoP proof errors. Every error VerifyDPoPProof returns wraps exactly one of
// them, with detail after a colon for logs; the sentinel texts are safe to
// send as error_description.
var (
	// ErrDPoPInvalidProof: the proof is missing, malformed, badly signed, or
	// does not match the request, the token or the key it must be bound to
	// (RFC 9449 error code "invalid_dpop_proof").
	ErrDPoPInvalidProof = errors.New("DPoP proof is invalid")
	// ErrDPoPUseNonce: the proof is otherwise valid but does not carry the
	// nonce the server requires; the server answers error "use_dpop_nonce"
	// with a fresh DPoP-Nonce header (RFC 9449 §8, §9).
	ErrDPoPUseNonce = errors.New("DPoP proof lacks the server's nonce")
)

// DPoPProofType is the "typ" header every DPoP proof carries (RFC 9449 §4.2),
// which keeps any other JWT signed by the client's key from being used as one.
const DPoPProofType = "dpop+jwt"

// DefaultDPoPWindow is how far a proof's iat may be from now, either way,
// when DPoPProofCheck.Window is zero: long enough for a request's flight and
// loosely synchronized clocks, short enough that the replay record a server
// keeps (entries live this long) stays small.
const DefaultDPoPWindow = 60 * time.Second

// Bounds on what a proof may be, checked before the expensive steps.
const (
	// maxDPoPProofBytes bounds the proof looked at: a proof with an RSA-4096
	// key is under 2 KiB, so 8 KiB refuses only abuse, before any parsing.
	maxDPoPProofBytes = 8 << 10
	// maxDPoPJTIBytes bounds jti, which callers keep in their replay record.
	maxDPoPJTIBytes = 256
	// minDPoPRSABits refuses RSA proof keys too short to mean anything.
	minDPoPRSABits = 2048
)

// dpopAlgorithms are the algorithms a proof may ever use: asymmetric only,
// since the verifier has nothing but the proof's own public key ("none" or
// HMAC would prove nothing). DPoPProofCheck.Algorithms narrows this.
var dpopAlgorithms = []string{
	"ES256", "ES384", "ES512", "EdDSA",
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
}

// DefaultDPoPAlgorithms returns the proof algorithms accepted when
// DPoPProofCheck.Algorithms is nil: the ones RFC 9449 deployments use (ES256
// first, as clients most often sign with it). Servers advertise this list in
// dpop_signing_alg_values_supported and in the algs of their challenges. It
// is a function returning a fresh slice so that no caller can change the
// default for everyone.
func DefaultDPoPAlgorithms() []string {
	return []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"}
}

// DPoPProofCheck says what one DPoP proof (RFC 9449 §4.3) must match.
type DPoPProofCheck struct {
	// Method is the request's HTTP method; htm must equal it exactly.
	Method string
	// URL is the request's URL as the client addressed it (scheme, host,
	// path); htu must equal it once both are normalised (RFC 9449 §4.3 point
	// 9: RFC 3986 §6.2.2 and §6.2.3 normalisation, query and fragment
	// ignored).
	URL string
	// AccessToken, when non-empty, requires the proof to carry
	// ath = base64url(SHA-256(AccessToken)) (RFC 9449 §4.3 point 11).
	AccessToken string
	// JKT, when non-empty, requires the proof key's RFC 7638 SHA-256
	// thumbprint to equal it: the cnf.jkt of the token being presented.
	JKT string
	// Nonce, when non-empty, requires the proof to carry exactly this nonce;
	// otherwise the error wraps ErrDPoPUseNonce.
	Nonce string
	// Algorithms accepted in the proof header. nil means
	// DefaultDPoPAlgorithms(); a name outside the asymmetric algorithms
	// (none, HS256...) is never accepted, whatever this says.
	Algorithms []string
	// Window is how far iat may be from Now, either way. Zero means
	// DefaultDPoPWindow (60 s).
	Window time.Duration
	// Now is the time iat is compared with; zero means time.Now().
	Now time.Time
}

// DPoPProof is what a verified proof says; JTI and IssuedAt let the caller
// reject replays (a proof is single-use, RFC 9449 §11.1).
type DPoPProof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's public key,
	// base64url: what a token bound to this key carries in cnf.jkt.
	JKT string
	// JTI is the proof's unique identifier, at most 256 bytes.
	JTI string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
	// Nonce is the proof's nonce, "" when it has none.
	Nonce string
}

// dpopClaims are the claims of a proof (RFC 9449 §4.2).
type dpopClaims struct {
	htm, htu, jti, ath, nonce string
	iat                       time.Time
}

// VerifyDPoPProof verifies proof, the value of one DPoP header, against
// check, and returns what it says. It does NOT check jti replay: the caller
// keeps the replay record (store-backed on the issuer, a bounded cache in
// Middleware), using the returned JTI and IssuedAt.
//
// A request with several DPoP headers must be refused by the caller before
// this is called (RFC 9449 §4.3 point 1); proof is one header's value.
func VerifyDPoPProof(proof string, check DPoPProofCheck) (*DPoPProof, error) {
	return verifyDPoPProof(proof, check, nil)
}

// verifyDPoPProof is VerifyDPoPProof with a cache of the keys of header
// segments seen in valid proofs (nil: none). A client signs its proofs with
// one key, so its header segment repeats, and parsing its key, the
// larger part of the cost of a proof after the signature, is done once.
// The cache is only filled with headers of proofs that verified, and it is
// only consulted with the same Algorithms (one middleware's).
func verifyDPoPProof(proof string, check DPoPProofCheck, keys *dpopKeyCache) (*DPoPProof, error) {
	switch {
	case proof == "":
		return nil, errorf(ErrDPoPInvalidProof, "no proof")
	case len(proof) > maxDPoPProofBytes:
		return nil, errorf(ErrDPoPInvalidProof, "proof is %d bytes, more than the %d accepted", len(proof), maxDPoPProofBytes)
	case strings.Count(proof, ".") != 2:
		// Compact serialization only (RFC 9449 §4.2: a JWT), so the JSON
		// serialization with its several signatures is never considered.
		return nil, errorf(ErrDPoPInvalidProof, "not a compact JWS (want three base64url parts separated by dots)")
	}
	seg := proof[:strings.IndexByte(proof, '.')]
	key := keys.get(seg)
	if key == nil {
		var err error
		if key, err = parseDPoPHeader(seg, check.Algorithms); err != nil {
			return nil, err
		}
	}
	// Verify with the jwx verifier over the compact signing input rather than
	// jws.Verify, which would parse the whole proof (and its jwk) a second time.
	dot := strings.LastIndexByte(proof, '.')
	sig, err := b64.DecodeString(proof[dot+1:])
	if err != nil {
		return nil, errorf(ErrDPoPInvalidProof, "signature is not base64url: %v", err)
	}
	if err := key.verifier.Verify([]byte(proof[:dot]), sig, key.raw); err != nil {
		return nil, errorf(ErrDPoPInvalidProof, "signature does not verify with the header's jwk: %v", err)
	}
	claims, err := dpopProofClaims(proof[len(seg)+1 : dot])
	if err != nil {
		return nil, err
	}
	if err := claims.check(check); err != nil {
		return nil, err
	}
	if check.JKT != "" && subtle.ConstantTimeCompare([]byte(key.jkt), []byte(check.JKT)) != 1 {
		return nil, errorf(ErrDPoPInvalidProof, "proof key thumbprint %s is not the token's cnf.jkt %s", key.jkt, check.JKT)
	}
	// The nonce comes last: ErrDPoPUseNonce tells the client to retry with a
	// fresh nonce, which is only worth it when nothing else is wrong.
	if check.Nonce != "" && subtle.ConstantTimeCompare([]byte(claims.nonce), []byte(check.Nonce)) != 1 {
		if claims.nonce == "" {
			return nil, errorf(ErrDPoPUseNonce, "the proof has no nonce")
		}
		return nil, errorf(ErrDPoPUseNonce, "the proof's nonce is not the current one")
	}
	keys.put(seg, key)
	return &DPoPProof{JKT: key.jkt, JTI: claims.jti, IssuedAt: claims.iat, Nonce: claims.nonce}, nil
}

// dpopKey is what a proof's header says: the alg, the public key (as jwx
// parsed it and as the crypto/* type the verifier takes), its thumbprint,
// and the jwx verifier for the alg (stateless, so shared).
type dpopKey struct {
	alg      string
	raw      any
	jkt      string
	verifier jws.Verifier
}

// parseDPoPHeader checks the header segment of a proof and returns the key
// it carries, not yet checked against the signature.
func parseDPoPHeader(seg string, algorithms []string) (*dpopKey, error) {
	// The header's private members are looked for in its JSON, as sent:
	// jwx parses a jwk with "d" as a private key, but one with only "p" or
	// "k" members may not come out distinguishable, and none may be there.
	hm, err := decodeSegment(seg, ErrDPoPInvalidProof, "header")
	if err != nil {
		return nil, err
	}
	if err := checkDPoPHeader(hm, algorithms); err != nil {
		return nil, err
	}
	alg := hm["alg"].(string) // checkDPoPHeader made sure
	// The header's jwk is trusted to verify the signature here, and only
	// here: a DPoP proof is by definition signed by the key it carries
	// (RFC 9449 §4.3 point 7), and what binds that key to anything is the
	// thumbprint the caller compares with the token's cnf.jkt. Access
	// tokens never get their key from a header (see parseHeader).
	//
	// The header is not parsed again by jws.Parse, which would decode all
	// of it through reflection (measured at a fifth of the middleware's
	// cost for a DPoP request); jwx parses the key alone from its JSON.
	jwkJSON, err := json.Marshal(hm["jwk"])
	if err != nil {
		return nil, errorf(ErrDPoPInvalidProof, `header "jwk": %v`, err)
	}
	k, err := jwk.ParseKey(jwkJSON)
	if err != nil {
		return nil, errorf(ErrDPoPInvalidProof, `header "jwk" is not a key: %v`, err)
	}
	raw, err := dpopPublicKey(k, alg)
	if err != nil {
		return nil, err
	}
	jkt, err := DPoPThumbprint(k)
	if err != nil {
		return nil, errorf(ErrDPoPInvalidProof, "%v", err)
	}
	verifier, err := jws.NewVerifier(jwa.SignatureAlgorithm(alg))
	if err != nil {
		return nil, errorf(ErrDPoPInvalidProof, "alg %q: %v", alg, err)
	}
	return &dpopKey{alg: alg, raw: raw, jkt: jkt, verifier: verifier}, nil
}

// dpopPrivateMembers are the JWK members of private and symmetric keys
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var dpopPrivateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// checkDPoPHeader checks the header members of RFC 9449 §4.3 points 4 to 7
// that need no key: typ, alg, no crit, and a jwk without private members.
func checkDPoPHeader(hm map[string]any, algorithms []string) error {
	if typ, _ := hm["typ"].(string); typ != DPoPProofType {
		return errorf(ErrDPoPInvalidProof, `header "typ" is %v, want %q`, jsonText(hm["typ"]), DPoPProofType)
	}
	alg, _ := hm["alg"].(string)
	if algorithms == nil {
		algorithms = DefaultDPoPAlgorithms()
	}
	if !slices.Contains(dpopAlgorithms, alg) || !slices.Contains(algorithms, alg) {
		return errorf(ErrDPoPInvalidProof, "alg %v is not accepted (want one of %s)", jsonText(hm["alg"]), strings.Join(algorithms, ", "))
	}
	if _, present := hm["crit"]; present {
		return errorf(ErrDPoPInvalidProof, `header has "crit" extensions, none of which is supported`)
	}
	jm, ok := hm["jwk"].(map[string]any)
	if !ok {
		return errorf(ErrDPoPInvalidProof, `header has no "jwk" object`)
	}
	for _, m := range dpopPrivateMembers {
		if _, present := jm[m]; present {
			return errorf(ErrDPoPInvalidProof, `header "jwk" has the private member %q; a proof carries the public key only`, m)
		}
	}
	if jwkAlg, present := jm["alg"]; present && jwkAlg != alg {
		return errorf(ErrDPoPInvalidProof, `header "jwk" is for alg %q, the proof uses %q`, jwkAlg, alg)
	}
	return nil
}

// dpopPublicKey returns k as the crypto/* public key type alg calls for, and
// refuses any other pairing: an RSA key for RS and PS, the curve of the
// ES algorithm, Ed25519 for EdDSA.
func dpopPublicKey(k jwk.Key, alg string) (any, error) {
	var raw any
	if err := k.Raw(&raw); err != nil {
		return nil, errorf(ErrDPoPInvalidProof, `header "jwk": %v`, err)
	}
	var want string
	switch pub := raw.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minDPoPRSABits {
			return nil, errorf(ErrDPoPInvalidProof, "RSA key of %d bits, want at least %d", pub.N.BitLen(), minDPoPRSABits)
		}
		if alg[0] == 'R' || alg[0] == 'P' {
			return raw, nil
		}
		want = "RS* or PS*"
	case *ecdsa.PublicKey:
		want = map[elliptic.Curve]string{elliptic.P256(): "ES256", elliptic.P384(): "ES384", elliptic.P521(): "ES512"}[pub.Curve]
	case ed25519.PublicKey:
		want = "EdDSA"
	default:
		return nil, errorf(ErrDPoPInvalidProof, `header "jwk" is a %T, not a public key`, raw)
	}
	if want != alg {
		return nil, errorf(ErrDPoPInvalidProof, `header "jwk" is a key for %s, the proof uses %s`, want, alg)
	}
	return raw, nil
}

// dpopProofClaims decodes the proof's claims from its payload segment; call
// it only after the signature has been verified.
func dpopProofClaims(payload string) (dpopClaims, error) {
	var c dpopClaims
	m, err := decodeSegment(payload, ErrDPoPInvalidProof, "payload")
	if err != nil {
		return c, err
	}
	for _, f := range [...]struct {
		dst      *string
		name     string
		required bool
	}{{&c.htm, "htm", true}, {&c.htu, "htu", true}, {&c.jti, "jti", true}, {&c.ath, "ath", false}, {&c.nonce, "nonce", false}} {
		v, present := m[f.name]
		s, isString := v.(string)
		switch {
		case present && !isString:
			return c, errorf(ErrDPoPInvalidProof, "claim %q is not a string", f.name)
		case f.required && s == "":
			return c, errorf(ErrDPoPInvalidProof, "claim %q is missing", f.name)
		}
		*f.dst = s
	}
	if _, present := m["iat"]; !present {
		return c, errorf(ErrDPoPInvalidProof, `claim "iat" is missing`)
	}
	if c.iat, err = dateClaim(m, "iat"); err != nil {
		return c, errorf(ErrDPoPInvalidProof, `claim "iat" is not a NumericDate`)
	}
	return c, nil
}

// check compares the claims with what the request needs (RFC 9449 §4.3
// points 8 to 11), all but the nonce, which the caller checks last.
func (c dpopClaims) check(check DPoPProofCheck) error {
	if len(c.jti) > maxDPoPJTIBytes {
		return errorf(ErrDPoPInvalidProof, "jti is %d bytes, more than the %d accepted", len(c.jti), maxDPoPJTIBytes)
	}
	if c.htm != check.Method {
		return errorf(ErrDPoPInvalidProof, "htm %q is not the request's method %q", c.htm, check.Method)
	}
	want, err := normalizeHTU(check.URL)
	if err != nil {
		// The URL comes from the request (its Host header), so a URL that
		// cannot be compared is the request's fault, not the caller's.
		return errorf(ErrDPoPInvalidProof, "the request's URL %q cannot be compared with htu: %v", check.URL, err)
	}
	if got, err := normalizeHTU(c.htu); err != nil || got != want {
		return errorf(ErrDPoPInvalidProof, "htu %q is not the request's URL %q", c.htu, want)
	}
	now, window := check.Now, orDefault(check.Window, DefaultDPoPWindow)
	if now.IsZero() {
		now = time.Now()
	}
	if d := now.Sub(c.iat); d > window || d < -window {
		return errorf(ErrDPoPInvalidProof, "iat %s is %s from now, more than the %s allowed",
			c.iat.Format(time.RFC3339), d.Round(time.Second), window)
	}
	if check.AccessToken != "" {
		if c.ath == "" {
			return errorf(ErrDPoPInvalidProof, `claim "ath" is missing; a proof presented with a token must carry its hash`)
		}
		if subtle.ConstantTimeCompare([]byte(c.ath), []byte(DPoPAccessTokenHash(check.AccessToken))) != 1 {
			return errorf(ErrDPoPInvalidProof, `claim "ath" is not the hash of the presented token`)
		}
	}
	return nil
}

// normalizeHTU reduces an absolute http(s) URL to the form compared for htu
// (RFC 9449 §4.3 point 9): scheme and host in lower case, the scheme's
// default port dropped, an empty path as "/", percent-encoding in upper case
// with unreserved characters decoded (RFC 3986 §6.2.2, §6.2.3); query and
// fragment dropped.
func normalizeHTU(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && scheme != "http") || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", fmt.Errorf("not an absolute http(s) URL without user information")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := normalizePercent(u.EscapedPath())
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// normalizePercent puts every percent-encoding of an escaped path in upper
// case and decodes those of unreserved characters (RFC 3986 §6.2.2.1,
// §6.2.2.2). url.Parse has already refused malformed escapes.
func normalizePercent(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+3 > len(p) {
			b.WriteByte(p[i])
			continue
		}
		c, err := strconv.ParseUint(p[i+1:i+3], 16, 8)
		if err != nil {
			b.WriteByte(p[i])
			continue
		}
		if isUnreserved(byte(c)) {
			b.WriteByte(byte(c))
		} else {
			b.WriteString(strings.ToUpper(p[i : i+3]))
		}
		i += 2
	}
	return b.String()
}

// isUnreserved reports whether c is an RFC 3986 §2.3 unreserved character.
func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// jsonText shows a header value as JSON for an error detail ("absent" for
// none), so that a missing member does not print as a Go formatting error.
func jsonText(v any) string {
	if v == nil {
		return "absent"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// DPoPThumbprint returns the RFC 7638 SHA-256 thumbprint of key, base64url
// without padding: the "jkt" that binds a token to the key (cnf.jkt, RFC
// 9449 §6.1) and the dpop_jkt of an authorization request (§10). A private
// key has the thumbprint of its public key.
func DPoPThumbprint(key jwk.Key) (string, error) {
	if key == nil {
		return "", errors.New("jwks: DPoPThumbprint of a nil key")
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("jwks: thumbprint of a %s key: %w", key.KeyType(), err)
	}
	return b64.EncodeToString(tp), nil
}

// DPoPAccessTokenHash returns the "ath" a proof presented with token must
// carry: base64url(SHA-256(token)) without padding (RFC 9449 §4.2).
func DPoPAccessTokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return b64.EncodeToString(h[:])
}
