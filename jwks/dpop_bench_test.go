package jwks_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/keygate/keygate/internal/jwtforge"
	"github.com/keygate/keygate/jwks"
)

// BenchmarkDPoPInterleaved measures what the middleware does for a DPoP
// request (an RS256 access token bound to an ES256 key, with a fresh proof:
// token verification, proof verification, thumbprint, ath, replay cache)
// against the raw cost of its two signature checks (SHA-256 and
// rsa.VerifyPKCS1v15 for the token, SHA-256 and ecdsa.Verify for the
// proof), alternating the two on the same proof and timing each, and
// reports the ratio of their medians ("raw/dpop", the fraction of the raw
// rate the middleware achieves). Signing the proof is outside the timings.
// "nonces" runs it with server nonces on (DPoPNonceSecret), each proof
// carrying the nonce of the previous answer.
func BenchmarkDPoPInterleaved(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchDPoP(b, jwks.MiddlewareConfig{DPoPReplayCacheSize: 1 << 24}) })
	b.Run("nonces", func(b *testing.B) {
		benchDPoP(b, jwks.MiddlewareConfig{DPoPReplayCacheSize: 1 << 24, DPoPNonceSecret: []byte("0123456789abcdef0123456789abcdef")})
	})
}

func benchDPoP(b *testing.B, mc jwks.MiddlewareConfig) {
	ti := newTestIssuer(b, 5*time.Minute, 0)
	v := newTestVerifier(b, ti, newFakeClock(), jwks.Config{Now: time.Now})
	key := jwtforge.NewDPoPKey(b, "ES256", "")
	tok := signJWT(b, jwa.RS256, vkeys(b)[0], header(kidOf(0)),
		jwtforge.With(claims(ti, time.Now()), map[string]any{"cnf": map[string]any{"jkt": key.JKT}}))
	mw := jwks.Middleware(v, mc)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	nonce := "" // the DPoP-Nonce of the last answer
	const target = "https://api.example.com/res"
	dot := strings.LastIndexByte(tok, '.')
	tokInput := []byte(tok[:dot])
	tokSig, _ := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	rsaPub := &vkeys(b)[0].PublicKey
	ecPub := &key.Private.(*ecdsa.PrivateKey).PublicKey
	var raw, sdk []time.Duration
	for b.Loop() {
		b.StopTimer()
		proof := key.Proof(b, "GET", target, time.Now(), tok)
		if nonce != "" {
			proof = key.Forge(b, nil, map[string]any{"nonce": nonce}, "GET", target, time.Now(), tok)
		}
		pdot := strings.LastIndexByte(proof, '.')
		req := httptest.NewRequest("GET", target, nil)
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", proof)
		rec := httptest.NewRecorder()
		b.StartTimer()

		t0 := time.Now()
		d := sha256.Sum256(tokInput)
		if err := rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, d[:], tokSig); err != nil {
			b.Fatal(err)
		}
		psig, _ := base64.RawURLEncoding.DecodeString(proof[pdot+1:])
		pd := sha256.Sum256([]byte(proof[:pdot]))
		if !ecdsa.Verify(ecPub, pd[:], new(big.Int).SetBytes(psig[:32]), new(big.Int).SetBytes(psig[32:])) {
			b.Fatal("proof signature")
		}
		t1 := time.Now()
		mw.ServeHTTP(rec, req)
		raw, sdk = append(raw, t1.Sub(t0)), append(sdk, time.Since(t1))
		if first := nonce == "" && rec.Header().Get("DPoP-Nonce") != ""; rec.Code != 200 && !first {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
		nonce = rec.Header().Get("DPoP-Nonce")
	}
	slices.Sort(raw)
	slices.Sort(sdk)
	b.ReportMetric(float64(raw[len(raw)/2])/float64(sdk[len(sdk)/2]), "raw/dpop")
	b.ReportMetric(float64(sdk[len(sdk)/2]), "dpop-ns/op")
	b.ReportMetric(float64(raw[len(raw)/2]), "raw-ns/op")
}
