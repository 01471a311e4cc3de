package jwks

import (
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Claims is a verified token's content.
//
// The registered claims are decoded into typed fields because every
// resource server needs them; Raw and Claim give every claim, registered or
// not, as encoding/json would decode it (numbers are float64), for the
// rest. Absent claims leave their field at the zero value.
//
// A Claims must not be copied after first use (it decodes the claim map at
// most once, on the first call of Raw or Claim).
type Claims struct {
	Issuer    string    // iss
	Subject   string    // sub: the user, or the client for client_credentials
	Audience  []string  // aud, always as a list
	Expiry    time.Time // exp (always present in a verified access token)
	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf
	ID        string    // jti
	ClientID  string    // client_id: the OAuth client the token was issued to
	Scope     []string  // scope, split on spaces
	KeyID     string    // kid of the key that verified the signature
	// JKT is cnf.jkt (RFC 9449 §6.1): the thumbprint of the key the token is
	// bound to, "" for a bearer token. Middleware accepts a token that has
	// one only with a DPoP proof signed by that key.
	JKT string

	// payload is the claims JSON (a copy, owned by the Claims) from which
	// Raw decodes raw on first use, unless raw was already decoded.
	payload string
	rawOnce sync.Once
	raw     map[string]any
}

// Raw returns every claim, registered or not, as
// json.Unmarshal(payload, &map[string]any{}) would decode it: numbers are
// float64, arrays []any, objects map[string]any. The map is decoded on
// the first call and the same map is returned afterwards; callers must
// not modify it. Raw returns nil for a nil Claims or one not made by a
// verifier.
func (c *Claims) Raw() map[string]any {
	if c == nil {
		return nil
	}
	c.rawOnce.Do(func() {
		if c.raw == nil && c.payload != "" {
			c.raw, _ = decodeObject(c.payload)
		}
	})
	return c.raw
}

// Claim returns the claim called name as Raw has it, and whether the token
// has it.
func (c *Claims) Claim(name string) (any, bool) {
	v, ok := c.Raw()[name]
	return v, ok
}

// HasScope reports whether the token was granted scope.
func (c *Claims) HasScope(scope string) bool {
	return c != nil && slices.Contains(c.Scope, scope)
}

// missingScopes returns the scopes in required that c lacks.
func (c *Claims) missingScopes(required []string) []string {
	var missing []string
	for _, s := range required {
		if !c.HasScope(s) {
			missing = append(missing, s)
		}
	}
	return missing
}

// claimsFromMap fills Claims from decoded claims, refusing registered claims
// of the wrong JSON type: a "sub" that is a number, or an "exp" that is a
// string, means the token was not made by a conforming issuer, and
// silently reading it as absent could skip a check.
func claimsFromMap(m map[string]any, kid string) (*Claims, error) {
	c := &Claims{KeyID: kid, raw: m}
	var err error
	for _, f := range [...]struct {
		dst  *string
		name string
	}{{&c.Issuer, "iss"}, {&c.Subject, "sub"}, {&c.ID, "jti"}, {&c.ClientID, "client_id"}} {
		if *f.dst, err = stringClaim(m, f.name); err != nil {
			return nil, err
		}
	}
	scope, err := stringClaim(m, "scope")
	if err != nil {
		return nil, err
	}
	if scope != "" {
		c.Scope = strings.Fields(scope)
	}
	if c.JKT, err = confirmationJKT(m["cnf"]); err != nil {
		return nil, err
	}
	switch aud := m["aud"].(type) {
	case nil:
	case string:
		c.Audience = []string{aud}
	case []any:
		c.Audience = make([]string, len(aud))
		for i, a := range aud {
			s, ok := a.(string)
			if !ok {
				return nil, errorf(ErrMalformed, `claim "aud" holds a non-string`)
			}
			c.Audience[i] = s
		}
	default:
		return nil, errorf(ErrMalformed, `claim "aud" is neither a string nor an array`)
	}
	for _, f := range [...]struct {
		dst  *time.Time
		name string
	}{{&c.Expiry, "exp"}, {&c.IssuedAt, "iat"}, {&c.NotBefore, "nbf"}} {
		if *f.dst, err = dateClaim(m, f.name); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// confirmationJKT reads jkt from a cnf claim (RFC 7800 §3.1, RFC 9449
// §6.1): absent or null gives "", a cnf that is not an object or a jkt that
// is not a string is malformed.
func confirmationJKT(cnf any) (string, error) {
	switch cnf := cnf.(type) {
	case nil:
		return "", nil
	case map[string]any:
		jkt, err := stringClaim(cnf, "jkt")
		if err != nil {
			return "", errorf(ErrMalformed, `claim "cnf" member "jkt" is not a string`)
		}
		return jkt, nil
	}
	return "", errorf(ErrMalformed, `claim "cnf" is not an object`)
}

func stringClaim(m map[string]any, name string) (string, error) {
	switch v := m[name].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", errorf(ErrMalformed, "claim %q is not a string", name)
	}
}

// maxNumericDate keeps NumericDates where float64 is exact and the int64
// conversion defined (2^53 seconds is some 285 million years).
const maxNumericDate = 1 << 53

// dateClaim reads a NumericDate (RFC 7519 §2: seconds since the epoch,
// possibly fractional); absent gives the zero time.
func dateClaim(m map[string]any, name string) (time.Time, error) {
	v, present := m[name]
	if !present || v == nil {
		return time.Time{}, nil
	}
	f, ok := v.(float64)
	if !ok {
		return time.Time{}, errNotNumericDate(name)
	}
	t, err := numericDate(f)
	if err != nil {
		return time.Time{}, errNotNumericDate(name)
	}
	return t, nil
}

func errNotNumericDate(name string) error {
	return errorf(ErrMalformed, "claim %q is not a NumericDate (seconds since 1970)", name)
}

var errDateRange = errors.New("NumericDate out of range")

// numericDate converts seconds since the epoch, refusing values where
// float64 is not exact.
func numericDate(f float64) (time.Time, error) {
	if math.IsNaN(f) || math.Abs(f) >= maxNumericDate {
		return time.Time{}, errDateRange
	}
	sec := math.Floor(f)
	nsec := math.Round((f - sec) * 1e9)
	if nsec >= 1e9 {
		sec, nsec = sec+1, 0
	}
	return time.Unix(int64(sec), int64(nsec)).UTC(), nil
}

// decodeClaims decodes the claims JSON s, which the Claims keep (so s must
// not be in a reused buffer): through fastClaims for the common case,
// else through the claim map, whose errors are the reference.
func decodeClaims(s, kid string) (*Claims, error) {
	c := &Claims{KeyID: kid, payload: s}
	if fastClaims(s, c) {
		return c, nil
	}
	m, ok := decodeObject(s)
	if !ok {
		return nil, errorf(ErrMalformed, "claims are not a JSON object")
	}
	return claimsFromMap(m, kid)
}

// checkTimes validates exp (required: a token that never expires cannot be
// contained once leaked), nbf and iat against now, with leeway.
func checkTimes(c *Claims, now time.Time, leeway time.Duration) error {
	if c.Expiry.IsZero() {
		return errorf(ErrMalformed, `token has no "exp" claim; tokens that never expire are not accepted`)
	}
	if !now.Before(c.Expiry.Add(leeway)) {
		return errorf(ErrExpired, "expired at %s, %s ago (leeway %s)",
			c.Expiry.Format(time.RFC3339), now.Sub(c.Expiry).Round(time.Second), leeway)
	}
	if !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore) {
		return errorf(ErrNotYetValid, "not valid before %s, %s from now (leeway %s)",
			c.NotBefore.Format(time.RFC3339), c.NotBefore.Sub(now).Round(time.Second), leeway)
	}
	if !c.IssuedAt.IsZero() && now.Add(leeway).Before(c.IssuedAt) {
		return errorf(ErrNotYetValid, "issued in the future, at %s, %s from now (leeway %s)",
			c.IssuedAt.Format(time.RFC3339), c.IssuedAt.Sub(now).Round(time.Second), leeway)
	}
	return nil
}

// checkAudience passes when no audience is expected or when aud names one
// of the expected audiences.
func checkAudience(c *Claims, expected []string) error {
	if len(expected) == 0 {
		return nil
	}
	for _, a := range c.Audience {
		if slices.Contains(expected, a) {
			return nil
		}
	}
	if len(c.Audience) == 0 {
		return errorf(ErrWrongAudience, `token has no "aud" claim; want one of %q`, expected)
	}
	return errorf(ErrWrongAudience, "aud %q names none of %q", c.Audience, expected)
}
