// Package config loads keygate's configuration: a YAML file (config.yaml in the
// repository is the development default) overlaid with KEYGATE_* environment
// variables for everything that differs between machines. Load validates the
// result, so a bad value stops the server at start with a message that names the
// setting and the problem instead of failing later on a request.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keygate/keygate/idp"
)

// Config is the whole configuration. Relative paths are resolved against the
// directory of the configuration file.
type Config struct {
	Issuer  string   `yaml:"issuer"`
	Listen  string   `yaml:"listen"`
	Storage Storage  `yaml:"storage"`
	Keys    Keys     `yaml:"keys"`
	JWKS    JWKS     `yaml:"jwks"`
	Tokens  Tokens   `yaml:"tokens"`
	Admin   Admin    `yaml:"admin"`
	Server  Server   `yaml:"server"`
	Log     Log      `yaml:"log"`
	Signup  Signup   `yaml:"signup"`
	Login   Login    `yaml:"login"`
	Clients []Client `yaml:"clients"`

	// Sessions are the browser logins of the login pages and /authorize.
	Sessions Sessions `yaml:"sessions"`

	// Path is the file the configuration was read from ("" for none).
	Path string `yaml:"-"`
	// KeyEncryptionKey is KEYGATE_KEY_ENCRYPTION_KEY; it is only ever read from the
	// environment, never from the file, so the key is not stored beside the data.
	KeyEncryptionKey string `yaml:"-"`

	dsnFromEnv bool // Storage.DSN came from KEYGATE_DATABASE_URL (for messages)
}

// Storage selects the database.
type Storage struct {
	Driver string `yaml:"driver"` // "sqlite" or "postgres"
	// DSN is a SQLite file path (or file: URL) or a postgres:// URL; any
	// other scheme is refused. Log it only through RedactDSN.
	DSN string `yaml:"dsn"`
	// Synchronous is SQLite's durability level, "normal" (the default) or
	// "full": with normal a committed write survives a crash of the process
	// but a power cut may roll back the last commits; full fsyncs every
	// commit, at the disk's fsync rate (README, "SQLite: concurrency and
	// durability"). SQLite only: PostgreSQL has its own synchronous_commit.
	Synchronous string `yaml:"synchronous"`
}

// SynchronousFull reports whether SQLite must fsync every commit
// (storage.synchronous: full).
func (s Storage) SynchronousFull() bool { return strings.EqualFold(s.Synchronous, "full") }

// Keys is the signing-key policy.
type Keys struct {
	RSABits int `yaml:"rsa_bits"`
	// Algorithms are the signing algorithms to keep keys for, each rotated
	// on its own: RS256 (always; the default) and optionally ES256 and
	// EdDSA, which clients then choose with signing_alg. Empty: RS256 only.
	Algorithms     []string      `yaml:"algorithms"`
	RotationPeriod time.Duration `yaml:"rotation_period"`
	PublishAhead   time.Duration `yaml:"publish_ahead"`
	// EncryptionKeyFile holds the key-encryption keyring: one key per line, the
	// first seals and every one opens (KEYGATE_KEY_ENCRYPTION_KEY takes a
	// comma-separated list instead).
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	// AllowDevKEKWithHTTPS lets an https issuer run on the development key file
	// beside the database (a lab); otherwise an https issuer needs a configured KEK.
	AllowDevKEKWithHTTPS bool          `yaml:"allow_dev_kek_with_https"`
	PollInterval         time.Duration `yaml:"poll_interval"`
	// LeaseTTL is how long a replica may hold the rotation lease (shared
	// databases only) before another may take over from it.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
}

// JWKS is how the key set is served.
type JWKS struct {
	MaxAge time.Duration `yaml:"max_age"`
}

