package app_test

import (
	"log/slog"
	"testing"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/store/sqlite"
)

// TestStorageSynchronousReachesSQLite: storage.synchronous in config.yaml
// (or KEYGATE_STORAGE_SYNCHRONOUS) is the level the opened SQLite store's
// writer runs with, read back from the connection.
func TestStorageSynchronousReachesSQLite(t *testing.T) {
	for _, c := range []struct {
		yaml string
		env  map[string]string
		want string
	}{
		{"", nil, "NORMAL"},
		{"  synchronous: normal\n", nil, "NORMAL"},
		{"  synchronous: full\n", nil, "FULL"},
		{"  synchronous: FULL\n", nil, "FULL"},
		{"", map[string]string{"KEYGATE_STORAGE_SYNCHRONOUS": "full"}, "FULL"},
		{"  synchronous: full\n", map[string]string{"KEYGATE_STORAGE_SYNCHRONOUS": "normal"}, "NORMAL"},
	} {
		cfg := loadConfigEnv(t, "storage:\n  dsn: keygate.db\n"+c.yaml, c.env)
		d, err := app.CreateDeps(t.Context(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Store().(*sqlite.Store).Synchronous(t.Context())
		d.Close()
		if err != nil || got != c.want {
			t.Errorf("config %q env %v: synchronous %q, %v; want %s", c.yaml, c.env, got, err, c.want)
		}
	}
}
