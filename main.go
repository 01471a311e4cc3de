// Command keygate is a self-hosted identity provider: it rotates RSA signing
// keys, publishes them as a JWKS with OpenID Connect discovery, and (as the
// issues land) issues OAuth 2.0 / OIDC tokens. `keygate` alone runs the server;
// `keygate keys ...` manages the key set in the same database, even while a
// server runs.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/postgres"
	"github.com/keygate/keygate/store/sqlite"
)

func main() {
	if err := newRootCmd(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "keygate:", err)
		os.Exit(1)
	}
}

// options are the flags every command shares.
type options struct {
	configPath string
	stdout     io.Writer
	stderr     io.Writer
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &options{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "keygate",
		Short:         "Keygate: a self-hosted identity provider with rotating signing keys",
		Long:          "Keygate signs tokens with rotating RSA keys and publishes them as a JWKS.\nWith no command it runs the server (same as `keygate serve`).",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), o) },
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&o.configPath, "config", "", "configuration file (default: $KEYGATE_CONFIG, else ./config.yaml if present)")
	root.AddCommand(&cobra.Command{
		Use:   "serve",
		Short: "Run the server (the default command)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), o) },
	})
	root.AddCommand(newKeysCmd(o), newClientsCmd(o), newUsersCmd(o))
	return root
}

// loadConfig finds and loads the configuration.
func (o *options) loadConfig() (config.Config, error) {
	path := o.configPath
	if path == "" {
		path = os.Getenv("KEYGATE_CONFIG")
	}
	if path == "" {
		if _, err := os.Stat("config.yaml"); err == nil {
			path = "config.yaml"
		}
	}
	return config.Load(path, os.Getenv)
}

func newLogger(c config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToLower(c.Log.Level))) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// backend is a storage driver built into the binary.
type backend struct {
	open func(ctx context.Context, dsn string) (store.Store, error)
	// replicas says whether several servers may share one database, which
	// makes scheduled key rotation wait for the store's lease (one writer
	// at a time). A SQLite file serves one server, whose writes nobody
	// needs to wait for.
	replicas bool
}

// backends maps storage.driver to its backend.
var backends = map[string]backend{
	"sqlite": {open: func(ctx context.Context, dsn string) (store.Store, error) { return sqlite.Open(ctx, dsn) }},
	"postgres": {open: func(ctx context.Context, dsn string) (store.Store, error) { return postgres.Open(ctx, dsn) },
		replicas: true},
}

// deps are the parts every command builds from the configuration.
type deps struct {
	cfg     config.Config
	log     *slog.Logger
	store   store.Store
	shared  bool                                                      // several replicas may use store (backend.replicas)
	pruners []func(ctx context.Context, now time.Time) (int64, error) // shared throttles' housekeeping
}

func (o *options) open(ctx context.Context) (*deps, error) {
	cfg, err := o.loadConfig()
	if err != nil {
		return nil, err
	}
	log := newLogger(cfg, o.stderr)
	b, ok := backends[cfg.Storage.Driver]
	if !ok {
		return nil, fmt.Errorf("storage.driver %q is not built into this binary", cfg.Storage.Driver)
	}
	st, err := b.open(ctx, cfg.Storage.DSN)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", cfg.Storage.Driver, err)
	}
	return &deps{cfg: cfg, log: log, store: st, shared: b.replicas}, nil
}

func (d *deps) policy() rotation.Policy {
	return rotation.Policy{RotationPeriod: d.cfg.Keys.RotationPeriod, PublishAhead: d.cfg.Keys.PublishAhead,
		Retention: d.cfg.Retention(), RSABits: d.cfg.Keys.RSABits}
}

// manager builds the key lifecycle manager, loading the key-encryption key.
func (d *deps) manager(onChange func(*rotation.Snapshot), onRotate func(rotation.Reason)) (*rotation.Manager, error) {
	sealer, err := d.sealer()
	if err != nil {
		return nil, err
	}
	rc := rotation.Config{Policy: d.policy(), Store: d.store, Sealer: sealer, Logger: d.log,
		OnChange: onChange, OnRotate: onRotate}
	if d.shared {
		// Several replicas share this database: one at a time makes key-set writes.
		host, _ := os.Hostname()
		rc.Holder, rc.LeaseTTL = fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano()), d.cfg.Keys.LeaseTTL
	}
	return rotation.New(rc)
}

// explain turns a start-up error into advice where we know what went wrong.
func explain(err error) error {
	if errors.Is(err, rotation.ErrWrongKEK) {
		return fmt.Errorf("%w\nThe stored keys were not changed. Start keygate with the key-encryption key they were sealed with", err)
	}
	return err
}
