package jwks_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/jwks"
)

// Generating 2048-bit RSA keys is slow, so a handful is made once per test
// binary and shared by all tests and benchmarks.
var (
	keysOnce sync.Once
	keysVal  []*rsa.PrivateKey
	keysErr  error
)

const numTestKeys = 4

func testKeys(tb testing.TB) []*rsa.PrivateKey {
	tb.Helper()
	keysOnce.Do(func() {
		keys := make([]*rsa.PrivateKey, numTestKeys)
		var wg sync.WaitGroup
		errs := make([]error, numTestKeys)
		for i := range keys {
			wg.Go(func() { keys[i], errs[i] = rsa.GenerateKey(rand.Reader, 2048) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				keysErr = err
				return
			}
		}
		keysVal = keys
	})
	if keysErr != nil {
		tb.Fatalf("generate RSA keys: %v", keysErr)
	}
	return keysVal
}

// pubKeys returns PublicKeys for the test keys at the given indexes, with
// kid "k<index>" and RS256.
func pubKeys(tb testing.TB, idx ...int) []jwks.PublicKey {
	tb.Helper()
	keys := testKeys(tb)
	out := make([]jwks.PublicKey, 0, len(idx))
	for _, i := range idx {
		out = append(out, jwks.PublicKey{KID: "k" + strconv.Itoa(i), Algorithm: "RS256", Key: &keys[i].PublicKey})
	}
	return out
}

func mustDoc(tb testing.TB, keys []jwks.PublicKey) *jwks.Document {
	tb.Helper()
	doc, err := jwks.NewDocument(keys)
	if err != nil {
		tb.Fatalf("NewDocument: %v", err)
	}
	return doc
}

// wantETag recomputes the entity tag the way the package documents it, so
// the tests pin the derivation rather than just "some string".
func wantETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:])[:32] + `"`
}

func TestNewDocumentMembers(t *testing.T) {
	keys := testKeys(t)
	tests := []struct {
		name string
		keys []jwks.PublicKey
	}{
		{"nil set", nil},
		{"empty set", []jwks.PublicKey{}},
		{"one key", pubKeys(t, 0)},
		{"three keys", pubKeys(t, 2, 0, 1)},
		{"public part of private key, mixed algs", []jwks.PublicKey{
			{KID: "a", Algorithm: "RS256", Key: &keys[0].PublicKey},
			{KID: "b", Algorithm: "PS384", Key: keys[1].Public()},
			{KID: "c", Algorithm: "RS512", Key: keys[2].PublicKey}, // value, not pointer
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertDocumentMembers(t, mustDoc(t, tt.keys), tt.keys)
		})
	}
}

// assertDocumentMembers checks that doc, made of keys, is compact JSON with
// only a keys array holding, in order, exactly the public members of each
// key, and that its KIDs are the keys'.
func assertDocumentMembers(t *testing.T, doc *jwks.Document, keys []jwks.PublicKey) {
	t.Helper()
	allowed := []string{"alg", "e", "kid", "kty", "n", "use"}
	forbidden := []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "x5c", "key_ops"}

	var compact bytes.Buffer
	if err := json.Compact(&compact, doc.Body); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, doc.Body)
	}
	if !bytes.Equal(compact.Bytes(), doc.Body) {
		t.Errorf("body is not compact:\n%s", doc.Body)
	}
	if len(keys) == 0 && string(doc.Body) != `{"keys":[]}` {
		t.Errorf("empty set body = %s, want {\"keys\":[]}", doc.Body)
	}
	for i, e := range documentEntries(t, doc.Body, len(keys)) {
		if got := slices.Sorted(mapKeys(e)); !slices.Equal(got, allowed) {
			t.Errorf("key %d members = %v, want exactly %v", i, got, allowed)
		}
		assertKeyEntry(t, i, e, keys[i], forbidden)
	}
	// Belt and braces: the raw bytes never name a private member.
	for _, f := range forbidden {
		if bytes.Contains(doc.Body, []byte(`"`+f+`":`)) {
			t.Errorf("body contains %q member:\n%s", f, doc.Body)
		}
	}

	wantKIDs := make([]string, 0, len(keys))
	for _, k := range keys {
		wantKIDs = append(wantKIDs, k.KID)
	}
	if got := doc.KIDs(); !slices.Equal(got, wantKIDs) {
		t.Errorf("KIDs() = %v, want %v", got, wantKIDs)
	}
}

