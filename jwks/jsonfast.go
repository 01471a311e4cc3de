package jwks

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// decodeObject decodes a JSON object into a map exactly as
// json.Unmarshal(data, &map[string]any{}) would, returning nil and false for
// anything that is not a JSON object (including "null").
//
// Why not just json.Unmarshal: on a typical access token, encoding/json spends
// about as long decoding the header and the claims as a tenth of an RSA-2048
// verification, which alone would break the budget of the verifier (at least
// 90% of the raw RSA verification rate). Token headers and claims are small,
// flat and plain ASCII, so fastObject handles that common subset in one pass,
// with every string sharing the memory of s. Anything outside the subset
// (escapes, non-ASCII bytes, deep nesting, numbers float64 cannot hold,
// invalid syntax) makes it give up and the input goes through encoding/json,
// so results and errors are always encoding/json's. A differential fuzz test
// (FuzzFastObject) holds the two to the same answers.
func decodeObject(s string) (map[string]any, bool) {
	if m, ok := fastObject(s); ok {
		return m, true
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// maxFastDepth bounds the nesting fastObject handles itself; deeper input is
// left to encoding/json, which has its own limit.
const maxFastDepth = 16

// fastObject parses s when it is a JSON object within the subset described
// at decodeObject. ok is false when s is outside the subset or invalid; the
// caller must then use encoding/json.
func fastObject(s string) (m map[string]any, ok bool) {
	p := fastParser{s: s}
	p.skipSpace()
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil, false
	}
	m, ok = p.object(0)
	if !ok {
		return nil, false
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return nil, false
	}
	return m, true
}

type fastParser struct {
	s string
	i int
}

func (p *fastParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// object parses an object starting at p.s[p.i] == '{'.
func (p *fastParser) object(depth int) (map[string]any, bool) {
	if depth >= maxFastDepth {
		return nil, false
	}
	// Sized so that a token's claims fit without the map growing (which
	// allocates it twice): the colons bound the members from above (nested
	// members and URLs add some), capped where a bigger table would be
	// allocated. Nested objects are small.
	hint := 4
	if depth == 0 {
		hint = min(strings.Count(p.s, ":"), 14)
	}
	m := make(map[string]any, hint)
	ok := p.each('}', true, func(key string) bool {
		v, ok := p.value(depth)
		if ok {
			m[key] = v // a repeated name keeps the last value, as in encoding/json
		}
		return ok
	})
	if !ok {
		return nil, false
	}
	return m, true
}

func (p *fastParser) array(depth int) ([]any, bool) {
	if depth >= maxFastDepth {
		return nil, false
	}
	a := make([]any, 0, 4)
	ok := p.each(']', false, func(string) bool {
		v, ok := p.value(depth)
		a = append(a, v)
		return ok
	})
	if !ok {
		return nil, false
	}
	return a, true
}

// each walks the object (members, closing '}') or array (closing ']') whose
// opening bracket is at p.s[p.i]: for every element it reads the key (members
// only) and calls elem positioned at the value, which elem must parse; it
// checks the separators and the closing bracket and reports whether the
// container was well formed. Every container walk of this parser (building,
// reading typed claims, skipping) goes through it, so they accept the same
// syntax.
func (p *fastParser) each(end byte, members bool, elem func(key string) bool) bool {
	p.i++ // '{' or '['
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == end {
		p.i++
		return true
	}
	for {
		p.skipSpace()
		var key string
		if members {
			if p.i >= len(p.s) || p.s[p.i] != '"' {
				return false
			}
			k, ok := p.str()
			if !ok {
				return false
			}
			key = k
			p.skipSpace()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return false
			}
			p.i++
			p.skipSpace()
		}
		if !elem(key) {
			return false
		}
		p.skipSpace()
		if p.i >= len(p.s) {
			return false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case end:
			p.i++
			return true
		default:
			return false
		}
	}
}

func (p *fastParser) value(depth int) (any, bool) {
	if p.i >= len(p.s) {
		return nil, false
	}
	switch c := p.s[p.i]; {
	case c == '"':
		s, ok := p.str()
		return s, ok
	case c == '{':
		m, ok := p.object(depth + 1)
		return m, ok
	case c == '[':
		a, ok := p.array(depth + 1)
		return a, ok
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		f, ok := p.number()
		return f, ok
	}
	return nil, false
}

func (p *fastParser) literal(lit string) bool {
	if len(p.s)-p.i < len(lit) || p.s[p.i:p.i+len(lit)] != lit {
		return false
	}
	p.i += len(lit)
	return true
}

// str parses a string without escapes made of printable ASCII, starting at
// the opening quote.
func (p *fastParser) str() (string, bool) {
	start := p.i + 1
	for j := start; j < len(p.s); j++ {
		switch c := p.s[j]; {
		case c == '"':
			p.i = j + 1
			return p.s[start:j], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
	}
	return "", false
}

// number parses a number following the JSON grammar exactly
// (-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?) into a float64, as
// encoding/json does for an interface value.
func (p *fastParser) number() (float64, bool) {
	s, start, j := p.s, p.i, p.i
	if s[j] == '-' {
		j++
	}
	switch {
	case j < len(s) && s[j] == '0':
		j++
	case j < len(s) && '1' <= s[j] && s[j] <= '9':
		j = digits(s, j)
	default:
		return 0, false
	}
	j, ok := fraction(s, j)
	if !ok {
		return 0, false
	}
	if j, ok = exponent(s, j); !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(s[start:j], 64)
	if err != nil { // out of range: encoding/json reports that, let it
		return 0, false
	}
	p.i = j
	return f, true
}

// digits returns the index after the run of decimal digits at s[j:].
func digits(s string, j int) int {
	for j < len(s) && '0' <= s[j] && s[j] <= '9' {
		j++
	}
	return j
}

// fraction consumes an optional ".digits" at s[j:]: false if the dot has no
// digit after it.
func fraction(s string, j int) (int, bool) {
	if j >= len(s) || s[j] != '.' {
		return j, true
	}
	j++
	if j >= len(s) || s[j] < '0' || s[j] > '9' {
		return 0, false
	}
	return digits(s, j), true
}

// exponent consumes an optional "e[+-]digits" at s[j:]: false if the
// exponent has no digit.
func exponent(s string, j int) (int, bool) {
	if j >= len(s) || (s[j] != 'e' && s[j] != 'E') {
		return j, true
	}
	j++
	if j < len(s) && (s[j] == '+' || s[j] == '-') {
		j++
	}
	if j >= len(s) || s[j] < '0' || s[j] > '9' {
		return 0, false
	}
	return digits(s, j), true
}

// fastClaims decodes the registered claims of the payload s straight into
// c's typed fields, without building the map of every claim that
// decodeObject would (boxing each value costs an allocation). It handles
// the subset fastObject does and, in addition, only registered claims of
// the expected JSON type (or null): anything else, including a wrong type
// or an out-of-range NumericDate, makes it return false, and the caller
// must then decode through decodeObject and claimsFromMap, which produce
// the answer and the error. When it returns true, s is a JSON object that
// encoding/json decodes into a map, and c's fields are what
// claimsFromMap would give for that map (FuzzFastClaims holds it to that).
// c's strings share the memory of s.
func fastClaims(s string, c *Claims) bool {
	p := fastParser{s: s}
	p.skipSpace()
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return false
	}
	// NumericDates as read (the last occurrence wins, null clears),
	// converted once the object is known to be valid.
	var exp, iat, nbf float64
	var hasExp, hasIat, hasNbf bool
	var scope string
	ok := p.each('}', true, func(key string) (ok bool) {
		switch key {
		case "iss":
			return p.stringOrNull(&c.Issuer)
		case "sub":
			return p.stringOrNull(&c.Subject)
		case "jti":
			return p.stringOrNull(&c.ID)
		case "client_id":
			return p.stringOrNull(&c.ClientID)
		case "scope":
			return p.stringOrNull(&scope)
		case "aud":
			c.Audience, ok = p.audience()
		case "exp":
			exp, hasExp, ok = p.numberOrNull()
		case "iat":
			iat, hasIat, ok = p.numberOrNull()
		case "nbf":
			nbf, hasNbf, ok = p.numberOrNull()
		case "cnf":
			c.JKT, ok = p.confirmation()
		default:
			ok = p.skipValue(0)
		}
		return ok
	})
	if !ok {
		return false
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return false
	}
	if scope != "" {
		c.Scope = strings.Fields(scope)
	}
	if c.Expiry, ok = fastDate(exp, hasExp); !ok {
		return false
	}
	if c.IssuedAt, ok = fastDate(iat, hasIat); !ok {
		return false
	}
	if c.NotBefore, ok = fastDate(nbf, hasNbf); !ok {
		return false
	}
	return true
}

// fastDate converts a NumericDate read by fastClaims; false means it is out
// of range, an error claimsFromMap reports.
func fastDate(f float64, present bool) (time.Time, bool) {
	if !present {
		return time.Time{}, true
	}
	t, err := numericDate(f)
	return t, err == nil
}

// stringOrNull reads a string into *dst, or null as "".
func (p *fastParser) stringOrNull(dst *string) bool {
	if p.i >= len(p.s) {
		return false
	}
	switch p.s[p.i] {
	case '"':
		v, ok := p.str()
		*dst = v
		return ok
	case 'n':
		*dst = ""
		return p.literal("null")
	}
	return false
}

// numberOrNull reads a number, or null as absent.
func (p *fastParser) numberOrNull() (f float64, present, ok bool) {
	if p.i >= len(p.s) {
		return 0, false, false
	}
	switch c := p.s[p.i]; {
	case c == 'n':
		return 0, false, p.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		f, ok = p.number()
		return f, ok, ok
	}
	return 0, false, false
}

// confirmation reads "cnf" (an object, or null) and returns its "jkt", or
// "" when it has none. Other confirmation members are skipped.
func (p *fastParser) confirmation() (jkt string, ok bool) {
	if p.i >= len(p.s) {
		return "", false
	}
	switch p.s[p.i] {
	case 'n':
		return "", p.literal("null")
	case '{':
		ok = p.each('}', true, func(key string) bool {
			if key == "jkt" {
				return p.stringOrNull(&jkt)
			}
			return p.skipValue(1)
		})
		return jkt, ok
	}
	return "", false
}

// audience reads "aud": a string, an array of strings, or null.
func (p *fastParser) audience() ([]string, bool) {
	if p.i >= len(p.s) {
		return nil, false
	}
	switch p.s[p.i] {
	case '"':
		v, ok := p.str()
		if !ok {
			return nil, false
		}
		return []string{v}, true
	case 'n':
		return nil, p.literal("null")
	case '[':
	default:
		return nil, false
	}
	var small [8]string
	a := small[:0]
	ok := p.each(']', false, func(string) bool {
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return false
		}
		v, ok := p.str()
		a = append(a, v)
		return ok
	})
	if !ok {
		return nil, false
	}
	if len(a) == 0 {
		return []string{}, true
	}
	return slices.Clone(a), true
}

// skipValue checks and steps over a value inside an object at depth,
// accepting exactly what value would, without building it.
func (p *fastParser) skipValue(depth int) bool {
	if p.i >= len(p.s) {
		return false
	}
	switch c := p.s[p.i]; {
	case c == '"':
		_, ok := p.str()
		return ok
	case c == '{':
		return p.skipContainer(depth+1, '}', true)
	case c == '[':
		return p.skipContainer(depth+1, ']', false)
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		_, ok := p.number()
		return ok
	}
	return false
}

// skipContainer steps over an object (members) or an array at depth,
// starting at its opening bracket, as object and array would parse it.
func (p *fastParser) skipContainer(depth int, end byte, members bool) bool {
	if depth >= maxFastDepth {
		return false
	}
	return p.each(end, members, func(string) bool { return p.skipValue(depth) })
}
