package benchmarks

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/rotation"
)

// discard is a reusable ResponseWriter, so the benchmark measures the handler.
type discard struct {
	h    http.Header
	code int
	n    int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(code int)        { d.code = code }
func (d *discard) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }

// issueBench runs POST /token grant_type=client_credentials with HTTP Basic
// client authentication through the full Echo handler (middleware, routing,
// client lookup, secret check, claims, one RSA-2048 signature, JSON response).
func issueBench(b *testing.B, static bool) {
	const secret = "kgs_benchmark-secret-0123456789abcdefghijklmnopqr"
	var clients []idp.Client
	if static {
		clients = []idp.Client{{ID: "bench", SecretHash: idp.HashSecret(secret), GrantTypes: []string{idp.GrantClientCredentials},
			Scopes: []string{"read"}, Audience: []string{"orders"}}}
	}
	s := kgtest.Start(b, kgtest.Options{Clients: clients})
	if !static {
		c := &idp.Client{ID: "bench", GrantTypes: []string{idp.GrantClientCredentials}, Scopes: []string{"read"}, Audience: []string{"orders"},
			SecretHash: idp.HashSecret(secret)}
		if _, err := s.IDP.Directory().RegisterClient(context.Background(), c, false); err != nil {
			b.Fatal(err)
		}
	}
	h := s.Handler()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("bench:"+secret))
	body := "grant_type=client_credentials&scope=read"
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		clear(w.h)
		w.code, w.n = 0, 0
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkIssueClientCredentials: a client registered in the store (SQLite),
// as `keygate clients add` makes them.
func BenchmarkIssueClientCredentials(b *testing.B) { issueBench(b, false) }

// BenchmarkIssueClientCredentialsStatic: a client from config.yaml (in memory).
func BenchmarkIssueClientCredentialsStatic(b *testing.B) { issueBench(b, true) }

// BenchmarkRawRS256Sign is the floor: SHA-256 over a token-sized signing input
// and one PKCS#1 v1.5 signature with an RSA-2048 key (crypto/rsa).
func BenchmarkRawRS256Sign(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	input := []byte(strings.Repeat("x", 400)) // the size of a header.payload
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d := sha256.Sum256(input)
		if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueVsRawInterleaved alternates one issuance (stored client, the
// whole handler) and one raw RS256 signature with the same key size, timing
// each, so both see the same machine: the reported raw/issue is the share of
// the raw signing rate that issuance reaches (target ≥ 0.92 per CPU second).
// raw/issue-cpu charges each its thread's CPU time (the handler runs on the
// benchmark's goroutine, locked to its thread), which another process
// taking the core does not move; raw/issue is the same in wall time. The
// order of the two alternates between iterations.
func BenchmarkIssueVsRawInterleaved(b *testing.B) {
	const secret = "kgs_benchmark-secret-0123456789abcdefghijklmnopqr"
	s := kgtest.Start(b, kgtest.Options{})
	c := &idp.Client{ID: "bench", GrantTypes: []string{idp.GrantClientCredentials}, Scopes: []string{"read"},
		Audience: []string{"orders"}, SecretHash: idp.HashSecret(secret)}
	if _, err := s.IDP.Directory().RegisterClient(context.Background(), c, false); err != nil {
		b.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("bench:"+secret))
	w := &discard{h: http.Header{}}
	input := []byte(strings.Repeat("x", 400))
	issueOne := func() {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader("grant_type=client_credentials&scope=read"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	rawOne := func() {
		d := sha256.Sum256(input)
		if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:]); err != nil {
			b.Fatal(err)
		}
	}
	lockThread(b)
	var issue, raw, issueCPU, rawCPU time.Duration
	timed := func(f func(), wall, cpu *time.Duration) {
		t0, c0 := time.Now(), threadCPU(b)
		f()
		*cpu += threadCPU(b) - c0
		*wall += time.Since(t0)
	}
	for n := 0; b.Loop(); n++ {
		if n%2 == 0 {
			timed(issueOne, &issue, &issueCPU)
			timed(rawOne, &raw, &rawCPU)
		} else {
			timed(rawOne, &raw, &rawCPU)
			timed(issueOne, &issue, &issueCPU)
		}
	}
	b.ReportMetric(float64(issue.Nanoseconds())/float64(b.N), "issue-ns/op")
	b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "raw-ns/op")
	b.ReportMetric(float64(raw)/float64(issue), "raw/issue")
	b.ReportMetric(float64(rawCPU)/float64(issueCPU), "raw/issue-cpu")
}

// algServer starts a server keeping RS256, ES256 and EdDSA keys, with one
// stored client per algorithm (client id = the algorithm, lower case).
func algServer(b *testing.B) http.Handler {
	s := kgtest.Start(b, kgtest.Options{Policy: rotation.Policy{RotationPeriod: 24 * time.Hour, PublishAhead: time.Hour,
		Retention: 2 * time.Hour, RSABits: 2048, Algorithms: []string{"RS256", "ES256", "EdDSA"}}})
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		c := &idp.Client{ID: strings.ToLower(alg), GrantTypes: []string{idp.GrantClientCredentials}, Scopes: []string{"read"},
			Audience: []string{"orders"}, SecretHash: idp.HashSecret(algBenchSecret), SigningAlg: alg}
		if _, err := s.IDP.Directory().RegisterClient(context.Background(), c, false); err != nil {
			b.Fatal(err)
		}
	}
	return s.Handler()
}

