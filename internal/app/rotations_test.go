package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/app"
)

// TestRotationsCountedFromStore: keygate_key_rotations_total counts the
// signing-key changes another process makes on the shared database (here a
// second manager on the same SQLite file, as `keygate keys rotate --force`
// and `keygate keys revoke` run it), once this server's manager loads them.
func TestRotationsCountedFromStore(t *testing.T) {
	cfg := loadConfig(t, "issuer: http://localhost:1\nlisten: 127.0.0.1:0\nkeys:\n  rsa_bits: 2048\nstorage:\n  dsn: keygate.db\n")
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	// The other process: its own store handle and manager on the same file.
	d, err := app.OpenDeps(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cli, err := d.Manager(nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	metrics := func() string {
		t.Helper()
		rec := httptest.NewRecorder()
		a.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	want := func(lines ...string) {
		t.Helper()
		m := metrics()
		for _, l := range lines {
			if !strings.Contains(m, l+"\n") {
				t.Errorf("metrics lack %q", l)
			}
		}
		if t.Failed() {
			for _, l := range strings.Split(m, "\n") {
				if strings.HasPrefix(l, "keygate_key_rotations_total") {
					t.Log(l)
				}
			}
			t.FailNow()
		}
	}
	want(`keygate_key_rotations_total{reason="initial"} 1`, `keygate_key_rotations_total{reason="manual"} 0`)

	before := a.Manager.Current().Signing.KID
	res, err := cli.Rotate(ctx, true)
	if err != nil || res.Activated == before {
		t.Fatalf("rotate elsewhere: %+v %v", res, err)
	}
	want(`keygate_key_rotations_total{reason="manual"} 0`) // not seen yet
	if err := a.Manager.Tick(ctx); err != nil {            // what the poll or the change feed does
		t.Fatal(err)
	}
	if got := a.Manager.Current().Signing.KID; got != res.Activated {
		t.Fatalf("server signs with %s after the other process rotated to %s", got, res.Activated)
	}
	want(`keygate_key_rotations_total{reason="manual"} 1`, `keygate_key_rotations_total{reason="initial"} 1`)

	// A revocation of the active key elsewhere.
	if _, err := cli.Revoke(ctx, res.Activated); err != nil {
		t.Fatal(err)
	}
	if err := a.Manager.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	want(`keygate_key_rotations_total{reason="revocation"} 1`, `keygate_key_rotations_total{reason="manual"} 1`)

	// A rotation this process makes is counted once, not again when loaded.
	if _, err := a.Manager.Rotate(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := a.Manager.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	want(`keygate_key_rotations_total{reason="manual"} 2`, `keygate_key_rotations_total{reason="observed"} 0`)
}