// Tokens bounds token lifetimes; the longest of them plus Leeway is how long a
// retired key stays published.
type Tokens struct {
	AccessTTL    time.Duration `yaml:"access_ttl"`     // default access-token lifetime
	MaxAccessTTL time.Duration `yaml:"max_access_ttl"` // no client may ask for more
	IDTokenTTL   time.Duration `yaml:"id_token_ttl"`
	RefreshTTL   time.Duration `yaml:"refresh_ttl"` // each refresh token, renewed on every use
	Leeway       time.Duration `yaml:"leeway"`
}

// Signup controls self-service registration (POST /users).
type Signup struct {
	Enabled bool `yaml:"enabled"`
}

// Login bounds password guessing: per-username and per-IP token buckets of
// failed attempts, and how many argon2id computations may run at once.
type Login struct {
	UserBurst int           `yaml:"user_burst"` // failures allowed at once per username
	UserEvery time.Duration `yaml:"user_every"` // one more regained every ...
	IPBurst   int           `yaml:"ip_burst"`
	IPEvery   time.Duration `yaml:"ip_every"`
	// PasskeyBurst and PasskeyEvery bound how fast passkey sign-ins may
	// begin, from all addresses together: each stores a challenge until it
	// is used or expires (5 minutes), so this caps that table at about
	// PasskeyBurst + 5m/PasskeyEvery rows per server whatever the number of
	// attacking addresses (3,300 by default: 300 at once, one more every
	// 100ms, that is 10 per second sustained).
	PasskeyBurst int           `yaml:"passkey_burst"`
	PasskeyEvery time.Duration `yaml:"passkey_every"`
	// MaxConcurrent bounds the argon2id computations running at once (19 MiB
	// each); 0 (the default) means runtime.GOMAXPROCS(0), the usable cores:
	// more would only share the same cores and hold more memory. See
	// HashConcurrency.
	MaxConcurrent int `yaml:"max_concurrent_hashes"`
	// RequireSecondFactor is who must have a second factor (TOTP): "none"
	// (the default: users choose on /account), "admins" or "all". A user
	// it covers who has none is sent to enrol right after the password.
	RequireSecondFactor string `yaml:"require_second_factor"`
	// PasswordGrantWithSecondFactor lets the password grant, which cannot
	// carry a second factor, issue tokens to users who have one (or whom
	// RequireSecondFactor covers); by default it refuses them.
	PasswordGrantWithSecondFactor bool `yaml:"password_grant_with_second_factor"`
}

// HashConcurrency is the number of argon2id computations that may run at
// once: MaxConcurrent, or runtime.GOMAXPROCS(0) when it is 0 (auto).
func (l Login) HashConcurrency() int {
	if l.MaxConcurrent > 0 {
		return l.MaxConcurrent
	}
	return runtime.GOMAXPROCS(0)
}

// Sessions bound browser sessions: one ends after IdleTimeout without a
// request, and AbsoluteTimeout after login in any case.
type Sessions struct {
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
}

// Client is a client declared in the configuration file (static: it cannot be
// deleted from the CLI). Its secret is never written here in clear: give its
// SHA-256 (hex), as printed by `keygate clients hash-secret`.
type Client struct {
	ID                 string        `yaml:"id"`
	Name               string        `yaml:"name"`
	SecretSHA256       string        `yaml:"secret_sha256"`
	PublicKeyFile      string        `yaml:"public_key_file"` // PEM
	JWKS               string        `yaml:"jwks"`            // inline JWK Set JSON
	JWKSURI            string        `yaml:"jwks_uri"`
	GrantTypes         []string      `yaml:"grant_types"`
	Scopes             []string      `yaml:"scopes"`
	Audience           []string      `yaml:"audience"`
	RedirectURIs       []string      `yaml:"redirect_uris"`
	AllowedOrigins     []string      `yaml:"allowed_origins"` // CORS; none: the origins of redirect_uris
	Public             bool          `yaml:"public"`
	AccessTTL          time.Duration `yaml:"access_ttl"`
	NotBeforeDelay     time.Duration `yaml:"not_before_delay"`
	AllowBareAssertion bool          `yaml:"allow_bare_assertion"`
	Introspect         bool          `yaml:"introspect"` // a resource server: may introspect other clients' tokens
	// ThirdParty: an app run by someone else; users see a consent page
	// before its first code.
	ThirdParty bool `yaml:"third_party"`
	// SigningAlg is the algorithm its tokens are signed with: RS256 (the
	// default), ES256 or EdDSA (keys.algorithms must list it).
	SigningAlg string `yaml:"signing_alg"`
	// DPoPBoundAccessTokens requires a DPoP proof (RFC 9449) on every token
	// request of this client: all its access tokens are bound to its key.
	DPoPBoundAccessTokens bool `yaml:"dpop_bound_access_tokens"`

	// PostLogoutRedirectURIs: where RP-initiated logout may return the browser.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
}

