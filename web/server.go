// Package web is Keygate's HTTP face, one Echo application serving the
// published key set and discovery; the OAuth 2.0 / OpenID Connect endpoints
// (token, revocation, introspection, userinfo, authorization); the browser
// pages (login, signup, account, logout); the users API; the script login and
// the client key server; the admin API; and health, readiness and metrics.
// Handlers are thin: tokens, clients, users and sessions live in idp, the key
// lifecycle in rotation, publication in jwks. Every route has one error shape
// (errors.go).
package web

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/throttle"
)

// Keys is what the web layer needs of the key lifecycle.
type Keys interface {
	Current() *rotation.Snapshot
	Rotate(ctx context.Context, force bool) (rotation.RotateResult, error)
	Revoke(ctx context.Context, kid string) (rotation.RevokeResult, error)
}

// Pinger is what /readyz asks of the store: whether it answers (Ping) and
// whether it can commit a write (CheckWritable, a real write: /readyz runs it
// at most once per writeProbeEvery).
type Pinger interface {
	Ping(ctx context.Context) error
	CheckWritable(ctx context.Context) error
	SchemaVersion(ctx context.Context) (applied, known int64, err error)
}

// Config holds the server's dependencies.
type Config struct {
	Issuer     string
	AdminToken string // bootstrap bearer secret for /admin; empty: only admin users' tokens (see requireAdmin)
	// Version is the build's version (internal/version), and SchemaVersion
	// the store's migration level when the server started: /healthz shows
	// both, without asking the store.
	Version       string
	SchemaVersion int64
	MaxBodyBytes  int64
	Keys          Keys
	IDP           *idp.Provider // tokens and sessions; its Directory: clients, users
	Store         Pinger
	JWKS          http.Handler // the pre-serialized key set (a *jwks.Publisher)
	Metrics       *Metrics
	Registry      *prometheus.Registry // gathered by /metrics
	Logger        *slog.Logger
	Now           func() time.Time

	// TrustedProxies are the reverse proxies (server.trusted_proxies) whose
	// X-Forwarded-For is believed; see clientIP. Empty: the client is the TCP
	// peer and forwarding headers are ignored.
	TrustedProxies []*net.IPNet
	// MetricsElsewhere keeps /metrics off this handler: the caller serves
	// MetricsHandler on its own listener (server.metrics_listen).
	MetricsElsewhere bool
}

// Server is the configured Echo application.
type Server struct {
	cfg       Config
	dir       *idp.Directory // cfg.IDP's: clients and users
	echo      *echo.Echo
	discovery []byte
	endpoints map[string]string // formRequest's paths → issuer + path (endpointURL)
	adminKey  [32]byte          // SHA-256 of the admin token, compared in constant time
	ui        *browserUI
	shapes    map[string]errorShape // "METHOD /path" → how the route writes errors
	signups   *rateStore            // the signup limiter's buckets
	writes    writeProbe            // /readyz's cached store write check
	origins   originIndex           // every client's CORS origins (cors.go)
}

