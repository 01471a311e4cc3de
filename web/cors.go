package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/idp"
)

// CORS: a browser app (SPA) at another origin may read the answers of /token,
// /revoke and /userinfo when its client allows that origin (idp.Client.Origins:
// its allowed_origins, or its redirect URIs' origins). Nothing else answers
// CORS but discovery and the key set (public, "*"): the browser pages, the
// login and account routes, /introspect and the admin API send no
// Access-Control-* header, so no other site's script can read them.
//
// The origin is always echoed, never "*", and Access-Control-Allow-Credentials
// is never sent: the browser then sends no cookie with the request and shows
// the page none of Keygate's; what the script sends (a client_id, a code, a
// refresh token, a bearer token) it must already hold.
//
// Which client decides:
//
//   - The preflight (OPTIONS) carries no body and no Authorization: for /token
//     and /revoke the client_id is unknown, for /userinfo the token. So it is
//     answered when the origin is allowed for ANY client (corsOrigins). That
//     lets the browser send the request, nothing more: the request itself is
//     checked against its own client.
//   - POST /token and /revoke: the client named by the client_id form field or
//     the Basic user. Its answer (success or OAuth error) echoes the origin only
//     if that client allows it, so an origin allowed for one client cannot read
//     another's tokens.
//   - /userinfo: the client the access token was issued to. A request whose
//     token is invalid or missing has no such client; its 401 (a challenge and
//     nothing else) is readable by any origin some client allows, so that an
//     app can tell an expired token from a network failure.
//
// Every answer of these routes varies on Origin (Vary: Origin), whether or
// not it echoes one, so that no cache hands one origin's answer to another.

const (
	corsMaxAge      = 10 * time.Minute // Access-Control-Max-Age; Chromium caps it at 2h
	corsTokenMethod = "POST"
	corsUserMethods = "GET, POST"
	corsHeaders     = "Authorization, Content-Type, DPoP" // DPoP: RFC 9449 proofs from browser apps
	corsExpose      = "WWW-Authenticate, DPoP-Nonce"
)

// corsPreflight answers OPTIONS on a CORS route: 204, with the
// Access-Control-Allow-* headers when the origin is allowed for some client
// and the request is a preflight (Access-Control-Request-Method); without
// them otherwise, which the browser takes as a refusal.
func (s *Server) corsPreflight(methods string) echo.HandlerFunc {
	return func(c echo.Context) error {
		r, h := c.Request(), c.Response().Header()
		h.Add(echo.HeaderVary, echo.HeaderOrigin)
		h.Add(echo.HeaderVary, echo.HeaderAccessControlRequestMethod)
		h.Add(echo.HeaderVary, echo.HeaderAccessControlRequestHeaders)
		h.Set(echo.HeaderAllow, "OPTIONS, "+methods)
		origin := r.Header.Get(echo.HeaderOrigin)
		if origin != "" && isCORSMethod(methods, r.Header.Get(echo.HeaderAccessControlRequestMethod)) && s.origins.any(r.Context(), s, origin) {
			h.Set(echo.HeaderAccessControlAllowOrigin, origin)
			h.Set(echo.HeaderAccessControlAllowMethods, methods)
			h.Set(echo.HeaderAccessControlAllowHeaders, corsHeaders)
			h.Set(echo.HeaderAccessControlMaxAge, strconv.Itoa(int(corsMaxAge.Seconds())))
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// corsVary marks an answer of a CORS route as varying on Origin; next's
// handler then calls allowOrigin once it knows the request's client. It wraps
// the handler once, at registration (Echo applies route middleware on every
// request), and the usual header value is a shared slice, which Header.Add
// copies rather than changes.
func corsVary(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		if v := h[echo.HeaderVary]; len(v) == 0 {
			h[echo.HeaderVary] = varyOrigin
		} else {
			h[echo.HeaderVary] = append(v[:len(v):len(v)], echo.HeaderOrigin)
		}
		return next(c)
	}
}

var varyOrigin = []string{echo.HeaderOrigin}

// corsForClient echoes the request's Origin when the client clientID allows
// it. An unknown client, or no Origin, adds nothing.
func (s *Server) corsForClient(c echo.Context, clientID string) {
	origin := c.Request().Header.Get(echo.HeaderOrigin)
	// The index is a cheap first filter: most origins are no client's.
	if origin == "" || clientID == "" || !s.origins.any(c.Request().Context(), s, origin) {
		return
	}
	cl, err := s.dir.Client(c.Request().Context(), clientID)
	if err == nil && cl.AllowsOrigin(origin) {
		allowOrigin(c, origin)
	}
}

// corsForAnyClient echoes the request's Origin when some client allows it.
func (s *Server) corsForAnyClient(c echo.Context) {
	if origin := c.Request().Header.Get(echo.HeaderOrigin); origin != "" && s.origins.any(c.Request().Context(), s, origin) {
		allowOrigin(c, origin)
	}
}

func allowOrigin(c echo.Context, origin string) {
	h := c.Response().Header()
	h.Set(echo.HeaderAccessControlAllowOrigin, origin)
	h.Set(echo.HeaderAccessControlExposeHeaders, corsExpose)
}

// requestClientID is the client a form request names: its client_id field,
// else its Basic user.
func requestClientID(req *idp.Request) string {
	if req == nil {
		return ""
	}
	if id := req.Form.Get("client_id"); id != "" {
		return id
	}
	return req.BasicUser
}

// Timings of the origin index: a snapshot is used for originsFresh; an origin
// it does not hold rebuilds it once it is originsRetry old, so a newly
// registered client's origin works within a second while a stream of unknown
// origins costs at most one client listing per originsRetry.
const (
	originsFresh = 30 * time.Second
	originsRetry = time.Second
)

// originIndex is the union of every client's origins (static and stored),
// rebuilt from the directory when stale. It is not a per-origin cache: its
// size is bounded by what administrators registered, whatever origins
// requests name. Only the preflight and the first filter use it; actual
// requests are decided by their own client, so a stale index never lets an
// origin read an answer its client does not allow.
type originIndex struct {
	mu  sync.Mutex
	at  time.Time // when set was built (monotonic); zero: never
	set map[string]bool
}

func (x *originIndex) any(ctx context.Context, s *Server, origin string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	now := time.Now()
	age := now.Sub(x.at)
	if x.at.IsZero() || age >= originsFresh || (!x.set[origin] && age >= originsRetry) {
		x.rebuild(ctx, s, now)
	}
	return x.set[origin]
}

func (x *originIndex) rebuild(ctx context.Context, s *Server, now time.Time) {
	x.at = now // also after a failure: retry no sooner than originsRetry
	cs, err := s.dir.Clients(ctx)
	if err != nil {
		s.cfg.Logger.Warn("CORS: listing clients failed; keeping the previous origins", "err", err)
		return
	}
	set := map[string]bool{}
	for _, c := range cs {
		for _, o := range c.Origins() {
			set[o] = true
		}
	}
	x.set = set
}

// isCORSMethod reports whether methods (a comma-separated list) holds m.
func isCORSMethod(methods, m string) bool {
	for _, v := range strings.Split(methods, ",") {
		if strings.TrimSpace(v) == m {
			return true
		}
	}
	return false
}
