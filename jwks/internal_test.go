package jwks

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

var jsonSeeds = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":"b","c":[1,2,"x",true,false,null,{"d":[]}]}`,
	`{"iss":"https://id.example","sub":"u","aud":["a","b"],"exp":1893456000,"iat":1.5,"nbf":-0,"scope":"a b"}`,
	`{"alg":"RS256","kid":"k","typ":"at+jwt"}`,
	`{"a":1,"a":"dup"}`, `{"a":{"x":1},"a":{"y":2}}`, `{"a":[]}`, `{"a":{}}`,
	`{"n":0}`, `{"n":-0.0}`, `{"n":1e3}`, `{"n":1E+3}`, `{"n":1.25e-3}`, `{"n":123456789012345678901234567890}`,
	`{"n":1e400}`, `{"n":01}`, `{"n":1.}`, `{"n":.5}`, `{"n":-}`, `{"n":+1}`, `{"n":1e}`, `{"n":0x10}`,
	`{"s":"a\"b"}`, `{"s":"\u00e9"}`, `{"s":"é"}`, "{\"s\":\"a\tb\"}", `{"s":"\ud800"}`,
	`null`, `[]`, `"x"`, `1`, `{"a":1}x`, `{"a":1}{}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a":[1,]}`,
	`{"a":tru}`, `{"a":truex}`, `{"a":nul}`, `{"a":True}`, `{a:1}`, `{'a':1}`, `{"a":1`, `{"a":[`, ``, ` `,
	"{\"a\":1}\n", "\t{\"a\" :\r\n 1 }",
	`{"d":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}`,
}

// FuzzFastObject holds fastObject to encoding/json: whenever it accepts an
// input, encoding/json must accept it too and decode the same map.
func FuzzFastObject(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := fastObject(s)
		var want map[string]any
		err := json.Unmarshal([]byte(s), &want)
		if ok {
			if err != nil {
				t.Fatalf("fastObject accepted %q, encoding/json refuses it: %v", s, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: fastObject %#v, encoding/json %#v", s, got, want)
			}
		}
		// decodeObject (fast path plus fallback) must agree fully.
		m, dok := decodeObject(s)
		if dok != (err == nil && want != nil) {
			t.Fatalf("%q: decodeObject ok=%v, encoding/json err=%v map=%v", s, dok, err, want)
		}
		if dok && !reflect.DeepEqual(m, want) {
			t.Fatalf("%q: decodeObject %#v, encoding/json %#v", s, m, want)
		}
	})
}

