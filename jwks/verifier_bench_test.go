package jwks_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/jwks"
)

// BenchmarkVerify measures Verify on a valid Keygate access token (RS256,
// RSA-2048, all claims checked, audience configured) in the steady state.
// fetches/op counts the JWKS requests made during the loop and must be 0.
// Compare with BenchmarkRawRS256Verify, the floor, on ns/op and, when the
// machine is busy, on cpu-ns/op.
func BenchmarkVerify(b *testing.B) {
	ti := newTestIssuer(b, 5*time.Minute, 0)
	v := newTestVerifier(b, ti, newFakeClock(), jwks.Config{Now: time.Now})
	tok := accessToken(b, ti, 0, time.Now())
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	before := ti.jwksHits.Load()
	n := 0
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		n++
	}
	cpu.report(b, n)
	b.ReportMetric(float64(ti.jwksHits.Load()-before)/float64(n), "fetches/op")
}

// BenchmarkRawRS256Verify is the cost of the cryptography alone on the same
// token and key: SHA-256 of the signing input and rsa.VerifyPKCS1v15, with
// the signature already decoded.
func BenchmarkRawRS256Verify(b *testing.B) {
	ti := newTestIssuer(b, 5*time.Minute, 0)
	tok := accessToken(b, ti, 0, time.Now())
	dot := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:dot])
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &vkeys(b)[0].PublicKey
	n := 0
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		digest := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
		n++
	}
	cpu.report(b, n)
}

// cpuMeter reports the process CPU time per operation as "cpu-ns/op"
// (see processCPUTime); compare the two benchmarks on it when the machine
// is busy and ns/op swings.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	t, ok := processCPUTime()
	return cpuMeter{t, ok}
}

func (m cpuMeter) report(b *testing.B, n int) {
	if end, ok := processCPUTime(); ok && m.ok && n > 0 {
		b.ReportMetric(float64(end-m.start)/float64(n), "cpu-ns/op")
	}
}

// BenchmarkVerifyInterleaved alternates one raw RS256 verification and one
// Verify of the same token, timing each, and reports the ratio of their
// medians ("raw/verify", the fraction of the raw rate Verify achieves).
// Interleaving at this grain exposes both to the same interference, so the
// ratio stays meaningful on a busy machine where the separate benchmarks'
// ns/op drift by tens of percent between runs.
func BenchmarkVerifyInterleaved(b *testing.B) {
	ti := newTestIssuer(b, 5*time.Minute, 0)
	v := newTestVerifier(b, ti, newFakeClock(), jwks.Config{Now: time.Now})
	tok := accessToken(b, ti, 0, time.Now())
	dot := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:dot])
	sig, _ := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	pub := &vkeys(b)[0].PublicKey
	ctx := context.Background()
	var raw, ver []time.Duration
	for b.Loop() {
		t0 := time.Now()
		digest := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
		raw, ver = append(raw, t1.Sub(t0)), append(ver, time.Since(t1))
	}
	slices.Sort(raw)
	slices.Sort(ver)
	b.ReportMetric(float64(raw[len(raw)/2])/float64(ver[len(ver)/2]), "raw/verify")
}
