package benchmarks

import (
	"context"
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