// claimSeeds exercise fastClaims on the registered claims: types, nulls,
// duplicates, escapes, non-ASCII, numbers of every shape.
var claimSeeds = []string{
	`{"iss":"i","sub":"s","aud":"a","exp":1893456000,"iat":1893455000,"nbf":1893455000,"jti":"j","client_id":"c","scope":"read write"}`,
	`{"aud":["a","b"],"exp":1.5}`, `{"aud":[]}`, `{"aud":[ "a" , "b" ]}`, `{"aud":["a",1]}`, `{"aud":[null]}`,
	`{"aud":["a",["b"]]}`, `{"aud":{"a":1}}`, `{"aud":1}`, `{"aud":true}`, `{"aud":null}`, `{"aud":"a","aud":null}`,
	`{"aud":["a"],"aud":"b"}`, `{"aud":"a\u0062"}`, `{"aud":["\u00e9"]}`, `{"aud":["a","b","c","d","e","f","g","h","i","j"]}`,
	`{"aud":["a",]}`, `{"aud":[,"a"]}`, `{"aud":["a" "b"]}`, `{"aud":[`, `{"aud":["a"`,
	`{"iss":null}`, `{"iss":1}`, `{"iss":["x"]}`, `{"iss":"a","iss":"b"}`, `{"iss":1,"iss":"b"}`, `{"iss":"b","iss":1}`,
	`{"iss":"\u0041"}`, `{"\u0069ss":"x"}`, `{"iss":"é"}`, `{"sub":{}}`, `{"sub":false}`, `{"jti":""}`, `{"client_id":[]}`,
	`{"scope":""}`, `{"scope":"  a   b  "}`, `{"scope":null}`, `{"scope":1}`, `{"scope":"a\tb"}`, "{\"scope\":\"a\tb\"}",
	`{"exp":null}`, `{"exp":"1"}`, `{"exp":true}`, `{"exp":[1]}`, `{"exp":-1}`, `{"exp":-0}`, `{"exp":0}`, `{"exp":-1.5}`,
	`{"exp":1e3}`, `{"exp":1.999999999999}`, `{"exp":1.0000000001}`, `{"exp":9007199254740991}`, `{"exp":9007199254740992}`,
	`{"exp":-9007199254740992}`, `{"exp":1e300}`, `{"exp":1e400}`, `{"exp":123456789012345678901234567890}`,
	`{"exp":01}`, `{"exp":1.}`, `{"exp":+1}`, `{"exp":1,"exp":null}`, `{"exp":null,"exp":2}`, `{"exp":1e400,"exp":2}`,
	`{"iat":"x"}`, `{"nbf":1e20}`, `{"iat":1.5,"nbf":2.25,"exp":3.125}`, `{"exp":1,"iss":1}`, `{"exp":"x","iss":1}`,
	`{"other":{"exp":"x","iss":1},"exp":5}`, `{"o":[1,{"a":[true,false,null]}],"exp":5}`, `{"o":1e400,"exp":5}`,
	`{"o":"\n","exp":5}`, `{"o":"é","exp":5}`, `{"o":tru,"exp":5}`, `{"o":{"a"},"exp":5}`, `{"o":{"a":1,},"exp":5}`,
	`{"o":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]],"exp":5}`, `{"o":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]],"exp":5}`,
	`{"o":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":1}}}}}}}}}}}}}}}}}`,
	`{"cnf":{"jkt":"t"},"exp":5}`, `{"cnf":{"x5t#S256":"a","jkt":"t"}}`, `{"cnf":{"jkt":null}}`, `{"cnf":{"jkt":1}}`,
	`{"cnf":{"jkt":"a","jkt":"b"}}`, `{"cnf":{"jkt":"a"},"cnf":{}}`, `{"cnf":{"jkt":"a"},"cnf":null}`, `{"cnf":"t"}`,
	`{"cnf":[]}`, `{"cnf":{"k":{"jkt":"x"}}}`, `{"cnf":{"jkt":"a",}}`, `{"cnf":{"jkt"}}`,
	` {"exp" : 5 } `, `{"exp":5}x`, `{"exp":5,}`, `{"exp" 5}`, `{"exp":}`, `{"exp":5`, `{exp:5}`, `["exp"]`, `null`,
}

// FuzzFastClaims holds fastClaims, and decodeClaims around it, to decoding
// the payload with encoding/json into a map and reading the claims out of
// it with claimsFromMap: same fields, same Raw, same error.
func FuzzFastClaims(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add(s)
	}
	for _, s := range claimSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want map[string]any
		var wantC *Claims
		var wantErr error
		if err := json.Unmarshal([]byte(s), &want); err != nil || want == nil {
			wantErr = errorf(ErrMalformed, "claims are not a JSON object")
		} else {
			wantC, wantErr = claimsFromMap(want, "k")
		}
		var fast Claims
		if fastClaims(s, &fast) {
			if wantErr != nil {
				t.Fatalf("fastClaims accepted %q, the reference refuses it: %v", s, wantErr)
			}
			fast.KeyID = "k"
			if d := claimsDiff(&fast, wantC); d != "" {
				t.Fatalf("%q: fastClaims differs: %s", s, d)
			}
		}
		got, err := decodeClaims(s, "k")
		if (err == nil) != (wantErr == nil) || (err != nil && (err.Error() != wantErr.Error() || !errors.Is(err, ErrMalformed))) {
			t.Fatalf("%q: decodeClaims err %v, want %v", s, err, wantErr)
		}
		if err != nil {
			return
		}
		if d := claimsDiff(got, wantC); d != "" {
			t.Fatalf("%q: decodeClaims differs: %s", s, d)
		}
		if !reflect.DeepEqual(got.Raw(), want) {
			t.Fatalf("%q: Raw %#v, encoding/json %#v", s, got.Raw(), want)
		}
		for k, wv := range want {
			if v, ok := got.Claim(k); !ok || !reflect.DeepEqual(v, wv) {
				t.Fatalf("%q: Claim(%q) = %#v, %v; want %#v", s, k, v, ok, wv)
			}
		}
		if _, ok := got.Claim("\x00absent"); ok {
			t.Fatalf("%q: Claim of an absent name reports it present", s)
		}
	})
}

