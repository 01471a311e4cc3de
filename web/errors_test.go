package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/kgtest"
)

// TestErrorShapes: every route answers errors in its one shape, whichever
// layer refuses the request (the body limit ahead of the handler, or the
// handler itself): RFC 6749 §5.2 on the OAuth endpoints, a page on the
// browser pages, {"error": ...} elsewhere.
func TestErrorShapes(t *testing.T) {
	t.Parallel()
	s := kgtest.Start(t, kgtest.Options{})
	big := strings.Repeat("x", 128<<10)
	for _, tc := range []struct {
		name   string
		r      request
		status int
		shape  string // "oauth", "json" or "page"
	}{
		{"token, body over the limit", request{path: "/token", body: big, ctype: "application/x-www-form-urlencoded"}, 413, "oauth"},
		{"token, not a form", request{path: "/token", body: "{}", ctype: "application/json"}, 400, "oauth"},
		{"users, body over the limit", request{path: "/users", body: big, ctype: "application/json"}, 413, "json"},
		{"signup page, body over the limit", request{path: "/signup", body: big, ctype: "application/x-www-form-urlencoded"}, 413, "page"},
		{"script login, not a JWT", request{path: "/login/assertion", body: "{}", ctype: "application/json"}, 415, "json"},
		{"no such route", request{method: http.MethodGet, path: "/nowhere"}, 404, "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := send(t, s.URL, tc.r)
			if res.status != tc.status {
				t.Fatalf("%s, want %d", res, tc.status)
			}
			switch tc.shape {
			case "oauth":
				wantOAuthError(t, res, tc.status, "invalid_request", "")
			case "json":
				if m := res.object(t); len(m) != 1 || m["error"] == "" {
					t.Errorf(`want {"error": ...}: %s`, res)
				}
			case "page":
				if ct := res.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
					t.Errorf("Content-Type %q, want a page: %s", ct, res)
				}
			}
		})
	}
}