const algBenchSecret = "kgs_benchmark-secret-0123456789abcdefghijklmnopqr"

// issueOnce runs one client_credentials issuance for client id through h.
func issueOnce(b *testing.B, h http.Handler, w *discard, id string) {
	req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader("grant_type=client_credentials&scope=read"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+algBenchSecret)))
	clear(w.h)
	w.code, w.n = 0, 0
	h.ServeHTTP(w, req)
	if w.code != http.StatusOK {
		b.Fatalf("%s: status %d", id, w.code)
	}
}

// BenchmarkIssueByAlgorithm: POST /token (client_credentials, stored client,
// the whole handler) for a client registered with each signing algorithm.
func BenchmarkIssueByAlgorithm(b *testing.B) {
	h := algServer(b)
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				issueOnce(b, h, w, strings.ToLower(alg))
			}
		})
	}
}

// BenchmarkIssueES256VsRS256Interleaved alternates one RS256, one ES256 and
// one EdDSA issuance on the same server, timing each, so all three see the
// same machine; it reports how many times faster ES256 and EdDSA issuance is
// than RS256 issuance (target for ES256: ≥ 5).
func BenchmarkIssueES256VsRS256Interleaved(b *testing.B) {
	h := algServer(b)
	w := &discard{h: http.Header{}}
	ids := [3]string{"rs256", "es256", "eddsa"}
	var spent [3]time.Duration
	i := 0
	for b.Loop() {
		// Rotate which algorithm goes first, so that none is always the one
		// that pays for the garbage (GC assists) of the one before it.
		for k := range 3 {
			j := (i + k) % 3
			t0 := time.Now()
			issueOnce(b, h, w, ids[j])
			spent[j] += time.Since(t0)
		}
		i++
	}
	rs, es, ed := spent[0], spent[1], spent[2]
	n := float64(b.N)
	b.ReportMetric(float64(rs.Nanoseconds())/n, "rs256-ns/issue")
	b.ReportMetric(float64(es.Nanoseconds())/n, "es256-ns/issue")
	b.ReportMetric(float64(ed.Nanoseconds())/n, "eddsa-ns/issue")
	b.ReportMetric(float64(rs)/float64(es), "es256-speedup")
	b.ReportMetric(float64(rs)/float64(ed), "eddsa-speedup")
}