// claimsDiff compares the typed fields of two Claims.
func claimsDiff(got, want *Claims) string {
	type fields struct {
		Issuer, Subject, ID, ClientID, KeyID, JKT string
		Audience, Scope                           []string
		Expiry, IssuedAt, NotBefore               time.Time
	}
	of := func(c *Claims) fields {
		return fields{c.Issuer, c.Subject, c.ID, c.ClientID, c.KeyID, c.JKT, c.Audience, c.Scope, c.Expiry, c.IssuedAt, c.NotBefore}
	}
	g, w := of(got), of(want)
	// time.Time from time.Unix(...).UTC() compare with ==, and the slices'
	// nil-ness is part of the contract.
	if !reflect.DeepEqual(g, w) {
		return fmt.Sprintf("got %+v, want %+v", g, w)
	}
	return ""
}

// TestFastClaimsCoversTokens makes sure the typed path is really taken for
// what tokens look like; otherwise Verify would silently build the map.
func TestFastClaimsCoversTokens(t *testing.T) {
	for _, s := range append(jsonSeeds[:6:6], claimSeeds[:4]...) {
		var c Claims
		if !fastClaims(s, &c) {
			t.Errorf("typed path refused %s", s)
		}
	}
}

// TestFastObjectCoversTokens makes sure the fast path is really taken for
// what tokens look like; otherwise the verifier would silently be slow.
func TestFastObjectCoversTokens(t *testing.T) {
	for _, s := range jsonSeeds[:6] {
		if _, ok := fastObject(s); !ok {
			t.Errorf("fast path refused %s", s)
		}
	}
}

func TestRefreshAfter(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	minD, maxD := time.Minute, time.Hour
	for _, tt := range []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"none", http.Header{}, minD},
		{"max-age in bounds", http.Header{"Cache-Control": {"public, max-age=300"}}, 5 * time.Minute},
		{"max-age below", http.Header{"Cache-Control": {"max-age=5"}}, minD},
		{"max-age above", http.Header{"Cache-Control": {"max-age=86400"}}, maxD},
		{"max-age minus Age", http.Header{"Cache-Control": {"max-age=600"}, "Age": {"300"}}, 5 * time.Minute},
		{"quoted max-age", http.Header{"Cache-Control": {`max-age="120"`}}, 2 * time.Minute},
		{"bad max-age", http.Header{"Cache-Control": {"max-age=soon"}}, minD},
		{"no-store", http.Header{"Cache-Control": {"no-store"}}, minD},
		{"no-cache wins", http.Header{"Cache-Control": {"max-age=600", "no-cache"}}, minD},
		{"Expires", http.Header{"Expires": {now.Add(10 * time.Minute).Format(http.TimeFormat)}, "Date": {now.Format(http.TimeFormat)}}, 10 * time.Minute},
		{"Expires far", http.Header{"Expires": {now.Add(48 * time.Hour).Format(http.TimeFormat)}}, maxD},
		{"Expires invalid", http.Header{"Expires": {"0"}}, minD},
		{"max-age beats Expires", http.Header{"Cache-Control": {"max-age=120"}, "Expires": {now.Add(48 * time.Hour).Format(http.TimeFormat)}}, 2 * time.Minute},
	} {
		if got := refreshAfter(tt.h, minD, maxD, now); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestTypeMatches(t *testing.T) {
	for _, tt := range []struct {
		typ, want string
		ok        bool
	}{
		{"at+jwt", "at+jwt", true}, {"AT+JWT", "at+jwt", true}, {"application/at+jwt", "at+jwt", true},
		{"Application/AT+JWT", "at+jwt", true}, {"at+jwt", "application/at+jwt", true},
		{"JWT", "at+jwt", false}, {"", "at+jwt", false}, {"application/", "at+jwt", false}, {"xat+jwt", "at+jwt", false},
	} {
		if got := typeMatches(tt.typ, tt.want); got != tt.ok {
			t.Errorf("typeMatches(%q, %q) = %v", tt.typ, tt.want, got)
		}
	}
}

func TestChallengeValue(t *testing.T) {
	if got := challengeValue("a \"quoted\" \\ path\r\né"); got != "a 'quoted' / path" {
		t.Errorf("challengeValue = %q", got)
	}
}

func TestDateClaim(t *testing.T) {
	for _, tt := range []struct {
		v    any
		want time.Time
		ok   bool
	}{
		{1893456000.0, time.Unix(1893456000, 0), true},
		{1.25, time.Unix(1, 250000000), true},
		{-1.5, time.Unix(-2, 500000000), true},
		{0.9999999999, time.Unix(1, 0), true},
		{"1893456000", time.Time{}, false},
		{1e300, time.Time{}, false},
	} {
		got, err := dateClaim(map[string]any{"exp": tt.v}, "exp")
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("dateClaim(%v) = %v, %v", tt.v, got, err)
		}
	}
}

