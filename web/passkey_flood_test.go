package web_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/throttle"
)

// TestPasskeySignInsOverallLimitHTTP: once sign-ins begun from all
// addresses together exceed login.passkey_burst, POST
// /login/passkey/options answers 429 with Retry-After and a JSON error (the
// script shows it) instead of storing another challenge; a minute later one
// more begins.
func TestPasskeySignInsOverallLimitHTTP(t *testing.T) {
	t.Parallel()
	e := newBrEnv(t, kgtest.Options{Localhost: true, PasskeySignIns: throttle.Limits{Burst: 3, Every: time.Minute}})
	b := e.browser(t)
	token := brLoginPage(t, b.get(t, "/login")).Get("csrf")
	for i := range 5 {
		r := b.options(t, "/login/passkey/options", token, nil)
		if i < 3 {
			if r.status != http.StatusOK {
				t.Fatalf("sign-in %d: %s", i+1, r)
			}
			continue
		}
		secs, _ := strconv.Atoi(r.hdr.Get("Retry-After"))
		if r.status != http.StatusTooManyRequests || secs < 1 || !strings.Contains(r.object(t)["error"].(string), "too many passkey sign-ins") {
			t.Fatalf("sign-in %d: %s; want 429 with Retry-After and a JSON error", i+1, r)
		}
	}
	e.clock.Advance(time.Minute)
	if r := b.options(t, "/login/passkey/options", token, nil); r.status != http.StatusOK {
		t.Fatalf("a minute later: %s", r)
	}
}