// New builds the routes. The result is an http.Handler; the caller owns the
// listener and the http.Server (with its timeouts).
func New(cfg Config) (*Server, error) {
	if cfg.Keys == nil || cfg.IDP == nil || cfg.Store == nil || cfg.JWKS == nil || cfg.Metrics == nil || cfg.Registry == nil {
		return nil, errors.New("web: Keys, IDP, Store, JWKS, Metrics and Registry are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, dir: cfg.IDP.Directory(), echo: echo.New(), shapes: map[string]errorShape{}}
	s.adminKey = digest(cfg.AdminToken)
	s.endpoints = map[string]string{}
	for _, p := range []string{"/token", "/revoke", "/introspect", "/device/code"} {
		s.endpoints[p] = cfg.Issuer + p
	}
	doc, err := discoveryDocument(cfg.Issuer, cfg.IDP)
	if err != nil {
		return nil, err
	}
	s.discovery = doc

	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = clientIP(cfg.TrustedProxies)
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.RequestID())
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.cfg.Logger.Error("panic in handler", "err", err, "path", c.Request().URL.Path,
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.BodyLimit(strconv.FormatInt(cfg.MaxBodyBytes, 10)))
	e.Use(s.requestLogger())

	// /jwks and /.well-known/jwks.json are served in ServeHTTP, ahead of Echo.
	e.GET("/.well-known/openid-configuration", s.serveDiscovery)
	e.GET("/.well-known/oauth-authorization-server", s.serveDiscovery)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if !cfg.MetricsElsewhere {
		e.GET("/metrics", echo.WrapHandler(s.MetricsHandler()))
	}

	s.shapeErrors(oauthErrors,
		e.POST("/token", corsVary(s.token)),
		e.POST("/revoke", corsVary(s.revoke)),
		e.POST("/introspect", s.introspect))
	e.GET("/userinfo", corsVary(s.userinfo))
	e.POST("/userinfo", corsVary(s.userinfo))
	e.OPTIONS("/token", s.corsPreflight(corsTokenMethod))
	e.OPTIONS("/revoke", s.corsPreflight(corsTokenMethod))
	e.OPTIONS("/userinfo", s.corsPreflight(corsUserMethods))
	signupLimit := s.signupLimiter()
	e.POST("/users", s.signup, signupLimit)
	e.GET("/users/me", s.me)
	e.POST("/login/assertion", s.scriptLogin)
	e.POST("/login", s.login) // the HTML form, or the script login for scripts that post here
	e.GET("/getkey", s.getKey)

	if err := s.registerBrowser(e, signupLimit); err != nil {
		return nil, err
	}

	admin := e.Group("/admin", s.requireAdmin, s.auditWrites)
	admin.GET("/keys", s.adminListKeys)
	admin.POST("/keys/rotate", s.adminRotate)
	admin.POST("/keys/:kid/revoke", s.adminRevoke)
	s.adminManageRoutes(admin)
	return s, nil
}

// MetricsHandler serves the Prometheus metrics: on the main listener at
// /metrics unless Config.MetricsElsewhere, and on server.metrics_listen.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})
}

// clientIP is the one rule for the client's address. Echo's c.RealIP() asks
// it, and so do everything that uses c.RealIP(): the request log, the admin
// audit lines, the login throttle's per-IP key (web/browser.go, web/oauth.go)
// and the signup limiter. Without trusted proxies it is the TCP peer and
// X-Forwarded-For and X-Real-IP are ignored (Echo's default would believe
// either header from anyone). With them, X-Forwarded-For is read only when
// the TCP peer is a trusted proxy, from the right: the first hop that is not a
// trusted proxy is the client, so hops a client writes itself (to the left of
// what its proxy appends) cannot choose the address. Loopback, link-local and
// private addresses are trusted only when listed, unlike Echo's defaults. The
// answer is a parsed IP's canonical text, so never longer than an IPv6
// address: the limiters' keys have a fixed bound.
func clientIP(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	xff := echo.ExtractIPFromXFFHeader(opts...)
	return func(r *http.Request) string {
		ip := xff(r)
		if p := net.ParseIP(ip); p != nil {
			return p.String()
		}
		return ip
	}
}

// ServeHTTP makes Server an http.Handler. The two key-set routes go straight to
// the pre-serialized publisher: they are the hottest, most machine-polled routes
// and need none of the middleware (no body, nothing logged, counted in
// /metrics), and skipping Echo's chain (request-ID generation, recover, routing)
// is what brings them near a static file server. Everything else goes through
// Echo.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p == "/jwks" || p == "/.well-known/jwks.json" {
		s.cfg.JWKS.ServeHTTP(w, r)
		return
	}
	s.echo.ServeHTTP(w, r)
}

// quietPaths are polled by machines many times a second; logging each request
// would cost more than serving it. They are counted in /metrics instead.
var quietPaths = map[string]bool{"/jwks": true, "/.well-known/jwks.json": true, "/healthz": true, "/readyz": true, "/metrics": true}

