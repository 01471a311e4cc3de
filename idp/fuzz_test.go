package idp_test

// Fuzz targets for the token endpoint's form parsing and for client
// assertions, run through the real Echo handler of a complete Keygate
// (kgtest: SQLite, key rotation, the web layer) without the network.
//
//	go test -run '^$' -fuzz FuzzTokenForm -fuzztime 60s ./idp/
//	go test -run '^$' -fuzz FuzzAssertion -fuzztime 60s ./idp/
//
// Plain `go test` runs the seeds (f.Add and testdata/fuzz/...) as regression
// tests. The server is started once per target, not once per input, and its
// clock is frozen at fuzzT0 so that seeds holding absolute times (exp, nbf)
// mean the same thing on every run.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
)

// fuzzT0 is the frozen "now" of the fuzz servers. Seeds refer to it: its Unix
// time is 1931246813, so an assertion with "exp": 1931246873 is good for 60 s.
var fuzzT0 = time.Date(2031, time.March, 14, 9, 26, 53, 0, time.UTC)

const (
	fuzzSecret   = "kgs_fuzz-confidential-client-secret-0123456789ab" // client "conf"
	fuzzPassword = "fuzzing user's password"                          // user "alice"
	issuerMark   = "$ISSUER"                                          // replaced by the server's issuer in re-signed claims
)

// The clients' RSA-2048 key, generated once per test binary.
var fuzzClientKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

type fuzzServer struct {
	*kgtest.Server
	h      http.Handler
	key    *rsa.PrivateKey
	issuer string
}

// startFuzzServer runs one Keygate for a fuzz target, with clients of every
// kind:
//
//	conf  secret; client_credentials, password, refresh_token
//	pub   public; password, refresh_token
//	svc   RSA key (kid svc-1); client_credentials (private_key_jwt), jwt-bearer
//	seed  the same key, no kid; jwt-bearer; bare assertions; seed 000 policy
func startFuzzServer(f *testing.F) *fuzzServer {
	f.Helper()
	key := fuzzClientKey()
	pub, err := jwk.FromRaw(&key.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	withKID, _ := pub.Clone()
	withKID.Set(jwk.KeyIDKey, "svc-1")
	svcKeys, seedKeys := jwk.NewSet(), jwk.NewSet()
	svcKeys.AddKey(withKID)
	seedKeys.AddKey(pub)
	s := kgtest.Start(f, kgtest.Options{
		Clock: kgtest.NewClock(fuzzT0),
		Clients: []idp.Client{
			{ID: "conf", SecretHash: idp.HashSecret(fuzzSecret), GrantTypes: []string{"client_credentials", "password", "refresh_token"},
				Scopes: []string{"read", "write", "openid"}},
			{ID: "pub", Public: true, GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"openid", "profile"}},
			{ID: "svc", Keys: svcKeys, GrantTypes: []string{"client_credentials", idp.GrantJWTBearer}, Scopes: []string{"api"}},
			{ID: "seed", Keys: seedKeys, GrantTypes: []string{idp.GrantJWTBearer}, AllowBareAssertion: true,
				AccessTTL: 30 * time.Second, NotBeforeDelay: 10 * time.Second},
		},
	})
	if _, err := s.IDP.Directory().CreateUser(context.Background(), idp.NewUser{Username: "alice", Password: fuzzPassword}); err != nil {
		f.Fatal(err)
	}
	return &fuzzServer{Server: s, h: s.Handler(), key: key, issuer: s.URL}
}

func (s *fuzzServer) serve(method, path, contentType, auth string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec
}

// checkAnswer enforces the invariants every answer of /token and /login
// keeps: no 5xx (a panic is a 500 through Echo's recover middleware), and an
// error is a JSON object with a non-empty string "error".
func checkAnswer(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s: %d %s", what, rec.Code, rec.Body)
	}
	if rec.Code == http.StatusOK {
		return
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s: %d, body is not a JSON object: %q", what, rec.Code, rec.Body)
	}
	if e, _ := m["error"].(string); e == "" {
		t.Fatalf("%s: %d, no \"error\" member: %s", what, rec.Code, rec.Body)
	}
}

