// Package kgtest starts a complete Keygate — real SQLite file, real key
// rotation, real identity provider, real HTTP server on a free port — for
// tests in any package. Only the clock can be injected, so that lifetimes,
// throttling windows and rotations can be crossed without sleeping.
package kgtest

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/keyset"
	"github.com/keygate/keygate/internal/version"
	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/password"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store/sqlite"
	"github.com/keygate/keygate/throttle"
	"github.com/keygate/keygate/web"
)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the current instant.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// Options shape the server. Zero values give sensible test defaults.
type Options struct {
	Clock      *Clock // nil: real time
	AdminToken string
	Clients    []idp.Client // static clients
	Policy     rotation.Policy
	AccessTTL  time.Duration
	Signup     *bool
	UserLimits throttle.Limits
	IPLimits   throttle.Limits
	JWKSMaxAge time.Duration
	Logger     *slog.Logger

	// Browser sessions (zero: idp's defaults, 1h idle and 24h absolute).
	SessionIdleTimeout     time.Duration
	SessionAbsoluteTimeout time.Duration
	// Issuer replaces the server's own URL as the issuer, e.g. an https one
	// to see Secure cookies; flows that follow the issuer's URLs then fail.
	Issuer string
	// Localhost names the server http://localhost:PORT instead of
	// http://127.0.0.1:PORT (it still listens on 127.0.0.1): a WebAuthn
	// relying party ID must be a domain name, so passkeys need it.
	Localhost bool
	// Web, when set, adjusts the web server's configuration before it is
	// built (e.g. TrustedProxies, MetricsElsewhere).
	Web func(*web.Config)
	// DPoP is the provider's DPoP policy (nonces, iat window).
	DPoP idp.DPoPConfig
	// SecondFactor is login.require_second_factor ("" is none).
	SecondFactor idp.SecondFactorPolicy
	// PasskeySignIns bounds passkey sign-ins begun, all addresses together
	// (zero: idp's default).
	PasskeySignIns throttle.Limits
}

// Server is a running Keygate.
type Server struct {
	URL      string
	HTTP     *httptest.Server
	Store    *sqlite.Store
	Keys     *rotation.Manager
	IDP      *idp.Provider
	Registry *prometheus.Registry
	Now      func() time.Time
	Hasher   *password.Hasher // counts argon2 runs (Computations)
}

// Start runs a Keygate for the test; it stops at the end of the test.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	ctx := context.Background()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	now := time.Now
	if o.Clock != nil {
		now = o.Clock.Now
	}
	if o.Policy.RotationPeriod == 0 {
		o.Policy = rotation.Policy{RotationPeriod: 24 * time.Hour, PublishAhead: time.Hour, Retention: 2 * time.Hour, RSABits: 2048}
	}
	if o.AccessTTL == 0 {
		o.AccessTTL = 15 * time.Minute
	}
	if o.UserLimits.Burst == 0 {
		o.UserLimits = throttle.Limits{Burst: 5, Every: time.Minute}
	}
	if o.IPLimits.Burst == 0 {
		o.IPLimits = throttle.Limits{Burst: 1000, Every: time.Millisecond}
	}
	if o.JWKSMaxAge == 0 {
		o.JWKSMaxAge = 10 * time.Minute
	}
	signup := true
	if o.Signup != nil {
		signup = *o.Signup
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keygate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := make([]byte, rotation.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	sealer, err := rotation.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Store: st, Registry: prometheus.NewRegistry(), Now: now}
	metrics := web.NewMetrics(s.Registry, func() *rotation.Snapshot { return s.Keys.Current() }, now)
	pub := jwks.NewPublisher(o.JWKSMaxAge, jwks.WithObserver(metrics.JWKSServed))
	s.Keys, err = rotation.New(rotation.Config{Policy: o.Policy, Store: st, Sealer: sealer, Now: now, Logger: log,
		OnChange: keyset.Republish(pub, log), OnRotate: metrics.Rotated})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Keys.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	s.HTTP = httptest.NewUnstartedServer(nil)
	s.URL = "http://" + s.HTTP.Listener.Addr().String()
	if o.Localhost {
		s.URL = strings.Replace(s.URL, "127.0.0.1", "localhost", 1)
	}
	issuer := s.URL
	if o.Issuer != "" {
		issuer = o.Issuer
	}
	// Small argon2 parameters keep the tests fast; the production ones are
	// password.DefaultParams.
	hasher := password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, 4)
	s.Hasher = hasher
	s.IDP, err = idp.New(idp.Config{DirectoryConfig: idp.DirectoryConfig{AccessTTL: o.AccessTTL, MaxAccessTTL: 24 * time.Hour,
		Clients: o.Clients, Store: st, Hasher: hasher, Now: now, Logger: log, SigningAlgs: o.Policy.Algorithms},
		Issuer: issuer, RefreshTTL: 24 * time.Hour, Leeway: 30 * time.Second, Signup: signup, Signer: s.Keys.Signer(), DPoP: o.DPoP,
		SessionIdleTimeout: o.SessionIdleTimeout, SessionAbsoluteTimeout: o.SessionAbsoluteTimeout,
		Sealer: sealer, SecondFactor: o.SecondFactor, PasskeySignIns: o.PasskeySignIns,
		UserThrottle: throttle.Local(throttle.New(o.UserLimits, 10_000)), IPThrottle: throttle.Local(throttle.New(o.IPLimits, 10_000))})
	if err != nil {
		t.Fatal(err)
	}
	schema, _, err := st.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wc := web.Config{Issuer: issuer, AdminToken: o.AdminToken, MaxBodyBytes: 64 << 10, Keys: s.Keys, IDP: s.IDP,
		Store: st, JWKS: pub, Metrics: metrics, Registry: s.Registry, Logger: log, Now: now,
		Version: version.Get().Version, SchemaVersion: schema}
	if o.Web != nil {
		o.Web(&wc)
	}
	h, err := web.New(wc)
	if err != nil {
		t.Fatal(err)
	}
	s.HTTP.Config.Handler = h
	s.HTTP.Start()
	t.Cleanup(s.HTTP.Close)
	return s
}

// Handler is the server's http.Handler, for benchmarks that skip the network.
func (s *Server) Handler() http.Handler { return s.HTTP.Config.Handler }
