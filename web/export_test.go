package web

import (
	"net/http"
	"time"
)

// Hooks for the external tests (package web_test) into the signup limiter.

// SignupMaxAddrs is the signup limiter's cap on tracked addresses.
const SignupMaxAddrs = signupMaxAddrs

// NewSignupStore is a signup limiter store on the clock now.
func NewSignupStore(now func() time.Time) (allow func(id string) (bool, error), size func() int) {
	s := newRateStore(signupEvery, signupBurst, signupMaxAddrs, now)
	return s.Allow, s.Len
}

// SignupStoreLen is the number of addresses the server's signup limiter
// tracks; h is a *Server.
func SignupStoreLen(h http.Handler) int { return h.(*Server).signups.Len() }
