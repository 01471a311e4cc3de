package jwks

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
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