// checkTokenOK: a 200 from /token is an RFC 6749 §5.1 answer.
func checkTokenOK(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	var tr idp.TokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil || tr.AccessToken == "" || tr.TokenType != "Bearer" {
		t.Fatalf("%s: 200 without a token: %s", what, rec.Body)
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signRS256 signs header and claims (raw bytes, whatever they hold) with key.
func signRS256(key *rsa.PrivateKey, header, claims []byte) string {
	in := b64url(header) + "." + b64url(claims)
	h := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		panic(err)
	}
	return in + "." + b64url(sig)
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// ---------------------------------------------------------------------------

func FuzzTokenForm(f *testing.F) {
	s := startFuzzServer(f)
	now := fuzzT0.Unix()
	assertion := signRS256(s.key, []byte(`{"alg":"RS256","kid":"svc-1"}`),
		[]byte(fmt.Sprintf(`{"iss":"svc","sub":"svc","aud":%q,"exp":%d,"jti":"form-seed"}`, s.issuer+"/token", now+60)))
	// A live refresh token, so that the refresh path is reached.
	rec := s.serve("POST", "/token", "application/x-www-form-urlencoded", basic("conf", fuzzSecret),
		[]byte("grant_type=password&username=alice&password="+url.QueryEscape(fuzzPassword)))
	var tr idp.TokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil || tr.RefreshToken == "" {
		f.Fatalf("password grant: %d %s", rec.Code, rec.Body)
	}
	conf := basic("conf", fuzzSecret)
	for _, seed := range []struct{ body, auth string }{
		{"grant_type=client_credentials", conf},
		{"grant_type=client_credentials&scope=read+write", conf},
		{"grant_type=client_credentials&client_id=conf&client_secret=" + url.QueryEscape(fuzzSecret), ""},
		{"grant_type=password&username=alice&password=" + url.QueryEscape(fuzzPassword) + "&scope=openid", conf},
		{"grant_type=password&client_id=pub&username=alice&password=wrong", ""},
		{"grant_type=refresh_token&refresh_token=" + tr.RefreshToken, conf},
		{"grant_type=refresh_token&refresh_token=" + tr.RefreshToken + "&scope=read", conf},
		{"grant_type=client_credentials&client_assertion_type=" + url.QueryEscape(idp.ClientAssertionType) +
			"&client_assertion=" + assertion, ""},
		{"grant_type=" + url.QueryEscape(idp.GrantJWTBearer) + "&assertion=" + assertion[:len(assertion)/2], ""},
		{"grant_type=client_credentials&grant_type=password", conf},
		{"grant_type=%zz", conf},
		{"grant_type=client_credentials", "Basic %%%"},
		{"grant_type=client_credentials", "Basic " + base64.StdEncoding.EncodeToString([]byte("conf%zz:x"))},
		{"grant_type=client_credentials", "Bearer " + assertion},
		{"grant_type=client_credentials&client_id=\xff\xfe&client_secret=\x00", ""},
		{"grant_type=client_credentials&scope=" + strings.Repeat("read+", 2000), conf},
		{"", ""},
		{";;;&&&===", "Digest x"},
	} {
		f.Add([]byte(seed.body), seed.auth)
	}
	f.Fuzz(func(t *testing.T, body []byte, auth string) {
		rec := s.serve("POST", "/token", "application/x-www-form-urlencoded", auth, body)
		checkAnswer(t, "POST /token", rec)
		if rec.Code == http.StatusOK {
			checkTokenOK(t, "POST /token", rec)
		}
	})
}

// ---------------------------------------------------------------------------

// FuzzAssertion sends each input through the three places a client assertion
// is read: private_key_jwt client authentication and the jwt-bearer grant at
// POST /token, and the seed 000 script login at POST /login.
//
// The input is either raw (an arbitrary string presented as is) or, when
// claims is not empty, a header and claims that the harness signs with the
// clients' real key, with "$ISSUER" in the claims replaced by the issuer: that
// way the fuzzer reaches the claim checks behind the signature. Invariants:
// no 5xx, JSON errors, and a 200 only for a genuinely signed assertion whose
// claims a reading of RFC 7523 accepts.
func FuzzAssertion(f *testing.F) {
	s := startFuzzServer(f)
	now := fuzzT0.Unix()
	good := signRS256(s.key, []byte(`{"alg":"RS256","kid":"svc-1","typ":"JWT"}`),
		[]byte(fmt.Sprintf(`{"iss":"svc","sub":"svc","aud":%q,"exp":%d,"iat":%d,"jti":"raw-seed"}`, s.issuer+"/token", now+60, now)))
	goodLogin := signRS256(s.key, []byte(`{"alg":"RS256"}`), []byte(`{"iss":"seed"}`))
	parts := strings.Split(good, ".")
	raw := []string{
		good, goodLogin, " " + goodLogin + "\n",
		parts[0] + "." + parts[1] + ".", parts[0] + "." + parts[1], good[:len(good)/2], good + ".", good + "=",
		b64url([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		b64url([]byte(`{"alg":"HS256","kid":"svc-1"}`)) + "." + parts[1] + "." + parts[2],
		"", ".", "..", "...", "e30.e30.", "e30.e30.e30", "bnVsbA.bnVsbA.", "\xff\xfe.\x00.\x80",
		strings.Repeat("A", 9000) + ".e30.e30",
	}
	for _, r := range raw {
		f.Add(r, []byte(nil), []byte(nil))
	}
	hdr := []byte(`{"alg":"RS256","kid":"svc-1"}`)
	tok := `"aud":"$ISSUER/token"`
	for _, c := range []struct{ hdr, claims string }{
		{string(hdr), fmt.Sprintf(`{"iss":"svc","sub":"svc",%s,"exp":%d,"jti":"signed-seed"}`, tok, now+60)},
		{`{"alg":"RS256"}`, `{"iss":"seed"}`},
		{`{"alg":"RS256"}`, `{"iss":"seed","scope":"","exp":1e400}`},
		{string(hdr), fmt.Sprintf(`{"iss":"svc","sub":"svc",%s,"exp":9223372036854775807,"jti":"x"}`, tok)},
		{string(hdr), fmt.Sprintf(`{"iss":"svc","sub":"svc",%s,"exp":99999999999.999,"jti":"x"}`, tok)},
		{string(hdr), fmt.Sprintf(`{"iss":"svc","sub":"svc",%s,"exp":-1,"jti":"x"}`, tok)},
		{string(hdr), fmt.Sprintf(`{"iss":"svc","sub":"svc",%s,"exp":"%d","jti":"x"}`, tok, now+60)},
		{string(hdr), fmt.Sprintf(`{"iss":"svc","sub":"svc",%s,"exp":%d,"nbf":1e308,"iat":-1e308,"jti":"x"}`, tok, now+60)},
		{string(hdr), fmt.Sprintf(`{"iss":"svc","sub":"svc","aud":["x",["$ISSUER"],{"a":"$ISSUER"}],"exp":%d,"jti":"x"}`, now+60)},
		{string(hdr), fmt.Sprintf(`{"iss":{"iss":"svc"},"sub":["svc"],%s,"exp":%d,"jti":{"a":[1,[2,[3]]]}}`, tok, now+60)},
		{string(hdr), fmt.Sprintf(`{"iss":"svc","iss":"seed","sub":"svc",%s,"exp":%d,"jti":"dup"}`, tok, now+60)},
		{string(hdr), `null`},
		{string(hdr), `[]`},
		{string(hdr), `{"iss":"svc"} trailing`},
		{`{"alg":"RS256"}`, `{"iss":"seed"} {"iss":"svc"}`},
		{`{"alg":"RS256"}`, `{"iss":"seed"}]`},
		{string(hdr), "{\"iss\":\"\xff\xfe\",\"sub\":\"\x00\"}"},
		{`{"alg":"ES256","kid":"svc-1"}`, fmt.Sprintf(`{"iss":"svc","sub":"svc",%s,"exp":%d,"jti":"es"}`, tok, now+60)},
		{`{"alg":"none"}`, `{"iss":"seed"}`},
		{`{"alg":"RS256","crit":["b64"],"b64":false}`, `{"iss":"seed"}`},
		{`{"alg":"RS256","jku":"http://127.0.0.1:1/jwks","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}`, `{"iss":"seed"}`},
	} {
		f.Add("", []byte(c.hdr), []byte(c.claims))
	}

	pub := &s.key.PublicKey
	rsaAlgs := []jwa.SignatureAlgorithm{jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512}
	genuinelySigned := func(a string) bool {
		for _, alg := range rsaAlgs {
			if _, err := jws.Verify([]byte(a), jws.WithKey(alg, pub)); err == nil {
				return true
			}
		}
		return false
	}
	f.Fuzz(func(t *testing.T, raw string, header, claims []byte) {
		assertion, signed := raw, false
		if len(claims) > 0 {
			claims = bytes.ReplaceAll(claims, []byte(issuerMark), []byte(s.issuer))
			assertion, signed = signRS256(s.key, header, claims), true
		}
		// A 200 must be deserved. For raw input, the signature is the
		// question (the fuzzer cannot forge one); for re-signed input, the
		// header and claims are.
		deserved := func(endpoint string, body string) {
			t.Helper()
			if !signed {
				if !genuinelySigned(body) {
					t.Fatalf("%s accepted an assertion the client did not sign: %q", endpoint, raw)
				}
				return
			}
			if reason := unacceptable(header, claims, endpoint, s.issuer); reason != "" {
				t.Fatalf("%s accepted a signed assertion that %s:\nheader %s\nclaims %s", endpoint, reason, header, claims)
			}
		}

		form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {idp.ClientAssertionType}, "client_assertion": {assertion}}
		rec := s.serve("POST", "/token", "application/x-www-form-urlencoded", "", []byte(form.Encode()))
		checkAnswer(t, "private_key_jwt", rec)
		if rec.Code == http.StatusOK {
			checkTokenOK(t, "private_key_jwt", rec)
			deserved("/token", assertion)
		}

		form = url.Values{"grant_type": {idp.GrantJWTBearer}, "assertion": {assertion}}
		rec = s.serve("POST", "/token", "application/x-www-form-urlencoded", "", []byte(form.Encode()))
		checkAnswer(t, "jwt-bearer", rec)
		if rec.Code == http.StatusOK {
			checkTokenOK(t, "jwt-bearer", rec)
			deserved("/token", assertion)
		}

		rec = s.serve("POST", "/login", "application/jwt", "", []byte(assertion))
		checkAnswer(t, "POST /login", rec)
		if rec.Code == http.StatusOK {
			if rec.Header().Get("Content-Type") != "application/jwt" || strings.Count(rec.Body.String(), ".") != 2 {
				t.Fatalf("POST /login: 200 without a token: %q", rec.Body)
			}
			deserved("/login", strings.TrimSpace(assertion))
		}
	})
}

// unacceptable is an independent reading of RFC 7523 §3 for the fuzz oracle:
// the reason a signed assertion must be refused at endpoint, or "". It checks
// only what must hold for any acceptance, so it never refuses what the server
// rightly accepts.
func unacceptable(header, claims []byte, endpoint, issuer string) string {
	c, why := assertionClaims(header, claims)
	if why != "" {
		return why
	}
	iss, _ := c["iss"].(string)
	if iss != "svc" && iss != "seed" {
		return "names no client with a key as iss"
	}
	if sub, has := c["sub"]; has && sub != iss {
		return "has a sub that is not the client"
	}
	hasExp, why := assertionExp(c)
	if why != "" {
		return why
	}
	bare := iss == "seed" // may omit exp, jti and aud, except in client authentication (looser here)
	if bare {
		return ""
	}
	if !hasExp {
		return "has no exp"
	}
	if jti, _ := c["jti"].(string); jti == "" {
		return "has no jti"
	}
	return assertionAudience(c["aud"], issuer)
}

// assertionClaims decodes an assertion's claims, numbers kept as
// json.Number, or says why header and claims cannot be accepted.
func assertionClaims(header, claims []byte) (c map[string]any, why string) {
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(header, &h) != nil || h.Alg != "RS256" {
		return nil, "has no RS256 alg header (the harness signs RS256)"
	}
	dec := json.NewDecoder(bytes.NewReader(claims))
	dec.UseNumber()
	if dec.Decode(&c) != nil || c == nil {
		return nil, "has no JSON object as claims"
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "has bytes after the claims object"
	}
	return c, ""
}

// assertionExp reports whether c has an exp, or why it is unacceptable: not
// a number, past (beyond 30 s of leeway) or more than an hour ahead.
func assertionExp(c map[string]any) (hasExp bool, why string) {
	exp, hasExp := c["exp"].(json.Number)
	if _, present := c["exp"]; present && !hasExp {
		return false, "has a non-numeric exp"
	}
	if hasExp {
		f, err := exp.Float64()
		if err != nil || f+30 <= float64(fuzzT0.Unix()) || f-float64(fuzzT0.Unix()) > 3600 {
			return true, "is expired or lives too long"
		}
	}
	return hasExp, ""
}

// assertionAudience says why aud does not name issuer (or its token or
// login endpoint), or "".
func assertionAudience(aud any, issuer string) string {
	audOK := func(v any) bool {
		s, _ := v.(string)
		return slices.Contains([]string{issuer, issuer + "/token", issuer + "/login"}, s)
	}
	switch aud := aud.(type) {
	case string:
		if !audOK(aud) {
			return "is for another audience"
		}
	case []any:
		if !slices.ContainsFunc(aud, audOK) {
			return "is for other audiences"
		}
	default:
		return "has no audience"
	}
	return ""
}
