package web_test

// Test helpers shared by the web tests, whatever the store behind the server:
// plain HTTP requests and answers, RFC 6749 answer checks, client-signed JWTs
// (signed with golang-jwt, never with anything of Keygate's), and an
// independent resource server that verifies access tokens against the
// published key set (parsed by jwx, verified by golang-jwt).

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
)

// ---------------------------------------------------------------------------
// HTTP.

// request is one HTTP request to a test server.
type request struct {
	method string // POST unless set
	path   string
	form   url.Values // sent as application/x-www-form-urlencoded
	body   string     // or this, raw
	ctype  string     // overrides the form's Content-Type
	basic  []string   // client id and secret, form-encoded before base64 (RFC 6749 §2.3.1)
	hdr    map[string]string
}

// reply is an HTTP answer, read whole.
type reply struct {
	status int
	hdr    http.Header
	body   []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// object is the body as a JSON object.
func (r reply) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// location is the parsed Location header; the test fails without one.
func (r reply) location(t *testing.T) *url.URL {
	t.Helper()
	loc := r.hdr.Get("Location")
	if loc == "" {
		t.Fatalf("no Location in %s", r)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// send sends r to the server at base with http.DefaultClient.
func send(t *testing.T, base string, r request) reply {
	t.Helper()
	return sendWith(t, http.DefaultClient, base, r)
}

// sendWith sends r to the server at base (prefixed to r.path) with client c.
func sendWith(t *testing.T, c *http.Client, base string, r request) reply {
	t.Helper()
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	ctype := r.ctype
	switch {
	case r.form != nil:
		body = strings.NewReader(r.form.Encode())
		if ctype == "" {
			ctype = "application/x-www-form-urlencoded"
		}
	case r.body != "":
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		hr.Header.Set("Content-Type", ctype)
	}
	if r.basic != nil {
		hr.SetBasicAuth(url.QueryEscape(r.basic[0]), url.QueryEscape(r.basic[1]))
	}
	for k, v := range r.hdr {
		hr.Header.Set(k, v)
	}
	res, b := kgtest.Do(t, c, hr)
	return reply{status: res.StatusCode, hdr: res.Header, body: b}
}

// formOf is a form from key, value pairs.
func formOf(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// ---------------------------------------------------------------------------
// RFC 6749 answers.

// tokenResponse is the RFC 6749 §5.1 answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// checkTokenResponse checks a §5.1 success answer.
func checkTokenResponse(t *testing.T, res reply) tokenResponse {
	t.Helper()
	if ct := res.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("token response Content-Type %q", ct)
	}
	if cc := res.hdr.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("token response Cache-Control %q, want no-store", cc)
	}
	var tr tokenResponse
	if err := json.Unmarshal(res.body, &tr); err != nil {
		t.Fatalf("token response: %v: %s", err, res.body)
	}
	if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "Bearer") || tr.ExpiresIn <= 0 {
		t.Errorf("token response lacks access_token, token_type Bearer or expires_in: %s", res.body)
	}
	return tr
}

// descriptionChars is RFC 6749 §5.2's character set for error_description
// (and RFC 6750 §3's for the Bearer challenge): printable ASCII without '"'
// and '\'.
var descriptionChars = regexp.MustCompile(`^[\x20-\x21\x23-\x5B\x5D-\x7E]+$`)

// wantOAuthError checks an RFC 6749 §5.2 error answer; it reports whether
// the answer passed.
func wantOAuthError(t *testing.T, res reply, status int, code, descContains string) (ok bool) {
	t.Helper()
	ok = true
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		ok = false
	}
	if res.status != status {
		fail("status %d, want %d (%s): %s", res.status, status, code, res.body)
		return ok
	}
	if ct := res.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		fail("error Content-Type %q, want application/json", ct)
	}
	if cc := res.hdr.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		fail("error Cache-Control %q, want no-store", cc)
	}
	if status == http.StatusUnauthorized && res.hdr.Get("WWW-Authenticate") == "" {
		fail("401 without WWW-Authenticate")
	}
	m := res.object(t)
	if m["error"] != code {
		fail("error %v, want %s: %s", m["error"], code, res.body)
	}
	desc, _ := m["error_description"].(string)
	switch {
	case desc == "":
		fail("no error_description: %s", res.body)
	case !descriptionChars.MatchString(desc):
		fail("error_description %q has characters RFC 6749 §5.2 forbids", desc)
	case descContains != "" && !strings.Contains(strings.ToLower(desc), strings.ToLower(descContains)):
		fail("error_description %q does not mention %q", desc, descContains)
	}
	for k := range m {
		if k != "error" && k != "error_description" && k != "error_uri" {
			fail("unexpected member %q in an error: %s", k, res.body)
		}
	}
	return ok
}

// ---------------------------------------------------------------------------
// Client keys and client-signed JWTs (private_key_jwt and jwt-bearer
// assertions, the script login).

var (
	clientKeysOnce      sync.Once
	clientKey, otherKey *rsa.PrivateKey // the clients' own key, and an attacker's
)

