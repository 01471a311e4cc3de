package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keygate/keygate/internal/app"
)

// runServe runs the server until SIGINT or SIGTERM, then shuts down gracefully:
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
	a, err := app.Open(ctx, cfg, newLogger(cfg, o.stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}