// Admin guards the admin HTTP API.
type Admin struct {
	// Token is the bootstrap bearer secret for /admin/...; empty: only an
	// admin user's access token with the admin scope opens the admin API.
	Token string `yaml:"token"`
}

// Server holds HTTP limits.
type Server struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	MaxBodyBytes      int64         `yaml:"max_body_bytes"`

	// TrustedProxies are the addresses (CIDRs, or single IPs) of the reverse
	// proxies in front of Keygate. Only when the TCP peer is one of them is
	// X-Forwarded-For read, and then the client is its rightmost hop that is
	// not itself a trusted proxy. Empty (the default): the client is the TCP
	// peer and forwarding headers are ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MetricsListen, when set (host:port), serves /metrics on its own
	// listener there and no longer on the main one. Empty: /metrics is
	// served on the main listener.
	MetricsListen string `yaml:"metrics_listen"`
	// MemoryLimit is the Go runtime's soft memory limit (debug.SetMemoryLimit),
	// a size such as "200MiB", "1GiB" or "512MB"; the garbage collector works
	// harder as the heap nears it instead of letting it double. Empty (the
	// default): 19 MiB per concurrent argon2id computation plus 26 MiB
	// (app.AutoMemoryLimit; 64 MiB on 2 cores). "0": no limit. The
	// GOMEMLIMIT environment variable, when set, wins over this setting.
	MemoryLimit string `yaml:"memory_limit"`
	// DPoPNonce makes the token endpoint and Keygate's protected endpoints
	// require a server nonce in DPoP proofs (RFC 9449 §8, §9): a proof must
	// carry the DPoP-Nonce Keygate handed out, which bounds how far ahead a
	// stolen key could sign proofs. The nonce is an HMAC of the current time
	// slot under a secret derived from the key-encryption key, so replicas
	// sharing the KEK agree without any shared state. Off by default.
	DPoPNonce bool `yaml:"dpop_nonce"`
	// DPoPNonceLifetime is how long one nonce is current (default 5m); the
	// previous one stays accepted as long again.
	DPoPNonceLifetime time.Duration `yaml:"dpop_nonce_lifetime"`
}

// MemoryLimitBytes parses MemoryLimit: 0 when it is empty or "0".
func (s Server) MemoryLimitBytes() (int64, error) {
	n, err := ParseSize(s.MemoryLimit)
	if err != nil {
		return 0, fmt.Errorf("server.memory_limit: %w", err)
	}
	return n, nil
}

// ParseSize parses a byte size: a non-negative integer with an optional unit,
// B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000),
// as GOMEMLIMIT spells them (a space before the unit is allowed). Empty is 0.
func ParseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size like 200MiB, 1GiB or 512MB", v)
	}
	units := map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
		"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
	mult, ok := units[strings.TrimSpace(v[i:])]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB", v, strings.TrimSpace(v[i:]))
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return n * mult, nil
}

