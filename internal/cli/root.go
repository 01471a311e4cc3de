// Package cli is the keygate command line: the cobra root, serve (the
// default command), keys, clients and users, and their helpers (tables,
// password prompts). main calls Main; the server itself is internal/app.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/internal/app"
)

// Main runs the keygate command with args (without the program name) and
// returns its exit status: 0, or 1 after printing the error to stderr.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "keygate:", err)
		return 1
	}
	return 0
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
	root.AddCommand(newInitCmd(o), newKeysCmd(o), newClientsCmd(o), newUsersCmd(o), newBackupCmd(o))
	addVersion(root, o)
	return root
}

// loadConfig finds and loads the configuration: --config, else
// $KEYGATE_CONFIG, else ./config.yaml if present, else the built-in defaults
// (config.Default) and the environment.
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

// logConfig says which configuration is in use: the file, or the built-in
// defaults when there is none, and the names (never the values) of the
// KEYGATE_* variables that override it.
func logConfig(log *slog.Logger, cfg config.Config) {
	var vars []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "KEYGATE_") {
			vars = append(vars, name)
		}
	}
	env := strings.Join(vars, ",")
	if cfg.Path != "" {
		abs, err := filepath.Abs(cfg.Path)
		if err != nil {
			abs = cfg.Path
		}
		log.Info("configuration", "file", abs, "environment", env, "database", config.RedactDSN(cfg.Storage.DSN))
		return
	}
	wd, _ := os.Getwd()
	log.Warn("no configuration file (no --config, no KEYGATE_CONFIG, no config.yaml in the working directory): "+
		"using the built-in defaults", "dir", wd, "environment", env, "database", config.RedactDSN(cfg.Storage.DSN))
}

// open loads the configuration and opens its store, which must exist (see
// app.OpenDeps): only serve and init create one.
func (o *options) open(ctx context.Context) (*app.Deps, error) {
	cfg, err := o.loadConfig()
	if err != nil {
		return nil, err
	}
	return app.OpenDeps(ctx, cfg, newLogger(cfg, o.stderr))
}
