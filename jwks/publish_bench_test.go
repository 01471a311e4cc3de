package jwks_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/jwks"
)

// discardWriter is a minimal http.ResponseWriter that keeps one header map
// and throws the body away, so benchmarks measure the handler rather than
// httptest.ResponseRecorder's buffering and map allocation.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func newDiscardWriter() *discardWriter {
	return &discardWriter{h: make(http.Header, 8)}
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

// reset prepares the writer for the next request; clear keeps the map's
// buckets, so it does not allocate.
func (w *discardWriter) reset() {
	clear(w.h)
	w.status = 0
	w.n = 0
}

// staticHandler is the floor for comparison: it sets the same five headers
// from pre-built slices and writes a constant body of the same size, with no
// method check, atomic load or conditional-request logic.
type staticHandler struct {
	body                                  []byte
	contentType, cacheControl, etag, cors []string
	contentLength                         []string
}

func (s *staticHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h["Content-Type"] = s.contentType
	h["Cache-Control"] = s.cacheControl
	h["Etag"] = s.etag
	h["Access-Control-Allow-Origin"] = s.cors
	h["Content-Length"] = s.contentLength
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.body)
}

func benchDoc(b *testing.B) *jwks.Document {
	b.Helper()
	return mustDoc(b, pubKeys(b, 0, 1, 2))
}

func runHandler(b *testing.B, h http.Handler, req *http.Request, wantStatus int) {
	b.Helper()
	w := newDiscardWriter()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, req)
	}
	b.StopTimer()
	if w.status != wantStatus {
		b.Fatalf("status %d, want %d", w.status, wantStatus)
	}
}

// benchPublisher is a Publisher serving benchDoc, with a no-op observer as
// the server installs one.
func benchPublisher(b *testing.B) (*jwks.Document, *jwks.Publisher) {
	doc := benchDoc(b)
	p := jwks.NewPublisher(5*time.Minute, jwks.WithObserver(func(int) {}))
	p.Publish(doc)
	return doc, p
}

// BenchmarkJWKS serves a 3-key document through Publisher.ServeHTTP.
func BenchmarkJWKS(b *testing.B) {
	doc, p := benchPublisher(b)
	req := httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil)
	b.SetBytes(int64(len(doc.Body)))
	runHandler(b, p, req, http.StatusOK)
}

// BenchmarkJWKS304 serves a conditional request that matches the ETag.
func BenchmarkJWKS304(b *testing.B) {
	doc, p := benchPublisher(b)
	req := httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil)
	req.Header.Set("If-None-Match", doc.ETag)
	runHandler(b, p, req, http.StatusNotModified)
}

// BenchmarkStaticBytes is the baseline: the cheapest handler that produces
// an equivalent response. Compare BenchmarkJWKS against it from the same run.
func BenchmarkStaticBytes(b *testing.B) {
	doc := benchDoc(b)
	h := &staticHandler{
		body:          append([]byte(nil), doc.Body...),
		contentType:   []string{"application/json"},
		cacheControl:  []string{"public, max-age=300"},
		etag:          []string{doc.ETag},
		cors:          []string{"*"},
		contentLength: []string{strconv.Itoa(len(doc.Body))},
	}
	req := httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil)
	b.SetBytes(int64(len(doc.Body)))
	runHandler(b, h, req, http.StatusOK)
}

// BenchmarkJWKSOverHTTP and BenchmarkPlainHandlerOverHTTP serve the same
// 3-key document over a real loopback connection (httptest.Server, one
// keep-alive client per goroutine): Keygate's Publisher, and the plainest Go
// net/http handler writing the same bytes with Content-Type and ETag. Run
// them together and compare ns/op: the ratio is the Publisher's share of the
// whole request, measured in the same run.
func BenchmarkJWKSOverHTTP(b *testing.B) {
	doc, p := benchPublisher(b)
	runOverHTTP(b, p, len(doc.Body))
}

func BenchmarkPlainHandlerOverHTTP(b *testing.B) {
	doc := benchDoc(b)
	body, etag := append([]byte(nil), doc.Body...), doc.ETag
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", etag)
		_, _ = w.Write(body)
	})
	runOverHTTP(b, h, len(doc.Body))
}

// runOverHTTP GETs /jwks from h behind an httptest.Server, from
// GOMAXPROCS goroutines (RunParallel) sharing one keep-alive Transport, and
// checks every answer's status and length.
func runOverHTTP(b *testing.B, h http.Handler, bodyLen int) {
	b.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := srv.URL + "/.well-known/jwks.json"
	buf := make([]byte, bodyLen+1)
	get := func(buf []byte) error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		n, _ := io.ReadFull(resp.Body, buf)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != bodyLen {
			return fmt.Errorf("status %d, %d bytes; want 200, %d", resp.StatusCode, n, bodyLen)
		}
		return nil
	}
	if err := get(buf); err != nil { // warm the connection
		b.Fatal(err)
	}
	b.SetBytes(int64(bodyLen))
	b.ReportAllocs()
	b.ResetTimer()
	var failed atomic.Pointer[error]
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, bodyLen+1)
		for pb.Next() {
			if err := get(buf); err != nil {
				failed.CompareAndSwap(nil, &err)
				return
			}
		}
	})
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}
