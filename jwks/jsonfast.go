package jwks

import (
	"encoding/json"
	"strconv"
	"strings"
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
	p.i++ // '{'
	// Sized so that a token's claims fit without the map growing (which
	// allocates it twice): the colons bound the members from above (nested
	// members and URLs add some), capped where a bigger table would be
	// allocated. Nested objects are small.
	hint := 4
	if depth == 0 {
		hint = min(strings.Count(p.s, ":"), 14)
	}
	m := make(map[string]any, hint)
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return m, true
	}
	for {
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, false
		}
		key, ok := p.str()
		if !ok {
			return nil, false
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.skipSpace()
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		m[key] = v // a repeated name keeps the last value, as in encoding/json
		p.skipSpace()
		if p.i >= len(p.s) {
			return nil, false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return m, true
		default:
			return nil, false
		}
	}
}

func (p *fastParser) array(depth int) ([]any, bool) {
	if depth >= maxFastDepth {
		return nil, false
	}
	p.i++ // '['
	a := make([]any, 0, 4)
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return a, true
	}
	for {
		p.skipSpace()
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		p.skipSpace()
		if p.i >= len(p.s) {
			return nil, false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return a, true
		default:
			return nil, false
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
		return p.number()
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
func (p *fastParser) number() (any, bool) {
	s, start, j := p.s, p.i, p.i
	if s[j] == '-' {
		j++
	}
	switch {
	case j < len(s) && s[j] == '0':
		j++
	case j < len(s) && '1' <= s[j] && s[j] <= '9':
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
	default:
		return nil, false
	}
	if j < len(s) && s[j] == '.' {
		j++
		if j >= len(s) || s[j] < '0' || s[j] > '9' {
			return nil, false
		}
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		j++
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j >= len(s) || s[j] < '0' || s[j] > '9' {
			return nil, false
		}
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
	}
	f, err := strconv.ParseFloat(s[start:j], 64)
	if err != nil { // out of range: encoding/json reports that, let it
		return nil, false
	}
	p.i = j
	return f, true
}