// requestLogger logs one line per request with its request ID. It logs the path,
// never the query string, which can carry codes and tokens.
func (s *Server) requestLogger() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		Skipper: func(c echo.Context) bool {
			return quietPaths[c.Request().URL.Path]
		},
		LogStatus: true, LogURIPath: true, LogMethod: true, LogLatency: true, LogRequestID: true,
		LogRemoteIP: true, LogError: true, HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			attrs := []slog.Attr{slog.String("method", v.Method), slog.String("path", v.URIPath),
				slog.Int("status", v.Status), slog.Duration("latency", v.Latency),
				slog.String("request_id", v.RequestID), slog.String("remote_ip", v.RemoteIP)}
			if v.Error != nil && v.Status >= 500 {
				attrs = append(attrs, slog.String("err", v.Error.Error()))
			}
			s.cfg.Logger.LogAttrs(c.Request().Context(), level, "request", attrs...)
			return nil
		},
	})
}

// Signup limiter: each address gets signupBurst signups at once and one more
// every signupEvery; at most signupMaxAddrs addresses are tracked.
const (
	signupBurst    = 10
	signupEvery    = time.Second
	signupMaxAddrs = 10_000
)

// errSignupsBusy is the signup limiter's answer when it tracks signupMaxAddrs
// addresses, none idle: a new address is refused rather than remembered.
var errSignupsBusy = errors.New("signup limiter full")

// signupLimiter bounds signups per client IP, JSON (POST /users) and form
// (POST /signup) alike, on top of the argon2 concurrency bound: each signup
// costs a password hash. Both routes share its budget. The identifier is the
// network of c.RealIP() (clientIP's answer): the IPv4 address or the IPv6 /64,
// throttle.NetworkKey, as for the login throttle.
func (s *Server) signupLimiter() echo.MiddlewareFunc {
	s.signups = newRateStore(signupEvery, signupBurst, signupMaxAddrs, time.Now)
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store: s.signups,
		IdentifierExtractor: func(c echo.Context) (string, error) {
			return throttle.NetworkKey(c.RealIP()), nil
		},
		DenyHandler: func(c echo.Context, _ string, err error) error {
			msg := "Too many signups from this address; slow down."
			if errors.Is(err, errSignupsBusy) {
				msg = "Too many signups right now; slow down."
			}
			return s.writeError(c, &problem{Status: http.StatusTooManyRequests, RetryAfter: time.Second,
				Title: "Slow down", Message: msg, Hint: "Wait a moment and try again."})
		},
	})
}

// rateStore is a middleware.RateLimiterStore with a token bucket per
// identifier and a hard cap on how many it keeps. It is written here because
// Echo's RateLimiterMemoryStore has no cap, only an expiry: every distinct
// identifier costs an entry for ExpiresIn, so a flood of distinct identifiers
// grows it without bound (issue "Abuse-proof": ~527 MB in 15 s when the
// identifier was an attacker's header).
//
// Memory: at most max entries, each a few hundred bytes plus its key (an IP
// address from clientIP, at most 45 bytes). Buckets are kept least recently
// used first; a bucket untouched for idle (burst × every, the time to refill
// from empty) is full again and behaves exactly like no bucket, so dropping
// it loses nothing: that is done from the front of the list on every call,
// O(1) amortized. When the store is still full, a new identifier is refused
// (errSignupsBusy) rather than evicting a bucket still in use, which would
// hand its owner a fresh burst. So known addresses keep their exact budget,
// and a flood of more than max addresses within idle delays only new
// addresses' signups, for at most idle after it stops.
type rateStore struct {
	mu      sync.Mutex
	every   time.Duration
	burst   int
	max     int
	idle    time.Duration
	now     func() time.Time
	entries map[string]*list.Element // values *rateEntry
	lru     *list.List               // least recently used first
}

type rateEntry struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

func newRateStore(every time.Duration, burst, max int, now func() time.Time) *rateStore {
	return &rateStore{every: every, burst: burst, max: max, idle: time.Duration(burst) * every, now: now,
		entries: map[string]*list.Element{}, lru: list.New()}
}

