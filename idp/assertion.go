package idp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keygate/keygate/store"
)

// maxAssertionLifetime bounds exp - now of an assertion: a short-lived proof is
// what RFC 7523 §3 intends, and it bounds the replay cache.
const maxAssertionLifetime = time.Hour

// maxBareAge bounds how far a bare assertion's iat may lie in the past and
// its exp in the future. A bare assertion has no jti, so nothing stops its
// replay but its dates: keeping them within minutes of now keeps an old
// capture from logging in.
const maxBareAge = 5 * time.Minute

// bareClaims are the only claims a bare assertion may carry: it is a login
// and nothing else. A JWT with any other claim (the "query" of a client-signed
// API request, say) was signed for another purpose and must not pass for one.
var bareClaims = []string{"iss", "sub", "aud", "iat", "exp"}

// assertionUse says where an assertion is presented; the checks differ a little.
type assertionUse int

const (
	useClientAuth assertionUse = iota // private_key_jwt (RFC 7523 §2.2)
	useGrant                          // jwt-bearer grant (RFC 7523 §2.1)
	useLogin                          // POST /login application/jwt (script login)
)

// keyTypeFor is the key type each accepted algorithm needs. HMAC and "none"
// are absent: a client's registered keys are public keys.
var keyTypeFor = map[jwa.SignatureAlgorithm]jwa.KeyType{
	jwa.RS256: jwa.RSA, jwa.RS384: jwa.RSA, jwa.RS512: jwa.RSA,
	jwa.PS256: jwa.RSA, jwa.PS384: jwa.RSA, jwa.PS512: jwa.RSA,
	jwa.ES256: jwa.EC, jwa.ES384: jwa.EC, jwa.ES512: jwa.EC,
	jwa.EdDSA: jwa.OKP,
}