// TrustedProxyNets parses TrustedProxies: each entry a CIDR or a single IP (a
// /32 or /128). The error names the setting and the bad entry.
func (s Server) TrustedProxyNets() ([]*net.IPNet, error) {
	nets := make([]*net.IPNet, 0, len(s.TrustedProxies))
	for i, v := range s.TrustedProxies {
		v = strings.TrimSpace(v)
		if ip := net.ParseIP(v); ip != nil {
			bits := 128
			if ip4 := ip.To4(); ip4 != nil {
				ip, bits = ip4, 32
			}
			nets = append(nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(v)
		if err != nil {
			return nil, fmt.Errorf("server.trusted_proxies[%d]: must be a CIDR like 10.0.0.0/8 or an IP address, got %q", i, v)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// Log configures log/slog output on stderr.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Default returns the built-in defaults that the file and environment overlay.
func Default() Config {
	passkeys := idp.DefaultPasskeySignIns() // one place for the default: idp's, used when Config.PasskeySignIns is zero
	return Config{
		Issuer:  "http://localhost:8080",
		Listen:  "127.0.0.1:8080",
		Storage: Storage{Driver: "sqlite", DSN: "data/keygate.db"},
		Keys: Keys{RSABits: 2048, RotationPeriod: 30 * 24 * time.Hour, PublishAhead: 24 * time.Hour,
			PollInterval: 2 * time.Second, LeaseTTL: 30 * time.Second},
		JWKS: JWKS{MaxAge: 10 * time.Minute},
		Tokens: Tokens{AccessTTL: 15 * time.Minute, MaxAccessTTL: 24 * time.Hour, IDTokenTTL: time.Hour,
			RefreshTTL: 30 * 24 * time.Hour, Leeway: time.Minute},
		Signup: Signup{Enabled: true},
		Login: Login{UserBurst: 5, UserEvery: time.Minute, IPBurst: 50, IPEvery: time.Second,
			PasskeyBurst: passkeys.Burst, PasskeyEvery: passkeys.Every},
		Server: Server{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ShutdownTimeout: 15 * time.Second,
			MaxBodyBytes: 64 << 10},
		Log:      Log{Level: "info", Format: "text"},
		Sessions: Sessions{IdleTimeout: time.Hour, AbsoluteTimeout: 24 * time.Hour},
	}
}

// Load reads path (if non-empty), applies the environment, resolves relative
// paths and validates. getenv is os.Getenv in production and a map in tests.
func Load(path string, getenv func(string) string) (Config, error) {
	c := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("read configuration: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // an empty file means all defaults
			return c, fmt.Errorf("configuration %s: %w", path, nameKeys(raw, err))
		}
		c.Path = path
	}
	if err := c.applyEnv(getenv); err != nil {
		return c, err
	}
	if err := c.fileURL(); err != nil {
		return c, err
	}
	c.resolvePaths()
	if err := c.Validate(); err != nil {
		if path != "" {
			return c, fmt.Errorf("configuration %s: %w", path, err)
		}
		return c, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// envVar is one KEYGATE_* override.
type envVar struct {
	name string
	set  func(c *Config, v string) error
}

func durationVar(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration; %s", v, durationHelp)
		}
		*field(c) = d
		return nil
	}
}

func stringVar(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

func boolVar(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not true or false: %q", v)
		}
		*field(c) = b
		return nil
	}
}

// EnvVars lists the environment variables Load honours, in the order applied.
var envVars = []envVar{
	{"KEYGATE_ISSUER", stringVar(func(c *Config) *string { return &c.Issuer })},
	{"KEYGATE_LISTEN", stringVar(func(c *Config) *string { return &c.Listen })},
	{"KEYGATE_STORAGE_DRIVER", stringVar(func(c *Config) *string { return &c.Storage.Driver })},
	{"KEYGATE_DATABASE_URL", stringVar(func(c *Config) *string { return &c.Storage.DSN })},
	{"KEYGATE_STORAGE_SYNCHRONOUS", stringVar(func(c *Config) *string { return &c.Storage.Synchronous })},
	{"KEYGATE_KEY_ENCRYPTION_KEY", stringVar(func(c *Config) *string { return &c.KeyEncryptionKey })},
	{"KEYGATE_KEY_ENCRYPTION_KEY_FILE", stringVar(func(c *Config) *string { return &c.Keys.EncryptionKeyFile })},
	{"KEYGATE_ALLOW_DEV_KEK_WITH_HTTPS", boolVar(func(c *Config) *bool { return &c.Keys.AllowDevKEKWithHTTPS })},
	{"KEYGATE_ADMIN_TOKEN", stringVar(func(c *Config) *string { return &c.Admin.Token })},
	{"KEYGATE_RSA_BITS", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not a number: %q", v)
		}
		c.Keys.RSABits = n
		return nil
	}},
	{"KEYGATE_ROTATION_PERIOD", durationVar(func(c *Config) *time.Duration { return &c.Keys.RotationPeriod })},
	{"KEYGATE_PUBLISH_AHEAD", durationVar(func(c *Config) *time.Duration { return &c.Keys.PublishAhead })},
	{"KEYGATE_POLL_INTERVAL", durationVar(func(c *Config) *time.Duration { return &c.Keys.PollInterval })},
	{"KEYGATE_LEASE_TTL", durationVar(func(c *Config) *time.Duration { return &c.Keys.LeaseTTL })},
	{"KEYGATE_JWKS_MAX_AGE", durationVar(func(c *Config) *time.Duration { return &c.JWKS.MaxAge })},
	{"KEYGATE_ACCESS_TTL", durationVar(func(c *Config) *time.Duration { return &c.Tokens.AccessTTL })},
	{"KEYGATE_SIGNUP_ENABLED", boolVar(func(c *Config) *bool { return &c.Signup.Enabled })},
	{"KEYGATE_TRUSTED_PROXIES", func(c *Config, v string) error {
		c.Server.TrustedProxies = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.Server.TrustedProxies = append(c.Server.TrustedProxies, p)
			}
		}
		return nil
	}},
	{"KEYGATE_METRICS_LISTEN", stringVar(func(c *Config) *string { return &c.Server.MetricsListen })},
	{"KEYGATE_MEMORY_LIMIT", stringVar(func(c *Config) *string { return &c.Server.MemoryLimit })},
	{"KEYGATE_DPOP_NONCE", boolVar(func(c *Config) *bool { return &c.Server.DPoPNonce })},
	{"KEYGATE_LOG_LEVEL", stringVar(func(c *Config) *string { return &c.Log.Level })},
	{"KEYGATE_LOG_FORMAT", stringVar(func(c *Config) *string { return &c.Log.Format })},
}