// documentEntries returns the entries of body's keys array, the only
// top-level member, failing unless it is an array of n.
func documentEntries(t *testing.T, body []byte, n int) []map[string]any {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatal(err)
	}
	if len(top) != 1 || top["keys"] == nil {
		t.Fatalf("top-level members = %v, want only keys", slices.Sorted(mapKeys(top)))
	}
	var entries []map[string]any
	if err := json.Unmarshal(top["keys"], &entries); err != nil {
		t.Fatal(err)
	}
	if entries == nil {
		t.Fatalf("keys is null, want an array")
	}
	if len(entries) != n {
		t.Fatalf("got %d keys, want %d", len(entries), n)
	}
	return entries
}

// assertKeyEntry checks entry i of a published set against want: an RSA
// signing key of its kid and alg, with none of the forbidden members.
func assertKeyEntry(t *testing.T, i int, e map[string]any, want jwks.PublicKey, forbidden []string) {
	t.Helper()
	for _, f := range forbidden {
		if _, ok := e[f]; ok {
			t.Errorf("key %d has forbidden member %q", i, f)
		}
	}
	if e["kty"] != "RSA" || e["use"] != "sig" {
		t.Errorf("key %d kty=%v use=%v, want RSA sig", i, e["kty"], e["use"])
	}
	if e["kid"] != want.KID || e["alg"] != want.Algorithm {
		t.Errorf("key %d kid=%v alg=%v, want %s %s (order must be kept)", i, e["kid"], e["alg"], want.KID, want.Algorithm)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestNewDocumentRoundTrip(t *testing.T) {
	in := pubKeys(t, 0, 1, 2, 3)
	in[1].Algorithm = "PS256"
	doc := mustDoc(t, in)

	set, err := jwk.Parse(doc.Body)
	if err != nil {
		t.Fatalf("jwk.Parse: %v", err)
	}
	if set.Len() != len(in) {
		t.Fatalf("parsed %d keys, want %d", set.Len(), len(in))
	}
	for i, want := range in {
		k, _ := set.Key(i)
		if _, ok := k.(jwk.RSAPublicKey); !ok {
			t.Errorf("key %d parsed as %T, want RSA public key", i, k)
		}
		if k.KeyID() != want.KID || k.Algorithm().String() != want.Algorithm || k.KeyUsage() != "sig" {
			t.Errorf("key %d: kid=%q alg=%q use=%q, want %q %q sig", i, k.KeyID(), k.Algorithm(), k.KeyUsage(), want.KID, want.Algorithm)
		}
		var got rsa.PublicKey
		if err := k.Raw(&got); err != nil {
			t.Fatalf("key %d Raw: %v", i, err)
		}
		wantPub := want.Key.(*rsa.PublicKey)
		if got.N.Cmp(wantPub.N) != 0 || got.E != wantPub.E {
			t.Errorf("key %d: round-tripped public key differs", i)
		}
	}
}

func TestNewDocumentErrors(t *testing.T) {
	keys := testKeys(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := func(kid string) jwks.PublicKey {
		return jwks.PublicKey{KID: kid, Algorithm: "RS256", Key: &keys[0].PublicKey}
	}
	with := func(mod func(*jwks.PublicKey)) []jwks.PublicKey {
		k := good("x")
		mod(&k)
		return []jwks.PublicKey{k}
	}

	tests := []struct {
		name    string
		keys    []jwks.PublicKey
		wantErr string
	}{
		{"rsa private key pointer", with(func(k *jwks.PublicKey) { k.Key = keys[0] }), "private key"},
		{"rsa private key value", with(func(k *jwks.PublicKey) { k.Key = *keys[0] }), "private key"},
		{"ed25519 private key", with(func(k *jwks.PublicKey) { k.Key = edPriv }), "private key"},
		{"ecdsa private key", with(func(k *jwks.PublicKey) { k.Key = ecKey }), "private key"},
		{"ecdsa public key", with(func(k *jwks.PublicKey) { k.Key = &ecKey.PublicKey }), "unsupported key type"},
		{"ed25519 public key", with(func(k *jwks.PublicKey) { k.Key = edPub }), "unsupported key type"},
		{"symmetric key", with(func(k *jwks.PublicKey) { k.Key = []byte("secret") }), "unsupported key type"},
		{"nil key", with(func(k *jwks.PublicKey) { k.Key = nil }), "missing key"},
		{"nil rsa pointer", with(func(k *jwks.PublicKey) { k.Key = (*rsa.PublicKey)(nil) }), "invalid RSA public key"},
		{"rsa without modulus", with(func(k *jwks.PublicKey) { k.Key = &rsa.PublicKey{E: 65537} }), "invalid RSA public key"},
		{"rsa without exponent", with(func(k *jwks.PublicKey) { k.Key = &rsa.PublicKey{N: big.NewInt(12345)} }), "invalid RSA public key"},
		{"empty kid", with(func(k *jwks.PublicKey) { k.KID = "" }), "empty kid"},
		{"duplicate kid", []jwks.PublicKey{good("a"), good("b"), good("a")}, "duplicate kid"},
		{"empty alg", with(func(k *jwks.PublicKey) { k.Algorithm = "" }), "not a supported signature algorithm"},
		{"none alg", with(func(k *jwks.PublicKey) { k.Algorithm = "none" }), "not a supported signature algorithm"},
		{"hmac alg", with(func(k *jwks.PublicKey) { k.Algorithm = "HS256" }), "not a supported signature algorithm"},
		{"ec alg", with(func(k *jwks.PublicKey) { k.Algorithm = "ES256" }), "needs an ECDSA P-256 public key"},
		{"ec without coordinates", with(func(k *jwks.PublicKey) {
			k.Algorithm, k.Key = "ES256", &ecdsa.PublicKey{Curve: elliptic.P256()}
		}), "needs an ECDSA key on curve P-256"},
		{"ec point off the curve", with(func(k *jwks.PublicKey) {
			//lint:ignore SA1019 a point off the curve can only be built from raw coordinates
			k.Algorithm, k.Key = "ES256", &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(2)}
		}), "needs a valid P-256 public key"},
		{"lowercase alg", with(func(k *jwks.PublicKey) { k.Algorithm = "rs256" }), "not a supported signature algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := jwks.NewDocument(tt.keys)
			if err == nil {
				t.Fatalf("NewDocument succeeded, body %s; want error containing %q", doc.Body, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			if doc != nil {
				t.Errorf("got a document alongside an error")
			}
		})
	}
}

func TestETagTracksKeySet(t *testing.T) {
	base := pubKeys(t, 0, 1, 2)
	a, b := mustDoc(t, base), mustDoc(t, pubKeys(t, 0, 1, 2))
	if !bytes.Equal(a.Body, b.Body) || a.ETag != b.ETag {
		t.Fatalf("same keys gave different documents:\n%s %s\n%s %s", a.ETag, a.Body, b.ETag, b.Body)
	}
	if a.ETag != wantETag(a.Body) {
		t.Errorf("ETag = %s, want %s (quoted base64url(sha256(body))[:32])", a.ETag, wantETag(a.Body))
	}
	if len(a.ETag) != 34 || strings.HasPrefix(a.ETag, "W/") {
		t.Errorf("ETag %s is not a strong, quoted 32-character tag", a.ETag)
	}

	changed := map[string][]jwks.PublicKey{
		"add key":    pubKeys(t, 0, 1, 2, 3),
		"remove key": pubKeys(t, 0, 1),
		"reorder":    pubKeys(t, 1, 0, 2),
		"empty":      nil,
		"rename kid": func() []jwks.PublicKey { k := pubKeys(t, 0, 1, 2); k[1].KID = "renamed"; return k }(),
		"change alg": func() []jwks.PublicKey { k := pubKeys(t, 0, 1, 2); k[2].Algorithm = "PS256"; return k }(),
		"swap material": func() []jwks.PublicKey {
			k := pubKeys(t, 0, 1, 2)
			k[0].Key = &testKeys(t)[3].PublicKey
			return k
		}(),
	}
	seen := map[string]string{a.ETag: "base"}
	for name, keys := range changed {
		d := mustDoc(t, keys)
		if prev, dup := seen[d.ETag]; dup {
			t.Errorf("%s: ETag %s equals that of %s", name, d.ETag, prev)
		}
		seen[d.ETag] = name
		if d.ETag != wantETag(d.Body) {
			t.Errorf("%s: ETag not derived from body", name)
		}
	}
}

func TestKIDsIsACopy(t *testing.T) {
	doc := mustDoc(t, pubKeys(t, 0, 1))
	kids := doc.KIDs()
	kids[0] = "mutated"
	if got := doc.KIDs(); got[0] != "k0" {
		t.Errorf("KIDs() shares storage with the document: %v", got)
	}
	var nilDoc *jwks.Document
	if nilDoc.KIDs() != nil {
		t.Errorf("nil document KIDs() should be nil")
	}
}

func TestServeHTTP(t *testing.T) {
	doc := mustDoc(t, pubKeys(t, 0, 1, 2))
	other := mustDoc(t, pubKeys(t, 3))
	opaque := strings.Trim(doc.ETag, `"`)
	const maxAge = 5 * time.Minute

	type header = map[string]string
	tests := []struct {
		name        string
		unpublished bool
		method      string
		inm         []string // If-None-Match field lines
		wantStatus  int
		wantBody    string // exact; "" means no body
		wantHeaders header // exact values; "" means must be absent
	}{
		{
			name: "GET", method: http.MethodGet, wantStatus: 200, wantBody: string(doc.Body),
			wantHeaders: header{
				"Content-Type": "application/json", "Cache-Control": "public, max-age=300",
				"ETag": doc.ETag, "Access-Control-Allow-Origin": "*",
				"Content-Length": strconv.Itoa(len(doc.Body)),
			},
		},
		{
			name: "HEAD", method: http.MethodHead, wantStatus: 200,
			wantHeaders: header{
				"Content-Type": "application/json", "Cache-Control": "public, max-age=300",
				"ETag": doc.ETag, "Access-Control-Allow-Origin": "*",
				"Content-Length": strconv.Itoa(len(doc.Body)),
			},
		},
		{
			name: "If-None-Match exact", method: http.MethodGet, inm: []string{doc.ETag}, wantStatus: 304,
			wantHeaders: header{"ETag": doc.ETag, "Cache-Control": "public, max-age=300", "Content-Length": "", "Content-Type": ""},
		},
		{
			name: "If-None-Match exact on HEAD", method: http.MethodHead, inm: []string{doc.ETag}, wantStatus: 304,
			wantHeaders: header{"ETag": doc.ETag, "Cache-Control": "public, max-age=300"},
		},
		{
			name: "If-None-Match list", method: http.MethodGet, inm: []string{`"nope", ` + doc.ETag + `, "other"`}, wantStatus: 304,
			wantHeaders: header{"ETag": doc.ETag},
		},
		{
			name: "If-None-Match list without spaces", method: http.MethodGet, inm: []string{`"a","b",` + doc.ETag}, wantStatus: 304,
		},
		{
			name: "If-None-Match across field lines", method: http.MethodGet, inm: []string{`"nope"`, doc.ETag}, wantStatus: 304,
		},
		{
			name: "If-None-Match star", method: http.MethodGet, inm: []string{"*"}, wantStatus: 304,
			wantHeaders: header{"ETag": doc.ETag},
		},
		{
			name: "If-None-Match weak", method: http.MethodGet, inm: []string{"W/" + doc.ETag}, wantStatus: 304,
		},
		{
			name: "If-None-Match weak in list", method: http.MethodGet, inm: []string{`W/"x", W/` + doc.ETag}, wantStatus: 304,
		},
		{
			name: "If-None-Match after tag containing comma", method: http.MethodGet, inm: []string{`"a,b", ` + doc.ETag}, wantStatus: 304,
		},
		{
			name: "If-None-Match after malformed element", method: http.MethodGet, inm: []string{`bogus, ` + doc.ETag}, wantStatus: 304,
		},
		{
			name: "If-None-Match other document", method: http.MethodGet, inm: []string{other.ETag}, wantStatus: 200, wantBody: string(doc.Body),
			wantHeaders: header{"ETag": doc.ETag},
		},
		{
			name: "If-None-Match unquoted tag", method: http.MethodGet, inm: []string{opaque}, wantStatus: 200, wantBody: string(doc.Body),
		},
		{
			name: "If-None-Match tag with comma does not split", method: http.MethodGet, inm: []string{`"x,` + opaque + `"`}, wantStatus: 200, wantBody: string(doc.Body),
		},
		{
			name: "If-None-Match prefix of tag", method: http.MethodGet, inm: []string{`"` + opaque[:10] + `"`}, wantStatus: 200, wantBody: string(doc.Body),
		},
		{
			name: "If-None-Match unterminated", method: http.MethodGet, inm: []string{`"` + opaque}, wantStatus: 200, wantBody: string(doc.Body),
		},
		{
			name: "If-None-Match lowercase weak prefix", method: http.MethodGet, inm: []string{"w/" + doc.ETag}, wantStatus: 200, wantBody: string(doc.Body),
		},
		{
			name: "If-None-Match empty", method: http.MethodGet, inm: []string{""}, wantStatus: 200, wantBody: string(doc.Body),
		},
		{
			name: "POST", method: http.MethodPost, wantStatus: 405, wantBody: `{"error":"method not allowed"}`,
			wantHeaders: header{
				"Allow": "GET, HEAD", "Content-Type": "application/json", "Cache-Control": "no-store",
				"Content-Length": strconv.Itoa(len(`{"error":"method not allowed"}`)), "ETag": "",
			},
		},
		{name: "PUT", method: http.MethodPut, wantStatus: 405, wantBody: `{"error":"method not allowed"}`, wantHeaders: header{"Allow": "GET, HEAD"}},
		{name: "DELETE", method: http.MethodDelete, wantStatus: 405, wantBody: `{"error":"method not allowed"}`},
		{name: "OPTIONS", method: http.MethodOptions, wantStatus: 405, wantBody: `{"error":"method not allowed"}`},
		{name: "POST before publish", unpublished: true, method: http.MethodPost, wantStatus: 405, wantBody: `{"error":"method not allowed"}`},
		{
			name: "GET before publish", unpublished: true, method: http.MethodGet, wantStatus: 503,
			wantBody: `{"error":"key set not loaded yet"}`,
			wantHeaders: header{
				"Content-Type": "application/json", "Cache-Control": "no-store", "ETag": "",
				"Content-Length":              strconv.Itoa(len(`{"error":"key set not loaded yet"}`)),
				"Access-Control-Allow-Origin": "*",
			},
		},
		{name: "HEAD before publish", unpublished: true, method: http.MethodHead, wantStatus: 503},
		{name: "star before publish", unpublished: true, method: http.MethodGet, inm: []string{"*"}, wantStatus: 503, wantBody: `{"error":"key set not loaded yet"}`},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var observed []int
			p := jwks.NewPublisher(maxAge, jwks.WithObserver(func(s int) { observed = append(observed, s) }))
			if !tt.unpublished {
				p.Publish(doc)
			}
			req := httptest.NewRequest(tt.method, "/.well-known/jwks.json", nil)
			for _, v := range tt.inm {
				req.Header.Add("If-None-Match", v)
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req)
			res := rec.Result()

			if res.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if got := rec.Body.String(); got != tt.wantBody {
				t.Errorf("body = %q, want %q", got, tt.wantBody)
			}
			for k, want := range tt.wantHeaders {
				vals := res.Header.Values(k)
				switch {
				case want == "" && len(vals) > 0:
					t.Errorf("header %s = %q, want absent", k, vals)
				case want != "" && (len(vals) != 1 || vals[0] != want):
					t.Errorf("header %s = %q, want [%q]", k, vals, want)
				}
			}
			if cl := res.Header.Get("Content-Length"); cl != "" && tt.method != http.MethodHead && cl != strconv.Itoa(rec.Body.Len()) {
				t.Errorf("Content-Length %s does not match body length %d", cl, rec.Body.Len())
			}
			if !slices.Equal(observed, []int{tt.wantStatus}) {
				t.Errorf("observer saw %v, want exactly [%d]", observed, tt.wantStatus)
			}
		})
	}
}

// TestServeHTTPOverNetwork runs the handler behind a real net/http server,
// so that Content-Length, HEAD and 304 handling are checked end to end and
// not only against the recorder.
func TestServeHTTPOverNetwork(t *testing.T) {
	doc := mustDoc(t, pubKeys(t, 0, 1, 2))
	p := jwks.NewPublisher(time.Hour)
	p.Publish(doc)
	srv := httptest.NewServer(p)
	defer srv.Close()

	do := func(method, inm string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		return kgtest.Do(t, srv.Client(), req)
	}

	tests := []struct {
		name, method, inm string
		wantStatus        int
		wantBody          []byte
		wantLen           int64
	}{
		{"GET", http.MethodGet, "", 200, doc.Body, int64(len(doc.Body))},
		{"HEAD", http.MethodHead, "", 200, nil, int64(len(doc.Body))},
		{"conditional GET", http.MethodGet, doc.ETag, 304, nil, -1},
		{"stale conditional GET", http.MethodGet, `"stale"`, 200, doc.Body, int64(len(doc.Body))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := do(tt.method, tt.inm)
			if res.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if !bytes.Equal(body, tt.wantBody) {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
			if tt.wantLen >= 0 {
				if res.ContentLength != tt.wantLen || res.Header.Get("Content-Length") != strconv.FormatInt(tt.wantLen, 10) {
					t.Errorf("Content-Length = %d (%q), want %d", res.ContentLength, res.Header.Get("Content-Length"), tt.wantLen)
				}
			}
			if got := res.Header.Get("ETag"); got != doc.ETag {
				t.Errorf("ETag = %q, want %q", got, doc.ETag)
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
			if got := res.Header.Get("Cache-Control"); got != "public, max-age=3600" {
				t.Errorf("Cache-Control = %q", got)
			}
		})
	}
}

func TestCacheControlMaxAge(t *testing.T) {
	doc := mustDoc(t, pubKeys(t, 0))
	tests := []struct {
		maxAge time.Duration
		want   string
	}{
		{0, "public, max-age=0"},
		{-time.Minute, "public, max-age=0"},
		{1500 * time.Millisecond, "public, max-age=1"},
		{500 * time.Millisecond, "public, max-age=0"},
		{10 * time.Minute, "public, max-age=600"},
		{24 * time.Hour, "public, max-age=86400"},
	}
	for _, tt := range tests {
		t.Run(tt.maxAge.String(), func(t *testing.T) {
			p := jwks.NewPublisher(tt.maxAge)
			p.Publish(doc)
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if got := rec.Header().Get("Cache-Control"); got != tt.want {
				t.Errorf("Cache-Control = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPublishCurrentAndWithdraw(t *testing.T) {
	a, b := mustDoc(t, pubKeys(t, 0)), mustDoc(t, pubKeys(t, 1))
	p := jwks.NewPublisher(time.Minute, nil, jwks.WithObserver(nil)) // nil option and nil observer are tolerated
	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec
	}

	if p.Current() != nil {
		t.Fatal("Current() before Publish should be nil")
	}
	if rec := get(); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("before Publish: status %d, want 503", rec.Code)
	}
	p.Publish(a)
	if p.Current() != a {
		t.Error("Current() should return the published document")
	}
	if rec := get(); rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), a.Body) {
		t.Errorf("after Publish(a): %d %s", rec.Code, rec.Body)
	}
	p.Publish(b)
	if p.Current() != b {
		t.Error("Current() should follow Publish")
	}
	if rec := get(); !bytes.Equal(rec.Body.Bytes(), b.Body) || rec.Header().Get("ETag") != b.ETag {
		t.Errorf("after Publish(b): served %s %s", rec.Header().Get("ETag"), rec.Body)
	}
	p.Publish(nil)
	if p.Current() != nil {
		t.Error("Current() after Publish(nil) should be nil")
	}
	if rec := get(); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("after Publish(nil): status %d, want 503", rec.Code)
	}
}

// TestPublishSnapshotsBody checks that modifying a Document after Publish
// cannot make the handler serve bytes that disagree with the ETag.
func TestPublishSnapshotsBody(t *testing.T) {
	doc := mustDoc(t, pubKeys(t, 0, 1))
	want := bytes.Clone(doc.Body)
	wantTag := doc.ETag
	p := jwks.NewPublisher(time.Minute)
	p.Publish(doc)
	doc.Body[2] = 'X'
	doc.ETag = `"tampered"`

	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if !bytes.Equal(rec.Body.Bytes(), want) || rec.Header().Get("ETag") != wantTag {
		t.Errorf("served %s %s, want the bytes as published", rec.Header().Get("ETag"), rec.Body)
	}

	// A hand-built document gets an ETag derived from its body, not its field.
	p.Publish(&jwks.Document{Body: []byte(`{"keys":[]}`), ETag: `"whatever"`})
	rec = httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if got := rec.Header().Get("ETag"); got != wantETag([]byte(`{"keys":[]}`)) {
		t.Errorf("ETag = %s, want one derived from the body", got)
	}
}

// TestConcurrentPublishAndServe swaps documents while many goroutines serve
// requests; every response must be internally consistent (body, ETag and
// Content-Length from one document). Run with -race.
func TestConcurrentPublishAndServe(t *testing.T) {
	docs := []*jwks.Document{
		mustDoc(t, pubKeys(t, 0)),
		mustDoc(t, pubKeys(t, 0, 1)),
		mustDoc(t, pubKeys(t, 1, 2, 3)),
		mustDoc(t, nil),
	}
	byETag := make(map[string][]byte, len(docs))
	for _, d := range docs {
		byETag[d.ETag] = d.Body
	}

	var served atomic.Int64
	p := jwks.NewPublisher(time.Minute, jwks.WithObserver(func(int) { served.Add(1) }))
	p.Publish(docs[0])

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i++ {
				p.Publish(docs[i%len(docs)])
				_ = p.Current().KIDs()
			}
		})
	}
	var requests atomic.Int64
	for range 8 {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for ctx.Err() == nil {
				rec := httptest.NewRecorder()
				p.ServeHTTP(rec, req)
				requests.Add(1)
				if rec.Code != 200 {
					t.Errorf("status %d", rec.Code)
					return
				}
				body, tag := rec.Body.Bytes(), rec.Header().Get("ETag")
				want, ok := byETag[tag]
				if !ok || !bytes.Equal(body, want) || tag != wantETag(body) {
					t.Errorf("torn response: ETag %s with body %s", tag, body)
					return
				}
				if rec.Header().Get("Content-Length") != strconv.Itoa(len(body)) {
					t.Errorf("torn response: Content-Length %s for %d bytes", rec.Header().Get("Content-Length"), len(body))
					return
				}
			}
		})
	}
	wg.Wait()
	if requests.Load() == 0 {
		t.Fatal("no requests served")
	}
	if served.Load() != requests.Load() {
		t.Errorf("observer called %d times for %d requests", served.Load(), requests.Load())
	}
}

// TestServeHTTPDoesNotAllocate pins the "no per-request allocation" design:
// with a response writer that does not allocate, neither does the handler.
func TestServeHTTPDoesNotAllocate(t *testing.T) {
	doc := mustDoc(t, pubKeys(t, 0, 1, 2))
	p := jwks.NewPublisher(time.Minute, jwks.WithObserver(func(int) {}))
	p.Publish(doc)
	cases := map[string]*http.Request{
		"200": httptest.NewRequest(http.MethodGet, "/", nil),
		"304": func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("If-None-Match", `"a", W/`+doc.ETag)
			return r
		}(),
		"405": httptest.NewRequest(http.MethodPost, "/", nil),
	}
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			w := newDiscardWriter()
			allocs := testing.AllocsPerRun(200, func() {
				w.reset()
				p.ServeHTTP(w, req)
			})
			if allocs != 0 {
				t.Errorf("ServeHTTP allocates %.1f times per request, want 0", allocs)
			}
		})
	}
}