// AssertionAlgorithms lists the algorithms accepted on client assertions.
func AssertionAlgorithms() []string {
	out := make([]string, 0, len(keyTypeFor))
	for a := range keyTypeFor {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

// assertion is a verified client assertion.
type assertion struct {
	client *Client
	claims map[string]any
}

func (a *assertion) str(name string) string {
	s, _ := a.claims[name].(string)
	return s
}

func assertionErr(use assertionUse, f string, args ...any) *Error {
	if use == useGrant {
		return invalidGrant(f, args...)
	}
	return invalidClient(f, args...)
}

// verifyAssertion checks a JWT a client signed with its own key. The
// algorithm must be asymmetric and match the registered key's type; the header's
// jku, x5u, x5c and jwk are never read, so an attacker cannot supply the key.
// audiences are the values "aud" may take.
func (p *Provider) verifyAssertion(ctx context.Context, raw string, use assertionUse, audiences []string) (*assertion, error) {
	if len(raw) > maxTokenBytes || strings.Count(raw, ".") != 2 {
		return nil, assertionErr(use, "the assertion is not a compact JWT")
	}
	msg, err := jws.Parse([]byte(raw), jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, assertionErr(use, "the assertion is not a compact JWT")
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg := hdr.Algorithm()
	kty, ok := keyTypeFor[alg]
	if !ok {
		return nil, assertionErr(use, "assertion algorithm %q is not accepted (use an asymmetric one such as RS256)", alg)
	}
	claims := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(msg.Payload()))
	dec.UseNumber()
	// Exactly one JSON object: no "null", and nothing after it that another
	// parser might read differently.
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, assertionErr(use, "the assertion's claims are not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, assertionErr(use, "the assertion's claims are not a JSON object (bytes after it)")
	}
	a := &assertion{claims: claims}
	iss := a.str("iss")
	if iss == "" {
		return nil, assertionErr(use, "the assertion has no iss (the client id)")
	}
	client, err := p.dir.Client(ctx, iss)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidClient("unknown client %q", iss)
	}
	if err != nil {
		return nil, serverError(err)
	}
	a.client = client
	if !client.HasKeys() {
		return nil, invalidClient("client %q has no registered public key", iss)
	}
	keys, err := p.clientKeys(ctx, client)
	if err != nil {
		p.log.Warn("client keys unavailable", "client_id", iss, "err", err)
		return nil, invalidClient("the keys of client %q could not be fetched", iss)
	}
	if !verifiesWithAny(raw, keys, hdr.KeyID(), alg, kty) {
		return nil, invalidClient("bad signature: the assertion does not verify with the registered key of client %q", iss)
	}
	if err := p.checkAssertionClaims(ctx, a, use, audiences); err != nil {
		return nil, err
	}
	return a, nil
}

// verifiesWithAny tries the key named by kid, or every key of the right type.
func verifiesWithAny(raw string, keys jwk.Set, kid string, alg jwa.SignatureAlgorithm, kty jwa.KeyType) bool {
	for i := 0; i < keys.Len(); i++ {
		k, _ := keys.Key(i)
		if k.KeyType() != kty || (kid != "" && k.KeyID() != "" && k.KeyID() != kid) {
			continue
		}
		if ka := k.Algorithm().String(); ka != "" && ka != alg.String() {
			continue
		}
		if _, err := jws.Verify([]byte(raw), jws.WithKey(alg, k)); err == nil {
			return true
		}
	}
	return false
}

// checkAssertionClaims applies RFC 7523 §3 to a verified assertion: its
// dates, its subject and audience, and its jti, recorded against replay. A
// client allowed bare assertions may omit exp, aud or jti on a grant or a
// login, never on client authentication; such a bare assertion must then have
// the bare-login shape (checkBareShape).
func (p *Provider) checkAssertionClaims(ctx context.Context, a *assertion, use assertionUse, audiences []string) error {
	bare := a.client.AllowBareAssertion && use != useClientAuth && !a.standard()
	now := p.now()
	exp, hasExp, err := p.checkAssertionDates(a, use, bare, now)
	if err != nil {
		return err
	}
	if bare {
		if err := p.checkBareShape(a, use, now); err != nil {
			return err
		}
	}
	if err := checkAssertionParties(a, use, bare, audiences); err != nil {
		return err
	}
	jti := a.str("jti")
	if jti == "" && !bare {
		return assertionErr(use, "the assertion has no jti")
	}
	if jti == "" {
		return nil
	}
	until := now.Add(maxAssertionLifetime)
	if hasExp {
		until = exp.Add(p.cfg.Leeway)
	}
	err = p.cfg.Store.RecordAssertion(ctx, a.client.ID, jti, until, now)
	if errors.Is(err, store.ErrConflict) {
		return assertionErr(use, "the assertion was already used (jti %q replayed)", jti)
	}
	if err != nil {
		return serverError(err)
	}
	return nil
}

// standard reports whether a carries what RFC 7523 §3 requires (exp, jti and
// aud), and so is checked as any client's assertion would be.
func (a *assertion) standard() bool {
	_, hasExp := a.claims["exp"]
	_, hasAud := a.claims["aud"]
	return hasExp && hasAud && a.str("jti") != ""
}

// checkBareShape holds a bare assertion to the bare-login shape: iss,
// optionally sub, aud, iat and exp, and nothing else; iat, when present, no
// older than maxBareAge, and exp no further ahead. So a JWT the client signed
// for something else (a request to a resource server: {"iss", "iat",
// "query"}), or one captured long ago, is not a login.
func (p *Provider) checkBareShape(a *assertion, use assertionUse, now time.Time) error {
	for name := range a.claims {
		if !slices.Contains(bareClaims, name) {
			return assertionErr(use, "a bare assertion (without exp, jti and aud) may carry only %s, not %q: it is a login and nothing else",
				strings.Join(bareClaims, ", "), name)
		}
	}
	if iat, ok, _ := numericDate(a.claims, "iat"); ok && now.Sub(iat) > maxBareAge+p.cfg.Leeway {
		return assertionErr(use, "the bare assertion is stale: iat is more than %s old", maxBareAge)
	}
	if exp, ok, _ := numericDate(a.claims, "exp"); ok && exp.Sub(now) > maxBareAge+p.cfg.Leeway {
		return assertionErr(use, "the bare assertion's exp is more than %s ahead (send jti and aud for a longer one)", maxBareAge)
	}
	return nil
}

// checkAssertionDates checks exp, nbf and iat with the configured leeway,
// and returns exp when there is one.
func (p *Provider) checkAssertionDates(a *assertion, use assertionUse, bare bool, now time.Time) (exp time.Time, hasExp bool, err error) {
	exp, hasExp, err = numericDate(a.claims, "exp")
	if err != nil {
		return exp, false, assertionErr(use, "%v", err)
	}
	switch {
	case !hasExp && !bare:
		return exp, false, assertionErr(use, "the assertion has no exp")
	case hasExp && !now.Before(exp.Add(p.cfg.Leeway)):
		return exp, false, assertionErr(use, "the assertion has expired")
	case hasExp && exp.Sub(now) > maxAssertionLifetime:
		return exp, false, assertionErr(use, "the assertion's exp is more than %s ahead", maxAssertionLifetime)
	}
	if nbf, ok, err := numericDate(a.claims, "nbf"); err != nil || (ok && now.Add(p.cfg.Leeway).Before(nbf)) {
		return exp, false, assertionErr(use, "the assertion is not yet valid (nbf)")
	}
	if iat, ok, err := numericDate(a.claims, "iat"); err != nil || (ok && now.Add(p.cfg.Leeway).Before(iat)) {
		return exp, false, assertionErr(use, "the assertion was issued in the future (iat)")
	}
	return exp, hasExp, nil
}

// checkAssertionParties checks that the client speaks for itself (sub) and
// to Keygate (aud).
func checkAssertionParties(a *assertion, use assertionUse, bare bool, audiences []string) error {
	if sub := a.str("sub"); (use == useClientAuth && sub != a.client.ID) || (sub != "" && sub != a.client.ID) {
		return assertionErr(use, "the assertion's sub must be the client id %q", a.client.ID)
	}
	aud, hasAud := a.claims["aud"]
	if (hasAud || !bare) && !audienceMatches(aud, audiences) {
		return assertionErr(use, "the assertion's aud must be one of %s", strings.Join(audiences, ", "))
	}
	return nil
}

func audienceMatches(aud any, accepted []string) bool {
	switch v := aud.(type) {
	case string:
		return slices.Contains(accepted, v)
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok && slices.Contains(accepted, s) {
				return true
			}
		}
	}
	return false
}

