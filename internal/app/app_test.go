package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/internal/poll"
)

// TestServeInProcess starts the server on a free port over a fresh SQLite
// file, reads /jwks and /readyz, and shuts it down.
func TestServeInProcess(t *testing.T) {
	base, a, stop := startApp(t, "issuer: http://localhost:1\nlisten: 127.0.0.1:0\nkeys:\n  rsa_bits: 2048\nstorage:\n  dsn: keygate.db\n")

	res, err := http.Get(base + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	err = json.NewDecoder(res.Body).Decode(&set)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || len(set.Keys) == 0 {
		t.Fatalf("GET /jwks: %d %v %+v", res.StatusCode, err, set)
	}
	signing := a.Manager.Current().Signing.KID
	found := false
	for _, k := range set.Keys {
		found = found || k.KID == signing
	}
	if !found {
		t.Errorf("the signing kid %s is not in /jwks: %+v", signing, set.Keys)
	}

	res, err = http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz: %d", res.StatusCode)
	}

	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(base + "/readyz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

// TestMetricsListen moves /metrics to server.metrics_listen: the main port
// answers 404 for it, the metrics listener 200.
func TestMetricsListen(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := free.Addr().String()
	free.Close()

	base, _, stop := startApp(t, "issuer: http://localhost:1\nlisten: 127.0.0.1:0\nstorage:\n  dsn: keygate.db\nserver:\n  metrics_listen: "+metricsAddr+"\n")
	defer stop()

	status := func(url string) int {
		t.Helper()
		var res *http.Response
		poll.Until(t, 10*time.Second, url+" to answer", func() bool {
			res, err = http.Get(url)
			return err == nil
		})
		res.Body.Close()
		return res.StatusCode
	}
	if got := status(base + "/metrics"); got != http.StatusNotFound {
		t.Errorf("/metrics on the main port: %d, want 404", got)
	}
	if got := status("http://" + metricsAddr + "/metrics"); got != http.StatusOK {
		t.Errorf("/metrics on server.metrics_listen: %d, want 200", got)
	}
}

// loadConfig writes yaml to config.yaml in a fresh temporary directory (so a
// relative storage.dsn names a file there) and loads it with an empty
// environment, failing the test on any error.
func loadConfig(t *testing.T, yaml string) config.Config {
	t.Helper()
	return loadConfigEnv(t, yaml, nil)
}

// loadConfigEnv is loadConfig with the environment variables env.
func loadConfigEnv(t *testing.T, yaml string, env map[string]string) config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startApp opens an App over a fresh SQLite file with config body yaml and
// serves it on a free port; it returns the base URL and a function that
// shuts it down and returns Serve's error.
func startApp(t *testing.T, yaml string) (base string, a *app.App, stop func() error) {
	t.Helper()
	cfg := loadConfig(t, yaml)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after its context ended")
			return nil
		}
	}
	return "http://" + ln.Addr().String(), a, stop
}
