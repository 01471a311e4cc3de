package config_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/config"
)

// TestConfigErrorsSayHowToFix: each mistake in the file or the environment is
// refused with the setting's name, what is wrong and how to write it.
func TestConfigErrorsSayHowToFix(t *testing.T) {
	cases := []struct {
		name, file string
		env        map[string]string
		want       []string
		notWant    []string
	}{
		{name: "typo in a section", file: "keys:\n  rotation_perod: 72h\n",
			want: []string{"keys.rotation_perod: unknown setting; did you mean rotation_period? (line 2)"}},
		{name: "typo at the top", file: "isuer: https://id.example\n",
			want: []string{"isuer: unknown setting; did you mean issuer? (line 1)"}},
		{name: "camelCase", file: "tokens:\n  accessTTL: 5m\n", want: []string{"did you mean access_ttl?"}},
		{name: "key in the wrong section", file: "rotation_period: 72h\n",
			want: []string{"rotation_period: unknown setting here; did you mean keys.rotation_period?"}},
		{name: "nothing close", file: "jwks:\n  colour: blue\n",
			want: []string{"jwks.colour: unknown setting; the settings here are max_age"}},
		{name: "duration in words", file: "keys:\n  rotation_period: \"3 days\"\n",
			want: []string{`keys.rotation_period: "3 days" is not a duration; use a number with a unit: ns, us, ms, s, m, h — e.g. 72h (line 2)`}},
		{name: "duration without unit", file: "tokens:\n  access_ttl: 900\n",
			want: []string{`tokens.access_ttl: "900" is not a duration; use a number with a unit`}},
		{name: "duration in a client", file: "clients:\n  - id: svc\n    access_ttl: 3 minutes\n",
			want: []string{`clients[0].access_ttl: "3 minutes" is not a duration`}},
		{name: "duration from the environment", env: map[string]string{"KEYGATE_ROTATION_PERIOD": "3 days"},
			want: []string{`environment variable KEYGATE_ROTATION_PERIOD: "3 days" is not a duration; use a number with a unit`}},
		{name: "clear secret in a static client", file: "clients:\n  - id: svc\n    secret: hunter2hunter2\n",
			want: []string{"clients[0].secret: a client secret is never written in the configuration file; give its SHA-256 as secret_sha256",
				"keygate clients hash-secret"}},
		{name: "typo in a client", file: "clients:\n  - id: svc\n    grant_type: [client_credentials]\n",
			want: []string{"clients[0].grant_type: unknown setting; did you mean grant_types?"}},
		{name: "mysql URL", file: "storage:\n  dsn: mysql://u:hunter2@db/kg\n",
			want:    []string{`storage.dsn: unsupported scheme mysql:// in "mysql://u:xxxxx@db/kg"; use a SQLite file path (or a file: URL) or a postgres:// URL`},
			notWant: []string{"hunter2"}},
		{name: "mysql URL from the environment", env: map[string]string{"KEYGATE_DATABASE_URL": "mysql://u:hunter2@db/kg"},
			want: []string{"KEYGATE_DATABASE_URL: unsupported scheme mysql://"}, notWant: []string{"hunter2"}},
		{name: "any other scheme", file: "storage:\n  dsn: sqlite://data/k.db\n", want: []string{"storage.dsn: unsupported scheme sqlite://"}},
		{name: "postgres URL with the sqlite driver", env: map[string]string{"KEYGATE_DATABASE_URL": "postgres://u:hunter2@db/kg",
			"KEYGATE_STORAGE_DRIVER": "sqlite"}, want: []string{"KEYGATE_DATABASE_URL: \"postgres://u:xxxxx@db/kg\" is a PostgreSQL URL but storage.driver is sqlite"},
			notWant: []string{"hunter2"}},
		{name: "file URL with options", file: "storage:\n  dsn: file:k.db?mode=memory\n", want: []string{"storage.dsn: a file: URL gives the database path only"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Load(write(t, c.file), env(c.env))
			if err == nil {
				t.Fatalf("accepted; want %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q contains %q", err, w)
				}
			}
		})
	}
}

// TestStorageDSNForms: the DSN forms accepted, and the driver each selects.
func TestStorageDSNForms(t *testing.T) {
	cases := []struct{ dsn, driver, path string }{
		{dsn: "k.db", driver: "sqlite", path: "k.db"},
		{dsn: "file:k.db", driver: "sqlite", path: "k.db"},
		{dsn: "file:///var/lib/keygate/k.db", driver: "sqlite", path: "/var/lib/keygate/k.db"},
		{dsn: "postgres://kg@db/kg", driver: "postgres"},
		{dsn: "postgresql://kg@db/kg", driver: "postgres"},
	}
	for _, c := range cases {
		p := write(t, "")
		cfg, err := config.Load(p, env(map[string]string{"KEYGATE_DATABASE_URL": c.dsn}))
		if err != nil {
			t.Errorf("%s: %v", c.dsn, err)
			continue
		}
		want := c.dsn
		if c.path != "" {
			want = c.path
			if !filepath.IsAbs(want) {
				want = filepath.Join(filepath.Dir(p), want)
			}
		}
		if cfg.Storage.Driver != c.driver || cfg.Storage.DSN != want {
			t.Errorf("%s: driver %s dsn %s, want %s %s", c.dsn, cfg.Storage.Driver, cfg.Storage.DSN, c.driver, want)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	cases := []struct{ in, want string }{
		{"data/keygate.db", "data/keygate.db"},
		{"postgres://kg:s3cret@db:5432/kg?sslmode=verify-full", "postgres://kg:xxxxx@db:5432/kg?sslmode=verify-full"},
		{"postgres://kg@db/kg", "postgres://kg@db/kg"},
		{"postgres://kg:p/a#s@s@db/kg", "postgres://kg:xxxxx@db/kg"},
		{"postgres://db/kg?user=kg&password=s3cret&sslmode=disable", "postgres://db/kg?user=kg&password=xxxxx&sslmode=disable"},
		{"postgresql://kg:s3cret@db/kg?sslpassword=k3y", "postgresql://kg:xxxxx@db/kg?sslpassword=xxxxx"},
		{"host=db user=kg password=s3cret dbname=kg", "host=db user=kg password=xxxxx dbname=kg"},
		{"host=db password='s3 cret' dbname=kg", "host=db password=xxxxx dbname=kg"},
		{"mysql://u:p@host/kg", "mysql://u:xxxxx@host/kg"},
	}
	for _, c := range cases {
		if got := config.RedactDSN(c.in); got != c.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	base := errors.New("connect postgres://kg:s%40cret@db/kg: user kg, password s@cret rejected")
	err := config.RedactError(base, "postgres://kg:s%40cret@db/kg")
	if strings.Contains(err.Error(), "cret") || !errors.Is(err, base) {
		t.Errorf("RedactError: %q (errors.Is %v)", err, errors.Is(err, base))
	}
}