// numericDate reads a JSON NumericDate claim.
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, false, fmt.Errorf("%s must be a number", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false, fmt.Errorf("%s is not a valid date", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// ScriptLogin is the script login: the body of POST /login is an assertion a
// client signed with its own key; the answer is an access token under that
// client's policy (e.g. valid from +10 s to +30 s). The client must be allowed
// the jwt-bearer grant.
func (p *Provider) ScriptLogin(ctx context.Context, raw string) (string, error) {
	a, err := p.verifyAssertion(ctx, raw, useLogin,
		[]string{p.cfg.Issuer, p.cfg.Issuer + "/login", p.TokenEndpoint()})
	if err != nil {
		return "", err
	}
	if !a.client.HasGrant(GrantJWTBearer) {
		return "", &Error{Code: "unauthorized_client", Status: http.StatusForbidden,
			Description: fmt.Sprintf("client %q may not log in with an assertion (grant %s not allowed)", a.client.ID, GrantJWTBearer)}
	}
	if a.client.DPoPBoundAccessTokens {
		// The script login answers a bare token; this client's must be bound.
		return "", &Error{Code: "unauthorized_client", Status: http.StatusForbidden,
			Description: fmt.Sprintf("client %q gets DPoP-bound tokens only: use POST /token with a DPoP proof", a.client.ID)}
	}
	scope, err := grantScope(a.client, a.str("scope"))
	if err != nil {
		return "", err
	}
	tok, _, err := p.issueAccess(grant{client: a.client, subject: a.client.ID, scope: scope})
	if err != nil {
		return "", serverError(err)
	}
	return tok, nil
}

// UnverifiedIssuer peeks at a JWT's iss claim without verifying anything:
// only to pick the client whose key will then verify it, or to name a
// claimed client in a log line (and then only if it is registered). A
// payload over 16 KiB is not decoded.
func UnverifiedIssuer(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(parts[1]) > 16<<10 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	_ = json.Unmarshal(b, &c)
	return c.Iss
}
