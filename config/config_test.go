package config_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRepositoryConfigIsValid(t *testing.T) {
	c, err := config.Load("../config.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.Storage.Driver != "sqlite" || !strings.HasSuffix(c.Storage.DSN, filepath.Join("data", "keygate.db")) {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	p := write(t, "issuer: https://a.example\n")
	c, err := config.Load(p, env(map[string]string{
		"KEYGATE_ISSUER":             "https://id.example.com",
		"KEYGATE_LISTEN":             "0.0.0.0:9000",
		"KEYGATE_DATABASE_URL":       "/var/lib/keygate/k.db",
		"KEYGATE_ROTATION_PERIOD":    "48h",
		"KEYGATE_RSA_BITS":           "4096",
		"KEYGATE_KEY_ENCRYPTION_KEY": "secret",
		"KEYGATE_ADMIN_TOKEN":        strings.Repeat("a", 32),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://id.example.com" || c.Listen != "0.0.0.0:9000" || c.Storage.DSN != "/var/lib/keygate/k.db" ||
		c.Keys.RotationPeriod != 48*time.Hour || c.Keys.RSABits != 4096 || c.KeyEncryptionKey != "secret" {
		t.Errorf("overrides not applied: %+v", c)
	}
}

func TestRelativePathsFollowTheConfigFile(t *testing.T) {
	p := write(t, "storage:\n  dsn: db/k.db\n")
	c, err := config.Load(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(p), "db", "k.db"); c.Storage.DSN != want {
		t.Errorf("dsn = %s, want %s", c.Storage.DSN, want)
	}
	if want := filepath.Join(filepath.Dir(p), "db", "keygate.kek"); c.DevKEKPath() != want {
		t.Errorf("dev KEK path = %s, want %s", c.DevKEKPath(), want)
	}
}

// TestBadValuesNameTheSetting: every rejection names the key (or variable) at fault.
func TestBadValuesNameTheSetting(t *testing.T) {
	cases := []struct {
		file string
		env  map[string]string
		want string
	}{
		{file: "issuer: ftp://x\n", want: "issuer"},
		{file: "issuer: https://x/\n", want: "issuer: must not end with a slash"},
		{file: "issuer: https://x?a=b\n", want: "issuer"},
		{file: "listen: nonsense\n", want: "listen"},
		{file: "storage:\n  driver: mongo\n", want: "storage.driver"},
		{file: "storage:\n  driver: postgres\n  dsn: data/x.db\n", want: "storage.dsn: a postgres:// URL"},
		{file: "keys:\n  rsa_bits: 1024\n", want: "keys.rsa_bits"},
		{file: "keys:\n  rotation_period: 0s\n", want: "keys.rotation_period"},
		{file: "keys:\n  publish_ahead: 5m\n", want: "keys.publish_ahead: must be at least twice jwks.max_age"},
		{file: "keys:\n  rotation_period: 1h\n  publish_ahead: 2h\njwks:\n  max_age: 1m\n", want: "keys.publish_ahead: must not exceed"},
		{file: "keys:\n  rotation_period: soon\n", want: "rotation_period"},
		{file: "tokens:\n  access_ttl: -1m\n", want: "tokens.access_ttl"},
		{file: "admin:\n  token: short\n", want: "admin.token"},
		{file: "server:\n  max_body_bytes: 0\n", want: "server.max_body_bytes"},
		{file: "log:\n  level: loud\n", want: "log.level"},
		{file: "login:\n  max_concurrent_hashes: -1\n", want: "login.max_concurrent_hashes"},
		{file: "login:\n  passkey_burst: 0\n", want: "login.passkey_burst"},
		{file: "login:\n  passkey_every: -1s\n", want: "login.passkey_every"},
		{file: "server:\n  memory_limit: lots\n", want: "server.memory_limit"},
		{file: "storage:\n  synchronous: extra\n", want: "storage.synchronous: must be normal or full"},
		{env: map[string]string{"KEYGATE_STORAGE_SYNCHRONOUS": "off"}, want: "storage.synchronous: must be normal or full"},
		{file: "storage:\n  driver: postgres\n  dsn: postgres://h/db\n  synchronous: full\n", want: "storage.synchronous: applies to SQLite only"},
		{file: "server:\n  memory_limit: 200M\n", want: "server.memory_limit"},
		{env: map[string]string{"KEYGATE_MEMORY_LIMIT": "-5MiB"}, want: "server.memory_limit"},
		{file: "server:\n  dpop_nonce_lifetime: 5s\n", want: "server.dpop_nonce_lifetime: must be at least 10s"},
		{file: "server:\n  dpop_nonce_lifetime: -1m\n", want: "server.dpop_nonce_lifetime"},
		{file: "colour: blue\n", want: "colour: unknown setting"},
		{file: "issuer: [unclosed\n", want: "config.yaml"},
		{env: map[string]string{"KEYGATE_ROTATION_PERIOD": "monthly"}, want: "KEYGATE_ROTATION_PERIOD"},
		{env: map[string]string{"KEYGATE_RSA_BITS": "big"}, want: "KEYGATE_RSA_BITS"},
		{env: map[string]string{"KEYGATE_ISSUER": "not a url"}, want: "issuer"},
	}
	for _, c := range cases {
		_, err := config.Load(write(t, c.file), env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("file %q env %v: err = %v, want it to mention %q", c.file, c.env, err, c.want)
		}
	}
}

func TestEmptyFileMeansDefaults(t *testing.T) {
	c, err := config.Load(write(t, ""), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Keys.RSABits != 2048 || c.Retention() != 24*time.Hour+time.Minute {
		t.Errorf("defaults: bits %d retention %s", c.Keys.RSABits, c.Retention())
	}
}

// TestStaticClientsUseTheOneValidation: static clients are checked by
// idp.ValidateClient, as the CLI and the API are; each refusal names the
// client and the setting.
func TestStaticClientsUseTheOneValidation(t *testing.T) {
	const secret = "secret_sha256: " + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + "\n"
	entry := func(extra string) string {
		return "clients:\n  - id: svc\n    grant_types: [client_credentials]\n    " + secret + extra
	}
	cases := []struct{ file, want string }{
		// Tokens never valid: they would expire before their nbf.
		{entry("    access_ttl: 30s\n    not_before_delay: 1h\n"), `clients[0] ("svc"): not_before_delay: must be at least 0 and shorter than the token lifetime (access_ttl 30s)`},
		{entry("    not_before_delay: 1h\n"), `clients[0] ("svc"): not_before_delay: must be at least 0 and shorter than the token lifetime (tokens.access_ttl 15m0s)`},
		{entry("    access_ttl: 48h\n"), `clients[0] ("svc"): access_ttl: must be between 0`},
		{entry("    jwks_uri: ftp://keys\n"), `("svc"): jwks_uri:`},
		{entry("    public: true\n"), `("svc"): public: a public client has no secret`},
		{entry("    redirect_uris: [/cb]\n"), `("svc"): redirect_uris:`},
		{"clients:\n  - id: svc\n    grant_types: [client_credentials]\n", `("svc"): public: a confidential client needs a secret or public keys`},
		{"clients:\n  - id: svc\n    " + secret, `("svc"): grant_types: list at least one grant`},
		{"clients:\n  - id: svc\n    grant_types: [implicit]\n    " + secret, `("svc"): grant_types: unknown grant type "implicit"`},
		{"clients:\n  - id: 8c3e1f7a-1b2c-4d5e-8f90-123456789abc\n    grant_types: [client_credentials]\n    " + secret, `id: must not be a UUID`},
		{"clients:\n  - id: svc\n    grant_types: [client_credentials]\n    secret_sha256: abc\n", `("svc"): secret_sha256 must be 64 hex digits`},
		{"clients:\n  - id: svc\n    grant_types: [client_credentials]\n    public_key_file: missing.pem\n", `("svc"): public_key_file:`},
		{entry("") + "  - id: svc\n    grant_types: [client_credentials]\n    " + secret, `clients[1]: duplicate id "svc"`},
		{"clients:\n  - id: svc\n    grant_types: [client_credentials]\n    public: true\n    introspect: true\n", `("svc"): introspect: a public client cannot introspect`},
	}
	for _, c := range cases {
		_, err := config.Load(write(t, c.file), env(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("file %q: err = %v, want it to contain %q", c.file, err, c.want)
		}
	}
	if _, err := config.Load(write(t, entry("    access_ttl: 30s\n    not_before_delay: 10s\n")), env(nil)); err != nil {
		t.Errorf("a consistent client refused: %v", err)
	}
	c, err := config.Load(write(t, entry("    introspect: true\n")), env(nil))
	if err != nil {
		t.Fatalf("a resource server refused: %v", err)
	}
	if ic, err := c.Clients[0].IDPClient(); err != nil || !ic.Introspect {
		t.Errorf("introspect: true reads back as %v (%v)", ic.Introspect, err)
	}
}

func TestHashConcurrencyDefaultsToTheCores(t *testing.T) {
	c, err := config.Load(write(t, ""), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Login.MaxConcurrent != 0 || c.Login.HashConcurrency() != runtime.GOMAXPROCS(0) {
		t.Errorf("unset: MaxConcurrent %d, HashConcurrency %d; want 0 and GOMAXPROCS %d",
			c.Login.MaxConcurrent, c.Login.HashConcurrency(), runtime.GOMAXPROCS(0))
	}
	c, err = config.Load(write(t, "login:\n  max_concurrent_hashes: 7\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Login.HashConcurrency(); got != 7 {
		t.Errorf("explicit 7: HashConcurrency %d", got)
	}
}

func TestMemoryLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "0": 0, "200MiB": 200 << 20, "1GiB": 1 << 30, "512MB": 512e6, "64 KiB": 64 << 10, "1000": 1000, "7B": 7,
	} {
		c, err := config.Load(write(t, "server:\n  memory_limit: \""+in+"\"\n"), env(nil))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got, err := c.Server.MemoryLimitBytes(); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	c, err := config.Load(write(t, "server:\n  memory_limit: 1GiB\n"), env(map[string]string{"KEYGATE_MEMORY_LIMIT": "150MiB"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Server.MemoryLimitBytes(); got != 150<<20 {
		t.Errorf("KEYGATE_MEMORY_LIMIT=150MiB over 1GiB in the file: %d", got)
	}
	if _, err := config.ParseSize("99999999999TiB"); err == nil {
		t.Error("an overflowing size was accepted")
	}
}
