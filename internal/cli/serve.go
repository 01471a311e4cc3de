package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keygate/keygate/internal/app"
)

// runServe binds the listeners, opens (or creates) the database and keys, and
// runs the server until SIGINT or SIGTERM, then shuts down gracefully:
// in-flight requests finish (up to server.shutdown_timeout), the key refresher
// stops, and the database is closed.
func runServe(parent context.Context, o *options) error {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := o.loadConfig()
	if err != nil {
		return err
	}
	log := newLogger(cfg, o.stderr)
	logConfig(log, cfg)
	// Bind first: a port in use fails here, before a database, keys or a
	// key-encryption key file are created.
	ls, err := app.Listen(cfg)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		ls.Close()
		return err
	}
	defer a.Close()
	return a.ServeListeners(ctx, ls)
}
