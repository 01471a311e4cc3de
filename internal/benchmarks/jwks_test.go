package benchmarks

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/kgtest"
)

// BenchmarkJWKSVsPlainInterleaved compares Keygate's /jwks endpoint (the
// whole server handler, over loopback TCP) with two minimal Go net/http
// servers writing the same body: "plain" with only Content-Type and ETag,
// "same" with every header Keygate sends (Cache-Control,
// Access-Control-Allow-Origin and Content-Length too), so the response bytes
// are identical but for Date. Every iteration GETs all three (one
// keep-alive Transport), rotating which goes first, and times each, so all see the same
// machine at the same moment; plain/jwks and same/jwks are Keygate's
// request rate as a fraction of theirs (1 = as fast), from the medians of
// each one's request times (the mean would follow the few requests another
// process on the machine happened to delay). The client's side of
// each request (net/http's Transport) is in every figure. Every answer's
// status and length is checked. One goroutine: with several, each request's
// time would mostly be its wait for the others on a shared machine.
//
//	go test -run '^$' -bench JWKSVsPlain -count 5 ./internal/benchmarks/
func BenchmarkJWKSVsPlainInterleaved(b *testing.B) {
	s := kgtest.Start(b, kgtest.Options{})
	kg := s.URL + "/jwks"
	res, err := http.Get(kg)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		b.Fatalf("GET /jwks: %d %v", res.StatusCode, err)
	}
	etag := res.Header.Get("ETag")
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", etag)
		_, _ = w.Write(body)
	}))
	b.Cleanup(plain.Close)
	hdr := res.Header.Clone()
	hdr.Del("Date")
	same := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range hdr {
			w.Header()[k] = v
		}
		_, _ = w.Write(body)
	}))
	b.Cleanup(same.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	urls := [3]string{kg, plain.URL + "/jwks", same.URL + "/jwks"}
	get := func(url string, buf []byte) error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		n, _ := io.ReadFull(resp.Body, buf)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != len(body) {
			return fmt.Errorf("GET %s: status %d, %d bytes; want 200, %d", url, resp.StatusCode, n, len(body))
		}
		return nil
	}
	var lat [3][]time.Duration // Keygate, plain, same
	buf := make([]byte, len(body)+1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for k := range 3 {
			j := (i + k) % 3
			t0 := time.Now()
			if err := get(urls[j], buf); err != nil {
				b.Fatal(err)
			}
			lat[j] = append(lat[j], time.Since(t0))
		}
		i++
	}
	var med [3]float64
	for j := range lat {
		slices.Sort(lat[j])
		med[j] = float64(lat[j][len(lat[j])/2])
	}
	b.ReportMetric(med[0], "jwks-median-ns")
	b.ReportMetric(med[1], "plain-median-ns")
	b.ReportMetric(med[2], "same-median-ns")
	b.ReportMetric(med[1]/med[0], "plain/jwks")
	b.ReportMetric(med[2]/med[0], "same/jwks")
}
