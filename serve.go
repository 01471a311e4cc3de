package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/web"
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

	d, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer d.store.Close()
	cfg, log := d.cfg, d.log

	reg := prometheus.NewRegistry()
	var mgr *rotation.Manager
	metrics := web.NewMetrics(reg, func() *rotation.Snapshot {
		if mgr == nil {
			return nil
		}
		return mgr.Current()
	}, time.Now)
	publisher := jwks.NewPublisher(cfg.JWKS.MaxAge, jwks.WithObserver(metrics.JWKSServed))
	mgr, err = d.manager(web.Republish(publisher, log), metrics.Rotated)
	if err != nil {
		return explain(err)
	}
	snap, err := firstReconcile(ctx, mgr, log)
	if err != nil {
		return explain(fmt.Errorf("load signing keys: %w", err))
	}

	provider, err := d.provider(mgr.Signer())
	if err != nil {
		return err
	}
	srv, err := web.New(web.Config{Issuer: cfg.Issuer, AdminToken: cfg.Admin.Token, MaxBodyBytes: cfg.Server.MaxBodyBytes,
		Keys: mgr, IDP: provider, Store: d.store, JWKS: publisher, Metrics: metrics, Registry: reg, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout, ReadTimeout: cfg.Server.ReadTimeout,
		WriteTimeout: cfg.Server.WriteTimeout, IdleTimeout: cfg.Server.IdleTimeout, MaxHeaderBytes: 32 << 10}

	go mgr.Run(ctx, cfg.Keys.PollInterval)
	// Learn of other replicas' and the CLI's key-set changes at once where
	// the backend can tell; the poll above remains the fallback.
	go func() {
		err := d.store.WatchKeySet(ctx, func() {
			if err := mgr.Tick(ctx); err != nil && ctx.Err() == nil {
				log.Warn("key set refresh on notification failed", "err", err)
			}
		})
		if err != nil && ctx.Err() == nil {
			log.Warn("key-set notifications stopped; polling only", "err", err)
		}
	}()
	go prune(ctx, d, provider, time.Hour)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("keygate started", "issuer", cfg.Issuer, "listen", ln.Addr().String(), "active_kid", snap.Signing.KID,
		"database", cfg.Storage.DSN, "config", cfg.Path)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// browserPruneInterval is how often expired sessions and authorization codes
// are deleted: codes live a minute (idp.CodeTTL) and a logged-in user can
// make many, so they are pruned within minutes rather than hours (besides
// the per-session cap, idp.MaxCodesPerSession, applied as each is issued).
const browserPruneInterval = time.Minute

// prune deletes expired browser sessions and authorization codes every
// browserPruneInterval, and expired deny-list entries, replay records and
// refresh-token families every interval, so those tables stay the size of
// what is live.
func prune(ctx context.Context, d *deps, provider *idp.Provider, every time.Duration) {
	t := time.NewTicker(min(every, browserPruneInterval))
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pruneBrowser(ctx, d, provider)
		if time.Since(last) < every {
			continue
		}
		last = time.Now()
		n, err := d.store.PruneExpired(ctx, time.Now())
		if err != nil && ctx.Err() == nil {
			d.log.Warn("pruning expired tokens failed", "err", err)
			continue
		}
		for _, p := range d.pruners {
			m, err := p(ctx, time.Now())
			if err != nil && ctx.Err() == nil {
				d.log.Warn("pruning login throttle failed", "err", err)
			}
			n += m
		}
		if n > 0 {
			d.log.Info("pruned expired token records", "rows", n)
		}
	}
}

// pruneBrowser deletes expired browser sessions and authorization codes.
func pruneBrowser(ctx context.Context, d *deps, provider *idp.Provider) {
	if n, err := provider.PruneBrowser(ctx); err != nil && ctx.Err() == nil {
		d.log.Warn("pruning expired sessions and codes failed", "err", err)
	} else if n > 0 {
		d.log.Info("pruned expired sessions and authorization codes", "rows", n)
	}
}

// firstReconcile loads the key set at start. A replica starting beside others
// on an empty database waits for the lease holder to create the first key.
func firstReconcile(ctx context.Context, mgr *rotation.Manager, log *slog.Logger) (*rotation.Snapshot, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		snap, err := mgr.Reconcile(ctx)
		if !errors.Is(err, rotation.ErrAwaitingLeaseHolder) || time.Now().After(deadline) {
			return snap, err
		}
		log.Info("waiting for the replica holding the rotation lease to create the first key")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