func (c *Config) applyEnv(getenv func(string) string) error {
	for _, e := range envVars {
		v := getenv(e.name)
		if v == "" {
			continue
		}
		if err := e.set(c, strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("environment variable %s: %w", e.name, err)
		}
	}
	c.dsnFromEnv = getenv("KEYGATE_DATABASE_URL") != ""
	if isPostgresURL(c.Storage.DSN) && getenv("KEYGATE_STORAGE_DRIVER") == "" {
		c.Storage.Driver = "postgres"
	}
	return nil
}

func (c *Config) resolvePaths() {
	base := "."
	if c.Path != "" {
		base = filepath.Dir(c.Path)
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	if c.Storage.Driver == "sqlite" && dsnScheme(c.Storage.DSN) == "" { // a URL is refused by Validate, not made a path
		c.Storage.DSN = abs(c.Storage.DSN)
	}
	c.Keys.EncryptionKeyFile = abs(c.Keys.EncryptionKeyFile)
	for i := range c.Clients {
		c.Clients[i].PublicKeyFile = abs(c.Clients[i].PublicKeyFile)
	}
}

// Validate reports the first invalid setting by its configuration key.
func (c Config) Validate() error {
	u, err := url.Parse(c.Issuer)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("issuer: must be an absolute http(s) URL, got %q", c.Issuer)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("issuer: must not have a query or fragment (OpenID Connect Discovery 1.0 §3), got %q", c.Issuer)
	case strings.HasSuffix(c.Issuer, "/"):
		return fmt.Errorf("issuer: must not end with a slash, got %q", c.Issuer)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: must be host:port, got %q: %v", c.Listen, err)
	}
	if err := c.validateStorage(); err != nil {
		return err
	}
	if err := c.validateKeys(); err != nil {
		return err
	}
	t := c.Tokens
	switch {
	case t.AccessTTL <= 0:
		return fmt.Errorf("tokens.access_ttl: must be positive, got %s", t.AccessTTL)
	case t.IDTokenTTL <= 0:
		return fmt.Errorf("tokens.id_token_ttl: must be positive, got %s", t.IDTokenTTL)
	case t.Leeway < 0:
		return fmt.Errorf("tokens.leeway: must not be negative, got %s", t.Leeway)
	case t.MaxAccessTTL < t.AccessTTL:
		return fmt.Errorf("tokens.max_access_ttl: must be at least tokens.access_ttl (%s), got %s", t.AccessTTL, t.MaxAccessTTL)
	case t.RefreshTTL <= 0:
		return fmt.Errorf("tokens.refresh_ttl: must be positive, got %s", t.RefreshTTL)
	}
	if err := c.validateLogin(); err != nil {
		return err
	}
	if _, err := c.Server.MemoryLimitBytes(); err != nil {
		return err
	}
	switch ss := c.Sessions; {
	case ss.IdleTimeout <= 0:
		return fmt.Errorf("sessions.idle_timeout: must be positive, got %s", ss.IdleTimeout)
	case ss.AbsoluteTimeout < ss.IdleTimeout:
		return fmt.Errorf("sessions.absolute_timeout: must be at least sessions.idle_timeout (%s), got %s", ss.IdleTimeout, ss.AbsoluteTimeout)
	}
	if err := c.validateClients(); err != nil {
		return err
	}
	if c.Admin.Token != "" && len(c.Admin.Token) < 32 {
		return fmt.Errorf("admin.token: must be at least 32 characters (generate one with: openssl rand -base64 32), got %d", len(c.Admin.Token))
	}
	if err := c.validateServer(); err != nil {
		return err
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("log.format: must be text or json, got %q", c.Log.Format)
	}
	return nil
}

