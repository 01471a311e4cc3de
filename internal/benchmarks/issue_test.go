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
// the raw signing rate that issuance reaches (target ≥ 0.85).
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
	var issue, raw time.Duration
	for b.Loop() {
		t0 := time.Now()
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader("grant_type=client_credentials&scope=read"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, req)
		t1 := time.Now()
		d := sha256.Sum256(input)
		if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:]); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
		issue += t1.Sub(t0)
		raw += t2.Sub(t1)
	}
	b.ReportMetric(float64(issue.Nanoseconds())/float64(b.N), "issue-ns/op")
	b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "raw-ns/op")
	b.ReportMetric(float64(raw)/float64(issue), "raw/issue")
}
