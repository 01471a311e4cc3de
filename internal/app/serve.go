// Package app assembles a Keygate server from its configuration: the store,
// the key rotation manager, the identity provider, the JWKS publisher, the
// metrics and the web handler, plus the background work (key-set polling and
// notifications, pruning). The keygate command's serve runs it; tests can
// start it in-process on any listener.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/keyset"
	"github.com/keygate/keygate/internal/version"
	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/web"
)

// App is an assembled server whose keys are loaded, not yet serving.
type App struct {
	d        *Deps
	reg      *prometheus.Registry
	snap     *rotation.Snapshot // the key set loaded at start
	Manager  *rotation.Manager
	Provider *idp.Provider
	Handler  http.Handler

	metrics http.Handler // /metrics, for server.metrics_listen
}

// Open opens the store (creating it if missing), loads (or creates) the
// signing keys and builds the provider and the web handler. Close the App
// when done. Bind the listeners first (Listen), so that a port in use fails
// before anything is created.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *App, err error) {
	d, err := CreateDeps(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	a := &App{d: d, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(buildInfo())
	metrics := web.NewMetrics(a.reg, func() *rotation.Snapshot {
		if a.Manager == nil {
			return nil
		}
		return a.Manager.Current()
	}, time.Now)
	publisher := jwks.NewPublisher(cfg.JWKS.MaxAge, jwks.WithObserver(metrics.JWKSServed))
	republish := keyset.Republish(publisher, log)
	// The rotations metric counts what this process does (OnRotate) and what
	// it sees others do (OnChange: web.Metrics.KeySetLoaded).
	mgr, err := d.Manager(func(s *rotation.Snapshot) { republish(s); metrics.KeySetLoaded(s) }, metrics.Rotated)
	if err != nil {
		return nil, Explain(err)
	}
	a.Manager = mgr
	if a.snap, err = firstReconcile(ctx, mgr, log); err != nil {
		return nil, Explain(fmt.Errorf("load signing keys: %w", err))
	}

	if a.Provider, err = d.Provider(mgr.Signer()); err != nil {
		return nil, err
	}
	if err := d.WarnStaleSealed(ctx); err != nil {
		return nil, err
	}
	proxies, err := cfg.Server.TrustedProxyNets() // validated by config.Load
	if err != nil {
		return nil, err
	}
	schema, _, err := d.store.SchemaVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the schema version: %w", err)
	}
	srv, err := web.New(web.Config{Issuer: cfg.Issuer, AdminToken: cfg.Admin.Token, MaxBodyBytes: cfg.Server.MaxBodyBytes,
		Keys: mgr, IDP: a.Provider, Store: d.store, JWKS: publisher, Metrics: metrics, Registry: a.reg, Logger: log,
		TrustedProxies: proxies, MetricsElsewhere: cfg.Server.MetricsListen != "",
		Version: version.Get().Version, SchemaVersion: schema})
	if err != nil {
		return nil, err
	}
	a.Handler, a.metrics = srv, srv.MetricsHandler()
	return a, nil
}

// Close closes the store; call it after Serve or ServeListeners has returned.
func (a *App) Close() error { return a.d.Close() }

// buildInfo is the keygate_build_info gauge: always 1, its labels say which
// build is running.
func buildInfo() prometheus.Collector {
	in := version.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "keygate_build_info",
		Help:        "Always 1; the labels are the Keygate version and the Go version it was built with.",
		ConstLabels: prometheus.Labels{"version": in.Version, "go_version": in.GoVersion}})
	g.Set(1)
	return g
}

// Listeners are the server's bound sockets: Main for listen, Metrics for
// server.metrics_listen (nil when that is empty).
type Listeners struct {
	Main, Metrics net.Listener
}

// Close closes both listeners.
func (l Listeners) Close() {
	if l.Main != nil {
		l.Main.Close()
	}
	if l.Metrics != nil {
		l.Metrics.Close()
	}
}

// Listen binds listen and server.metrics_listen. serve calls it before Open,
// so that a port in use fails at once and nothing (database, keys, KEK file)
// is created.
func Listen(cfg config.Config) (Listeners, error) {
	var ls Listeners
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return ls, listenError("listen", err)
	}
	ls.Main = ln
	if addr := cfg.Server.MetricsListen; addr != "" {
		if ls.Metrics, err = net.Listen("tcp", addr); err != nil {
			ls.Close()
			return Listeners{}, listenError("server.metrics_listen", err)
		}
	}
	return ls, nil
}