// validateLogin checks the login section: the throttles' limits, the hashes
// at once and the second-factor policy.
func (c Config) validateLogin() error {
	l := c.Login
	switch {
	case l.UserBurst < 1 || l.IPBurst < 1:
		return fmt.Errorf("login.user_burst and login.ip_burst: must be at least 1, got %d and %d", l.UserBurst, l.IPBurst)
	case l.UserEvery <= 0 || l.IPEvery <= 0:
		return fmt.Errorf("login.user_every and login.ip_every: must be positive, got %s and %s", l.UserEvery, l.IPEvery)
	case l.PasskeyBurst < 1 || l.PasskeyEvery <= 0:
		return fmt.Errorf("login.passkey_burst and login.passkey_every: must be at least 1 and positive, got %d and %s", l.PasskeyBurst, l.PasskeyEvery)
	case l.MaxConcurrent < 0:
		return fmt.Errorf("login.max_concurrent_hashes: must be at least 1, or 0 for the number of cores, got %d", l.MaxConcurrent)
	case !slices.Contains([]string{"", "none", "admins", "all"}, l.RequireSecondFactor):
		return fmt.Errorf("login.require_second_factor: must be none, admins or all, got %q", l.RequireSecondFactor)
	}
	return nil
}

// validateServer checks the server section: timeouts, the body limit, the
// trusted proxies and the metrics listener.
func (c Config) validateServer() error {
	s := c.Server
	timeouts := []struct {
		name string
		d    time.Duration
	}{{"read_header_timeout", s.ReadHeaderTimeout}, {"read_timeout", s.ReadTimeout},
		{"write_timeout", s.WriteTimeout}, {"idle_timeout", s.IdleTimeout}, {"shutdown_timeout", s.ShutdownTimeout}}
	for _, t := range timeouts {
		if t.d <= 0 {
			return fmt.Errorf("server.%s: must be positive, got %s", t.name, t.d)
		}
	}
	if s.MaxBodyBytes <= 0 {
		return fmt.Errorf("server.max_body_bytes: must be positive, got %d", s.MaxBodyBytes)
	}
	if s.DPoPNonceLifetime < 0 || (s.DPoPNonceLifetime > 0 && s.DPoPNonceLifetime < 10*time.Second) {
		return fmt.Errorf("server.dpop_nonce_lifetime: must be at least 10s, or 0 for the default 5m, got %s", s.DPoPNonceLifetime)
	}
	if _, err := s.TrustedProxyNets(); err != nil {
		return err
	}
	if s.MetricsListen != "" {
		_, port, err := net.SplitHostPort(s.MetricsListen)
		if err != nil {
			return fmt.Errorf("server.metrics_listen: must be host:port or empty, got %q: %v", s.MetricsListen, err)
		}
		if s.MetricsListen == c.Listen && port != "0" {
			return fmt.Errorf("server.metrics_listen: must differ from listen (%q)", c.Listen)
		}
	}
	return nil
}