// Allow implements middleware.RateLimiterStore.
func (s *rateStore) Allow(id string) (bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for el := s.lru.Front(); el != nil && now.Sub(el.Value.(*rateEntry).last) >= s.idle; el = s.lru.Front() {
		s.lru.Remove(el)
		delete(s.entries, el.Value.(*rateEntry).key)
	}
	if el, ok := s.entries[id]; ok {
		e := el.Value.(*rateEntry)
		e.last = now
		s.lru.MoveToBack(el)
		return e.lim.AllowN(now, 1), nil
	}
	if s.lru.Len() >= s.max {
		return false, errSignupsBusy
	}
	e := &rateEntry{key: id, lim: rate.NewLimiter(rate.Every(s.every), s.burst), last: now}
	s.entries[id] = s.lru.PushBack(e)
	return e.lim.AllowN(now, 1), nil
}

// Len is the number of buckets kept.
func (s *rateStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// healthz is liveness: it answers without touching the store, with the
// build's version and the schema's migration level at start, which tell an
// operator which release a replica runs and nothing an attacker could use
// beyond that (no host, path, backend, configuration or key).
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "version": s.cfg.Version, "schema_version": s.cfg.SchemaVersion})
}

// schemaCheck is /readyz's "schema" check: the database's migration level,
// read now, against the one this binary carries. Behind (a database restored
// under a running server) is not ready. Ahead (a newer release migrated the
// shared database during a rolling upgrade) is reported but stays ready:
// migrations only add, so this replica keeps working until it is upgraded,
// and failing it would drop every old replica out of the load balancer the
// moment the first new one starts (it would refuse to start on it again).
func schemaCheck(ctx context.Context, st Pinger) (string, bool) {
	applied, known, err := st.SchemaVersion(ctx)
	switch {
	case err != nil:
		return "unknown", false
	case applied < known:
		return fmt.Sprintf("behind: the database is at migration %d, this binary needs %d", applied, known), false
	case applied > known:
		return fmt.Sprintf("ahead: the database is at migration %d, this binary knows up to %d; serving, but upgrade it (it would refuse to restart)", applied, known), true
	}
	return "ok", true
}

// readyz is ready when the store answers within two seconds, can commit a
// write, and an active key is loaded: a replica that cannot sign, cannot see
// the key set or cannot record what it issues (refresh tokens, sessions,
// revocations) should get no traffic. The write check is a real write (the
// store's heartbeat row), so it runs at most once per writeProbeEvery and
// its answer is shared meanwhile: polling /readyz cannot hammer the database.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"store": "ok", "store_writes": "ok", "signing_key": "ok", "schema": "ok"}
	ready := true
	if err := s.cfg.Store.Ping(ctx); err != nil {
		checks["store"], checks["store_writes"], checks["schema"], ready = "unreachable", "unknown", "unknown", false
		s.cfg.Logger.Warn("readiness: store unreachable", "err", err)
	} else {
		if err := s.writes.check(ctx, s.cfg.Store, s.cfg.Logger); err != nil {
			checks["store_writes"], ready = "failing: the store cannot commit a write", false
		}
		var ok bool
		if checks["schema"], ok = schemaCheck(ctx, s.cfg.Store); !ok {
			ready = false
		}
	}
	if snap := s.cfg.Keys.Current(); snap == nil || snap.Signing.Private == nil {
		checks["signing_key"], ready = "not loaded", false
	}
	if !ready {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": checks})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ready", "checks": checks})
}

// writeProbeEvery is how often /readyz may write to the store.
const writeProbeEvery = time.Second

// writeProbe runs the store's write check at most once per writeProbeEvery
// and remembers the answer; concurrent callers wait for one check.
type writeProbe struct {
	mu  sync.Mutex
	at  time.Time // when the last check ran (monotonic); zero: never
	err error
}

func (p *writeProbe) check(ctx context.Context, st Pinger, log *slog.Logger) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < writeProbeEvery {
		return p.err
	}
	p.err, p.at = st.CheckWritable(ctx), time.Now()
	if p.err != nil {
		log.Warn("readiness: the store cannot commit a write", "err", p.err)
	}
	return p.err
}