// TestVerifyRSAMatchesJWX holds verifyRSA to jwx's verification for every
// accepted algorithm: what jwx signs, both accept; altered, both refuse.
func TestVerifyRSAMatchesJWX(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range rsaAlgorithms {
		tok, err := jws.Sign([]byte(`{"sub":"x"}`), jws.WithKey(jwa.SignatureAlgorithm(alg), key))
		if err != nil {
			t.Fatal(err)
		}
		ct, err := parseCompact(string(tok), &scratch{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			pub   *rsa.PublicKey
			input string
			ok    bool
		}{
			{"genuine", &key.PublicKey, ct.signingInput, true},
			{"other key", &other.PublicKey, ct.signingInput, false},
			{"altered input", &key.PublicKey, ct.signingInput + "x", false},
		} {
			ours := verifyRSA(alg, tc.pub, []byte(tc.input), ct.sig) == nil
			_, jerr := jws.Verify([]byte(tc.input+"."+b64.EncodeToString(ct.sig)), jws.WithKey(jwa.SignatureAlgorithm(alg), tc.pub))
			if ours != tc.ok || (jerr == nil) != tc.ok {
				t.Errorf("%s %s: verifyRSA ok=%v, jws.Verify err=%v, want ok=%v", alg, tc.name, ours, jerr, tc.ok)
			}
		}
	}
	if verifyRSA("HS256", &key.PublicKey, []byte("a.b"), []byte("x")) == nil {
		t.Error("HS256 accepted")
	}
}

// TestClaimsRawConcurrent: the lazy claim map is decoded once, safely, when
// handlers read it from several goroutines.
func TestClaimsRawConcurrent(t *testing.T) {
	c, err := decodeClaims(`{"exp":5,"query":"q","n":[1,{"a":null}]}`, "k")
	if err != nil {
		t.Fatal(err)
	}
	maps := make(chan map[string]any, 8)
	for range cap(maps) {
		go func() { maps <- c.Raw() }()
	}
	first := <-maps
	for range cap(maps) - 1 {
		if m := <-maps; reflect.ValueOf(m).UnsafePointer() != reflect.ValueOf(first).UnsafePointer() {
			t.Fatal("Raw decoded the claims more than once")
		}
	}
	if v, ok := c.Claim("query"); !ok || v != "q" {
		t.Errorf(`Claim("query") = %v, %v`, v, ok)
	}
	var zero *Claims
	if zero.Raw() != nil || (&Claims{}).Raw() != nil {
		t.Error("Raw of a nil or empty Claims is not nil")
	}
}
