package jwks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// fetchTimeout bounds one discovery or key fetch, whatever the HTTP
	// client's own settings: jwk.Cache's fetch interface has no context, so
	// without a bound a black-holed issuer would hold the refresh forever.
	fetchTimeout = 10 * time.Second
	// maxDocumentBytes bounds discovery documents, key sets and PEM answers.
	maxDocumentBytes = 1 << 20
)

// getDocument GETs u and returns its body, bounded in size and time. Any
// status but 200 is an error that quotes the start of the body, so that an
// operator reading the log sees what the server said.
func getDocument(ctx context.Context, client *http.Client, u, accept string) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", accept)
	res, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxDocumentBytes+1))
	if err != nil {
		return res, nil, fmt.Errorf("GET %s: reading body: %w", u, err)
	}
	if len(body) > maxDocumentBytes {
		return res, nil, fmt.Errorf("GET %s: body larger than %d bytes", u, maxDocumentBytes)
	}
	if res.StatusCode != http.StatusOK {
		return res, body, &statusError{url: u, status: res.Status, code: res.StatusCode, body: body}
	}
	return res, body, nil
}

type statusError struct {
	url, status string
	code        int
	body        []byte
}

func (e *statusError) Error() string {
	snippet := strings.TrimSpace(string(e.body))
	if len(snippet) > 120 {
		snippet = snippet[:120] + "..."
	}
	if snippet == "" {
		return fmt.Sprintf("GET %s: %s", e.url, e.status)
	}
	return fmt.Sprintf("GET %s: %s: %q", e.url, e.status, snippet)
}

// discovery is the part of an OpenID Provider / RFC 8414 metadata document
// the verifier needs.
type discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// discover fetches <issuerURL>/.well-known/openid-configuration.
func discover(ctx context.Context, client *http.Client, issuerURL string) (*discovery, error) {
	u := strings.TrimSuffix(issuerURL, "/") + "/.well-known/openid-configuration"
	_, body, err := getDocument(ctx, client, u, "application/json")
	if err != nil {
		return nil, err
	}
	var d discovery
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("GET %s: not a discovery document: %w", u, err)
	}
	if d.JWKSURI == "" {
		return nil, fmt.Errorf("GET %s: discovery document has no jwks_uri", u)
	}
	return &d, nil
}

// jwksFetcher is the HTTP client handed to jwk.Cache. jwk.Cache does the
// scheduling and keeps the last good set; this adapter fills three gaps of
// jwk.Cache (jwx v2.1.7, httprc v1.0.6):
//
//   - httprc honours Cache-Control max-age only from below (never earlier
//     than the minimum interval) and has no upper bound, so the response's
//     caching headers are rewritten here into one max-age clamped to
//     [min, max];
//   - its fetch interface is Get(url) without a context, so a slow issuer
//     could block a refresh indefinitely; each fetch gets fetchTimeout here;
//   - its JWKS transformer neither closes nor bounds the response body; the
//     body is read here (at most maxDocumentBytes), the connection released,
//     and a non-200 answer turned into an error with the server's words.
//
// It also counts fetches and records when the last one started, for the
// unknown-kid rate limit.
type jwksFetcher struct {
	v *Verifier
}

func (f *jwksFetcher) Get(u string) (*http.Response, error) {
	v := f.v
	v.stats.fetches.Add(1)
	v.lastFetch.Store(v.cfg.now().UnixNano())
	res, body, err := getDocument(v.bg, v.cfg.httpClient, u, "application/jwk-set+json, application/json")
	if err != nil {
		return nil, err
	}
	maxAge := refreshAfter(res.Header, v.cfg.minRefresh, v.cfg.maxRefresh, time.Now())
	out := &http.Response{
		Status:        res.Status,
		StatusCode:    res.StatusCode,
		Proto:         res.Proto,
		ProtoMajor:    res.ProtoMajor,
		ProtoMinor:    res.ProtoMinor,
		Header:        http.Header{"Cache-Control": {"max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       res.Request,
	}
	return out, nil
}

// refreshAfter is how long a key set fetched with header h may be used:
// Cache-Control max-age (minus Age), else Expires - Date, else min; no-store
// and no-cache mean min; the result is clamped to [min, max].
func refreshAfter(h http.Header, minD, maxD time.Duration, now time.Time) time.Duration {
	d, ok := freshness(h, now)
	if !ok {
		d = minD
	}
	return max(minD, min(maxD, d))
}

func freshness(h http.Header, now time.Time) (time.Duration, bool) {
	var maxAge time.Duration = -1
	for _, line := range h.Values("Cache-Control") {
		for _, dir := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
				if err != nil || n < 0 {
					return 0, true // an unreadable max-age is treated as stale (RFC 9111 §4.2.1)
				}
				if n > int64(365*24*time.Hour/time.Second) {
					n = int64(365 * 24 * time.Hour / time.Second)
				}
				maxAge = time.Duration(n) * time.Second
			}
		}
	}
	if maxAge >= 0 {
		if age, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && age > 0 {
			maxAge -= time.Duration(min(age, int64(365*24*time.Hour/time.Second))) * time.Second
		}
		return max(maxAge, 0), true
	}
	if exp := h.Get("Expires"); exp != "" {
		t, err := http.ParseTime(exp)
		if err != nil {
			return 0, true // an invalid Expires means already expired (RFC 9111 §5.3)
		}
		base := now
		if date, err := http.ParseTime(h.Get("Date")); err == nil {
			base = date
		}
		return max(t.Sub(base), 0), true
	}
	return 0, false
}

// fetchCause drops the wrappers jwk.Cache puts around a fetch error (two
// identical "failed to fetch <url>" layers, then "failed to transform..."),
// which only repeat what the caller already says, keeping the informative
// cause: the HTTP status with the server's words, the network error with
// its URL, or the parse error.
func fetchCause(err error) error {
	for {
		switch err.(type) {
		case *statusError, *url.Error:
			return err
		}
		next := errors.Unwrap(err)
		if next == nil || !strings.HasSuffix(err.Error(), next.Error()) {
			return err
		}
		err = next
	}
}