// clientKeys generates the RSA-2048 client keys once per test binary.
func clientKeys() (client, other *rsa.PrivateKey) {
	clientKeysOnce.Do(func() {
		var err error
		if clientKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return clientKey, otherKey
}

func publicPEM(t testing.TB, k *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func newJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func signJWT(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signRS256(t *testing.T, key *rsa.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	return signJWT(t, jwt.SigningMethodRS256, key, claims)
}

// editClaims returns claims with changes: a nil value deletes the claim.
func editClaims(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// withClientAssertion adds private_key_jwt parameters to f.
func withClientAssertion(f url.Values, assertion string) url.Values {
	f.Set("client_assertion_type", idp.ClientAssertionType)
	f.Set("client_assertion", assertion)
	return f
}

// ---------------------------------------------------------------------------
// The independent resource server: the key set parsed by jwx, tokens
// verified by golang-jwt.

// resourceServer verifies the access tokens of the issuer at its URL.
type resourceServer struct{ issuer string }

// fetchJWKS reads the published key set into RSA public keys by kid.
func (rs resourceServer) fetchJWKS(t *testing.T) map[string]*rsa.PublicKey {
	t.Helper()
	res := send(t, rs.issuer, request{method: http.MethodGet, path: "/jwks"})
	if res.status != http.StatusOK {
		t.Fatalf("jwks: %s", res)
	}
	set, err := jwk.Parse(res.body)
	if err != nil {
		t.Fatalf("jwks: %v", err)
	}
	out := map[string]*rsa.PublicKey{}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if k.KeyType() != jwa.RSA || k.KeyUsage() != string(jwk.ForSignature) || k.Algorithm().String() != jwa.RS256.String() || k.KeyID() == "" {
			t.Fatalf("jwks entry kty %s, use %s, alg %s, kid %q", k.KeyType(), k.KeyUsage(), k.Algorithm(), k.KeyID())
		}
		var pub rsa.PublicKey
		if err := k.Raw(&pub); err != nil {
			t.Fatalf("jwks entry %s: bad n or e: %v", k.KeyID(), err)
		}
		out[k.KeyID()] = &pub
	}
	return out
}

// accessClaims is an access token as the independent resource server reads it.
type accessClaims struct {
	Iss, Sub, Jti, ClientID, Scope, Username string
	Aud                                      []string
	Exp, Iat, Nbf                            int64
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// parseAt verifies tok as a resource server would at instant at: RS256 only,
// a kid from /jwks, our issuer, exp required, nbf and iat honoured, no leeway;
// then checks the RFC 9068 shape.
func (rs resourceServer) parseAt(t *testing.T, tok string, at time.Time) (accessClaims, error) {
	t.Helper()
	keys := rs.fetchJWKS(t)
	p := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(rs.issuer), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return at }))
	mc := jwt.MapClaims{}
	tk, err := p.ParseWithClaims(tok, mc, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("kid %q is not in the JWKS", kid)
	})
	if err != nil {
		return accessClaims{}, err
	}
	if tk.Header["typ"] != "at+jwt" || tk.Header["alg"] != "RS256" {
		t.Errorf("header %v, want typ at+jwt and alg RS256", tk.Header)
	}
	for _, h := range []string{"jku", "x5u", "jwk", "x5c"} {
		if _, ok := tk.Header[h]; ok {
			t.Errorf("header carries %s", h)
		}
	}
	str := func(k string) string {
		s, ok := mc[k].(string)
		if !ok && k != "scope" && k != "preferred_username" {
			t.Errorf("claim %s missing or not a string: %v", k, mc)
		}
		return s
	}
	num := func(k string) int64 {
		f, ok := mc[k].(float64)
		if !ok {
			t.Errorf("claim %s missing or not a number: %v", k, mc)
		}
		return int64(f)
	}
	aud, err := mc.GetAudience()
	if err != nil || len(aud) == 0 {
		t.Errorf("aud missing: %v", mc)
	}
	c := accessClaims{Iss: str("iss"), Sub: str("sub"), Jti: str("jti"), ClientID: str("client_id"), Scope: str("scope"),
		Username: str("preferred_username"), Aud: aud, Exp: num("exp"), Iat: num("iat"), Nbf: num("nbf")}
	if !uuidPattern.MatchString(c.Jti) {
		t.Errorf("jti %q is not a uuid", c.Jti)
	}
	if c.Iat > c.Nbf || c.Nbf >= c.Exp {
		t.Errorf("iat %d, nbf %d, exp %d out of order", c.Iat, c.Nbf, c.Exp)
	}
	return c, nil
}

// verifyAt is parseAt, failing the test when the token is refused.
func (rs resourceServer) verifyAt(t *testing.T, tok string, at time.Time) accessClaims {
	t.Helper()
	c, err := rs.parseAt(t, tok, at)
	if err != nil {
		t.Fatalf("the independent consumer rejects the token: %v", err)
	}
	return c
}