// Retention is how long a retired key stays published: the longest token
// lifetime any client can get plus the leeway verifiers allow for clock skew.
func (c Config) Retention() time.Duration {
	return max(c.Tokens.MaxAccessTTL, c.Tokens.AccessTTL, c.Tokens.IDTokenTTL) + c.Tokens.Leeway
}

// validateClients checks each static client with idp.ValidateClient, the
// check the CLI and the API apply too, and that no id is declared twice.
func (c Config) validateClients() error {
	limits := idp.ClientLimits{AccessTTL: c.Tokens.AccessTTL, MaxAccessTTL: c.Tokens.MaxAccessTTL, SigningAlgs: c.SigningAlgorithms()}
	seen := map[string]bool{}
	for i, cl := range c.Clients {
		ic, err := cl.IDPClient()
		if err == nil {
			err = idp.ValidateClient(&ic, limits)
		}
		if err != nil {
			return fmt.Errorf("clients[%d] (%q): %w", i, cl.ID, err)
		}
		if seen[cl.ID] {
			return fmt.Errorf("clients[%d]: duplicate id %q", i, cl.ID)
		}
		seen[cl.ID] = true
	}
	return nil
}

// IDPClient converts the entry to the client idp serves, reading its key
// file. It does not validate: idp.ValidateClient does, in Load.
func (cl Client) IDPClient() (idp.Client, error) {
	c := idp.Client{ID: cl.ID, Name: cl.Name, JWKSURI: cl.JWKSURI, GrantTypes: cl.GrantTypes, Scopes: cl.Scopes,
		Audience: cl.Audience, RedirectURIs: cl.RedirectURIs, AllowedOrigins: cl.AllowedOrigins, Public: cl.Public, AccessTTL: cl.AccessTTL,
		NotBeforeDelay: cl.NotBeforeDelay, AllowBareAssertion: cl.AllowBareAssertion, Introspect: cl.Introspect,
		ThirdParty: cl.ThirdParty, SigningAlg: cl.SigningAlg, DPoPBoundAccessTokens: cl.DPoPBoundAccessTokens, Static: true}
	c.PostLogoutRedirectURIs = cl.PostLogoutRedirectURIs
	if cl.SecretSHA256 != "" {
		h, err := idp.ParseSecretSHA256(cl.SecretSHA256)
		if err != nil {
			return c, err
		}
		c.SecretHash = h
	}
	var keyData []byte
	switch {
	case cl.PublicKeyFile != "":
		b, err := os.ReadFile(cl.PublicKeyFile)
		if err != nil {
			return c, fmt.Errorf("public_key_file: %w", err)
		}
		keyData = b
	case cl.JWKS != "":
		keyData = []byte(cl.JWKS)
	}
	if keyData != nil {
		set, err := idp.ParsePublicKeys(keyData)
		if err != nil {
			return c, fmt.Errorf("public_key_file or jwks: %w", err)
		}
		c.Keys = set
	}
	return c, nil
}

