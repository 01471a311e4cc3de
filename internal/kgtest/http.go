package kgtest

import (
	"bytes"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"testing"
)

// LogBuffer is a log sink that other goroutines (a server's, a child
// process's output copier) may write to while the test reads it.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// Send builds a request for method and url with the headers in hdr and the
// given body, and sends it with Do. A request that cannot be built fails the
// test.
func Send(t testing.TB, c *http.Client, method, url string, hdr map[string]string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return Do(t, c, req)
}

// Do sends req with c (http.DefaultClient if c is nil) and returns the
// response, its body already read in full and closed. A request that cannot
// be sent, or a body that cannot be read to its end, fails the test.
func Do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

// hiddenField is one hidden input of Keygate's templates, as they write it.
var hiddenField = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// HiddenFields returns the hidden form fields (csrf, request, ...) of a page
// Keygate rendered, unescaped, for tests that post its forms back as a
// browser without JavaScript would.
func HiddenFields(page []byte) url.Values {
	v := url.Values{}
	for _, m := range hiddenField.FindAllSubmatch(page, -1) {
		v.Set(string(m[1]), html.UnescapeString(string(m[2])))
	}
	return v
}
