package jwks

import (
	"crypto"
	"encoding/base64"
	"slices"
	"strings"
	"sync"
)

// maxTokenBytes bounds the tokens Verify looks at. Keygate's access tokens
// are well under 2 KiB; the bound keeps a hostile client from making the
// verifier decode megabytes before the signature check fails.
const maxTokenBytes = 16 << 10

// b64 is strict so that a token has exactly one encoding: a lax decoder
// accepts variants of the last character (unused bits set), which would let
// anyone make a "different" token string from a valid one and defeat caches
// or replay checks keyed on the string.
var b64 = base64.RawURLEncoding.Strict()

// tokenHeader is what the verifiers read from a protected header.
type tokenHeader struct {
	alg, kid, typ string
}

// compactToken is a compact JWS split and with its protected header read.
// Nothing in it is authenticated until the signature has been checked.
type compactToken struct {
	tokenHeader
	headerSeg    string // the header segment, still base64url
	signingInput string // header "." payload, what the signature covers
	payload      string // the payload segment, still base64url
	sig          []byte // in buf: valid until buf is released
	buf          *scratch
}

// parseCompact splits token and reads its header.
func parseCompact(token string, buf *scratch) (compactToken, error) {
	t, err := splitCompact(token, buf)
	if err != nil {
		return t, err
	}
	t.tokenHeader, err = parseHeader(t.headerSeg)
	return t, err
}

// splitCompact splits token into its parts and decodes the signature into
// buf, leaving the header to parseHeader (or a cache of its results).
func splitCompact(token string, buf *scratch) (compactToken, error) {
	t := compactToken{buf: buf}
	if len(token) > maxTokenBytes {
		return t, errorf(ErrMalformed, "token is %d bytes, more than the %d accepted", len(token), maxTokenBytes)
	}
	dot1 := strings.IndexByte(token, '.')
	dot2 := strings.LastIndexByte(token, '.')
	if dot1 < 0 || dot1 == dot2 || strings.IndexByte(token[dot1+1:dot2], '.') >= 0 {
		return t, errorf(ErrMalformed, "not a compact JWS (want three base64url parts separated by dots)")
	}
	// An empty signature (alg "none") is let through here so that the
	// verifier reports the algorithm, the actual problem.
	var err error
	if t.sig, err = buf.decode(token[dot2+1:]); err != nil {
		return t, errorf(ErrMalformed, "signature is not base64url: %v", err)
	}
	t.headerSeg = token[:dot1]
	t.signingInput = token[:dot2]
	t.payload = token[dot1+1 : dot2]
	return t, nil
}

// parseHeader reads the protected header members the verifiers use.
//
// Only alg, kid, typ and crit are read. jku, x5u, x5c and jwk are never
// looked at: they would let the token choose the key that verifies it, and
// the keys trusted here come only from the issuer's key set (or, for client
// tokens, from the key server).
func parseHeader(seg string) (tokenHeader, error) {
	var h tokenHeader
	m, err := decodeSegment(seg, ErrMalformed, "header")
	if err != nil {
		return h, err
	}
	var ok bool
	if h.alg, ok = m["alg"].(string); !ok {
		return h, errorf(ErrMalformed, `header has no "alg" string`)
	}
	if kid, present := m["kid"]; present {
		if h.kid, ok = kid.(string); !ok {
			return h, errorf(ErrMalformed, `header "kid" is not a string`)
		}
	}
	if typ, present := m["typ"]; present {
		if h.typ, ok = typ.(string); !ok {
			return h, errorf(ErrMalformed, `header "typ" is not a string`)
		}
	}
	if _, present := m["crit"]; present {
		// RFC 7515 §4.1.11: extensions listed in crit must be understood,
		// and none is (this also refuses unencoded payloads, RFC 7797).
		return h, errorf(ErrMalformed, `header has "crit" extensions, none of which is supported`)
	}
	return h, nil
}

// decodeSegment decodes a base64url segment holding a JSON object (what
// names it in errors, which wrap sentinel).
func decodeSegment(seg string, sentinel error, what string) (map[string]any, error) {
	raw, err := b64.DecodeString(seg)
	if err != nil {
		return nil, errorf(sentinel, "%s is not base64url: %v", what, err)
	}
	m, ok := decodeObject(string(raw))
	if !ok {
		return nil, errorf(sentinel, "%s is not a JSON object", what)
	}
	return m, nil
}

// decodePayload decodes the payload segment into claims. Call it only after
// the signature has been verified, unless (as for client tokens) the only
// use of the result is to find the key, and everything is re-read after.
func (t *compactToken) decodePayload() (map[string]any, error) {
	raw, err := t.buf.decode(t.payload)
	if err != nil {
		return nil, errorf(ErrMalformed, "payload is not base64url: %v", err)
	}
	m, ok := decodeObject(string(raw))
	if !ok {
		return nil, errorf(ErrMalformed, "claims are not a JSON object")
	}
	return m, nil
}

// decodeClaims decodes the payload segment into Claims, which keep a copy
// of the payload JSON for Claims.Raw. Call it only after the signature has
// been verified.
func (t *compactToken) decodeClaims() (*Claims, error) {
	raw, err := t.buf.decode(t.payload)
	if err != nil {
		return nil, errorf(ErrMalformed, "payload is not base64url: %v", err)
	}
	return decodeClaims(string(raw), t.kid)
}

// typeMatches compares a typ header with the expected one, ignoring case
// and an "application/" prefix (RFC 7515 §4.1.9).
func typeMatches(typ, expected string) bool {
	const prefix = "application/"
	if len(typ) >= len(prefix) && strings.EqualFold(typ[:len(prefix)], prefix) {
		typ = typ[len(prefix):]
	}
	if len(expected) >= len(prefix) && strings.EqualFold(expected[:len(prefix)], prefix) {
		expected = expected[len(prefix):]
	}
	return strings.EqualFold(typ, expected)
}

// verifySignature checks the token's signature with pub under alg.
func (t *compactToken) verifySignature(alg string, pub crypto.PublicKey) error {
	return verifySig(alg, pub, t.buf.copyString(t.signingInput), t.sig)
}

// scratch holds the bytes of one verification that do not outlive it: the
// decoded signature, the signing input copied for hashing (crypto/sha256
// takes bytes, and the conversion from the token string would allocate),
// and the decoded payload before its strings are copied out. Pooled
// because allocating these ~1.2 KiB afresh for every token showed up as GC
// work next to the RSA verification itself.
type scratch struct{ b []byte }

var scratchPool = sync.Pool{New: func() any { return &scratch{b: make([]byte, 0, 2048)} }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

// putScratch returns s to the pool; nothing decoded into it may be used
// afterwards. Buffers grown by unusually large tokens are dropped.
func putScratch(s *scratch) {
	if cap(s.b) <= 4*maxTokenBytes {
		s.b = s.b[:0]
		scratchPool.Put(s)
	}
}

// decode appends the base64url decoding of seg and returns it. Earlier
// results stay valid: if the buffer has to grow they keep the old array.
func (s *scratch) decode(seg string) ([]byte, error) {
	start := len(s.b)
	s.b = slices.Grow(s.b, b64.DecodedLen(len(seg)))
	n, err := b64.Decode(s.b[start:start+b64.DecodedLen(len(seg))], []byte(seg))
	if err != nil {
		return nil, err
	}
	s.b = s.b[:start+n]
	return s.b[start : start+n : start+n], nil
}

// copyString appends str and returns the copy.
func (s *scratch) copyString(str string) []byte {
	start := len(s.b)
	s.b = append(s.b, str...)
	return s.b[start:len(s.b):len(s.b)]
}