// SigningAlgorithms returns keys.algorithms, RS256 first (RS256 alone when
// the list is empty).
func (c Config) SigningAlgorithms() []string {
	out := []string{"RS256"}
	for _, a := range c.Keys.Algorithms {
		if a != "RS256" {
			out = append(out, a)
		}
	}
	return out
}

// validateKeys checks the keys section (and jwks.max_age, which bounds it).
func (c Config) validateKeys() error {
	k := c.Keys
	seenAlg := map[string]bool{}
	for _, a := range k.Algorithms {
		if !slices.Contains(idp.SigningAlgorithms, a) {
			return fmt.Errorf("keys.algorithms: %q is not supported (RS256, ES256, EdDSA)", a)
		}
		if seenAlg[a] {
			return fmt.Errorf("keys.algorithms: %q is listed twice", a)
		}
		seenAlg[a] = true
	}
	if len(k.Algorithms) > 0 && !seenAlg["RS256"] {
		return errors.New("keys.algorithms: must include RS256, the default every client can use")
	}
	switch {
	case k.RSABits != 2048 && k.RSABits != 3072 && k.RSABits != 4096:
		return fmt.Errorf("keys.rsa_bits: must be 2048, 3072 or 4096, got %d", k.RSABits)
	case k.RotationPeriod <= 0:
		return fmt.Errorf("keys.rotation_period: must be positive, got %s", k.RotationPeriod)
	case k.PollInterval <= 0:
		return fmt.Errorf("keys.poll_interval: must be positive, got %s", k.PollInterval)
	case k.LeaseTTL < time.Second:
		return fmt.Errorf("keys.lease_ttl: must be at least 1s (key generation must fit in it), got %s", k.LeaseTTL)
	case c.JWKS.MaxAge <= 0:
		return fmt.Errorf("jwks.max_age: must be positive, got %s", c.JWKS.MaxAge)
	case k.PublishAhead < 2*c.JWKS.MaxAge:
		return fmt.Errorf("keys.publish_ahead: must be at least twice jwks.max_age (%s) so every cache holds a key before it signs, got %s", 2*c.JWKS.MaxAge, k.PublishAhead)
	case k.PublishAhead > k.RotationPeriod:
		return fmt.Errorf("keys.publish_ahead: must not exceed keys.rotation_period (%s), got %s", k.RotationPeriod, k.PublishAhead)
	}
	return c.checkDevKEK()
}

// checkDevKEK refuses an https issuer (a deployment others rely on) whose signing
// keys would be sealed under the development key file beside the database,
// unless keys.allow_dev_kek_with_https says this is a lab.
func (c Config) checkDevKEK() error {
	if !strings.HasPrefix(c.Issuer, "https://") || c.KeyEncryptionKey != "" || c.Keys.EncryptionKeyFile != "" ||
		c.Keys.AllowDevKEKWithHTTPS || c.DevKEKPath() == "" {
		return nil
	}
	return fmt.Errorf("keys.encryption_key_file: the issuer is https but no key-encryption key is configured, so the signing keys would be sealed "+
		"under the development key file beside the database (%s); set KEYGATE_KEY_ENCRYPTION_KEY, or keys.encryption_key_file "+
		"(KEYGATE_KEY_ENCRYPTION_KEY_FILE) to a file kept apart from the database (an existing development file can be moved there), "+
		"or, for a lab, keys.allow_dev_kek_with_https: true (KEYGATE_ALLOW_DEV_KEK_WITH_HTTPS=true)", c.DevKEKPath())
}

// DevKEKPath is where the development key-encryption key file lives when none is
// configured: beside the SQLite database.
func (c Config) DevKEKPath() string {
	if c.Storage.Driver != "sqlite" {
		return ""
	}
	return filepath.Join(filepath.Dir(c.Storage.DSN), "keygate.kek")
}
