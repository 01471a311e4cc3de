package kgtest_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/throttle"
)

// These tests attack a real in-process server over real HTTP: the login
// throttle must hold whatever the concurrency (attack 1 of "Abuse-proof").

const (
	burst   = 5
	alicePW = "correct horse battery"
)

type env struct {
	*kgtest.Server
	clock  *kgtest.Clock
	secret string
}

func start(t *testing.T) *env {
	t.Helper()
	clock := kgtest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := kgtest.Start(t, kgtest.Options{Clock: clock,
		UserLimits: throttle.Limits{Burst: burst, Every: time.Minute},
		IPLimits:   throttle.Limits{Burst: 100_000, Every: time.Millisecond}})
	secret, err := s.IDP.Directory().RegisterClient(t.Context(), &idp.Client{ID: "pw", GrantTypes: []string{idp.GrantPassword},
		Scopes: []string{"openid"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.IDP.Directory().CreateUser(t.Context(), idp.NewUser{Username: "alice", Email: "alice@example.com", Password: alicePW}); err != nil {
		t.Fatal(err)
	}
	return &env{Server: s, clock: clock, secret: secret}
}

// postForm posts f to target with c (and basic auth when user is set) and
// returns the status, 0 on a transport error.
func postForm(t *testing.T, c *http.Client, target string, f url.Values, user, secret string) int {
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, secret)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer res.Body.Close()
	io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

func (e *env) passwordGrant(t *testing.T, user, pw string) int {
	f := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}, "scope": {"openid"}}
	return postForm(t, http.DefaultClient, e.URL+"/token", f, "pw", e.secret)
}

func count(statuses []int, status int) int {
	n := 0
	for _, s := range statuses {
		if s == status {
			n++
		}
	}
	return n
}

// TestConcurrentPasswordGrantGuessesCannotBeatThrottle (attack 1):
// 40 simultaneous wrong password-grant guesses at one account run argon2 at
// most user_burst times and the rest answer 429; the right password then
// gets 429 too, until a token is back.
func TestConcurrentPasswordGrantGuessesCannotBeatThrottle(t *testing.T) {
	e := start(t)
	before := e.Hasher.Computations()
	statuses := stampede.Run(40, func(int) int { return e.passwordGrant(t, "alice", "wrong guess") })
	if runs := e.Hasher.Computations() - before; runs > burst {
		t.Errorf("40 concurrent guesses ran argon2 %d times, want at most user_burst %d", runs, burst)
	}
	if n := count(statuses, http.StatusTooManyRequests); n != 40-burst {
		t.Errorf("%d of 40 answered 429, want %d (statuses %v)", n, 40-burst, statuses)
	}
	if st := e.passwordGrant(t, "alice", alicePW); st != http.StatusTooManyRequests {
		t.Errorf("right password once the bucket is empty: %d, want 429", st)
	}
	// A burst beyond the limit that includes the right password cannot get
	// 200 either: the bucket is empty, and nothing is verified.
	statuses = stampede.Run(10, func(i int) int {
		if i == 5 {
			return e.passwordGrant(t, "alice", alicePW)
		}
		return e.passwordGrant(t, "ALICE@example.com", "wrong guess")
	})
	if n := count(statuses, http.StatusTooManyRequests); n != 10 {
		t.Errorf("burst with the right password on an empty bucket: %v, want all 429", statuses)
	}
	e.clock.Advance(time.Minute)
	if st := e.passwordGrant(t, "alice", alicePW); st != http.StatusOK {
		t.Errorf("right password after one Every: %d, want 200", st)
	}
}

// formClient gets the login form once and returns a function that posts it
// with a username and password, reusing the CSRF cookie and token.
func (e *env) formClient(t *testing.T) func(user, pw string) int {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(e.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	hidden := kgtest.HiddenFields(body)
	if hidden.Get("csrf") == "" {
		t.Fatalf("login page has no csrf field: %d %s", res.StatusCode, body)
	}
	return func(user, pw string) int {
		f := url.Values{"username": {user}, "password": {pw}}
		for k, v := range hidden {
			f[k] = v
		}
		return postForm(t, c, e.URL+"/login", f, "", "")
	}
}

// TestConcurrentFormLoginGuessesCannotBeatThrottle (attack 1, HTML form):
// the same through the browser login form with its CSRF token.
func TestConcurrentFormLoginGuessesCannotBeatThrottle(t *testing.T) {
	e := start(t)
	post := e.formClient(t)
	before := e.Hasher.Computations()
	statuses := stampede.Run(40, func(int) int { return post("alice", "wrong guess") })
	if runs := e.Hasher.Computations() - before; runs > burst {
		t.Errorf("40 concurrent form guesses ran argon2 %d times, want at most user_burst %d", runs, burst)
	}
	if n := count(statuses, http.StatusOK); n != burst || count(statuses, http.StatusTooManyRequests) != 40-burst {
		t.Errorf("statuses %v: want %d wrong-password pages and %d 429s", statuses, burst, 40-burst)
	}
	if st := post("alice@example.com", alicePW); st != http.StatusTooManyRequests {
		t.Errorf("right password (by email) once the bucket is empty: %d, want 429", st)
	}
	e.clock.Advance(time.Minute)
	if st := post("alice", alicePW); st != http.StatusSeeOther && st != http.StatusFound {
		t.Errorf("right password after one Every: %d, want a redirect after login", st)
	}
}

// TestBurstOf120GuessesLockoutIsBounded (attack 4, over HTTP): 120
// concurrent bad guesses do not lock the owner out for longer than Every
// after the burst; the right password then gets 200.
func TestBurstOf120GuessesLockoutIsBounded(t *testing.T) {
	e := start(t)
	stampede.Run(120, func(int) int { return e.passwordGrant(t, "alice", "bad guess") })
	e.clock.Advance(time.Minute)
	if st := e.passwordGrant(t, "alice", alicePW); st != http.StatusOK {
		t.Errorf("right password one minute after a 120-guess burst: %d, want 200", st)
	}
}