// listenError names the setting whose address could not be bound.
func listenError(setting string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s: %w (another process has the port: stop it, or change %s); nothing was created", setting, err, setting)
	}
	return fmt.Errorf("%s: %w", setting, err)
}

// Serve serves on ln (and on server.metrics_listen, which it binds, if set)
// until ctx ends; see ServeListeners.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	ls := Listeners{Main: ln}
	if addr := a.d.cfg.Server.MetricsListen; addr != "" {
		m, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("server.metrics_listen: %w", err)
		}
		ls.Metrics = m
	}
	return a.ServeListeners(ctx, ls)
}

// ServeListeners serves on ls until ctx ends, then shuts down gracefully:
// in-flight requests finish (up to server.shutdown_timeout) and the
// background work (key refresh, key-set notifications, pruning) stops before
// it returns.
func (a *App) ServeListeners(ctx context.Context, ls Listeners) error {
	cfg, log, d, mgr, ln := a.d.cfg, a.d.log, a.d, a.Manager, ls.Main
	defer applyMemoryLimit(cfg, os.Getenv, log)()
	if ls.Metrics != nil { // /metrics on its own listener, not the main one
		stopMetrics := serveMetrics(ls.Metrics, a.metrics, cfg.Server.ReadHeaderTimeout, log)
		defer stopMetrics()
	}
	hs := &http.Server{Handler: a.Handler, ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout, ReadTimeout: cfg.Server.ReadTimeout,
		WriteTimeout: cfg.Server.WriteTimeout, IdleTimeout: cfg.Server.IdleTimeout, MaxHeaderBytes: 32 << 10}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { mgr.Run(ctx, cfg.Keys.PollInterval) })
	// Learn of other replicas' and the CLI's key-set changes at once where
	// the backend can tell; the poll above remains the fallback.
	wg.Go(func() {
		err := d.store.WatchKeySet(ctx, func() {
			if err := mgr.Tick(ctx); err != nil && ctx.Err() == nil {
				log.Warn("key set refresh on notification failed", "err", err)
			}
		})
		if err != nil && ctx.Err() == nil {
			log.Warn("key-set notifications stopped; polling only", "err", err)
		}
	})
	wg.Go(func() { prune(ctx, d, a.Provider, time.Hour) })
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("keygate started", "issuer", cfg.Issuer, "listen", ln.Addr().String(), "active_kid", a.snap.Signing.KID,
		"database", config.RedactDSN(cfg.Storage.DSN), "config", cfg.Path, "version", version.Get().Version)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancelShutdown := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancelShutdown()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// serveMetrics serves h at /metrics on ln (server.metrics_listen) until the
// returned stop is called.
func serveMetrics(ln net.Listener, h http.Handler, readHeaderTimeout time.Duration, log *slog.Logger) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	ms := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout, MaxHeaderBytes: 32 << 10}
	go func() {
		if err := ms.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("metrics listener started", "listen", ln.Addr().String())
	return func() { ms.Close() }
}

// browserPruneInterval is how often expired sessions and authorization codes
// are deleted: codes live a minute (idp.CodeTTL) and a logged-in user can
// make many, so they are pruned within minutes rather than hours (besides
// the per-session cap, idp.MaxCodesPerSession, applied as each is issued).
const browserPruneInterval = time.Minute

// prune deletes expired browser sessions and authorization codes every
// browserPruneInterval, and expired deny-list entries, replay records,
// refresh-token families and refilled throttle buckets every interval, so
// those tables stay the size of what is live.
func prune(ctx context.Context, d *Deps, provider *idp.Provider, every time.Duration) {
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
func pruneBrowser(ctx context.Context, d *Deps, provider *idp.Provider) {
	if n, err := provider.PruneBrowser(ctx); err != nil && ctx.Err() == nil {
		d.log.Warn("pruning expired sessions, authorization codes and device codes failed", "err", err)
	} else if n > 0 {
		d.log.Info("pruned expired sessions, authorization codes and device codes", "rows", n)
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
